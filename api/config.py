"""Settings of the HTTP service (``BRANDLOOP_API_*``), apart from the core settings.

Everything is off or conservative by default: CORS off, OpenTelemetry off, a 1 MiB body limit.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from brandloop.settings import load_settings, utf8_text_setting


class ApiSettings(BaseSettings):
    """Knobs of the service process; per-request knobs travel in the request body."""

    model_config = SettingsConfigDict(
        env_prefix="BRANDLOOP_API_", extra="ignore", allow_inf_nan=False
    )

    workers: int = Field(default=2, ge=0, le=64, description="jobs run at once; 0: none run")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    rate_limit_per_minute: int = Field(default=6000, ge=1, description="per API key")
    rate_limit_burst: int = Field(default=200, ge=1)
    tenant_rate_limit_per_minute: int = Field(
        default=12000, ge=1, description="per tenant, across all its keys"
    )
    tenant_rate_limit_burst: int = Field(default=400, ge=1)
    auth_failures_per_minute: int = Field(
        default=10, ge=1, description="failed authentications per client address"
    )
    auth_failures_burst: int = Field(default=20, ge=1)
    idempotency_ttl_seconds: float = Field(
        default=86_400, gt=0, description="how long an Idempotency-Key's answer is kept"
    )
    idempotency_wait_seconds: float = Field(
        default=5.0, ge=0, description="how long a duplicate waits for the first's answer"
    )
    idempotency_pending_seconds: float = Field(
        default=600.0, gt=0, description="a pending key older than this belongs to a dead request"
    )
    daily_quota_usd: float = Field(default=100.0, ge=0, description="spend per tenant per UTC day")
    max_wait_seconds: float = Field(default=60.0, ge=0)
    cors_origins: list[str] = Field(default_factory=list, description="empty: CORS off")
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    log_json: bool | None = Field(
        default=None, description="default: JSON unless stderr is a terminal"
    )
    access_log: bool = Field(default=True, description="one JSON line per request")
    key_cache_seconds: float = Field(default=5.0, ge=0)
    key_cache_entries: int = Field(
        default=10_000, ge=1, description="valid keys held, least recently used evicted first"
    )
    sse_poll_seconds: float = Field(default=0.2, gt=0)
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token a Prometheus scraper sends to GET /metrics (an admin key "
        "works too); unset: admin keys only",
    )

    @field_validator("*")
    @classmethod
    def _utf8_text(cls, value: object) -> object:
        return utf8_text_setting(value)

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (it guards every tenant's figures)")
        return value


@lru_cache
def get_api_settings() -> ApiSettings:
    """The service's settings; a malformed ``BRANDLOOP_API_*`` variable is a
    :class:`~brandloop.errors.BadInputError` naming it."""
    return load_settings(ApiSettings)
