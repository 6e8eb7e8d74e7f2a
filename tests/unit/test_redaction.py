"""Secrets never reach logs, events or error messages."""

from __future__ import annotations

import json
import logging

import pytest

from order_dispatch import logs, redact
from order_dispatch.contract import Job
from order_dispatch.settings import Settings, VendorAccount
from worker.vendors.base import VendorRequest, VendorResponse
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


def test_a_secret_that_is_a_common_word_is_masked_only_where_it_stands_as_a_value(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``orders`` as a credential, logs, ``config show``, job ids and the timeline's request
    path stay readable; the secret is masked as a value (a whole string, a query value, a header
    value, a quoted string, a word)."""
    from order_dispatch_cli.config import effective

    common = "orders"
    # Registered for this test only: other tests' texts hold the word.
    monkeypatch.setattr(redact, "_secrets", set())
    monkeypatch.setattr(redact, "_pattern", None)
    redact.register([common])
    job = Job.model_validate(
        {
            "vendor": "sourceorders",
            "order": {
                "order_id": "A-1",
                "placed_at": "2026-01-01T00:00:00Z",
                "ship_to": {"line1": "x", "city": "y", "country": "US"},
                "items": [{"sku": "s", "quantity": 1, "unit_price": "1"}],
            },
        }
    )
    assert job.job_id.startswith("sourceorders")

    logs.configure("INFO")
    logs.get_logger("t").info(
        "job event",
        vendor="sourceorders",
        job_id=job.job_id,
        file="orders.jsonl",
        url=f"https://v/{common}?api_key={common}",
        error=f"key {common} is not valid",
        echoed=common,
        body=f'{{"key": "{common}"}}',
        header=f"X-API-KEY: {common}",
    )
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["vendor"] == "sourceorders" and line["job_id"] == job.job_id
    assert line["file"] == "orders.jsonl"
    assert line["url"] == "https://v/orders?api_key=***"
    assert line["error"] == "key *** is not valid" and line["echoed"] == "***"
    assert line["body"] == '{"key": "***"}' and line["header"] == "X-API-KEY: ***"

    shown = effective(
        Settings(
            accounts={
                "sourceorders": {
                    "default": VendorAccount(
                        base_url="http://127.0.0.1:8787/sourceorders",
                        credentials={"api_key": common},
                    )
                }
            }
        )
    )
    account = shown["accounts"]["sourceorders"]["default"]
    assert account["base_url"] == "http://127.0.0.1:8787/sourceorders"
    assert account["credentials"] == {"api_key": "***"}

    request = VendorRequest("POST", "/v1/orders", params={"q": common, "page": "2"})
    assert request.summary("http://127.0.0.1:8787/sourceorders") == (
        "POST /sourceorders/v1/orders?q=***&page=2"
    )
