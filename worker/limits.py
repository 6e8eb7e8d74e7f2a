"""Throttling that is not failure: per-account rate limits and circuit breakers, shared in Redis.

Both are checked in one round trip before a vendor call (:meth:`VendorGate.admit`), and both
defer a job without spending an attempt.

- **Rate limit**: GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp)
  per vendor account, shared by every worker. The limit is the account's
  ``rate_limit_per_minute``, else the vendor's documented default. A vendor's own signal (a 429
  with its wait, or ``X-Rate-Limit-Remaining: 0``) pauses the bucket for everyone
  (:meth:`VendorGate.pause`).
- **Circuit breaker** per vendor account: after ``failure_threshold`` consecutive failures
  (5xx, timeouts, connection errors) it opens for ``open_s``; then one probe goes through
  (half open). A probe that succeeds closes it; one that fails opens it again for twice as
  long, up to ``max_open_s``.

The Lua (:data:`order_dispatch.store.lua.GATE_FN`) is shared with the job store, whose claim
asks the gate in the same round trip as it loads the job, and whose record reports the call's
outcome to it. The scripts take the time as an argument (Redis's clock when empty), so tests
control it.
"""

from __future__ import annotations

import redis

from order_dispatch.keys import Keys
from order_dispatch.settings import CircuitSettings
from order_dispatch.store import lua
from order_dispatch.store.records import Admission, RateLimit, Verdict

__all__ = ["Admission", "RateLimit", "VendorGate", "Verdict"]


class VendorGate:
    """Rate limits and circuit breakers of every vendor account, in Redis."""

    def __init__(
        self, client: redis.Redis, keys: Keys, circuit: CircuitSettings, probe_lease_s: float
    ) -> None:
        self.keys = keys
        self.circuit = circuit
        self.probe_lease_s = probe_lease_s
        self._admit = client.register_script(lua.GATE_ADMIT)
        self._report = client.register_script(lua.GATE_REPORT)
        self._pause = client.register_script(lua.GATE_PAUSE)

    def admit(
        self, vendor: str, account: str, limit: RateLimit | None, now: float | None = None
    ) -> Admission:
        """May a call to ``vendor``'s ``account`` go out now? One round trip."""
        verdict, wait, state, failures = self._admit(
            keys=[self.keys.rate(vendor, account), self.keys.circuit(vendor, account)],
            args=[
                "" if now is None else repr(now),
                repr(limit.interval_s) if limit else "0",
                repr(limit.tolerance_s) if limit else "0",
                repr(self.probe_lease_s),
                repr(self.circuit.open_s),
            ],
        )
        return Admission(
            Verdict(_text(verdict)), float(_text(wait)), _text(state), int(failures or 0)
        )

    def report(self, vendor: str, account: str, *, success: bool, now: float | None = None) -> str:
        """Tell the breaker how a call went; the transition it caused ('' for none)."""
        transition = self._report(
            keys=[self.keys.circuit(vendor, account)],
            args=[
                "" if now is None else repr(now),
                "1" if success else "0",
                self.circuit.failure_threshold,
                repr(self.circuit.open_s),
                repr(self.circuit.max_open_s),
            ],
        )
        return _text(transition)

    def pause(
        self,
        vendor: str,
        account: str,
        seconds: float,
        limit: RateLimit | None,
        now: float | None = None,
    ) -> None:
        """Admit nobody to this account for ``seconds`` (the vendor said it is throttling)."""
        self._pause(
            keys=[self.keys.rate(vendor, account)],
            args=[
                "" if now is None else repr(now),
                repr(seconds),
                repr(limit.tolerance_s) if limit else "0",
            ],
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
