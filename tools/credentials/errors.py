"""What can go wrong with Content Credentials, and what the caller does next.

BrandloopError
├── BadInputError
│   └── SignerConfigError   exit 2: BRANDLOOP_C2PA_* settings name a signer that cannot work
└── SigningError            exit 8 / HTTP 503: a configured signer failed (remote signer
                            down, TSA unreachable); the run stays resumable, nothing is lost
"""

from __future__ import annotations

from brandloop.errors import BadInputError, BrandloopError


class SignerConfigError(BadInputError):
    """The signer settings are incomplete, contradictory or point at unusable files."""


class SigningError(BrandloopError):
    """Signing an image failed; ``brandloop runs resume`` retries once the signer is back."""

    exit_code = 8
    problem_type = "signing-failed"
