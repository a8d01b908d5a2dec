"""What a run's failed provider calls say about its providers: which endpoints could not be
reached, and the words of the exit-5 reason (``openai: 503 ×4, breaker open``)."""

from __future__ import annotations

import re

from brandloop.agent.context import RunContext
from brandloop.agent.state import RunState
from brandloop.tools.providers._http import CERTIFICATE_REFUSED
from brandloop.tools.providers.resilience import circuit_open

_STATUS = re.compile(r"HTTP (\d{3})|\b([45]\d\d)\b")

#: What a provider's error says when its endpoint could not be connected to at all
#: (``tools/providers/_http.py``): every model behind that endpoint is down with it.
UNREACHABLE = "could not be reached"


def unreachable_providers(ctx: RunContext, state: RunState) -> set[str]:
    """Providers whose endpoint refused this run's connection: their other models are not
    tried (they share the endpoint), so an outage ends the run as providers unavailable
    instead of spending its rounds on one model after another of a dead host."""
    provider_of = {m.id: m.provider for m in ctx.models}
    return {
        provider_of[a.candidate.model]
        for a in state.get("attempts", {}).values()
        if a.outcome == "error"
        and UNREACHABLE in (a.error or "")
        and a.candidate.model in provider_of
    }


#: How an attempt's error (``ErrorClass: message``) reads in the exit-5 reason, by its class,
#: where its message carries no HTTP status
_FAILURE_WORDS = {
    "MalformedResponseError": "unusable answer",
    "UnknownOutcomeError": "no answer",
    "StillRunningError": "still running",
}


def failure_words(error: str) -> str | None:
    """What went wrong with one failed call, in the words of the exit-5 reason: its HTTP status
    (``503``), ``unreachable``, ``unusable answer``, ...; None for a call the open circuit
    breaker did not let through (the reason says ``breaker open`` once)."""
    kind = error.split(":")[0]
    if kind == "ProviderUnavailableError":
        return None
    if kind in _FAILURE_WORDS:
        return _FAILURE_WORDS[kind]
    if CERTIFICATE_REFUSED in error:
        return "TLS certificate not accepted"
    found = _STATUS.search(error)
    if found:
        return found.group(1) or found.group(2)
    if UNREACHABLE in error:
        return "unreachable"
    return kind.removesuffix("ProviderError").lower() + " error" if kind else "error"


def unavailable_reason(ctx: RunContext, state: RunState) -> str:
    """Each provider the run could have used and what went wrong with it, e.g.
    ``no usable provider: openai: 503 ×4, breaker open``."""
    return "no usable provider: " + _what_failed(ctx, state, {m.provider for m in ctx.models})


def nothing_came_back(ctx: RunContext, state: RunState) -> str | None:
    """When every call the run made failed at its provider (no image, nor a refusal, came
    back), each provider it called and how, e.g. ``every call failed: openai: 503 ×4``; else
    None. A run that stops so (its budget, its rounds or the stopping rule ran out first) is
    a provider outage, not a brief that found no image (exit 5, not 4)."""
    attempts = list(state.get("attempts", {}).values())
    if not attempts or any(a.outcome != "error" for a in attempts):
        return None
    called = {ctx.model(a.candidate.model).provider for a in attempts}
    return "every call failed: " + _what_failed(ctx, state, called)


def _what_failed(ctx: RunContext, state: RunState, providers: set[str]) -> str:
    parts = []
    for provider in sorted(providers):
        failed = [
            a
            for a in state.get("attempts", {}).values()
            if a.outcome == "error" and ctx.model(a.candidate.model).provider == provider
        ]
        codes: dict[str, int] = {}
        refused_by_breaker = False
        for attempt in failed:
            code = failure_words(attempt.error or "")
            if code is None:  # the breaker was open: no call was made
                refused_by_breaker = True
                continue
            codes[code] = codes.get(code, 0) + max(attempt.tries, 1)
        what = [f"{code} ×{n}" for code, n in codes.items()]
        if provider not in ctx.providers:
            what.append("not configured")
        elif refused_by_breaker or circuit_open(ctx.providers[provider]):
            what.append("breaker open")
        excluded = sorted(
            m.id
            for m in ctx.models
            if m.provider == provider and m.id in state.get("excluded_models", [])
        )
        if excluded and not failed:
            what.append(f"excluded: {', '.join(excluded)}")
        parts.append(f"{provider}: {', '.join(what) or 'unusable'}")
    return "; ".join(parts)
