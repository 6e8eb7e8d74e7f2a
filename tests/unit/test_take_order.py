"""The order a take looks at the queues in: the webhooks queue first three takes in four."""

from __future__ import annotations

from worker.take_order import PERIOD, take_order


def test_the_webhooks_queue_comes_first_three_takes_in_four() -> None:
    cycle = ["od.sophio", "od.webhooks", "od.sourceorders"]
    orders = [take_order(cycle, "od.webhooks", turn) for turn in range(1, 2 * PERIOD + 1)]
    first = [o[0] for o in orders]
    assert first.count("od.webhooks") == 6 and first.count("od.sophio") == 2
    assert all(sorted(o) == sorted(cycle) for o in orders)
    assert take_order(cycle, "od.webhooks", PERIOD - 1) == cycle  # the order queues' turn


def test_a_worker_without_the_webhooks_queue_keeps_its_round_robin() -> None:
    cycle = ["od.sophio", "od.sourceorders"]
    assert all(take_order(cycle, "od.webhooks", t) == cycle for t in range(PERIOD))
