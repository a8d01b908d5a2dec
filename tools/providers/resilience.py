"""Resilient calls: retries with backoff (tenacity's waits), per-provider concurrency and
request-rate limits, a circuit breaker and an overall deadline, wrapped around any
``ImageProvider``.

The wrapper is itself an ``ImageProvider``, so the agent cannot tell it from the backend it
wraps; it only sees fewer transient failures and, when a backend is down, a fast
``ProviderUnavailableError`` that makes it fall back to the next tier at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

from tenacity import RetryCallState, wait_random_exponential

from brandloop.errors import ProviderError
from brandloop.providers import ImageProvider, ImageRequest, ImageResult
from brandloop.tools.providers._http import MAX_RETRY_AFTER_S
from brandloop.tools.providers.errors import (
    ProviderUnavailableError,
    RefusedByProviderError,
    RetryableProviderError,
    StillRunningError,
    TerminalProviderError,
    UnknownOutcomeError,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class ProviderLimits:
    """How hard to push one provider and how patiently to wait on it."""

    concurrency: int = 16
    requests_per_minute: float = 0.0
    burst: int = 1
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 20.0
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    deadline_s: float = 300.0

    @classmethod
    def from_mapping(cls, base: ProviderLimits, overrides: dict[str, float]) -> ProviderLimits:
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(overrides) - set(known)
        if unknown:
            raise ValueError(f"unknown provider limit(s): {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, value in overrides.items():
            values[name] = int(value) if known[name] == "int" else float(value)
        return ProviderLimits(**{**base.__dict__, **values})


class RateLimiter:
    """Request-rate limit by virtual scheduling: ``burst`` calls at once, then one every
    ``60 / per_minute`` seconds. A rate of 0 means no limit."""

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.burst = max(1, burst)
        self._clock, self._sleep = clock, sleep
        self._tat = float("-inf")

    async def acquire(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        tat = max(self._tat, now)
        start = max(now, tat - (self.burst - 1) * self.interval)
        self._tat = tat + self.interval
        if start > now:
            await self._sleep(start - now)


class CircuitBreaker:
    """Opens after ``failures`` consecutive transient failures; after ``reset_s`` lets one
    probe through (half-open): its success closes the circuit, its failure opens it again."""

    def __init__(self, *, failures: int, reset_s: float, clock: Clock = time.monotonic) -> None:
        self.threshold, self.reset_s, self._clock = failures, reset_s, clock
        self.failures = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def before_call(self, provider: str) -> None:
        state = self.state
        if state == "closed":
            return
        now = self._clock()
        stale = self._probe_started is not None and now - self._probe_started >= self.reset_s
        if state == "half_open" and (self._probe_started is None or stale):
            self._probe_started = now  # one probe at a time; a lost (cancelled) one expires
            return
        raise ProviderUnavailableError(
            f"{provider} is unavailable: circuit open after {self.failures} consecutive "
            "failure(s); falling back",
            provider=provider,
        )

    def record_success(self) -> None:
        self.failures, self._opened_at, self._probe_started = 0, None, None

    def record_failure(self) -> None:
        self.failures += 1
        if self._probe_started is not None or self.failures >= self.threshold:
            self._opened_at = self._clock()
        self._probe_started = None

    def record_neutral(self) -> None:
        """The backend answered (a refusal, a bad request): it is alive."""
        self.record_success()


def _counts_against_breaker(exc: BaseException) -> bool:
    """Timeouts, connection errors and 5xx say the backend is unwell; 429 says it is busy, and
    a job still running says it is working."""
    unwell = isinstance(exc, RetryableProviderError | UnknownOutcomeError)
    busy = isinstance(exc, StillRunningError) or getattr(exc, "status_code", None) == 429
    return unwell and not busy


def _retryable(replay_safe: bool) -> Callable[[BaseException], bool]:
    """Transient failures are tried again; an unknown outcome only where the backend itself
    recognises the repeated idempotency key (else a retry could be billed a second time)."""

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, UnknownOutcomeError):
            return replay_safe
        return isinstance(exc, RetryableProviderError) and not isinstance(
            exc, ProviderUnavailableError
        )

    return retryable


class _WaitRetryAfter(wait_random_exponential):
    """Exponential backoff with full jitter (tenacity's), unless the server said how long to
    wait."""

    def __init__(self, limits: ProviderLimits) -> None:
        super().__init__(multiplier=limits.backoff_initial_s, max=limits.backoff_max_s)
        self.cap = limits.max_retry_after_s

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        after = getattr(exc, "retry_after_s", None)
        if isinstance(after, int | float):
            return float(min(max(after, 0.0), self.cap))
        return float(super().__call__(retry_state))

    def after(self, exc: BaseException, tries: int) -> float:
        """The wait after try number ``tries`` failed with ``exc``."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = tries
        state.set_exception((type(exc), exc, exc.__traceback__))
        return self(state)


def _told_to_wait_past(exc: BaseException, wait: float, left_s: float) -> bool:
    """Did the server ask (``Retry-After``) for a wait the call's deadline cannot hold? Then the
    call gives up at once with that answer (``openai: 429``), instead of sleeping until the
    deadline and saying only that it ran out."""
    return isinstance(getattr(exc, "retry_after_s", None), int | float) and wait >= left_s


@dataclass
class _Flight:
    """One logical call's tries: is a request out now; did an earlier try end unknown."""

    sending: bool = False
    uncertain: bool = False


class ResilientProvider:
    """An ``ImageProvider`` that retries, limits and breaks the circuit around another."""

    def __init__(
        self,
        inner: ImageProvider,
        limits: ProviderLimits,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_close: Callable[[], Awaitable[None]] | None = None,
        breaker: CircuitBreaker | None = None,
        rate: RateLimiter | None = None,
    ) -> None:
        """``breaker`` and ``rate`` may be shared between wrappers (see the factory), so a
        long-lived process remembers a dead backend and its request rate across runs."""
        self.inner = inner
        self.name = inner.name
        #: the backend recognises a repeated idempotency key, so repeating a call whose outcome
        #: is unknown cannot make it pay twice (ComfyUI: it looks the job up first)
        self.replay_safe = bool(getattr(inner, "replay_safe", False))
        self.limits = limits
        self.breaker = breaker or CircuitBreaker(
            failures=limits.breaker_failures, reset_s=limits.breaker_reset_s, clock=clock
        )
        self.rate = rate or RateLimiter(
            limits.requests_per_minute, burst=limits.burst, clock=clock, sleep=sleep
        )
        # the whole limit: the factory's client has as many connections
        # (``http11.Http11Transport``), so every call of the limit is on the wire at once
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._retryable = _retryable(self.replay_safe)
        self._wait = _WaitRetryAfter(limits)
        self._sleep = sleep
        self._on_close = on_close

    async def generate(self, request: ImageRequest) -> ImageResult:
        """One logical call; ``ImageResult.tries`` (or the error's ``tries``) says how many
        backend calls it took. The idempotency key is the same on every try.

        The retry loop is written out rather than run by tenacity's ``AsyncRetrying``, whose
        machinery (an action list rebuilt, and each action checked for being a coroutine
        function, on every try) cost about a tenth of a successful call's client CPU; the
        waits are tenacity's (:class:`_WaitRetryAfter`), and the rules the same: up to
        ``max_attempts`` tries, a failure :func:`_retryable` says is transient tried again,
        any other raised as it is."""
        tries = 0
        flight = _Flight()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.limits.deadline_s) as deadline:
                while True:
                    tries += 1
                    try:
                        result = await self._once(request, flight)
                        break
                    except BaseException as exc:
                        if tries >= self.limits.max_attempts or not self._retryable(exc):
                            raise
                        wait = self._wait.after(exc, tries)
                        if _told_to_wait_past(exc, wait, (deadline.when() or 0.0) - loop.time()):
                            raise  # the server's own Retry-After: waiting it out cannot help
                    await self._sleep(wait)
        except TimeoutError as exc:
            message = f"{self.name} gave up after {self.limits.deadline_s:g}s and {tries} tries"
            error: RetryableProviderError | UnknownOutcomeError
            if flight.sending or flight.uncertain:  # a request was out when the deadline hit
                error = UnknownOutcomeError(
                    message + " with a request in flight", provider=self.name
                )
            else:
                error = RetryableProviderError(message, provider=self.name)
            error.tries = tries
            raise error from exc
        except ProviderError as exc:
            exc.tries = tries  # type: ignore[attr-defined]
            if flight.uncertain and getattr(exc, "billing", "not_billed") == "not_billed":
                exc.billing = "unknown"  # type: ignore[attr-defined]
            raise
        return result.model_copy(update={"tries": tries})

    async def _once(self, request: ImageRequest, flight: _Flight) -> ImageResult:
        self.breaker.before_call(self.name)
        await self.rate.acquire()
        async with self._slots:
            flight.sending = True
            try:
                result = await self.inner.generate(request)
            except (RefusedByProviderError, TerminalProviderError):
                self.breaker.record_neutral()
                raise
            except ProviderError as exc:
                flight.uncertain |= isinstance(exc, UnknownOutcomeError)
                if _counts_against_breaker(exc):
                    self.breaker.record_failure()
                raise
            except asyncio.CancelledError:  # the deadline, or the run stopped: a request was out
                flight.uncertain = True
                raise
            except Exception as exc:  # an adapter bug must not crash the run
                log.exception("%s adapter failed unexpectedly", self.name)
                raise TerminalProviderError(
                    f"{self.name} adapter failed: {type(exc).__name__}",
                    provider=self.name,
                    billing="unknown",  # it may have failed after sending the request
                ) from exc
            finally:
                flight.sending = False
        self.breaker.record_success()
        return result

    async def aclose(self) -> None:
        if self._on_close is not None:
            await self._on_close()


def circuit_open(provider: ImageProvider) -> bool:
    """Is ``provider`` behind an open circuit breaker (calls fail fast until it resets)?
    A half-open breaker lets a probe through, so it does not count."""
    breaker = getattr(provider, "breaker", None)
    return isinstance(breaker, CircuitBreaker) and breaker.state == "open"
