"""Retries, Retry-After, limits, the circuit breaker and the deadline of the resilience layer.

The backends here are small scripted ``ImageProvider`` fakes (the outside world at its seam);
time is a fake clock and a recording sleep, so nothing waits for real.
"""

from __future__ import annotations

import asyncio

import pytest

from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    ProviderUnavailableError,
    RefusedByProviderError,
    RetryableProviderError,
    StillRunningError,
    TerminalProviderError,
    UnknownOutcomeError,
)
from brandloop.tools.providers.resilience import (
    CircuitBreaker,
    ProviderLimits,
    RateLimiter,
    ResilientProvider,
)

REQUEST = ImageRequest(model="m", prompt="p", idempotency_key="bl-1")
OK = ImageResult(images=[GeneratedImage(data=b"x", width=1, height=1)], cost_usd=0.01)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted:
    """Answers from a script: an exception to raise or a result to return, one per call."""

    name = "scripted"

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.requests: list[ImageRequest] = []

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else OK
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, ImageResult)
        return step


def wrap(inner, clock: Clock, **limits) -> ResilientProvider:
    return ResilientProvider(inner, ProviderLimits(**limits), clock=clock, sleep=clock.sleep)


async def test_transient_failures_are_retried_with_the_same_idempotency_key() -> None:
    clock = Clock()
    inner = Scripted(
        RetryableProviderError("429", status_code=429, retry_after_s=2.5),
        RetryableProviderError("503", status_code=503),
        RetryableProviderError("timeout"),
    )
    result = await wrap(inner, clock, backoff_initial_s=0.5, backoff_max_s=4).generate(REQUEST)
    assert result.tries == 4
    assert {r.idempotency_key for r in inner.requests} == {"bl-1"}
    assert clock.sleeps[0] == 2.5  # Retry-After honoured exactly
    assert all(0 <= s <= 4 for s in clock.sleeps[1:])  # jittered exponential backoff


async def test_retry_after_is_capped_at_60_seconds() -> None:
    clock = Clock()
    inner = Scripted(RetryableProviderError("429", status_code=429, retry_after_s=3600))
    await wrap(inner, clock).generate(REQUEST)
    assert clock.sleeps == [60.0]


async def test_gives_up_after_max_attempts_and_says_how_many_tries() -> None:
    clock = Clock()
    inner = Scripted(*[RetryableProviderError("503", status_code=503) for _ in range(9)])
    with pytest.raises(RetryableProviderError) as exc:
        await wrap(inner, clock, max_attempts=3, breaker_failures=99).generate(REQUEST)
    assert exc.value.tries == 3
    assert len(inner.requests) == 3


@pytest.mark.parametrize(
    "error",
    [
        RefusedByProviderError("policy"),
        TerminalProviderError("bad key"),
        MalformedResponseError("garbage"),
    ],
)
async def test_refusals_and_terminal_errors_are_never_retried(error) -> None:
    clock = Clock()
    inner = Scripted(error)
    with pytest.raises(type(error)) as exc:
        await wrap(inner, clock).generate(REQUEST)
    assert len(inner.requests) == 1 and clock.sleeps == []
    assert exc.value.tries == 1


async def test_an_adapter_bug_becomes_a_terminal_error_not_a_crash() -> None:
    with pytest.raises(TerminalProviderError, match="KeyError"):
        await wrap(Scripted(KeyError("data")), Clock()).generate(REQUEST)


async def test_breaker_opens_fails_fast_then_probes_half_open() -> None:
    clock = Clock()
    inner = Scripted(*[RetryableProviderError("down", status_code=503) for _ in range(4)])
    provider = wrap(
        inner, clock, max_attempts=2, breaker_failures=3, breaker_reset_s=30, backoff_max_s=0
    )
    with pytest.raises(RetryableProviderError):
        await provider.generate(REQUEST)  # failures 1, 2
    with pytest.raises(ProviderUnavailableError, match="circuit open"):
        await provider.generate(REQUEST)  # failure 3 opens it; the retry fails fast
    assert provider.breaker.state == "open"
    calls = len(inner.requests)
    with pytest.raises(ProviderUnavailableError) as exc:
        await provider.generate(REQUEST)
    assert len(inner.requests) == calls  # the dead backend was not called
    assert exc.value.tries == 1
    clock.now += 31
    assert provider.breaker.state == "half_open"
    with pytest.raises(ProviderUnavailableError):
        await provider.generate(REQUEST)  # the probe fails (4th scripted error): open again
    assert len(inner.requests) == calls + 1
    clock.now += 31
    result = await provider.generate(REQUEST)  # the next probe succeeds: closed
    assert result.images and provider.breaker.state == "closed"


