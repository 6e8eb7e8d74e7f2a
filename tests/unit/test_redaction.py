"""Secrets never reach logs, events or error messages."""

from __future__ import annotations

import json
import logging

import pytest

from order_dispatch import logs, redact
from order_dispatch.contract import Job
from order_dispatch.settings import Settings, VendorAccount
from worker.vendors.base import VendorResponse
from worker.vendors.sourceorders import SourceOrders

SECRET = "sk-live-6f1e2d3c"


def test_registered_secrets_are_masked_in_text_and_structures() -> None:
    redact.register([SECRET])

    assert redact.text(f"bad key {SECRET}!") == "bad key ***!"
    assert redact.value(
        {
            "url": f"https://x/?api_key={SECRET}",
            "password": "hunter22",
            "nested": [{"token": "t"}, "plain"],
        }
    ) == {"url": "https://x/?api_key=***", "password": "***", "nested": [{"token": "***"}, "plain"]}


def test_log_lines_are_json_and_masked(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register([SECRET])
    logs.configure("INFO")

    logs.get_logger("t").info(
        "calling vendor", url=f"https://v/?k={SECRET}", api_key=SECRET, job_id="j-1"
    )
    logging.getLogger("other").warning("stdlib too: %s", SECRET)

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["job_id"] == "j-1" and lines[0]["api_key"] == "***"
    assert SECRET not in json.dumps(lines)
    assert lines[1]["event"] == "stdlib too: ***"


def test_settings_never_print_credentials() -> None:
    settings = Settings(
        accounts={
            "sourceorders": {
                "default": VendorAccount(base_url="https://x", credentials={"api_key": SECRET})
            }
        }
    )

    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    assert settings.secrets() == [SECRET]


def test_a_vendor_echoing_the_key_is_masked_by_redaction() -> None:
    """The reader keeps the vendor's raw message; ``redact.text`` masks it. The pipeline applies
    it before emitting (``test_secrets_echoed_by_the_vendor_are_masked_in_the_event`` in
    ``tests/integration/test_pipeline_logic.py``)."""
    redact.register([SECRET])
    vendor = SourceOrders(VendorAccount(base_url="https://x", credentials={"api_key": SECRET}))
    job = Job.model_validate(
        {
            "vendor": "sourceorders",
            "order": {
                "order_id": "A",
                "placed_at": "2026-01-01T00:00:00Z",
                "ship_to": {"line1": "x", "city": "y", "country": "US"},
                "items": [{"sku": "s", "quantity": 1, "unit_price": "1"}],
            },
        }
    )

    outcome = vendor.read(job, VendorResponse.make(401, {"message": f"key {SECRET} is not valid"}))

    assert outcome.error is not None and SECRET in outcome.error.message  # raw, before redaction
    assert redact.text(outcome.error.message) == "key *** is not valid"
