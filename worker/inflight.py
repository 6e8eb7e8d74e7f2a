"""What a delivery of a job does, given what the ledger says: a pure function, no Redis.

A message can arrive more than once (a lost ack, a dead worker's message restored, a retry
already superseded) and while another delivery of the same job is in flight. The ledger read at
the start of a delivery decides:

========================================  =====================================================
ledger                                     plan
========================================  =====================================================
the run has its terminal event             ``FINISHED``: nothing to do
an attempt in flight, lease not expired    ``WAIT`` until the lease ends, then look again
an attempt in flight, lease expired        ``INTERRUPTED``: its worker died mid-request; the
                                           pipeline reconciles or repeats it (same attempt)
a later attempt already ran                ``STALE``: drop this message
this attempt failed and scheduled a retry  ``RUN`` the retry (attempt + 1): the ack was lost
otherwise (new, deferred, or a retry)      ``RUN`` this attempt
========================================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from worker.ledger import LedgerEntry, LedgerState


class Action(StrEnum):
    """What a delivery does."""

    FINISHED = "finished"
    WAIT = "wait"
    INTERRUPTED = "interrupted"
    STALE = "stale"
    RUN = "run"


@dataclass(frozen=True, slots=True)
class Plan:
    """The action, the attempt it concerns, how long to wait (``WAIT``), and the start time of
    the dead attempt being taken over (``INTERRUPTED``)."""

    action: Action
    attempt: int
    wait_s: float = 0.0
    take_over: str | None = None


def plan_delivery(entry: LedgerEntry, attempt: int, lease_s: float) -> Plan:
    """The plan for a delivery of attempt ``attempt`` given the ledger ``entry``."""
    if entry.terminal_event_id is not None:
        return Plan(Action.FINISHED, attempt)
    if entry.state is LedgerState.IN_FLIGHT:
        if entry.age_s < lease_s:
            return Plan(Action.WAIT, attempt, wait_s=lease_s - entry.age_s)
        return Plan(Action.INTERRUPTED, max(attempt, entry.attempt), take_over=entry.started_at)
    if entry.attempt > attempt:
        return Plan(Action.STALE, attempt)
    if entry.attempt == attempt and entry.state is LedgerState.WAITING:
        return Plan(Action.RUN, attempt + 1)
    return Plan(Action.RUN, attempt)
