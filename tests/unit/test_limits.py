"""Rate limit (GCRA) and circuit breaker decisions against a real Redis, the clock controlled."""

from __future__ import annotations

import uuid

import pytest
import redis

from order_dispatch.keys import Keys
from order_dispatch.settings import CircuitSettings
from worker.limits import RateLimit, VendorGate, Verdict

T0 = 1_800_000_000.0


@pytest.fixture
def gate(redis_client: redis.Redis) -> VendorGate:
    circuit = CircuitSettings(failure_threshold=3, open_s=30, max_open_s=100)
    return VendorGate(redis_client, Keys(f"odl-{uuid.uuid4().hex[:6]}"), circuit, probe_lease_s=90)


def test_the_rate_limit_admits_a_burst_then_paces(gate: VendorGate) -> None:
    limit = RateLimit(per_minute=60)  # one a second, a burst of ten

    burst = [gate.admit("sophio", "a", limit, now=T0).verdict for _ in range(10)]
    over = gate.admit("sophio", "a", limit, now=T0)
    later = gate.admit("sophio", "a", limit, now=T0 + over.wait_s)

    assert burst == [Verdict.OK] * 10
    assert over.verdict is Verdict.RATE and 0.9 < over.wait_s <= 1.0
    assert later.verdict is Verdict.OK


def test_the_rate_is_per_account_and_shared(gate: VendorGate, redis_client: redis.Redis) -> None:
    limit = RateLimit(per_minute=6)  # burst of one
    other_worker = VendorGate(redis_client, gate.keys, gate.circuit, probe_lease_s=90)

    first = gate.admit("sophio", "a", limit, now=T0)
    same_account = other_worker.admit("sophio", "a", limit, now=T0)
    other_account = other_worker.admit("sophio", "b", limit, now=T0)

    assert first.allowed and not same_account.allowed and other_account.allowed
    assert same_account.wait_s == pytest.approx(10.0)


def test_a_vendor_pause_holds_everyone_even_without_a_limit(gate: VendorGate) -> None:
    gate.pause("shopatron", "a", 20, None, now=T0)

    held = gate.admit("shopatron", "a", None, now=T0 + 5)
    free = gate.admit("shopatron", "a", None, now=T0 + 20.01)

    assert held.verdict is Verdict.RATE and held.wait_s == pytest.approx(15)
    assert free.verdict is Verdict.OK


def test_the_circuit_opens_after_consecutive_failures_and_probes_once(gate: VendorGate) -> None:
    transitions = [gate.report("sellercloud", "a", success=False, now=T0) for _ in range(3)]
    during = gate.admit("sellercloud", "a", None, now=T0 + 10)
    probe = gate.admit("sellercloud", "a", None, now=T0 + 30)
    second = gate.admit("sellercloud", "a", None, now=T0 + 31)
    closed = gate.report("sellercloud", "a", success=True, now=T0 + 32)
    after = gate.admit("sellercloud", "a", None, now=T0 + 33)

    assert transitions == ["", "", "opened"]
    assert during.verdict is Verdict.CIRCUIT and during.wait_s == pytest.approx(20)
    assert probe.verdict is Verdict.PROBE
    assert second.verdict is Verdict.CIRCUIT  # one probe at a time ...
    assert second.wait_s == pytest.approx(30)  # ... the others look again after open_s
    assert closed == "closed"
    assert after.verdict is Verdict.OK and after.circuit_state == "closed"


def test_a_failed_probe_reopens_for_longer_up_to_the_cap(gate: VendorGate) -> None:
    for _ in range(3):
        gate.report("sellercloud", "a", success=False, now=T0)
    opens = []
    now = T0
    for _ in range(4):
        admission = gate.admit("sellercloud", "a", None, now=now + 1000)
        now += 1000
        assert admission.verdict is Verdict.PROBE
        assert gate.report("sellercloud", "a", success=False, now=now) == "reopened"
        opens.append(gate.admit("sellercloud", "a", None, now=now).wait_s)

    assert opens == pytest.approx([60, 100, 100, 100])


def test_a_success_resets_the_failure_count(gate: VendorGate) -> None:
    for _ in range(2):
        gate.report("sophio", "a", success=False, now=T0)
    gate.report("sophio", "a", success=True, now=T0)
    for _ in range(2):
        gate.report("sophio", "a", success=False, now=T0)

    assert gate.admit("sophio", "a", None, now=T0).verdict is Verdict.OK
