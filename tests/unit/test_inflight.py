"""The in-flight plan (:func:`worker.policy.plan`), a pure function: ledger entries by hand."""

from __future__ import annotations

import pytest

from order_dispatch.store import LedgerEntry, LedgerState
from worker import policy
from worker.policy import Action, Plan

LEASE = 90.0


def entry(
    state: LedgerState | None = None,
    attempt: int = 0,
    age_s: float = 0.0,
    terminal: str | None = None,
) -> LedgerEntry:
    """A stub ledger read: what the ledger says when the delivery starts."""
    started = "1700000000.000000" if state is LedgerState.IN_FLIGHT else None
    return LedgerEntry(state, attempt, started, age_s, terminal)


@pytest.mark.parametrize(
    ("ledger", "attempt", "plan"),
    [
        (entry(), 1, Plan(Action.RUN, 1)),
        (entry(LedgerState.DONE, 2, terminal="ev"), 2, Plan(Action.FINISHED, 2)),
        (entry(LedgerState.WAITING, 3, terminal="ev"), 1, Plan(Action.FINISHED, 1)),
        (entry(LedgerState.IN_FLIGHT, 1, age_s=10), 1, Plan(Action.WAIT, 1, wait_s=LEASE - 10)),
        (
            entry(LedgerState.IN_FLIGHT, 2, age_s=LEASE),
            1,
            Plan(Action.INTERRUPTED, 2, take_over="1700000000.000000"),
        ),
        (entry(LedgerState.WAITING, 3), 2, Plan(Action.STALE, 2)),
        (entry(LedgerState.WAITING, 2), 2, Plan(Action.RUN, 3)),
        (entry(LedgerState.WAITING, 2), 3, Plan(Action.RUN, 3)),
        (entry(LedgerState.DEFERRED, 2), 2, Plan(Action.RUN, 2)),
        (entry(LedgerState.DEFERRED, 0), 1, Plan(Action.RUN, 1)),
    ],
    ids=[
        "new job",
        "run ended",
        "run ended, old message",
        "in flight within its lease",
        "in flight past its lease",
        "a later attempt already ran",
        "retry scheduled, ack lost",
        "the scheduled retry",
        "deferred keeps its attempt",
        "deferred before any attempt",
    ],
)
def test_plan_for_each_ledger_state(ledger: LedgerEntry, attempt: int, plan: Plan) -> None:
    assert policy.plan(ledger, attempt, LEASE) == plan
