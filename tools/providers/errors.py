"""What can go wrong at an image backend, sorted by what the agent should do next.

ProviderError (brandloop.errors)
├── RetryableProviderError   rate limit, timeout, 5xx, connection: back off and try again
├── RefusedByProviderError   content policy: never retry the same prompt; replan or fall back
└── TerminalProviderError    bad credentials, bad request, unknown model: fail fast
    └── MalformedResponseError  the backend answered something we cannot use
"""

from __future__ import annotations

from brandloop.errors import ProviderError


class RetryableProviderError(ProviderError):
    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RefusedByProviderError(ProviderError):
    problem_type = "provider-refused"


class TerminalProviderError(ProviderError):
    problem_type = "provider-terminal"


class MalformedResponseError(TerminalProviderError):
    problem_type = "provider-malformed"
