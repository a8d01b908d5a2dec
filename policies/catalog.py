"""The model catalog: the shipped YAML, and which of its models this process can call."""

from __future__ import annotations

from pathlib import Path

import yaml

from brandloop.domain import ModelSpec
from brandloop.settings import Settings

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
TIER_ORDER = {"draft": 0, "standard": 1, "premium": 2}


def load_catalog(path: Path = CATALOG_PATH) -> list[ModelSpec]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [ModelSpec.model_validate(entry) for entry in data["models"]]


def configured_providers(settings: Settings) -> set[str]:
    """Providers this process has credentials or a base URL for; procedural always."""
    providers = {"procedural"}
    if settings.openai_api_key is not None:
        providers.add("openai")
    if settings.stability_api_key is not None:
        providers.add("stability")
    if settings.a1111_base_url:
        providers.add("a1111")
    if settings.comfyui_base_url:
        providers.add("comfyui")
    return providers


def plannable(models: list[ModelSpec], settings: Settings) -> list[ModelSpec]:
    """Models the planner may use: not retired, with a configured provider, cheapest tier first."""
    providers = configured_providers(settings)
    usable = [m for m in models if m.status != "retired" and m.provider in providers]
    return sorted(usable, key=lambda m: (TIER_ORDER[m.tier], m.price_per_image_usd))
