"""What can go wrong at an image backend, sorted by what the agent should do next.

ProviderError (brandloop.errors)
├── RetryableProviderError   rate limit, timeout, 5xx, connection: back off and try again
│   └── ProviderUnavailableError  the circuit breaker is open: fall back now, do not wait
├── RefusedByProviderError   content policy: never retry the same prompt; replan or fall back
└── TerminalProviderError    bad credentials, bad request, unknown model: fail fast
    └── MalformedResponseError  the backend answered something we cannot use

Every error carries ``provider`` and, once the resilience layer has given up, ``tries`` (calls
made, retries included), so the attempt records how hard brandloop tried. Messages never hold a
credential: adapters build them from the backend's own error text, which is redacted first.
"""

from __future__ import annotations

from brandloop.errors import ProviderError


class _Tracked(ProviderError):
    def __init__(self, message: str, *, provider: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.tries = 1


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


class RefusedByProviderError(_Tracked):
    problem_type = "provider-refused"


class TerminalProviderError(_Tracked):
    problem_type = "provider-terminal"


class MalformedResponseError(TerminalProviderError):
    problem_type = "provider-malformed"
