"""The quality bar the score and observe nodes hold images to: per-signal weights and thresholds.

Defaults live in ``scoring_defaults.yaml`` beside this module so they can be tuned (and
reviewed) as data; a brand or a deployment may load its own file of the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from brandloop.domain import Scores, Signal
from brandloop.errors import BadInputError
from brandloop.policy_files import describe_validation_error, read_policy_yaml

DEFAULTS_PATH: Final = Path(__file__).with_name("scoring_defaults.yaml")
#: Every signal an image can be scored on, keyed like ``Scores.signals`` (an eval's
#: ``min_score`` assertion names one of these, or ``composite``).
SIGNAL_NAMES: Final = (
    "palette",
    "sharpness",
    "exposure",
    "contrast",
    "colourfulness",
    "format",
    "duplicate",
    "similarity",
    "alignment",
)


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
    key_free: float = Field(
        default=0.35, ge=0, lt=1, description="|mean - key| / its farther end without cost"
    )
    key_target: float = Field(
        default=127.5,
        gt=0,
        lt=255,
        description="the mean luminance aimed at (a brighter or darker revision moves it)",
    )

    @model_validator(mode="after")
    def _clip_order(self) -> ExposurePolicy:
        if self.clip_full <= self.clip_free:
            raise ValueError("clip_full must be greater than clip_free")
        return self


class ContrastPolicy(SignalPolicy):
    """Contrast: the 2nd-98th percentile luminance spread, ramped from ``spread_zero`` to
    ``spread_full`` (8-bit levels)."""

    weight: float = Field(default=0.1, ge=0)
    threshold: float = Field(default=0.3, ge=0, le=1)
    spread_zero: float = Field(default=30.0, ge=0, le=255)
    spread_full: float = Field(default=150.0, gt=0, le=255)

    @model_validator(mode="after")
    def _spread_order(self) -> ContrastPolicy:
        if self.spread_full <= self.spread_zero:
            raise ValueError("spread_full must be greater than spread_zero")
        return self


class ColourfulnessPolicy(SignalPolicy):
    """Colourfulness (Hasler and Süsstrunk 2003): metric M divided by ``m_full``, capped at 1.

    Their scale: 0 not colourful, 15 slightly, 33 moderately, 45 averagely, 59 quite, 82 highly.
    """

    weight: float = Field(default=0.05, ge=0)
    threshold: float = Field(default=0.1, ge=0, le=1)
    m_full: float = Field(default=45.0, gt=0)


class FormatPolicy(SignalPolicy):
    """Format match: aspect ratio and size of the image against the size that was asked for."""

    weight: float = Field(default=0.1, ge=0)
    threshold: float = Field(default=0.9, ge=0, le=1)
    aspect_tolerance: float = Field(
        default=0.02, ge=0, description="|ln(aspect / wanted)| that costs nothing"
    )
    aspect_zero: float = Field(default=0.25, gt=0, description="|ln ratio| that scores 0")


class DuplicatePolicy(SignalPolicy):
    """Near-duplicates within a set: value is the Hamming distance (of 64 bits) to the
    nearest earlier image's perceptual hash, divided by ``distance_full``, capped at 1."""

    weight: float = Field(default=0.1, ge=0)
    threshold: float = Field(default=0.34, ge=0, le=1)
    distance_full: int = Field(default=32, ge=1, le=64)


class SimilarityPolicy(SignalPolicy):
    """Similarity to the brand's accepted assets (cosine of compact image descriptors).

    Only computed when the brand's memory holds descriptors; absent otherwise.
    """

    weight: float = Field(default=0.1, ge=0)
    threshold: float = Field(default=0.5, ge=0, le=1)


class AlignmentPolicy(SignalPolicy):
    """Optional text-image alignment (e.g. open-clip from a local weights file): off unless
    ``enabled`` and ``weights_path`` are set; brandloop never downloads weights."""

    weight: float = Field(default=0.0, ge=0)
    threshold: float = Field(default=0.2, ge=0, le=1)
    enabled: bool = False
    architecture: str = "ViT-B-32"
    weights_path: Path | None = None


#: Images with more pixels than this are refused before decoding (decompression bombs).
DEFAULT_MAX_PIXELS: Final = 40_000_000


class ScoringPolicy(BaseModel):
    """Weights and thresholds for every pixel signal, plus the composite bar for acceptance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    palette: PalettePolicy
    sharpness: SharpnessPolicy
    exposure: ExposurePolicy
    contrast: ContrastPolicy = Field(default_factory=lambda: ContrastPolicy(weight=0.0))
    colourfulness: ColourfulnessPolicy = Field(
        default_factory=lambda: ColourfulnessPolicy(weight=0.0)
    )
    format: FormatPolicy = Field(default_factory=lambda: FormatPolicy(weight=0.0))
    duplicate: DuplicatePolicy = Field(default_factory=lambda: DuplicatePolicy(weight=0.0))
    similarity: SimilarityPolicy = Field(default_factory=lambda: SimilarityPolicy(weight=0.0))
    alignment: AlignmentPolicy = Field(default_factory=lambda: AlignmentPolicy(weight=0.0))
    composite_threshold: float = Field(ge=0, le=1)
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=4096)

    @model_validator(mode="after")
    def _some_weight(self) -> ScoringPolicy:
        if sum(self.weights().values()) <= 0:
            raise ValueError("at least one signal needs a positive weight")
        return self

    def weights(self) -> dict[str, float]:
        """Signal name → weight, keyed like ``Scores.signals``.

        A signal missing from this policy's file counts 0 (so an older three-signal policy
        scores as it did); the packaged defaults weigh them all.
        """
        policies: dict[str, SignalPolicy] = {name: getattr(self, name) for name in SIGNAL_NAMES}
        return {name: policy.weight for name, policy in policies.items()}

    def composite(self, signals: Mapping[str, Signal]) -> float:
        """Weighted mean of the signals present; signals with no weight here do not count.

        Signals that could not be computed (no brand memory yet, alignment off) are simply
        absent, and the weights of the others are renormalised.
        """
        weights = self.weights()
        total = sum(weights.get(name, 0.0) for name in signals)
        if total <= 0:
            return 0.0
        return sum(weights.get(name, 0.0) * sig.value for name, sig in signals.items()) / total

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
        data = read_policy_yaml(source, what="scoring policy")
    except OSError as exc:
        raise BadInputError(f"cannot read scoring policy {source}: {exc}") from exc
    try:
        return ScoringPolicy.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"scoring policy {source}: {describe_validation_error(exc)}") from None