def test_breaker_ignores_rate_limits_and_refusals() -> None:
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=Clock())
    breaker.record_neutral()
    assert breaker.state == "closed"


async def test_429s_do_not_open_the_breaker() -> None:
    clock = Clock()
    inner = Scripted(*[RetryableProviderError("busy", status_code=429) for _ in range(3)])
    provider = wrap(inner, clock, max_attempts=4, breaker_failures=2)
    result = await provider.generate(REQUEST)
    assert result.tries == 4 and provider.breaker.state == "closed"


async def test_rate_limiter_spaces_calls_after_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(60, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await limiter.acquire()
    assert clock.sleeps == [1.0, 1.0]


async def test_no_rate_limit_by_default() -> None:
    clock = Clock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        await limiter.acquire()
    assert clock.sleeps == []


async def test_concurrency_limit_caps_calls_in_flight() -> None:
    in_flight = peak = 0

    class Slow:
        name = "slow"

        async def generate(self, request: ImageRequest) -> ImageResult:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return OK

    provider = ResilientProvider(Slow(), ProviderLimits(concurrency=3))
    await asyncio.gather(*(provider.generate(REQUEST) for _ in range(12)))
    assert peak == 3


async def test_the_whole_concurrency_limit_runs_at_once() -> None:
    """64 calls at once under a limit of 64 (the client's transport carries them all at once:
    tests/tools/providers/transport/test_http11.py)."""
    running = peak = 0
    release = asyncio.Event()

    class Holds:
        name = "holds"

        async def generate(self, request: ImageRequest) -> ImageResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            if running == 64:
                release.set()
            await release.wait()
            running -= 1
            return OK

    provider = ResilientProvider(Holds(), ProviderLimits(concurrency=64))
    await asyncio.wait_for(asyncio.gather(*(provider.generate(REQUEST) for _ in range(80))), 10)
    assert peak == 64


async def test_deadline_bounds_a_call_with_its_retries() -> None:
    class Hangs:
        name = "hangs"

        async def generate(self, request: ImageRequest) -> ImageResult:
            await asyncio.sleep(10)
            return OK

    provider = ResilientProvider(Hangs(), ProviderLimits(deadline_s=0.05))
    with pytest.raises(UnknownOutcomeError, match=r"gave up after .* with a request in flight"):
        await provider.generate(REQUEST)


async def test_a_call_the_deadline_cuts_off_in_flight_is_billing_unknown() -> None:
    """The request was out when the deadline hit: the backend may bill it, so the whole
    reservation stays spent until reconciled (docs/providers.md). It was once 'not billed' at
    $0, because the flag saying a request was out was cleared before the deadline read it."""

    class AnswersLate:
        name = "late"

        def __init__(self) -> None:
            self.calls = 0

        async def generate(self, request: ImageRequest) -> ImageResult:
            self.calls += 1
            await asyncio.sleep(10)
            return OK

    inner = AnswersLate()
    provider = ResilientProvider(inner, ProviderLimits(deadline_s=0.05, max_attempts=4))
    with pytest.raises(UnknownOutcomeError) as caught:
        await provider.generate(REQUEST)
    assert caught.value.billing == "unknown" and caught.value.tries == 1 and inner.calls == 1


async def test_a_retry_after_past_the_deadline_gives_up_at_once_with_the_429() -> None:
    """Waiting out a Retry-After the deadline cannot hold only ends in 'gave up after': the call
    gives up at once with the server's answer, which the run's reason names (``openai: 429``)."""
    clock = Clock()
    inner = Scripted(RetryableProviderError("HTTP 429", status_code=429, retry_after_s=30))
    provider = wrap(inner, clock, deadline_s=8)
    with pytest.raises(RetryableProviderError) as caught:
        await provider.generate(REQUEST)
    assert caught.value.status_code == 429 and caught.value.tries == 1
    assert clock.sleeps == [] and len(inner.requests) == 1
    # within the deadline it is waited out as before
    inner = Scripted(RetryableProviderError("HTTP 429", status_code=429, retry_after_s=2))
    result = await wrap(inner, clock, deadline_s=8).generate(REQUEST)
    assert result.tries == 2 and clock.sleeps == [2.0]


def test_limits_from_settings_overrides() -> None:
    base = ProviderLimits()
    limits = ProviderLimits.from_mapping(base, {"concurrency": 4.0, "requests_per_minute": 50})
    assert limits.concurrency == 4 and isinstance(limits.concurrency, int)
    assert limits.requests_per_minute == 50.0
    with pytest.raises(ValueError, match="unknown provider limit"):
        ProviderLimits.from_mapping(base, {"concurency": 4})


def test_limits_come_from_settings_with_per_provider_overrides(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from brandloop.settings import Settings
    from brandloop.tools.providers.factory import http_client, limits_for

    monkeypatch.setenv("BRANDLOOP_PROVIDER_CONCURRENCY", "12")
    monkeypatch.setenv("BRANDLOOP_PROVIDER_MAX_ATTEMPTS", "3")
    monkeypatch.setenv(
        "BRANDLOOP_PROVIDER_LIMITS", '{"openai": {"concurrency": 64, "requests_per_minute": 50}}'
    )
    configured = Settings()
    openai = limits_for(configured, "openai")
    assert (openai.concurrency, openai.requests_per_minute, openai.max_attempts) == (64, 50.0, 3)
    assert limits_for(configured, "a1111").concurrency == 12
    client = http_client(configured, openai)
    transport = client._transport  # 64 keep-alive connections at most
    assert transport.connections == 64  # type: ignore[attr-defined]


def test_half_open_lets_one_probe_at_a_time_and_a_lost_probe_expires() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_s=10, clock=clock)
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 10
    breaker.before_call("p")  # the probe
    with pytest.raises(ProviderUnavailableError):
        breaker.before_call("p")  # a second caller while the probe is out
    clock.now += 10  # the probe never reported back (cancelled)
    breaker.before_call("p")  # a new probe is allowed


def test_the_factory_shares_health_across_runs(settings) -> None:
    from brandloop.policies.catalog import load_catalog
    from brandloop.settings import Settings
    from brandloop.tools.providers.factory import build_providers

    configured = Settings(
        openai_api_key="sk-test-shared-health-1", openai_base_url="http://127.0.0.1:9/v1"
    )
    first = build_providers(configured, load_catalog())["openai"]
    second = build_providers(configured, load_catalog())["openai"]
    assert isinstance(first, ResilientProvider) and isinstance(second, ResilientProvider)
    assert first.breaker is second.breaker and first.rate is second.rate
    assert first._slots is not second._slots  # loop-bound state stays per run


async def test_an_unknown_outcome_is_never_retried_on_a_backend_that_would_bill_again() -> None:
    clock = Clock()
    inner = Scripted(UnknownOutcomeError("read timeout after sending"), OK)
    provider = ResilientProvider(inner, ProviderLimits(max_attempts=4), sleep=clock.sleep)
    with pytest.raises(UnknownOutcomeError) as exc:
        await provider.generate(REQUEST)
    assert len(inner.requests) == 1 and exc.value.billing == "unknown" and exc.value.tries == 1


async def test_a_replay_safe_backend_is_asked_again_and_its_answer_settles_the_doubt() -> None:
    clock = Clock()
    inner = Scripted(StillRunningError("still running"), StillRunningError("still running"), OK)
    inner.replay_safe = True  # type: ignore[attr-defined]
    limits = ProviderLimits(max_attempts=4, breaker_failures=2)
    provider = ResilientProvider(inner, limits, sleep=clock.sleep, clock=clock)
    result = await provider.generate(REQUEST)
    assert result.tries == 3 and provider.breaker.state == "closed"  # busy is not unwell


async def test_a_failure_after_an_unknown_try_stays_unknown() -> None:
    clock = Clock()
    inner = Scripted(UnknownOutcomeError("reset"), RetryableProviderError("503", status_code=503))
    inner.replay_safe = True  # type: ignore[attr-defined]
    provider = ResilientProvider(inner, ProviderLimits(max_attempts=2), sleep=clock.sleep)
    with pytest.raises(RetryableProviderError) as exc:
        await provider.generate(REQUEST)
    assert exc.value.billing == "unknown"  # the first try may have been billed
