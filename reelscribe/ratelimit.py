"""Per-user, per-method rate limits in Redis (GCRA), correct across server processes.

The generic cell rate algorithm keeps one timestamp per key: the theoretical
arrival time (TAT) of the next request. The script runs atomically in Redis
and uses Redis's clock, so any number of servers share one budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reelscribe import blobs

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return allow_at - now
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now) + 1000)
return 0
"""


@dataclass(frozen=True)
class Rate:
    """`per_second` sustained, with bursts of up to `burst` requests."""

    per_second: float
    burst: int


class RateLimiter:
    """Checks and consumes one request of a user's budget for a method."""

    def __init__(self, redis: Any, limits: dict[str, Rate], default: Rate) -> None:
        self._limits = limits
        self._default = default
        self._script = redis.register_script(_GCRA)

    async def retry_after_s(self, owner: str, method: str) -> float:
        """0 if the request may proceed, else seconds until it would be allowed."""
        rate = self._limits.get(method, self._default)
        interval_ms = 1000.0 / rate.per_second
        # A request is allowed while its TAT stays within `burst` intervals of now.
        tolerance_ms = interval_ms * max(rate.burst, 1)
        key = f"reelscribe:rate:{blobs.owner_prefix(owner)}:{method}"
        wait_ms = await self._script(keys=[key], args=[interval_ms, tolerance_ms])
        return float(wait_ms) / 1000.0
