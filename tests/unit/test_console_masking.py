"""A key without ``read:orders`` sees a job's timeline with the order's personal values masked
in the vendor's answers, error messages and notes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from order_dispatch.contract import ErrorInfo, ErrorKind, EventStatus
from order_dispatch.timeline import TimelineEntry
from order_dispatch_api.console.pages import _masked
from tests.integration.conftest import order_job


def test_personal_values_are_masked_and_the_rest_kept() -> None:
    job = {"job_id": "j1", **order_job("A-1")}
    entry = TimelineEntry(
        at=datetime.now(UTC),
        run=1,
        attempt=1,
        status=EventStatus.REJECTED,
        event_id="j1:1.x:1:rejected",
        response='{"error": "no such street", "street": "1725 Slough Ave"}',
        error=ErrorInfo(kind=ErrorKind.VENDOR_REJECTED, message="pam@example.com is blocked"),
        note="called Pam Beesly",
        http_status=400,
    )

    (shown,) = _masked([entry], json.dumps(job))

    assert "Slough" not in (shown.response or "") and "no such street" in (shown.response or "")
    assert shown.error is not None and shown.error.message == "[personal] is blocked"
    assert "Beesly" not in (shown.note or "") and (shown.note or "").startswith("called")
    assert (shown.http_status, shown.status) == (400, EventStatus.REJECTED)
    assert entry.response is not None and "Slough" in entry.response  # the original is kept


def test_without_a_stored_order_personal_fields_of_json_are_still_masked() -> None:
    entry = TimelineEntry(
        at=datetime.now(UTC),
        run=1,
        attempt=1,
        status=EventStatus.REJECTED,
        event_id="e",
        response='{"email": "pam@example.com", "reason": "blocked"}',
    )

    (shown,) = _masked([entry], None)

    assert "pam@example.com" not in (shown.response or "")
    assert "blocked" in (shown.response or "")
