"""The job store against a real Redis: the claim agrees with the delivery policy, a lost reply
to the in-flight mark does not leave a job in doubt, an attempt takes two round trips, and
``status`` says where a job stands."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
import redis

from order_dispatch.contract import EventStatus
from order_dispatch.keys import Keys
from order_dispatch.store import GateLimit, JobStore, LedgerState, Phase
from producers.enqueue import Producer
from tests.integration.conftest import order_job, unique
from tests.integration.test_pipeline_logic import (  # noqa: F401 (_close_loops: autouse fixture)
    _close_loops,
    accepted,
    make,
)
from worker import policy
from worker.outage import ride_out

pytestmark = pytest.mark.integration

LEASE = 90.0
OPEN_GATE = {("sourceorders", "default"): GateLimit(0.0, 0.0)}


def enqueue(client: redis.Redis, prefix: str, **changes: Any) -> str:
    return Producer(client, key_prefix=prefix).enqueue(order_job(unique("js"), **changes)).job_id


def shapes() -> Iterator[tuple[str | None, int, float, bool, int, int]]:
    """Ledger state, ledger attempt, age of the mark, terminal marker, current run, and the
    message's attempt: every combination the plan distinguishes."""
    states = [None, "waiting", "deferred", "done", "in_flight"]
    yield from itertools.product(
        states, [0, 1, 2, 3], [1.0, 3600.0], [False, True], [1, 2], [1, 2, 3]
    )


def test_the_claim_marks_exactly_when_the_policy_runs_the_attempt_as_is(
    redis_client: redis.Redis,
) -> None:
    """The claim's Lua and :func:`worker.policy.plan` agree on every ledger shape: the store
    marks the attempt in flight in the first round trip if and only if the policy says
    ``RUN`` this very attempt (any other plan goes through the policy before a mark)."""
    keys = Keys(unique("odjs"))
    store = JobStore(redis_client, keys)
    checked = 0
    for state, last, age, ended, current, attempt in shapes():
        if state is None and last:
            continue  # a ledger without a state has no attempt either
        job_id = enqueue(redis_client, keys.prefix)
        redis_client.hset(keys.job(job_id), "run", current)
        if state is not None:
            mark = float(redis_client.time()[0]) - age
            fields: Mapping[str | bytes | bytearray | memoryview | int | float, Any] = {
                "state": state,
                "started_at": f"{mark:.6f}",
                "token": "someone-else",
                "attempt": last,
            }
            redis_client.hset(keys.ledger(job_id), mapping=fields)
        if ended:
            redis_client.set(keys.terminal(job_id, 1), f"{job_id}:1.t:1:accepted")
        before = store.load(job_id, 1)

        claim = store.claim(job_id, 1, attempt, "w", uuid.uuid4().hex, OPEN_GATE)

        plan = policy.plan(before, attempt, LEASE)
        runs_as_is = (plan.action, plan.attempt) == (policy.Action.RUN, attempt)
        expected = runs_as_is and current == 1
        assert claim.claimed is expected, (state, last, age, ended, current, attempt, plan)
        if expected:
            after = store.load(job_id, 1)
            assert (after.state, after.attempt) == (LedgerState.IN_FLIGHT, attempt)
        checked += 1
    assert checked > 300


def test_a_claim_on_an_account_it_does_not_know_only_loads(redis_client: redis.Redis) -> None:
    keys = Keys(unique("odjs"))
    store = JobStore(redis_client, keys)
    job_id = enqueue(redis_client, keys.prefix)

    claim = store.claim(job_id, 1, 1, "w", "t1", {("sophio", "default"): GateLimit(0.0, 0.0)})

    assert (claim.claimed, claim.admission) == (False, None)
    assert claim.entry.job_doc is not None and claim.entry.state is None
    assert not redis_client.exists(keys.ledger(job_id))


def test_a_claim_the_rate_limit_holds_leaves_no_mark(redis_client: redis.Redis) -> None:
    keys = Keys(unique("odjs"))
    store = JobStore(redis_client, keys)
    tight = {("sourceorders", "default"): GateLimit(60.0, 0.0)}  # one a minute, no burst
    first, second = enqueue(redis_client, keys.prefix), enqueue(redis_client, keys.prefix)

    one = store.claim(first, 1, 1, "w", "t1", tight)
    two = store.claim(second, 1, 1, "w", "t2", tight)

    assert one.claimed and one.admission is not None and one.admission.allowed
    assert not two.claimed and two.admission is not None and not two.admission.allowed
    assert 59 < two.admission.wait_s <= 60
    assert not redis_client.exists(keys.ledger(second))


