"""Per-process settings, read once from ``BRANDLOOP_*`` environment variables.

Per-run knobs (budget, count, model) travel with each request instead; see ``agent.context``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "your-key-here", "sk-...", "xxx", "secret"}


class Settings(BaseSettings):
    """Everything a brandloop process needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="BRANDLOOP_", extra="ignore")

    data_dir: Path = Path(".brandloop")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data dir"
    )
    chroma_path: Path | None = Field(default=None, description="default: <data_dir>/chroma")
    chroma_host: str | None = None
    chroma_port: int = 8000

    default_budget_usd: float = Field(default=0.50, ge=0)
    default_size: str = "1024x1024"
    max_iterations: int = Field(default=4, ge=1, le=20)
    tenant: str = "default"

    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    stability_api_key: SecretStr | None = None
    stability_base_url: str = "https://api.stability.ai"
    a1111_base_url: str | None = None
    comfyui_base_url: str | None = None

    @field_validator("openai_api_key", "stability_api_key")
    @classmethod
    def _no_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("is a placeholder, not a real credential")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'brandloop.db').resolve()}"

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def checkpoints_path(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"


@lru_cache
def get_settings() -> Settings:
    return Settings()
