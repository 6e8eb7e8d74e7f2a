"""Operators' actions on a real Redis, with the real pipeline (mock vendor over httpx) making the
dead letters, in-doubt jobs and timelines they act on."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.settings import CircuitSettings
from order_dispatch.timeline import TimelineEntry
from order_dispatch_ops.actions import JobNotFound, OperationRefused, Operations
from producers.enqueue import InvalidJob
from tests.integration.conftest import Events, order_job, unique
from tests.integration.test_pipeline_logic import (  # noqa: F401 (_close_loops: autouse fixture)
    _close_loops,
    accepted,
    began_long_ago,
    put,
)
from tests.integration.test_pipeline_logic import make as make_pipeline
from worker.pipeline import Pipeline

pytestmark = pytest.mark.integration


def make(
    redis_client: redis.Redis, handler: Callable[[httpx.Request], httpx.Response]
) -> tuple[Pipeline, Events, list[httpx.Request]]:
    """A pipeline whose circuit breaker stays closed: these tests fail the vendor on purpose."""
    return make_pipeline(redis_client, handler, circuit=CircuitSettings(failure_threshold=1000))


def ops_for(pipeline: Pipeline, **kwargs: Any) -> Operations:
    return Operations(
        pipeline.store.client, key_prefix=pipeline.keys.prefix, operator="pam", **kwargs
    )


def failing_then(*answers: httpx.Response) -> Any:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def dead_letter(pipeline: Pipeline, job: dict[str, Any]) -> str:
    """Run ``job`` through every attempt of the pipeline (3 in these settings) on a vendor that
    fails each one; its job id."""
    job_id = put(pipeline, job)
    attempt = 1
    while (step := pipeline.run(job_id, 1, attempt)).retry_in_s is not None:
        assert not step.deferred, "deferred, not failed: the test would spin"
        attempt = step.attempt
    return job_id


def queued_kwargs(client: redis.Redis, pipeline: Pipeline) -> list[dict[str, Any]]:
    import base64

    raw = client.lrange(pipeline.keys.queue("sourceorders"), 0, -1)
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[1] for m in raw]


def raw_timeline(client: redis.Redis, pipeline: Pipeline, job_id: str) -> list[str]:
    raw: list[bytes] = client.lrange(pipeline.keys.timeline(job_id), 0, -1)  # type: ignore[assignment]
    return [e.decode() for e in raw]


def test_the_timeline_has_every_attempt_with_request_answer_and_worker(
    redis_client: redis.Redis,
) -> None:
    handler = failing_then(
        httpx.Response(503, json={"error": "busy", "echo": "k-secret-1"}),
        httpx.Response(200, json={"orderId": "soo_9", "status": "RECEIVED"}),
    )
    pipeline, _, _ = make(redis_client, handler)
    job_id = put(pipeline, order_job(unique("tl")))

    pipeline.run(job_id, 1, 1)
    pipeline.run(job_id, 1, 2)
    found = ops_for(pipeline).timeline(job_id)

    assert (found.run, found.state) == (1, "done")
    first, second = found.entries
    assert (first.attempt, first.status, first.http_status) == (1, "retry_scheduled", 503)
    assert first.request == "POST /v1/orders"
    assert first.worker == pipeline.worker_name
    assert first.response is not None and '"busy"' in first.response
    assert first.error is not None and first.error.kind == "vendor_unavailable"
    assert first.recorded and first.retry_in_s is not None
    assert (second.attempt, second.status, second.http_status) == (2, "accepted", 200)
    assert second.vendor_order_id == "soo_9"
    assert first.at <= second.at
    assert "k-secret-1" not in "".join(raw_timeline(redis_client, pipeline, job_id))


def test_dlq_list_shows_dead_letters_and_in_doubt_jobs_filtered(
    redis_client: redis.Redis,
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500, text="down"))
    ops = ops_for(pipeline)
    older = dead_letter(pipeline, order_job(unique("old")))
    between = datetime.now(UTC)
    newer = dead_letter(pipeline, order_job(unique("new")))
    doubtful_job = order_job(unique("doubt"))
    doubtful = put(pipeline, doubtful_job)
    began_long_ago(pipeline, doubtful, 1, seconds=3600)
    pipeline.run(doubtful, 1, 1)

    everything = ops.dead_letters()
    recent = ops.dead_letters(since=between)
    in_doubt = ops.dead_letters(status="in_doubt")

    assert [d.job_id for d in everything] == [older, newer, doubtful]
    assert [d.job_id for d in recent] == [newer, doubtful]
    assert [d.job_id for d in in_doubt] == [doubtful]
    assert ops.dead_letters(vendor="sophio") == []
    first = everything[0]
    assert (first.status, first.vendor, first.run, first.attempt) == (
        "dead_lettered", "sourceorders", 1, 3)
    assert first.error == "down"
    assert first.at is not None and first.at < between
    assert first.as_json()["order_id"] == first.order_id


def test_a_replay_starts_the_next_run_atomically_and_the_worker_finishes_it(
    redis_client: redis.Redis,
) -> None:
    answers = [httpx.Response(500)] * 3 + [accepted(None)]  # type: ignore[arg-type]
    pipeline, events, seen = make(redis_client, lambda r: answers.pop(0))
    ops = ops_for(pipeline)
    job_id = dead_letter(pipeline, order_job(unique("replay")))
    run_id_before = redis_client.hget(pipeline.keys.job(job_id), "run_id")
    wake = pipeline.keys.fetch_wake(pipeline.keys.queue("sourceorders"))
    tokens = int(redis_client.llen(wake))

    replayed = ops.replay(job_id, note="vendor is back")

    assert (replayed.status, replayed.run, replayed.attempt) == ("replayed", 2, 1)
    assert replayed.operator == "pam" and replayed.note == "vendor is back"
    assert not replayed.terminal
    job_hash = redis_client.hgetall(pipeline.keys.job(job_id))
    assert job_hash[b"run"] == b"2" and job_hash[b"run_id"] != run_id_before
    token = job_hash[b"run_id"]
    assert isinstance(token, bytes)
    assert replayed.event_id.startswith(f"{job_id}:2.{token.decode()[:8]}:")
    assert not redis_client.exists(pipeline.keys.ledger(job_id))
    assert not redis_client.hexists(pipeline.keys.dead_letters, job_id)
    assert not redis_client.hexists(pipeline.keys.dead_events, job_id)
    assert queued_kwargs(redis_client, pipeline) == [{"job_id": job_id, "run": 2, "attempt": 1}]
    assert int(redis_client.llen(wake)) == tokens + 1  # an idle worker of the queue wakes

    pipeline.run(job_id, 1, 3)  # a late message of run 1: a replay superseded it
    pipeline.run(job_id, 2, 1)

    history = [(e.run, e.attempt, e.status) for e in events.of(job_id)]
    assert history == [
        (1, 1, "retry_scheduled"), (1, 2, "retry_scheduled"), (1, 3, "dead_lettered"),
        (2, 1, "replayed"), (2, 1, "accepted"),
    ]
    assert len(seen) == 4
    for run in (1, 2):
        assert len([e for e in events.of(job_id) if e.terminal and e.run == run]) == 1
    actions = [e for e in ops.timeline(job_id).entries if e.action]
    assert [(a.action, a.run, a.operator, a.note) for a in actions] == [
        ("replay", 2, "pam", "vendor is back")]
    assert actions[0].detail == "run 2 started with the same order (run 1 ended dead_lettered)"


def test_an_event_of_a_superseded_run_is_not_written_but_shows_in_the_timeline(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, _ = make(redis_client, lambda r: httpx.Response(500))
    job_id = dead_letter(pipeline, order_job(unique("late")))
    ops_for(pipeline).replay(job_id)
    ledger_before = redis_client.hgetall(pipeline.keys.ledger(job_id))
    late = events.of(job_id)[0].model_copy(
        update={"event_id": f"{job_id}:late", "status": EventStatus.RETRY_SCHEDULED}
    )
    job = Job.model_validate_json(redis_client.get(pipeline.keys.document(job_id)) or "")
    written = pipeline.store.record(job, late, worker="slow-worker").written

    assert written is False
    assert f"{job_id}:late" not in [e.event_id for e in events.all()]
    assert redis_client.hgetall(pipeline.keys.ledger(job_id)) == ledger_before
    last = TimelineEntry.model_validate_json(raw_timeline(redis_client, pipeline, job_id)[-1])
    assert (last.event_id, last.recorded, last.worker) == (f"{job_id}:late", False, "slow-worker")


def test_a_second_terminal_event_of_a_run_is_marked_unrecorded(redis_client: redis.Redis) -> None:
    pipeline, events, _ = make(redis_client, accepted)
    job_id = put(pipeline, order_job(unique("twice")))
    pipeline.run(job_id, 1, 1)
    job = Job.model_validate_json(redis_client.get(pipeline.keys.document(job_id)) or "")
    again = events.of(job_id)[0].model_copy(update={"event_id": f"{job_id}:again"})

    assert pipeline.store.record(job, again, worker="w2").written is False
    entries = ops_for(pipeline).timeline(job_id).entries
    assert [(e.event_id.endswith(":again"), e.recorded) for e in entries] == [
        (False, True), (True, False)]


def test_a_replay_with_a_corrected_order_replaces_the_stored_job(
    redis_client: redis.Redis,
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500))
    job = order_job(unique("fix"))
    job_id = dead_letter(pipeline, job)
    corrected = {**job["order"], "ship_to": {**job["order"]["ship_to"], "line2": "Suite 200"}}

    ops_for(pipeline).replay(job_id, order=corrected)

    stored = json.loads(redis_client.get(pipeline.keys.document(job_id)) or "")
    assert stored["order"]["ship_to"]["line2"] == "Suite 200"
    assert stored["job_id"] == job_id
    entry = ops_for(pipeline).timeline(job_id).entries[-1]
    assert entry.detail == "run 2 started with a corrected order (run 1 ended dead_lettered)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_id": "ANOTHER"}, "order_id: the corrected job has 'ANOTHER', the job being "
         "replayed '{order_id}'; a replay keeps vendor, account, operation and order id "
         "(enqueue a new job for another)"),
        ({"vendor": "sophio"}, "vendor: the corrected job has 'sophio'"),
        ({"account": "eu"}, "account: the corrected job has 'eu'"),
    ],
)
def test_a_corrected_job_for_something_else_is_refused(
    redis_client: redis.Redis, change: dict[str, str], message: str
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500))
    job = order_job(unique("other"))
    job_id = dead_letter(pipeline, job)
    order_id = job["order"]["order_id"]
    if "order_id" in change:
        corrected: dict[str, Any] = {**job["order"], **change}
    else:
        corrected = {**job, **change}

    with pytest.raises(OperationRefused) as refused:
        ops_for(pipeline).replay(job_id, order=corrected)

    assert str(refused.value).startswith(message.format(order_id=order_id))
    assert redis_client.hget(pipeline.keys.job(job_id), "run") == b"1"
    assert redis_client.hexists(pipeline.keys.dead_letters, job_id)


def test_a_corrected_order_that_breaks_the_contract_names_the_fields(
    redis_client: redis.Redis,
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500))
    job = order_job(unique("bad"))
    job_id = dead_letter(pipeline, job)
    broken = {**job["order"], "currency": "dollars"}
    broken["items"] = [{**job["order"]["items"][0], "quantity": 0}]

    with pytest.raises(InvalidJob) as invalid:
        ops_for(pipeline).replay(job_id, order=broken)

    assert invalid.value.source == "corrected order"
    assert any(e.startswith("order.currency:") for e in invalid.value.errors)
    assert any(e.startswith("order.items.0.quantity:") for e in invalid.value.errors)
    assert redis_client.hget(pipeline.keys.job(job_id), "run") == b"1"


def test_a_job_rejected_for_breaking_the_contract_can_be_replayed_corrected(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, _ = make(redis_client, accepted)
    job = order_job(unique("raw"), currency="usd")  # stored by a producer that skipped checks
    job_id = put(pipeline, job, job_id=unique("raw-job"))
    pipeline.run(job_id, 1, 1)
    ops = ops_for(pipeline)

    with pytest.raises(OperationRefused) as refused:
        ops.replay(job_id)
    ops.replay(job_id, order={**job["order"], "currency": "USD"})
    pipeline.run(job_id, 2, 1)

    assert str(refused.value).startswith(
        f"the stored job {job_id!r} breaks the contract (order.currency: ")
    assert str(refused.value).endswith("replay it with a corrected order")
    assert [(e.run, e.status) for e in events.of(job_id)] == [
        (1, "rejected"), (2, "replayed"), (2, "accepted")]


def test_a_running_job_cannot_be_replayed_or_resolved(redis_client: redis.Redis) -> None:
    pipeline, _, _ = make(redis_client, accepted)
    ops = ops_for(pipeline)
    job_id = put(pipeline, order_job(unique("running")))
    pipeline.store.begin_attempt(job_id, 1, "w1")

    with pytest.raises(OperationRefused) as replay:
        ops.replay(job_id)
    with pytest.raises(OperationRefused) as resolve:
        ops.resolve(job_id, "accepted")

    assert str(replay.value) == (
        f"job {job_id!r} is still running: run 1 has no terminal event yet; "
        "replay it once it has ended"
    )
    assert str(resolve.value) == (
        f"job {job_id!r} is still running: run 1 has no terminal event yet; "
        "only an in_doubt job can be resolved"
    )
    assert redis_client.llen(pipeline.keys.queue("sourceorders")) == 0


def test_an_accepted_job_is_not_replayed(redis_client: redis.Redis) -> None:
    pipeline, _, _ = make(redis_client, accepted)
    job_id = put(pipeline, order_job(unique("done")))
    pipeline.run(job_id, 1, 1)

    with pytest.raises(OperationRefused) as refused:
        ops_for(pipeline).replay(job_id)

    assert str(refused.value) == (
        f"job {job_id!r} was accepted in run 1; a replay would send the order to the vendor "
        "again (enqueue a new job to do that on purpose)"
    )


def test_an_unknown_job_is_named(redis_client: redis.Redis) -> None:
    pipeline, _, _ = make(redis_client, accepted)
    ops = ops_for(pipeline)

    for act in (ops.timeline, ops.replay, lambda j: ops.resolve(j, "rejected")):
        with pytest.raises(JobNotFound) as missing:
            act("nope")
        assert str(missing.value) == "no job 'nope': not in the job store nor in the dead letters"


def test_two_operators_replaying_at_once_start_one_run(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, events, _ = make(redis_client, lambda r: httpx.Response(500))
    ops = ops_for(pipeline)
    job_id = dead_letter(pipeline, order_job(unique("race")))
    seen_by_both = ops._stored(job_id)
    ops.replay(job_id)
    monkeypatch.setattr(ops, "_stored", lambda _: seen_by_both)  # the other one read it before

    with pytest.raises(OperationRefused) as refused:
        ops.replay(job_id)

    assert str(refused.value) == (
        f"job {job_id!r} changed meanwhile: it is now in run 2, not 1; "
        "look at its timeline and try again"
    )
    assert [e.status for e in events.of(job_id)].count(EventStatus.REPLAYED) == 1
    assert len(queued_kwargs(redis_client, pipeline)) == 1


def test_resolving_an_in_doubt_job_is_the_terminal_event_of_a_new_run(
    redis_client: redis.Redis,
) -> None:
    pipeline, events, seen = make(redis_client, accepted)
    ops = ops_for(pipeline)
    job_id = put(pipeline, order_job(unique("doubt")))
    began_long_ago(pipeline, job_id, 1, seconds=3600)
    pipeline.run(job_id, 1, 1)

    decided = ops.resolve(job_id, "accepted", vendor_order_id="soo_42", note="seen in portal")

    assert (decided.status, decided.terminal, decided.run) == ("accepted", True, 2)
    assert (decided.vendor_order_id, decided.operator, decided.note) == (
        "soo_42", "pam", "seen in portal")
    assert [(e.run, e.status) for e in events.of(job_id)] == [(1, "in_doubt"), (2, "accepted")]
    assert redis_client.get(pipeline.keys.terminal(job_id, 2)) == decided.event_id.encode()
    assert ops.dead_letters() == []
    assert redis_client.llen(pipeline.keys.queue("sourceorders")) == 0
    assert seen == []
    ledger = redis_client.hgetall(pipeline.keys.ledger(job_id))
    assert ledger[b"state"] == b"done" and ledger[b"last_status"] == b"accepted"
    action = ops.timeline(job_id).entries[-1]
    assert (action.action, action.status, action.note) == ("resolve", "accepted", "seen in portal")
    assert action.detail == "run 1 (in_doubt) resolved as accepted in run 2"
    pipeline.run(job_id, 1, 1)  # a late delivery of run 1 changes nothing
    assert len(events.of(job_id)) == 2

    with pytest.raises(OperationRefused) as again:
        ops.resolve(job_id, "rejected")
    assert str(again.value) == (
        f"job {job_id!r} is not in doubt: run 2 ended accepted; "
        "only an in_doubt job can be resolved"
    )


def test_only_in_doubt_jobs_are_resolved_and_ids_go_with_accepted(
    redis_client: redis.Redis,
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500))
    ops = ops_for(pipeline)
    job_id = dead_letter(pipeline, order_job(unique("dead")))

    with pytest.raises(OperationRefused) as dead:
        ops.resolve(job_id, "accepted")
    with pytest.raises(OperationRefused) as id_with_rejected:
        ops.resolve(job_id, "rejected", vendor_order_id="soo_1")

    assert str(dead.value) == (
        f"job {job_id!r} is not in doubt: run 1 ended dead_lettered; "
        "only an in_doubt job can be resolved"
    )
    assert str(id_with_rejected.value) == "--vendor-order-id goes with --as accepted only"


def test_replay_many_replays_the_matching_dead_letters_only(redis_client: redis.Redis) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500))
    ops = ops_for(pipeline)
    older = dead_letter(pipeline, order_job(unique("m-old")))
    between = datetime.now(UTC)
    newer = [dead_letter(pipeline, order_job(unique(f"m-{n}"))) for n in range(3)]
    doubtful = put(pipeline, order_job(unique("m-doubt")))
    began_long_ago(pipeline, doubtful, 1, seconds=3600)
    pipeline.run(doubtful, 1, 1)

    done = ops.replay_many(vendor="sourceorders", since=between, note="bulk")

    assert [job_id for job_id, _ in done] == newer
    assert all(isinstance(r, ResultEvent) and r.run == 2 for _, r in done)
    assert {d.job_id for d in ops.dead_letters()} == {older, doubtful}
    assert len(queued_kwargs(redis_client, pipeline)) == 3
    assert ops.replay_many(since=datetime.now(UTC) + timedelta(seconds=1)) == []


def test_dead_letters_without_their_event_are_listed_and_replayable(
    redis_client: redis.Redis,
) -> None:
    pipeline, _, _ = make(redis_client, accepted)
    ops = ops_for(pipeline)
    job = order_job(unique("legacy"))
    job_id = put(pipeline, job)  # dead-lettered by a version that kept only the job document
    redis_client.hset(pipeline.keys.dead_letters, job_id, json.dumps(job))
    redis_client.hset(pipeline.keys.dead_letters, "raw-1", "not a job")

    listed = {d.job_id: d for d in ops.dead_letters()}
    ops.replay(job_id)

    legacy = listed[job_id]
    assert (legacy.status, legacy.vendor, legacy.order_id, legacy.at) == (
        "unknown", "sourceorders", job["order"]["order_id"], None)
    assert (listed["raw-1"].vendor, listed["raw-1"].order_id) == ("?", "?")
    assert ops.dead_letters(since=datetime.now(UTC) - timedelta(days=1)) == []
    assert queued_kwargs(redis_client, pipeline) == [{"job_id": job_id, "run": 2, "attempt": 1}]


def test_health_and_dlq_list_agree_after_the_ledgers_expired(redis_client: redis.Redis) -> None:
    """Health (and the metrics) count in-doubt jobs from the same dead-letter entries as ``dlq
    list``; the ledgers, which expire after the receipt TTL, play no part."""
    from order_dispatch_ops.state import StateReader

    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(500, text="down"))
    dead_letter(pipeline, order_job(unique("dead")))
    doubtful = []
    for _ in range(2):
        job_id = put(pipeline, order_job(unique("doubt")))
        began_long_ago(pipeline, job_id, 1, seconds=3600)
        pipeline.run(job_id, 1, 1)
        doubtful.append(job_id)
    reader = StateReader(redis_client, pipeline.keys, ["sourceorders"])
    ops = ops_for(pipeline)
    before = reader.snapshot()
    assert (before.dead_letters, before.in_doubt) == (3, 2)

    for job_id in [d.job_id for d in ops.dead_letters()]:
        redis_client.delete(pipeline.keys.ledger(job_id))  # as the receipt TTL does, later
    after = reader.snapshot()

    assert (after.dead_letters, after.in_doubt) == (3, 2)
    assert after.in_doubt == len(ops.dead_letters(status="in_doubt"))
    assert sorted(d.job_id for d in ops.dead_letters(status="in_doubt")) == sorted(doubtful)
    assert after.dead_letters == len(ops.dead_letters())
