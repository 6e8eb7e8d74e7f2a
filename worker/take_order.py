"""In which order a worker's take looks at its queues: webhook deliveries first, most of the time.

A delivery exists only once its order ended, and each order brings one per subscribed endpoint.
Taken in turn with the order queues (kombu's round robin), deliveries fall behind whenever
orders wait in their queue: with 2 endpoints the workers make two deliveries for each order they
take and take one. So the webhooks queue is looked at first on :data:`WEBHOOKS_FIRST` takes of
every :data:`PERIOD`, and the round robin's order stands on the others: deliveries keep pace
with up to that many per order, and a backlog of deliveries (a replay of dead-lettered ones,
the catch-up after an endpoint's outage) still leaves the order queues one take in
:data:`PERIOD` of the time (when both have messages).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Takes per cycle, and how many of them look at the webhooks queue first.
PERIOD = 4
WEBHOOKS_FIRST = 3


def take_order(queues: Sequence[str], webhooks_queue: str, turn: int) -> list[str]:
    """``queues`` (the round robin's order) for take number ``turn``: the webhooks queue moved
    first unless this is the cycle's take for the order queues."""
    if turn % PERIOD >= WEBHOOKS_FIRST or webhooks_queue not in queues:
        return list(queues)
    return [webhooks_queue, *(q for q in queues if q != webhooks_queue)]
