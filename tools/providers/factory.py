"""Build the providers this process may call from settings: one ``httpx.AsyncClient`` per
HTTP provider (pool sized to its concurrency limit), each adapter wrapped in the resilience
layer. With no credentials set, only the procedural provider exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx

from brandloop.domain import ModelSpec
from brandloop.errors import BadInputError
from brandloop.policies.catalog import configured_providers
from brandloop.providers import ImageProvider
from brandloop.settings import Settings
from brandloop.tools.providers.a1111 import A1111Provider
from brandloop.tools.providers.comfyui import ComfyUIProvider, load_workflow
from brandloop.tools.providers.http11 import Http11Transport
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.procedural import MODELS as PROCEDURAL_MODELS
from brandloop.tools.providers.procedural import ProceduralProvider
from brandloop.tools.providers.resilience import (
    CircuitBreaker,
    ProviderLimits,
    RateLimiter,
    ResilientProvider,
)
from brandloop.tools.providers.stability import StabilityProvider


def limits_for(settings: Settings, provider: str) -> ProviderLimits:
    """The settings' defaults, overridden by ``provider_limits[provider]``."""
    base = ProviderLimits(
        concurrency=settings.provider_concurrency,
        requests_per_minute=settings.provider_requests_per_minute,
        max_attempts=settings.provider_max_attempts,
        backoff_initial_s=settings.provider_backoff_initial_s,
        backoff_max_s=settings.provider_backoff_max_s,
        breaker_failures=settings.provider_breaker_failures,
        breaker_reset_s=settings.provider_breaker_reset_s,
        deadline_s=settings.provider_deadline_s,
    )
    return ProviderLimits.from_mapping(base, settings.provider_limits.get(provider, {}))


#: the headers the standard library's cookie jar reads (lower case)
_SETS_COOKIES = frozenset({b"set-cookie", b"set-cookie2"})


