"""Rate limits as token buckets of a few kinds - per API key, per tenant, per client address,
and failed authentications per client address - kept in this process (the embedded default)
or in Redis, where every API replica shares them (when ``BRANDLOOP_REDIS_URL`` is set or the
queue is Celery).

A bucket of kind ``k`` holds up to ``burst`` tokens and refills at ``per_minute / 60`` tokens
a second. :meth:`Buckets.take` takes one token from each named bucket or from none (all or
nothing), and answers how long to wait when one of them is empty. Redis runs the same
arithmetic in one Lua script on the server's clock, so replicas on different hosts agree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from brandloop.api.config import ApiSettings
from brandloop.settings import Settings

log = logging.getLogger("brandloop.api.ratelimit")

Kind = Literal["key", "tenant", "ip", "authfail"]
KEY_PREFIX = "brandloop:rl:"


@dataclass(frozen=True)
class Rate:
    per_minute: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


class Buckets(Protocol):
    async def take(self, wanted: Sequence[tuple[Kind, str]]) -> float:
        """Take a token from each bucket, or none; 0 when taken, else seconds to wait."""

    async def peek(self, kind: Kind, name: str) -> float:
        """Seconds until the bucket has a token (0: it has one now); takes nothing."""

    async def aclose(self) -> None: ...


class AddressThrottle:
    """Failed authentications per client address, as buckets of kind ``authfail``: the seam
    ``api/auth.py`` names (``FailedAuthThrottle``)."""

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    async def retry_after(self, client: str) -> float | None:
        wait = await self.buckets.peek("authfail", client)
        return wait if wait > 0 else None

    async def failed(self, client: str) -> None:
        await self.buckets.take([("authfail", client)])


def shared(settings: Settings) -> bool:
    """Redis is this deployment's: its URL was set, or it carries the job queue."""
    return settings.queue == "celery" or "redis_url" in settings.model_fields_set


def build_buckets(settings: Settings, api: ApiSettings) -> LocalBuckets | RedisBuckets:
    rates: dict[Kind, Rate] = {
        "key": Rate(api.rate_limit_per_minute, api.rate_limit_burst),
        "ip": Rate(api.rate_limit_per_minute, api.rate_limit_burst),
        "tenant": Rate(api.tenant_rate_limit_per_minute, api.tenant_rate_limit_burst),
        "authfail": Rate(api.auth_failures_per_minute, api.auth_failures_burst),
    }
    if shared(settings):
        return RedisBuckets(settings.redis_url, rates)
    return LocalBuckets(rates)


class LocalBuckets:
    """This process's buckets (the embedded default: one API process)."""

    def __init__(self, rates: Mapping[Kind, Rate], *, max_buckets: int = 100_000) -> None:
        self.rates = dict(rates)
        self.max_buckets = max_buckets
        self._state: dict[tuple[Kind, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, kind: Kind, name: str, now: float) -> float:
        rate = self.rates[kind]
        tokens, last = self._state.get((kind, name), (float(rate.burst), now))
        return min(float(rate.burst), tokens + (now - last) * rate.per_second)

    async def take(self, wanted: Sequence[tuple[Kind, str]]) -> float:
        now = time.monotonic()
        with self._lock:
            levels = [(kind, name, self._level(kind, name, now)) for kind, name in wanted]
            wait = max(
                ((1.0 - level) / self.rates[kind].per_second for kind, _, level in levels),
                default=0.0,
            )
            if len(self._state) > self.max_buckets:  # forget idle buckets rather than grow
                self._state.clear()
            for kind, name, level in levels:
                self._state[(kind, name)] = (level - 1.0 if wait <= 0 else level, now)
            return max(wait, 0.0)

    async def peek(self, kind: Kind, name: str) -> float:
        with self._lock:
            level = self._level(kind, name, time.monotonic())
        return max((1.0 - level) / self.rates[kind].per_second, 0.0)

    async def aclose(self) -> None:
        return None


# KEYS: the buckets; ARGV: cost (1 take, 0 peek), then per bucket: tokens a second, burst.
# One token from each, or from none; returns the seconds to wait (0: taken), as a string.
_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cost = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local tokens = levels[i]
  if wait == 0 then tokens = tokens - cost end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
end
return tostring(wait)
"""


class RedisBuckets:
    """Buckets in Redis, shared by every replica. If Redis cannot be reached the request is let
    through (and logged): an outage of the limiter must not take the API down with it."""

    def __init__(self, url: str, rates: Mapping[Kind, Rate]) -> None:
        import redis.asyncio

        self.rates = dict(rates)
        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
        self.script: Any = self.client.register_script(_SCRIPT)
        self._last_warning = 0.0

    async def _run(self, wanted: Sequence[tuple[Kind, str]], cost: int) -> float:
        import redis

        keys = [f"{KEY_PREFIX}{kind}:{name}" for kind, name in wanted]
        args: list[float] = [cost]
        for kind, _ in wanted:
            args += [self.rates[kind].per_second, self.rates[kind].burst]
        try:
            return float(await self.script(keys=keys, args=args))
        except (redis.RedisError, OSError):
            if time.monotonic() - self._last_warning > 60:
                self._last_warning = time.monotonic()
                log.warning("rate limits unavailable (Redis unreachable); letting requests through")
            return 0.0

    async def take(self, wanted: Sequence[tuple[Kind, str]]) -> float:
        return await self._run(wanted, 1)

    async def peek(self, kind: Kind, name: str) -> float:
        return await self._run([(kind, name)], 0)

    async def aclose(self) -> None:
        await self.client.aclose()
