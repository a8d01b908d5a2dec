"""Rate limits as token buckets of a few kinds - per API key, per tenant, per client address,
and failed authentications per client address - kept in this process (the embedded default)
or in Redis, where every API replica shares them (when ``BRANDLOOP_REDIS_URL`` is set or the
queue is Celery).

A bucket of kind ``k`` holds up to ``burst`` tokens and refills at ``per_minute / 60`` tokens
a second. :meth:`Buckets.take` takes one token from each named bucket or from none (all or
nothing), and answers how long to wait when one of them is empty. Redis runs the same
arithmetic in one Lua script on the server's clock, so replicas on different hosts agree.

Failed authentications are counted ahead of the key lookup, not after it: a lookup of a key
that is not known good first *reserves* a token of its address's ``authfail`` bucket (taken
at once, atomically, in Redis or under this process's lock) and gives it back when the key
turns out good. So however many requests arrive at once, at most ``burst`` lookups of unknown
keys run per address, and a good key costs the bucket nothing once its lookup is done. A
request that finds every remaining token reserved by lookups still in flight waits for them
to end (they are quick) rather than being refused: it is refused only once settled failures
have emptied the bucket.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
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
#: what a reservation ahead of a key lookup found: a token reserved; every remaining token
#: reserved by lookups still in flight (ask again shortly); or the bucket empty (refused)
Reserved = Literal["reserved", "busy", "refused"]
#: a reservation not settled within this many seconds (its process died) is dropped, and its
#: token stays taken, as a failure's does
RESERVATION_TTL_S = 30.0
#: how long a request waits for the lookups in flight before it is refused
RESERVE_WAIT_S = 5.0


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

    async def reserve(self, kind: Kind, name: str, ticket: str) -> tuple[Reserved, float]:
        """Take a token now, held under ``ticket`` until :meth:`settle`; with the seconds to
        wait when refused."""

    async def settle(self, kind: Kind, name: str, ticket: str, *, refund: bool) -> None:
        """End a reservation: its token is given back (``refund``) or stays taken."""

    async def unsettled_peek(self, kind: Kind, name: str) -> float:
        """Like :meth:`peek`, counting the tokens reserved in flight as still there."""

    async def aclose(self) -> None: ...


class AddressThrottle:
    """Failed authentications per client address, as buckets of kind ``authfail``: the seam
    ``api/auth.py`` names (``FailedAuthThrottle``)."""

    def __init__(self, buckets: Buckets, *, wait_s: float = RESERVE_WAIT_S) -> None:
        self.buckets = buckets
        self.wait_s = wait_s

    async def retry_after(self, client: str) -> float | None:
        """For a key already known good (no lookup): refused only once settled failures have
        emptied the bucket, never because other requests' lookups are in flight."""
        wait = await self.buckets.unsettled_peek("authfail", client)
        return wait if wait > 0 else None

    async def reserve(self, client: str) -> tuple[str | None, float | None]:
        """A reservation ahead of a key lookup: ``(ticket, None)``, or ``(None, seconds)`` to
        answer 429 with. While every token left is reserved by lookups in flight, it waits for
        them (up to ``wait_s``, then it is refused for a second)."""
        ticket = secrets.token_hex(8)
        deadline = time.monotonic() + self.wait_s
        pause = 0.002
        while True:
            outcome, wait = await self.buckets.reserve("authfail", client, ticket)
            if outcome == "reserved":
                return ticket, None
            if outcome == "refused":
                return None, max(wait, 1e-3)
            if time.monotonic() >= deadline:
                return None, 1.0
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def settle(self, client: str, ticket: str, *, failed: bool) -> None:
        await self.buckets.settle("authfail", client, ticket, refund=not failed)

    async def failed(self, client: str) -> None:
        """A failure no lookup was reserved for (no key was sent at all)."""
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
        # reservations in flight: ticket -> when it is dropped unsettled
        self._pending: dict[tuple[Kind, str], dict[str, float]] = {}
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

    def _in_flight(self, kind: Kind, name: str, now: float) -> dict[str, float]:
        pending = self._pending.get((kind, name), {})
        for ticket in [t for t, until in pending.items() if until <= now]:
            del pending[ticket]
        return pending

    async def reserve(self, kind: Kind, name: str, ticket: str) -> tuple[Reserved, float]:
        now = time.monotonic()
        with self._lock:
            level = self._level(kind, name, now)
            pending = self._in_flight(kind, name, now)
            if level >= 1.0:
                if len(self._state) > self.max_buckets:
                    self._state.clear()
                self._state[(kind, name)] = (level - 1.0, now)
                self._pending.setdefault((kind, name), pending)[ticket] = now + RESERVATION_TTL_S
                return "reserved", 0.0
            if pending:
                return "busy", 0.0
            return "refused", (1.0 - level) / self.rates[kind].per_second

    async def settle(self, kind: Kind, name: str, ticket: str, *, refund: bool) -> None:
        now = time.monotonic()
        with self._lock:
            pending = self._in_flight(kind, name, now)
            if pending.pop(ticket, None) is None:
                return
            if not pending:
                self._pending.pop((kind, name), None)
            if refund:
                level = self._level(kind, name, now)
                self._state[(kind, name)] = (min(float(self.rates[kind].burst), level + 1.0), now)

    async def unsettled_peek(self, kind: Kind, name: str) -> float:
        now = time.monotonic()
        with self._lock:
            level = self._level(kind, name, now) + len(self._in_flight(kind, name, now))
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