def lose_first_reply(script: Any) -> Callable[..., Any]:
    """``script`` whose first call runs in Redis and then loses its reply, as a connection
    that drops after the command was sent does."""
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        reply = script(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise redis.ConnectionError("Connection closed by server (reply lost)")
        return reply

    return call


@pytest.mark.parametrize("path", ["claim", "begin"])
def test_a_lost_reply_to_the_in_flight_mark_is_tried_again_and_sent_once(
    redis_client: redis.Redis, path: str
) -> None:
    """Issue: a job whose reply to ``begin_attempt`` is lost ended ``in_doubt`` though nothing
    was sent. The delivery tries again with its token, finds the mark its own, and sends."""
    pipeline, events, seen = make(redis_client, accepted)
    job_id = enqueue(redis_client, pipeline.keys.prefix)
    if path == "claim":
        pipeline.store._claim = lose_first_reply(pipeline.store._claim)  # type: ignore[assignment]
    else:
        pipeline._limits.clear()  # an account this process has not sent to: the slow path
        pipeline.store._begin = lose_first_reply(pipeline.store._begin)  # type: ignore[assignment]
    token = uuid.uuid4().hex

    step = ride_out(lambda: pipeline.run(job_id, 1, 1, token=token), what="run a job")

    assert step.retry_in_s is None, step
    assert [e.status for e in events.of(job_id)] == [EventStatus.ACCEPTED]
    assert len(seen) == 1
    assert not redis_client.hexists(pipeline.keys.dead_letters, job_id)


def test_without_its_token_a_retry_after_a_lost_reply_cannot_send(
    redis_client: redis.Redis,
) -> None:
    """The control: a retry that does not carry the delivery's token sees a mark it cannot
    tell from another delivery's, and waits (then, after the lease, the job would be in
    doubt)."""
    pipeline, events, seen = make(redis_client, accepted)
    job_id = enqueue(redis_client, pipeline.keys.prefix)
    pipeline.store._claim = lose_first_reply(pipeline.store._claim)  # type: ignore[assignment]

    step = ride_out(lambda: pipeline.run(job_id, 1, 1), what="run a job")

    assert step.retry_in_s is not None and step.summary == "another delivery in flight"
    assert seen == [] and events.of(job_id) == []


class RoundTrips:
    """Counts what a Redis client sends: one per command, one per pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)  # type: ignore[no-untyped-call]

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


def test_an_attempt_takes_two_round_trips(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One before the vendor call (load, gate, mark) and one after it (record)."""
    pipeline, events, _ = make(redis_client, accepted)
    warm = enqueue(redis_client, pipeline.keys.prefix)
    pipeline.run(warm, 1, 1)  # loads the scripts into Redis (EVALSHA's first NOSCRIPT)
    job_id = enqueue(redis_client, pipeline.keys.prefix)
    trips = RoundTrips(monkeypatch)

    pipeline.run(job_id, 1, 1)

    assert trips.count == 2
    assert [e.status for e in events.of(job_id)] == [EventStatus.ACCEPTED]


def test_a_failed_call_still_takes_two_round_trips_with_the_circuit_fed(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _, _ = make(redis_client, lambda r: httpx.Response(503, text="busy"))
    warm = enqueue(redis_client, pipeline.keys.prefix)
    pipeline.run(warm, 1, 1)
    job_id = enqueue(redis_client, pipeline.keys.prefix)
    trips = RoundTrips(monkeypatch)

    step = pipeline.run(job_id, 1, 1)

    assert trips.count == 2
    assert step.retry_in_s is not None
    circuit = pipeline.keys.circuit("sourceorders", "default")
    assert redis_client.hget(circuit, "failures") == b"2"  # the warm-up's and this one's


def test_status_says_where_a_job_stands(redis_client: redis.Redis) -> None:
    answers = [httpx.Response(503, text="busy"), *[accepted(None)] * 3]  # type: ignore[arg-type]
    pipeline, _, _ = make(redis_client, lambda r: answers.pop(0))
    job_id = enqueue(redis_client, pipeline.keys.prefix)
    store = pipeline.store

    queued = store.status(job_id)
    step = pipeline.run(job_id, 1, 1)
    retrying = store.status(job_id)
    pipeline.run(job_id, 1, step.attempt)
    done = store.status(job_id)

    assert (queued.phase, queued.attempts, queued.status) == (Phase.QUEUED, 0, None)
    assert queued.vendor == "sourceorders" and queued.order_id is not None
    assert (retrying.phase, retrying.attempts, retrying.status) == (
        Phase.RETRYING,
        1,
        "retry_scheduled",
    )
    assert retrying.next_attempt_at is not None and retrying.last_error is not None
    assert retrying.last_error.startswith("vendor_unavailable: ")
    assert (done.phase, done.attempts, done.status) == (Phase.TERMINAL, 2, "accepted")
    assert done.vendor_order_id == "soo_1" and done.next_attempt_at is None


def test_a_job_waiting_for_its_not_before_leaves_the_gate_alone(
    redis_client: redis.Redis,
) -> None:
    """The claim does not ask the gate for a call that will not go out: a job deferred until
    its ``not_before`` neither spends a rate-limit slot nor takes a half-open circuit's probe."""
    from datetime import UTC, datetime, timedelta

    keys = Keys(unique("odjs"))
    store = JobStore(redis_client, keys)
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    job_id = enqueue(redis_client, keys.prefix)
    waiting = Producer(redis_client, key_prefix=keys.prefix).enqueue(
        {**order_job(unique("later")), "not_before": later}
    )
    circuit = keys.circuit("sourceorders", "default")
    redis_client.hset(circuit, mapping={"state": "open", "open_until": 0})

    held = store.claim(waiting.job_id, 1, 1, "w", "t1", OPEN_GATE)

    assert (held.claimed, held.admission) == (False, None)
    assert redis_client.hget(circuit, "state") == b"open"
    probe = store.claim(job_id, 1, 1, "w", "t2", OPEN_GATE)
    assert probe.claimed and probe.admission is not None
    assert probe.admission.verdict == "probe"
