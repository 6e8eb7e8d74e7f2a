"""The timeline's pieces without Redis: request summaries, entries, ``--since``, the tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from order_dispatch import redact
from order_dispatch.contract import ErrorInfo, ErrorKind, EventStatus, Job, Operation, ResultEvent
from order_dispatch.timeline import EXCERPT_CHARS, TimelineEntry, excerpt
from order_dispatch_cli.operations import dead_letters_table, timeline_table
from order_dispatch_ops.actions import DeadLetter, JobTimeline, parse_since
from worker.vendors.base import VendorRequest

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _a_registered_secret() -> Iterator[None]:
    redact.register(["s3cret-value"])
    yield


def event(status: EventStatus = EventStatus.RETRY_SCHEDULED, **fields: object) -> ResultEvent:
    base: dict[str, object] = {
        "event_id": "j1:1.abcdef12:1:" + status.value,
        "job_id": "j1",
        "order_id": "A-1",
        "vendor": "sourceorders",
        "account": "default",
        "operation": Operation.CREATE,
        "status": status,
        "terminal": status.terminal,
        "attempt": 1,
        "occurred_at": NOW,
    }
    return ResultEvent.model_validate({**base, **fields})


def test_a_request_summary_is_method_and_path_with_secret_query_values_masked() -> None:
    request = VendorRequest(
        "POST", "/v1/orders", params={"api_key": "abc", "page": "2", "q": "s3cret-value"}
    )

    summary = request.summary("https://user:pw@api.example.com/base/")

    assert summary == "POST /base/v1/orders?api_key=***&page=2&q=***"


def test_a_request_to_another_host_keeps_only_its_path() -> None:
    request = VendorRequest("GET", "https://auth.example.com/oauth/token")

    assert request.summary("https://api.example.com") == "GET /oauth/token"


def test_an_entry_takes_the_events_facts_and_the_workers() -> None:
    error = ErrorInfo(kind=ErrorKind.VENDOR_UNAVAILABLE, message="busy", http_status=503)
    body = "x" * (EXCERPT_CHARS + 10) + "s3cret-value"

    entry = TimelineEntry.of_event(
        event(error=error, vendor_response=body, retry_in_s=1.5),
        worker="host-1",
        request="POST /v1/orders?token=s3cret-value",
    )

    assert (entry.at, entry.run, entry.attempt, entry.status) == (NOW, 1, 1, "retry_scheduled")
    assert entry.http_status == 503  # from the error when the worker gives none
    assert entry.request == "POST /v1/orders?token=***"
    assert entry.response == "x" * EXCERPT_CHARS + "...[13 more]"  # counted after masking
    assert (entry.worker, entry.retry_in_s, entry.recorded) == ("host-1", 1.5, True)
    assert TimelineEntry.model_validate_json(entry.to_json()) == entry
    assert '"recorded":true' in entry.to_json()  # the record script flips exactly this


def test_an_excerpt_masks_secrets_and_keeps_short_bodies_whole() -> None:
    assert excerpt('{"echo": "s3cret-value"}') == '{"echo": "***"}'
    assert excerpt(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - timedelta(seconds=30)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-11-19T08:00:00Z", datetime(2026, 11, 19, 8, tzinfo=UTC)),
        ("2026-11-19T08:00:00+02:00", datetime(2026, 11, 19, 6, tzinfo=UTC)),
        ("2026-11-19", datetime(2026, 11, 19, tzinfo=UTC)),
    ],
)
def test_since_takes_a_time_or_a_duration(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


def test_since_explains_what_it_takes() -> None:
    with pytest.raises(ValueError) as caught:
        parse_since("yesterday", now=NOW)

    assert str(caught.value) == (
        "'yesterday' is neither an ISO time (2026-11-20T10:00:00Z) nor a duration "
        "(30s, 15m, 2h, 7d, 1w)"
    )


def test_the_dead_letters_table_has_one_row_per_job() -> None:
    dead = [
        DeadLetter("j1", "sourceorders", "default", "create", "A-1", "dead_lettered", 1, 5, NOW,
                   "HTTP 500 " + "y" * 200),
        DeadLetter("j2", "sophio", "eu", "create", "A-2", "unknown", 1, None, None, None),
    ]

    lines = dead_letters_table(dead).splitlines()

    assert lines[0].split() == [
        "AT", "(UTC)", "STATUS", "VENDOR", "ACCOUNT", "ORDER", "RUN/ATT", "JOB", "ERROR"]
    assert lines[1].split()[:8] == [
        "2026-11-20", "12:00:00Z", "dead_lettered", "sourceorders", "default", "A-1", "1/5", "j1"]
    assert lines[1].endswith("  HTTP 500 " + "y" * 68 + "...")  # cut to 80 characters
    assert lines[2].split() == ["-", "unknown", "sophio", "eu", "A-2", "1/-", "j2"]


def test_the_timeline_table_shows_attempts_actions_and_answers() -> None:
    error = ErrorInfo(kind=ErrorKind.VENDOR_UNAVAILABLE, message="busy", http_status=503)
    attempt = TimelineEntry.of_event(
        event(error=error, vendor_response='{"error":"busy"}'),
        worker="host-1",
        request="POST /v1/orders",
    )
    replayed = event(EventStatus.REPLAYED, run=2, operator="pam", note="vendor back")
    replay = TimelineEntry.of_event(replayed, action="replay", detail="run 2 started")
    resolved = event(EventStatus.ACCEPTED, run=3, operator="pam", vendor_order_id="soo_1")
    resolve = TimelineEntry.of_event(resolved, action="resolve")
    late = attempt.model_copy(update={"recorded": False})

    text = timeline_table(JobTimeline("j1", 3, "done", [attempt, replay, resolve, late]))

    lines = text.splitlines()
    assert lines[0] == "job j1: run 3, done"
    assert lines[1].split()[:9] == [
        "AT", "(UTC)", "RUN", "ATT", "WHAT", "BY", "REQUEST", "HTTP", "DETAIL"]
    assert lines[2].split()[2:9] == [
        "1", "1", "retry_scheduled", "host-1", "POST", "/v1/orders", "503"]
    assert lines[2].endswith("vendor_unavailable: busy")
    assert lines[3] == '    response: {"error":"busy"}'
    assert "replay  " in lines[4] and "operator pam" in lines[4]
    assert lines[4].endswith("run 2 started; note: vendor back")
    assert "resolve: accepted" in lines[5] and lines[5].endswith("vendor order soo_1")
    assert lines[6].endswith("NOT RECORDED: its run had already ended or been replayed")


def test_an_empty_timeline_says_so() -> None:
    assert timeline_table(JobTimeline("j1", 1, None, [])) == (
        "job j1: run 1, no attempt yet\nno entries yet"
    )


@pytest.mark.parametrize("name", ["sophio", "supplystream"])
def test_credentials_a_vendor_puts_in_the_query_never_show_in_a_summary(name: str) -> None:
    from order_dispatch_cli.preview import placeholder_account
    from tests.integration.conftest import order_job
    from worker.vendors import vendor_class

    cls = vendor_class(name)
    account = placeholder_account(cls)
    vendor = cls(account)
    job = Job.model_validate({**order_job("A-1"), "vendor": name})
    sent = vendor.authorize(vendor.translate(job), None)

    summary = sent.summary(account.base_url)

    assert "=***" in summary
    assert not any(secret in summary for secret in vendor.secrets())
