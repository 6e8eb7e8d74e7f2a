"""Personal data masked in vendor bodies, error messages and logs, and cut out of Celery's own
lines about messages it cannot run."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from celery.worker.consumer import consumer as celery_consumer

from order_dispatch import logs, privacy
from order_dispatch.contract import Job

# Celery's own templates (its type stubs do not declare them).
UNKNOWN_TASK_ERROR = str(getattr(celery_consumer, "UNKNOWN_TASK_ERROR"))  # noqa: B009
INVALID_TASK_ERROR = str(getattr(celery_consumer, "INVALID_TASK_ERROR"))  # noqa: B009
MESSAGE_DECODE_ERROR = str(getattr(celery_consumer, "MESSAGE_DECODE_ERROR"))  # noqa: B009

JOB = Job.model_validate(
    {
        "vendor": "sourceorders",
        "order": {
            "order_id": "P-1",
            "placed_at": "2026-01-02T03:04:05+00:00",
            "customer": {"email": "jane.roe@example.org", "phone": "+1 555 0100"},
            "ship_to": {
                "first_name": "Janet",
                "last_name": "Roeland",
                "line1": "77 Sunset Strip",
                "city": "Quahog",
                "postal_code": "02912",
                "country": "US",
            },
            "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "1"}],
            "gift": {"message": "Happy birthday Janet"},
        },
    }
)
PERSONAL = ["jane.roe@example.org", "+1 555 0100", "Janet", "Roeland", "77 Sunset Strip",
            "Quahog", "02912", "Happy birthday Janet"]  # fmt: skip


def test_the_jobs_personal_values_are_known() -> None:
    assert sorted(privacy.personal_values(JOB)) == sorted(PERSONAL)


def test_json_bodies_lose_values_under_personal_keys_and_the_jobs_values_anywhere() -> None:
    body = json.dumps(
        {
            "orderId": "soo_1",
            "shippingAddress": {"firstName": "Someone", "street1": "1 Other Rd", "country": "US"},
            "note": "ship to 77 Sunset Strip, QUAHOG",
        }
    )

    masked = json.loads(privacy.mask(body, privacy.personal_values(JOB)))

    assert masked == {
        "orderId": "soo_1",
        "shippingAddress": {"firstName": "[personal]", "street1": "[personal]", "country": "US"},
        "note": "ship to [personal], [personal]",
    }


def test_xml_elements_of_personal_fields_are_masked() -> None:
    body = "<Response><Name>Someone</Name><Email a='1'>x@y.z</Email><Sku>S-1</Sku></Response>"

    assert privacy.mask(body) == (
        "<Response><Name>[personal]</Name><Email a='1'>[personal]</Email><Sku>S-1</Sku>"
        "</Response>"
    )


def test_an_excerpt_is_masked_cut_or_left_out() -> None:
    body = '{"message": "bad postal code 02912", "detail": "' + "x" * 50 + '"}'

    assert privacy.excerpt(body, JOB, 0) is None
    cut = privacy.excerpt(body, JOB, 30)
    assert cut is not None and cut.startswith('{"message": "bad postal code [')
    assert cut.endswith("more]") and "02912" not in cut


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    logs.configure("DEBUG")
    out = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(out)
    yield out
    handler.setStream(previous)


def test_log_lines_written_while_a_job_runs_mask_its_values(log_lines: io.StringIO) -> None:
    log = logs.get_logger("test.privacy")
    with privacy.scope(JOB):
        log.info("vendor said", error="unknown street 77 Sunset Strip for Janet Roeland")
        logging.getLogger("some.library").warning("retrying for jane.roe@example.org")
    log.info("outside", detail="Janet")

    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines[0]["error"] == "unknown street [personal] for [personal] [personal]"
    assert lines[1]["event"] == "retrying for [personal]"
    assert lines[2]["detail"] == "Janet"  # no job in scope: nothing to compare with


def test_celery_lines_about_messages_it_cannot_run_leave_the_body_out(
    log_lines: io.StringIO,
) -> None:
    consumer = logging.getLogger("celery.worker.consumer.consumer")
    body = "{'order': {'ship_to': {'line1': '77 Sunset Strip'}}}"

    try:
        raise KeyError("worker.tasks.gone")
    except KeyError as exc:
        consumer.error(UNKNOWN_TASK_ERROR, exc, body, "{}", "{}", exc_info=True)
    consumer.error(INVALID_TASK_ERROR, ValueError("no id"), body, exc_info=True)
    consumer.critical(
        MESSAGE_DECODE_ERROR, ValueError("bad"), "json", "utf-8", "{}", body
    )

    text = log_lines.getvalue()
    assert "Sunset" not in text
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert events == [
        "Received unregistered task of type 'worker.tasks.gone'. " + logs.BODY_NOT_LOGGED,
        "Received invalid task message: no id " + logs.BODY_NOT_LOGGED,
        "Can't decode a message (ValueError) " + logs.BODY_NOT_LOGGED,
    ]