# Reservations ahead of a key lookup. KEYS: the bucket, its set of reservations in flight
# (ticket -> when it is dropped unsettled); ARGV: op ("reserve", "settle", "refund", "peek"),
# tokens a second, burst, ticket, the reservation's time to live. Returns "reserved", "busy",
# "refused <wait>", "settled" or, for "peek", the seconds to wait (counting reservations in
# flight as tokens).
_RESERVE_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local ticket = ARGV[4]
local ttl = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local pending = redis.call('ZCARD', KEYS[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local keep = math.ceil(burst / rate) + 60
local answer
if op == 'peek' then
  local level = tokens + pending
  if level >= 1 then return '0' end
  return tostring((1 - level) / rate)
elseif op == 'reserve' then
  if tokens >= 1 then
    tokens = tokens - 1
    redis.call('ZADD', KEYS[2], now + ttl, ticket)
    redis.call('EXPIRE', KEYS[2], math.ceil(ttl) + 60)
    answer = 'reserved'
  elseif pending > 0 then
    return 'busy'
  else
    return 'refused ' .. tostring((1 - tokens) / rate)
  end
else
  if redis.call('ZREM', KEYS[2], ticket) == 0 then return 'settled' end
  if op == 'refund' then tokens = math.min(burst, tokens + 1) end
  answer = 'settled'
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], keep)
return answer
"""


class RedisBuckets:
    """Buckets in Redis, shared by every replica. If Redis cannot be reached the request is let
    through (and logged): an outage of the limiter must not take the API down with it."""

    def __init__(self, url: str, rates: Mapping[Kind, Rate]) -> None:
        import redis.asyncio

        self.rates = dict(rates)
        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
        self.script: Any = self.client.register_script(_SCRIPT)
        self.reserve_script: Any = self.client.register_script(_RESERVE_SCRIPT)
        self._last_warning = 0.0

    def _unreachable(self) -> None:
        if time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.warning("rate limits unavailable (Redis unreachable); letting requests through")

    async def _run(self, wanted: Sequence[tuple[Kind, str]], cost: int) -> float:
        import redis

        keys = [f"{KEY_PREFIX}{kind}:{name}" for kind, name in wanted]
        args: list[float] = [cost]
        for kind, _ in wanted:
            args += [self.rates[kind].per_second, self.rates[kind].burst]
        try:
            return float(await self.script(keys=keys, args=args))
        except (redis.RedisError, OSError):
            self._unreachable()
            return 0.0

    async def _reservation(self, op: str, kind: Kind, name: str, ticket: str) -> str:
        """One step of a reservation; "" when Redis cannot be reached."""
        import redis

        bucket = f"{KEY_PREFIX}{kind}:{name}"
        rate = self.rates[kind]
        args = [op, rate.per_second, rate.burst, ticket, RESERVATION_TTL_S]
        try:
            answer = await self.reserve_script(keys=[bucket, f"{bucket}:pending"], args=args)
        except (redis.RedisError, OSError):
            self._unreachable()
            return ""
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    async def take(self, wanted: Sequence[tuple[Kind, str]]) -> float:
        return await self._run(wanted, 1)

    async def peek(self, kind: Kind, name: str) -> float:
        return await self._run([(kind, name)], 0)

    async def reserve(self, kind: Kind, name: str, ticket: str) -> tuple[Reserved, float]:
        answer = await self._reservation("reserve", kind, name, ticket)
        if answer.startswith("refused"):
            return "refused", float(answer.split()[1])
        if answer == "busy":
            return "busy", 0.0
        return "reserved", 0.0  # reserved, or Redis is down: let it through

    async def settle(self, kind: Kind, name: str, ticket: str, *, refund: bool) -> None:
        await self._reservation("refund" if refund else "settle", kind, name, ticket)

    async def unsettled_peek(self, kind: Kind, name: str) -> float:
        answer = await self._reservation("peek", kind, name, "")
        return float(answer) if answer else 0.0

    async def aclose(self) -> None:
        await self.client.aclose()
