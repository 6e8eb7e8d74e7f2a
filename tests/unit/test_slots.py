"""Slots: at most N task threads run at once; a thread waiting for its vendor gives its slot up."""

from __future__ import annotations

import threading
import time

from worker.slots import Slots


def run_together(slots: Slots, threads: int, work: float, *, waiting: float = 0.0) -> int:
    """``threads`` threads each hold a slot for ``work`` s, giving it up for ``waiting`` s in
    between; the most that were inside a slot at one time."""
    inside = 0
    most = 0
    lock = threading.Lock()

    def busy() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(work)
        with lock:
            inside -= 1

    def job() -> None:
        with slots.held():
            busy()
            with slots.given_up():
                time.sleep(waiting)
            busy()

    pool = [threading.Thread(target=job) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(10)
    assert not any(t.is_alive() for t in pool)
    return most


def test_no_more_than_the_slots_run_at_once() -> None:
    assert run_together(Slots(3), threads=12, work=0.01) == 3


def test_zero_slots_means_no_limit() -> None:
    assert run_together(Slots(0), threads=12, work=0.05) > 3


def test_a_thread_waiting_for_its_vendor_lets_others_run() -> None:
    """With one slot, threads waiting outside their slot overlap: many wait at once."""
    slots = Slots(1)
    waiting = 0
    most = 0
    lock = threading.Lock()
    all_in = threading.Event()

    def job() -> None:
        nonlocal waiting, most
        with slots.held(), slots.given_up():
            with lock:
                waiting += 1
                most = max(most, waiting)
                if waiting == 5:
                    all_in.set()
            all_in.wait(5)

    pool = [threading.Thread(target=job) for _ in range(5)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(10)

    assert most == 5


def test_holding_again_inside_a_slot_does_not_wait_for_itself() -> None:
    slots = Slots(1)
    with slots.held(), slots.held():
        pass
    with slots.held():  # the slot came back
        pass


def test_giving_up_a_slot_not_held_changes_nothing() -> None:
    slots = Slots(1)
    with slots.given_up():
        pass
    with slots.held(), slots.given_up(), slots.held():
        pass  # taken again inside the wait, given back on leaving it
    assert run_together(slots, threads=4, work=0.005) == 1
