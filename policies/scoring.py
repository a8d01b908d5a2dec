"""The quality bar the score and observe nodes hold images to: per-signal weights and thresholds.

Defaults live in ``scoring_defaults.yaml`` beside this module so they can be tuned (and
reviewed) as data; a brand or a deployment may load its own file of the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from brandloop.domain import Scores
from brandloop.errors import BadInputError

DEFAULTS_PATH: Final = Path(__file__).with_name("scoring_defaults.yaml")


class SignalPolicy(BaseModel):
    """How much one signal counts in the composite and the value it must reach to pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: float = Field(ge=0)
    threshold: float = Field(ge=0, le=1)


class PalettePolicy(SignalPolicy):
    """Palette adherence: how ΔE2000 distances become a value, and the forbidden-colour rule."""

    delta_e_scale: float = Field(default=40.0, gt=0, description="ΔE at which the value is 0")
    near_delta_e: float = Field(default=10.0, gt=0, description="on-palette pixel radius")
    forbidden_delta_e: float = Field(default=10.0, gt=0, description="forbidden pixel radius")
    forbidden_max_coverage: float = Field(default=0.05, ge=0, le=1)
    clusters: int = Field(default=5, ge=1, le=16, description="dominant colours to extract")


class SharpnessPolicy(SignalPolicy):
    """Sharpness: the Laplacian variance (at a 512-pixel long side) that maps to 1 - 1/e.

    Images whose 1st-99th percentile luminance spread is below ``contrast_reference`` have
    their variance scaled up to compensate (0 turns this off); ``min_contrast`` caps the boost.
    """

    variance_scale: float = Field(default=200.0, gt=0)
    contrast_reference: float = Field(default=160.0, ge=0, le=255)
    min_contrast: float = Field(default=40.0, gt=0, le=255)


class ExposurePolicy(SignalPolicy):
    """Exposure: how much clipping and how far from mid-grey an image may go for free."""

    clip_free: float = Field(default=0.10, ge=0, le=1, description="clipped share without cost")
    clip_full: float = Field(default=0.70, gt=0, le=1, description="clipped share scoring 0")
    key_free: float = Field(default=0.35, ge=0, lt=1, description="|mean - mid| / mid without cost")

    @model_validator(mode="after")
    def _clip_order(self) -> ExposurePolicy:
        if self.clip_full <= self.clip_free:
            raise ValueError("clip_full must be greater than clip_free")
        return self


class ScoringPolicy(BaseModel):
    """Weights and thresholds for every pixel signal, plus the composite bar for acceptance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    palette: PalettePolicy
    sharpness: SharpnessPolicy
    exposure: ExposurePolicy
    composite_threshold: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringPolicy:
        if sum(self.weights().values()) <= 0:
            raise ValueError("at least one signal needs a positive weight")
        return self

    def weights(self) -> dict[str, float]:
        """Signal name → weight, keyed like ``Scores.signals``."""
        return {
            "palette": self.palette.weight,
            "sharpness": self.sharpness.weight,
            "exposure": self.exposure.weight,
        }

    def accepts(self, scores: Scores) -> bool:
        """True when every signal passed and the composite reaches the bar."""
        return not scores.failed and scores.composite >= self.composite_threshold


def load_scoring_policy(path: Path | None = None) -> ScoringPolicy:
    """Read a scoring policy from YAML (the packaged defaults when ``path`` is None).

    Raises :class:`BadInputError` naming the file when it is missing, not YAML or invalid, so
    a bad policy stops a deployment at start-up instead of mis-scoring images.
    """
    source = path or DEFAULTS_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read scoring policy {source}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BadInputError(f"scoring policy {source} is not valid YAML: {exc}") from exc
    try:
        return ScoringPolicy.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"scoring policy {source} is invalid: {exc}") from exc
