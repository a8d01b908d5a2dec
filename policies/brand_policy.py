"""Per-brand policy: a brand's own weights and thresholds over the packaged defaults.

A brand's file is ``<slug>.yaml`` in the deployment's policy folder (``<data_dir>/policies``,
checked first) or in the packaged ``policies/brands``. It holds partial overrides, merged key
by key over the defaults, e.g. a brand that lives on crisp product shots::

    scoring:
      sharpness: {weight: 0.3, threshold: 0.6}
    conflicts: ask            # adapt (default) | ask | refuse: see BrandRunPolicy
    providers: [openai]       # only these providers for this brand's runs
    allow_preview: false      # the procedural preview renderer only when no real provider is
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.errors import BadInputError
from brandloop.policies.scoring import DEFAULTS_PATH, ScoringPolicy
from brandloop.policy_files import describe_validation_error, read_policy_yaml

PACKAGED_BRAND_POLICIES = Path(__file__).with_name("brands")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def brand_policy_file(slug: str, search: Sequence[Path]) -> Path | None:
    for folder in search:
        candidate = folder / f"{slug}.yaml"
        if candidate.is_file():
            return candidate
    return None


def load_brand_scoring_policy(slug: str, *, search: Sequence[Path] = ()) -> ScoringPolicy:
    """The scoring policy for one brand: the defaults with the brand's overrides merged in."""
    defaults = read_policy_yaml(DEFAULTS_PATH)
    path = brand_policy_file(slug, [*search, PACKAGED_BRAND_POLICIES])
    if path is None:
        return ScoringPolicy.model_validate(defaults)
    overrides = read_policy_yaml(path, what="brand policy") or {}
    if not isinstance(overrides, dict) or not isinstance(overrides.get("scoring", {}), dict):
        raise BadInputError(f"brand policy {path}: expected a mapping with a 'scoring' mapping")
    try:
        return ScoringPolicy.model_validate(deep_merge(defaults, overrides.get("scoring", {})))
    except ValidationError as exc:
        raise BadInputError(
            f"brand policy {path}: {describe_validation_error(exc, within='scoring')}"
        ) from None


ConflictChoice = Literal["adapt", "ask", "refuse"]


class BrandRunPolicy(BaseModel):
    """What a brand decides about runs, beside scoring (``<slug>.yaml``, top-level keys).

    ``conflicts``: what happens when a brief conflicts with the brand kit (colours outside the
    palette, a forbidden colour, a format the brand does not use): ``adapt`` (the brand palette
    stays dominant, the brief's colours become accents covering at most ``accent_max_share``),
    ``ask`` (a clarifying reply instead of spending) or ``refuse``.
    ``providers``: the only providers this brand's runs may use (none: any configured).
    ``allow_preview``: may the procedural preview renderer be planned when a real provider is
    configured.
    """

    model_config = ConfigDict(extra="forbid")

    conflicts: ConflictChoice = "adapt"
    accent_max_share: float = Field(default=0.25, ge=0, le=1)
    providers: list[str] | None = None
    allow_preview: bool = False


def load_brand_run_policy(slug: str, *, search: Sequence[Path] = ()) -> BrandRunPolicy:
    """The brand's run policy from its policy file, defaults where it says nothing."""
    path = brand_policy_file(slug, [*search, PACKAGED_BRAND_POLICIES])
    data = (read_policy_yaml(path, what="brand policy") or {}) if path is not None else {}
    if not isinstance(data, dict):
        raise BadInputError(f"brand policy {path}: expected a mapping")
    # "scoring" and "moderation" are read by their own loaders (load_brand_scoring_policy,
    # brandloop.tools.moderation.policy.load_brand_moderation_policy)
    fields = {k: v for k, v in data.items() if k not in {"scoring", "moderation"}}
    try:
        return BrandRunPolicy.model_validate(fields)
    except ValidationError as exc:
        raise BadInputError(f"brand policy {path}: {describe_validation_error(exc)}") from None
