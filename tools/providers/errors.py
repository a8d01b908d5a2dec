"""What can go wrong at an image backend, sorted by what the agent should do next.

ProviderError (brandloop.errors)
├── RetryableProviderError   rate limit, 5xx, connection refused: back off and try again
│   └── ProviderUnavailableError  the circuit breaker is open: fall back now, do not wait
├── UnknownOutcomeError      the request was sent and its answer lost (read timeout, reset):
│   │                        it may have been billed; retried only where the backend itself
│   │                        recognises a repeated idempotency key
│   └── StillRunningError    the backend has the job and is still working on it (alive: the
│                            circuit breaker does not count it)
├── RefusedByProviderError   content policy: never retry the same prompt; replan or fall back
└── TerminalProviderError    bad credentials, bad request, unknown model: fail fast
    └── MalformedResponseError  the backend answered something we cannot use

Every error carries ``provider``, ``billing`` (``not_billed`` unless the adapter knows the call
was billed - a content-filtered image - or cannot know - an unknown outcome, or any failure
after a 2xx answer: ``_http.reading_answer``) with the
``charged_usd`` it knows of, and, once the resilience layer has given up, ``tries`` (calls
made, retries included), so the attempt records how hard brandloop tried and what it cost.
Messages never hold a credential: adapters build them from the backend's own error text, which
is redacted first.
"""

from __future__ import annotations

from brandloop.domain import Billing
from brandloop.errors import ProviderError


class _Tracked(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        billing: Billing = "not_billed",
        charged_usd: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.tries = 1
        self.billing: Billing = billing
        self.charged_usd = charged_usd


class RetryableProviderError(_Tracked):
    problem_type = "provider-retryable"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code)
        self.retry_after_s = retry_after_s


class ProviderUnavailableError(RetryableProviderError):
    """The provider's circuit is open; retrying now would only wait on a dead backend."""

    problem_type = "provider-unavailable"


class UnknownOutcomeError(_Tracked):
    """The request reached (or may have reached) the backend and no answer came back."""

    problem_type = "provider-unknown-outcome"

    def __init__(self, message: str, *, provider: str = "", status_code: int | None = None) -> None:
        super().__init__(message, provider=provider, status_code=status_code, billing="unknown")


class StillRunningError(UnknownOutcomeError):
    """A self-hosted backend took the job and has not finished it yet."""

    problem_type = "provider-still-running"


def billing_of(exc: BaseException) -> tuple[Billing, float | None]:
    """What a failed call cost: its billing and the charge the adapter knows of."""
    billing: Billing = getattr(exc, "billing", "not_billed")
    return billing, getattr(exc, "charged_usd", None)


class RefusedByProviderError(_Tracked):
    problem_type = "provider-refused"


class TerminalProviderError(_Tracked):
    problem_type = "provider-terminal"


class MalformedResponseError(TerminalProviderError):
    problem_type = "provider-malformed"
