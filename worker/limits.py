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

The Lua scripts take the time as an argument (Redis's clock when empty), so tests control it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import redis

from order_dispatch.gcra import GCRA_LUA
from order_dispatch.gcra import RateLimit as RateLimit
from order_dispatch.keys import Keys
from order_dispatch.settings import CircuitSettings

# KEYS: rate key, circuit hash. ARGV: now ('' = Redis time), emission interval s (0 = no
# limit), burst tolerance s, probe lease s, how long to wait while another call probes.
# Returns {verdict, wait s (string), circuit state, consecutive failures}; verdict is
# 'ok', 'probe' (half open: this caller is the probe), 'circuit' or 'rate'.
_ADMIT_LUA = GCRA_LUA + """
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
local c = redis.call('HMGET', KEYS[2], 'state', 'open_until', 'probe_until', 'failures')
local state = c[1] or 'closed'
local failures = tonumber(c[4] or '0')
local verdict = 'ok'
if state ~= 'closed' then
  local open_until = tonumber(c[2] or '0')
  if now < open_until then return {'circuit', tostring(open_until - now), state, failures} end
  local probe_until = tonumber(c[3] or '0')
  if now < probe_until then
    -- Another call is probing: look again soon (its answer closes or reopens the circuit).
    local wait = math.min(probe_until - now, tonumber(ARGV[5]))
    return {'circuit', tostring(wait), state, failures}
  end
  redis.call('HSET', KEYS[2], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[4]))
  state = 'half_open'
  verdict = 'probe'
end
local wait = gcra(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
if wait > 0 then
  if verdict == 'probe' then redis.call('HSET', KEYS[2], 'probe_until', 0) end
  return {'rate', tostring(wait), state, failures}
end
return {verdict, '0', state, failures}
"""

# KEYS: circuit hash. ARGV: now, success (1/0), threshold, open s, max open s.
# Returns the transition: 'opened', 'reopened', 'closed' or ''.
_REPORT_LUA = """
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[2] == '1' then
  if state ~= 'closed' then
    redis.call('DEL', KEYS[1])
    return 'closed'
  end
  redis.call('HDEL', KEYS[1], 'failures')
  return ''
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('EXPIRE', KEYS[1], 86400)
if state == 'half_open' then
  local open_for = tonumber(redis.call('HGET', KEYS[1], 'open_for') or ARGV[4]) * 2
  if open_for > tonumber(ARGV[5]) then open_for = tonumber(ARGV[5]) end
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + open_for,
    'open_for', open_for, 'probe_until', 0)
  return 'reopened'
end
if state == 'closed' and failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + tonumber(ARGV[4]),
    'open_for', ARGV[4], 'opened_at', now)
  return 'opened'
end
return ''
"""

# KEYS: rate key. ARGV: now, seconds, burst tolerance s. Nobody is admitted before now + seconds.
_PAUSE_LUA = """
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
local want = now + tonumber(ARGV[2]) + tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if want > tat then
  redis.call('SET', KEYS[1], tostring(want), 'PX', math.ceil((want - now + 60) * 1000))
end
return 1
"""


class Verdict(StrEnum):
    """What :meth:`VendorGate.admit` says about a vendor call."""

    OK = "ok"
    PROBE = "probe"
    """The circuit is half open and this call is its one probe."""
    CIRCUIT = "circuit"
    """The circuit is open: wait."""
    RATE = "rate"
    """The account's rate limit is reached: wait."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The gate's answer: go, or wait ``wait_s``; with the circuit's state for reporting."""

    verdict: Verdict
    wait_s: float
    circuit_state: str
    failures: int

    @property
    def allowed(self) -> bool:
        """True when the call may go out now."""
        return self.verdict in (Verdict.OK, Verdict.PROBE)


class VendorGate:
    """Rate limits and circuit breakers of every vendor account, in Redis."""

    def __init__(
        self, client: redis.Redis, keys: Keys, circuit: CircuitSettings, probe_lease_s: float
    ) -> None:
        self.keys = keys
        self.circuit = circuit
        self.probe_lease_s = probe_lease_s
        self._admit = client.register_script(_ADMIT_LUA)
        self._report = client.register_script(_REPORT_LUA)
        self._pause = client.register_script(_PAUSE_LUA)

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

    def report(
        self, vendor: str, account: str, *, success: bool, now: float | None = None
    ) -> str:
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