class AnswerCookies(httpx.Cookies):
    """The provider client's cookie jar: it reads an answer only when the answer sets a cookie.

    httpx hands every answer to the standard library's cookie jar, which builds a compatible
    request (parsing the URL again) and looks for ``Set-Cookie`` headers: some 4 % of a provider
    call's client CPU, for APIs that seldom set a cookie. A cookie that is set is kept and sent
    back exactly as before."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if any(name.lower() in _SETS_COOKIES for name, _ in response.headers.raw):
            super().extract_cookies(response)


def http_client(settings: Settings, limits: ProviderLimits) -> httpx.AsyncClient:
    """A client with as many keep-alive connections as the concurrency limit, on brandloop's
    HTTP/1.1 transport (``http11.Http11Transport``: httpx's own, on httpcore and h11, cost more
    client CPU per call than the rest of a provider call, and its pool collapses above about 32
    requests at once), and a cookie jar that reads only answers that set cookies
    (:class:`AnswerCookies`)."""
    client = httpx.AsyncClient(
        transport=Http11Transport(limits.concurrency),
        timeout=httpx.Timeout(
            settings.provider_timeout_s,
            connect=settings.provider_connect_timeout_s,
            pool=settings.provider_deadline_s,
        ),
        headers={"User-Agent": "brandloop/0.1"},
        follow_redirects=False,
    )
    # httpx 0.28 (pinned ``<0.29``) keeps the jar in ``_cookies`` and its ``cookies`` setter
    # copies into a plain ``Cookies``; ``tests/tools/providers/transport/test_http11.py`` checks it
    client._cookies = AnswerCookies()
    return client


def _adapter(
    provider: str, client: httpx.AsyncClient, settings: Settings, models: Sequence[ModelSpec]
) -> ImageProvider:
    if provider == "openai":
        if settings.openai_api_key is None:
            raise BadInputError("the openai provider needs BRANDLOOP_OPENAI_API_KEY")
        return OpenAIImagesProvider(
            client,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            models=models,
        )
    if provider == "stability":
        if settings.stability_api_key is None:
            raise BadInputError("the stability provider needs BRANDLOOP_STABILITY_API_KEY")
        return StabilityProvider(
            client,
            api_key=settings.stability_api_key,
            base_url=settings.stability_base_url,
            models=models,
        )
    if provider == "a1111":
        if not settings.a1111_base_url:
            raise BadInputError("the a1111 provider needs BRANDLOOP_A1111_BASE_URL")
        return A1111Provider(
            client, base_url=settings.a1111_base_url, auth=settings.a1111_api_auth, models=models
        )
    if provider == "comfyui":
        if not settings.comfyui_base_url:
            raise BadInputError("the comfyui provider needs BRANDLOOP_COMFYUI_BASE_URL")
        workflow = load_workflow(settings.comfyui_workflow) if settings.comfyui_workflow else None
        return ComfyUIProvider(
            client,
            base_url=settings.comfyui_base_url,
            workflow=workflow,
            poll_interval_s=settings.comfyui_poll_interval_s,
            deadline_s=settings.provider_timeout_s,
            models=models,
        )
    raise ValueError(f"unknown provider {provider!r}")


_SHARED: dict[tuple[str, str, ProviderLimits], tuple[CircuitBreaker, RateLimiter]] = {}


def _health(
    provider: str, where: str, limits: ProviderLimits
) -> tuple[CircuitBreaker, RateLimiter]:
    """One breaker and one rate limiter per (provider, endpoint, limits) in this process, so
    every run in a long-lived process sees the same health and shares the same request rate.
    (Neither holds loop-bound state; the concurrency semaphore and the client are per run.)"""
    key = (provider, where, limits)
    if key not in _SHARED:
        _SHARED[key] = (
            CircuitBreaker(failures=limits.breaker_failures, reset_s=limits.breaker_reset_s),
            RateLimiter(limits.requests_per_minute, burst=limits.burst),
        )
    return _SHARED[key]


def _endpoint(provider: str, settings: Settings) -> str:
    return {
        "openai": settings.openai_base_url,
        "stability": settings.stability_base_url,
        "a1111": settings.a1111_base_url or "",
        "comfyui": settings.comfyui_base_url or "",
    }.get(provider, "")


def procedural_prices(models: Sequence[ModelSpec]) -> dict[str, float]:
    """The catalog's prices for the procedural models it knows: what the planner budgets with is
    what the ledger charges (a deployment catalog may price previews differently)."""
    return {
        m.model: m.price_per_image_usd
        for m in models
        if m.provider == "procedural" and m.model in PROCEDURAL_MODELS
    }


def build_providers(settings: Settings, models: Sequence[ModelSpec]) -> dict[str, ImageProvider]:
    """Every configured provider, resilient; close them with :func:`close_providers`."""
    providers: dict[str, ImageProvider] = {
        "procedural": ResilientProvider(
            ProceduralProvider(
                prices=procedural_prices(models),
                accent_chance=settings.procedural_accent_chance,
            ),
            limits_for(settings, "procedural"),
        )
    }
    for name in sorted(configured_providers(settings) - {"procedural"}):
        limits = limits_for(settings, name)
        client = http_client(settings, limits)
        breaker, rate = _health(name, _endpoint(name, settings), limits)
        providers[name] = ResilientProvider(
            _adapter(name, client, settings, models),
            limits,
            on_close=client.aclose,
            breaker=breaker,
            rate=rate,
        )
    return providers


async def close_providers(providers: Mapping[str, ImageProvider]) -> None:
    """Close the HTTP clients the factory opened; other providers are left alone."""
    for provider in providers.values():
        if isinstance(provider, ResilientProvider):
            await provider.aclose()


@asynccontextmanager
async def closing(providers: Mapping[str, ImageProvider], *, owned: bool) -> AsyncIterator[None]:
    """Close the providers' HTTP clients on the way out when the caller built them."""
    try:
        yield
    finally:
        if owned:
            await close_providers(providers)
