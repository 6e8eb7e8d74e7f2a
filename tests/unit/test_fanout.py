"""The webhook fan-out on a real Redis: a process that dies between queueing a batch's
deliveries and acknowledging it loses nothing and duplicates nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis

from order_dispatch.contract import EventStatus, Operation, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.webhooks import EndpointBook
from worker.fanout import Fanout


def _event(n: int, status: EventStatus = EventStatus.ACCEPTED) -> ResultEvent:
    return ResultEvent(
        event_id=f"sophio:default:create:{n}:1.deadbeef:1:{status.value}",
        job_id=f"sophio:default:create:{n}",
        order_id=f"A-{n}",
        vendor="sophio",
        account="default",
        operation=Operation.CREATE,
        status=status,
        terminal=status.terminal,
        attempt=1,
        occurred_at=datetime.now(UTC),
    )


def _write(client: redis.Redis, keys: Keys, event: ResultEvent) -> None:
    client.xadd(
        keys.results,
        {"event_id": event.event_id, "job_id": event.job_id, "status": event.status.value,
         "event": event.model_dump_json(exclude_none=True)},
    )  # fmt: skip


class Died(Exception):
    """The process stopped here."""


def test_a_fanout_dying_before_its_ack_is_taken_over_and_queues_each_delivery_once(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keys(f"odf-{uuid.uuid4().hex[:6]}")
    book = EndpointBook(redis_client, keys)
    a = book.add("http://127.0.0.1:9/a", allow_private=True)
    b = book.add("http://127.0.0.1:9/b", allow_private=True, events=["rejected"])
    for n in range(10):
        _write(redis_client, keys, _event(n))
    _write(redis_client, keys, _event(10, EventStatus.REJECTED))
    delivery = _event(11).model_copy(update={"vendor": "webhooks"})
    _write(redis_client, keys, delivery)  # a delivery's own event: never sent on

    first = Fanout(redis_client, keys, "first", min_idle_ms=0, block_ms=10)

    def die(*entry_ids: str) -> int:
        raise Died

    monkeypatch.setattr(first.consumer, "ack", die)
    with pytest.raises(Died):
        first.step()
    queue = keys.queue("webhooks")
    assert redis_client.llen(queue) == 12  # queued, never acknowledged

    second = Fanout(redis_client, keys, "second", min_idle_ms=0, block_ms=10)
    assert second.step() == 12  # took the abandoned batch over and queued it again
    assert second.step() == 0

    assert redis_client.llen(queue) == 12  # the store kept the first of each: no second message
    pending = redis_client.xpending(keys.results, "webhooks")
    assert pending["pending"] == 0
    jobs = {k.decode() for k in redis_client.scan_iter(match=keys.job("webhooks:*"))}
    assert sum(f":{a.id}:" in j for j in jobs) == 11
    assert sum(f":{b.id}:" in j for j in jobs) == 1


def test_the_failing_clock_runs_from_the_first_failure_and_a_success_stops_it(
    redis_client: redis.Redis,
) -> None:
    book = EndpointBook(redis_client, Keys(f"odc-{uuid.uuid4().hex[:6]}"))
    endpoint = book.add("http://127.0.0.1:9/", allow_private=True)
    day = 86_400.0

    assert book.observe(endpoint.id, success=False, now=1000.0) == 0.0
    assert book.observe(endpoint.id, success=False, now=1000.0 + 4 * day) == 4 * day
    assert book.observe(endpoint.id, success=False, now=1000.0 + 5 * day) == 5 * day
    assert book.observe(endpoint.id, success=True, now=1000.0 + 5 * day) == 0.0
    assert book.observe(endpoint.id, success=False, now=1000.0 + 6 * day) == 0.0

    disabled = book.disable(endpoint.id, "failing for 5.0 days without a success")
    assert not disabled.enabled and book.get(endpoint.id).disabled_reason is not None
    assert book.enable(endpoint.id).enabled


def test_a_success_clears_the_failing_clock_only_when_the_caller_may_have_seen_it_run(
    redis_client: redis.Redis,
) -> None:
    book = EndpointBook(redis_client, Keys(f"odc-{uuid.uuid4().hex[:6]}"))
    endpoint = book.add("http://127.0.0.1:9/", allow_private=True)
    assert book.get_with_clock(endpoint.id) == (endpoint, None)

    book.observe(endpoint.id, success=False, now=1000.0)
    assert book.get_with_clock(endpoint.id)[1] == 1000.0
    # A worker that read the endpoint with no clock running writes nothing on a success...
    assert book.observe(endpoint.id, success=True, now=1001.0, clock_seen=False) == 0.0
    assert book.get_with_clock(endpoint.id)[1] == 1000.0
    # ...and clears it once its next read (or its own failure) showed the clock.
    assert book.observe(endpoint.id, success=True, now=1002.0, clock_seen=True) == 0.0
    assert book.get_with_clock(endpoint.id)[1] is None
