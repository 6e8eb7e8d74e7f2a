"""GCRA (the generic cell rate algorithm): a rate limit kept in Redis as one timestamp.

The Lua function :data:`GCRA_LUA` is shared by every script that limits a rate: the workers'
vendor gate (:mod:`worker.limits`) and the HTTP API's per-key limit. A script includes it and
calls ``gcra(key, now, interval_s, tolerance_s)``: it answers 0 and spends one cell when the
call may go, or the seconds to wait (spending nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GCRA_LUA = """
local function gcra(key, now, interval, tolerance)
  local tat = tonumber(redis.call('GET', key) or '0')
  local allow_at = tat - tolerance
  if now < allow_at then return allow_at - now end
  if interval > 0 then
    if tat < now then tat = now end
    local new_tat = tat + interval
    redis.call('SET', key, tostring(new_tat), 'PX', math.ceil((new_tat - now + 60) * 1000))
  end
  return 0
end
"""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Requests a minute and the burst allowed above an even pace."""

    per_minute: float

    @property
    def interval_s(self) -> float:
        """Seconds between requests at an even pace."""
        return 60.0 / self.per_minute

    @property
    def tolerance_s(self) -> float:
        """GCRA's burst tolerance: about ten seconds' worth of requests may go at once."""
        burst = max(1, math.ceil(self.per_minute / 6))
        return self.interval_s * (burst - 1)
