"""Task events go out in batches: one flush per ``EVENT_FLUSH_S`` at most, none lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from worker.consumer import Consumer


class Hub:
    """kombu's hub, as far as the flush uses it: callbacks now or later, run by hand."""

    def __init__(self) -> None:
        self.soon: list[Callable[[], Any]] = []
        self.later: list[tuple[float, Callable[[], Any]]] = []

    def call_soon(self, callback: Callable[[], Any]) -> None:
        self.soon.append(callback)

    def call_later(self, delay: float, callback: Callable[[], Any]) -> None:
        self.later.append((delay, callback))

    def turn(self) -> None:
        """One loop turn: what was due now runs."""
        due, self.soon = self.soon, []
        for callback in due:
            callback()

    def wait(self) -> None:
        """Let the timers come due, then run them."""
        due, self.later = self.later, []
        time.sleep(max((d for d, _ in due), default=0))
        for _, callback in due:
            callback()


def consumer(flushes: list[float]) -> Consumer:
    c = Consumer.__new__(Consumer)  # no broker: only the flush scheduling is under test
    c.hub = Hub()
    c._flush_events = lambda: flushes.append(time.monotonic())  # type: ignore[attr-defined]
    return c


def test_events_buffered_together_go_out_in_one_flush() -> None:
    flushes: list[float] = []
    c = consumer(flushes)

    for _ in range(5):
        c.on_send_event_buffered()
    c.hub.turn()

    assert len(flushes) == 1
    assert c.hub.soon == [] and c.hub.later == []


def test_a_flush_soon_after_another_waits_its_turn_and_still_comes() -> None:
    flushes: list[float] = []
    c = consumer(flushes)
    c.on_send_event_buffered()
    c.hub.turn()

    c.on_send_event_buffered()
    c.on_send_event_buffered()
    c.hub.turn()

    assert len(flushes) == 1, "the second flush waits for EVENT_FLUSH_S"
    assert len(c.hub.later) == 1
    c.hub.wait()
    assert len(flushes) == 2
    assert flushes[1] - flushes[0] >= Consumer.EVENT_FLUSH_S


def test_an_event_buffered_after_a_flush_schedules_the_next() -> None:
    flushes: list[float] = []
    c = consumer(flushes)
    c.on_send_event_buffered()
    c.hub.turn()
    time.sleep(Consumer.EVENT_FLUSH_S)

    c.on_send_event_buffered()
    c.hub.turn()

    assert len(flushes) == 2
