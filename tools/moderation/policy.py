"""The moderation policy: text limits, the profanity threshold, the look-alike senses and
semantic thresholds, image label thresholds, the hosted layer's thresholds, which PII kinds to
redact and what to do on prompt injection. Defaults in ``policies/moderation.yaml``; a brand's
``moderation:`` section in ``policies/brands/<slug>.yaml`` is merged over them
(:func:`load_brand_moderation_policy`).

No key relaxes the minors line: ``sexual/minors`` may not be given a threshold anywhere, and
the senses a brand turns on or off never change what the minors line reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.domain import MAX_BRIEF_CHARS
from brandloop.errors import BadInputError
from brandloop.once import once
from brandloop.policies.brand_policy import PACKAGED_BRAND_POLICIES, brand_policy_file, deep_merge
from brandloop.policy_files import (
    describe_validation_error,
    one_line,
    parse_yaml,
    read_policy_yaml,
    yaml_error,
)
from brandloop.tools.moderation.categories import (
    CONTENT_CATEGORIES,
    SEMANTIC_CATEGORIES,
    SEXUAL_MINORS,
)
from brandloop.tools.moderation.pii import ALL_KINDS, PiiKind

NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_minors_key(thresholds: dict[str, float], where: str) -> None:
    if SEXUAL_MINORS in thresholds:
        raise ValueError(
            f"{where}: '{SEXUAL_MINORS}' cannot be given a threshold; the minors line is "
            "absolute and no policy changes it"
        )
    for category, value in thresholds.items():
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{where}: threshold for {category} must be in (0, 1]")


class TextPolicy(_Strict):
    max_chars: int = Field(default=MAX_BRIEF_CHARS, ge=1, le=1_000_000)
    profanity_threshold: float = Field(default=0.95, gt=0, le=1)
    #: Look-alike senses turned on or off ("nude:colour": false blocks "nude lipstick").
    senses: dict[str, bool] = Field(default_factory=dict)
    #: Semantic classifier thresholds per category, over the calibrated ones.
    semantic_thresholds: dict[str, float] = Field(default_factory=dict)

    def model_post_init(self, _context: object) -> None:
        from brandloop.tools.moderation.lexicon import default_lexicon

        known = default_lexicon().sense_names
        unknown = sorted(set(self.senses) - known)
        if unknown:
            raise ValueError(f"unknown senses {unknown}; known: {sorted(known)}")
        _no_minors_key(self.semantic_thresholds, "text.semantic_thresholds")
        bad = sorted(set(self.semantic_thresholds) - set(SEMANTIC_CATEGORIES))
        if bad:
            raise ValueError(
                f"text.semantic_thresholds: unknown categories {bad}; known: "
                f"{[c for c in SEMANTIC_CATEGORIES if c != SEXUAL_MINORS]}"
            )


class HostedPolicy(_Strict):
    """How the hosted moderation service's answer is read (when one is configured)."""

    #: Score at which a category blocks; a category not listed blocks when the service
    #: flags it. ``sexual/minors`` always blocks when flagged or scored at 0.5 or more.
    thresholds: dict[str, float] = Field(default_factory=dict)
    #: When the service cannot answer: "continue" (the offline layers' verdict stands, the
    #: run records that the hosted layer was unavailable) or "refuse".
    on_error: Literal["continue", "refuse"] = "continue"

    def model_post_init(self, _context: object) -> None:
        _no_minors_key(self.thresholds, "hosted.thresholds")
        bad = sorted(set(self.thresholds) - set(CONTENT_CATEGORIES))
        if bad:
            raise ValueError(f"hosted.thresholds: unknown categories {bad}")


class ImagePolicy(_Strict):
    max_pixels: int = Field(default=40_000_000, ge=4096)
    min_score: float = Field(default=0.2, ge=0, le=1)
    block: dict[str, float] = Field(default_factory=dict)

    def model_post_init(self, _context: object) -> None:
        unknown = sorted(set(self.block) - set(NUDENET_LABELS))
        if unknown:
            raise ValueError(f"unknown NudeNet labels {unknown}; known: {list(NUDENET_LABELS)}")
        for label, threshold in self.block.items():
            if not 0.0 <= threshold <= 1.0:
                raise ValueError(f"threshold for {label} must be in [0, 1]")


class PiiPolicy(_Strict):
    redact: list[PiiKind] = Field(default_factory=lambda: list(ALL_KINDS))


class InjectionPolicy(_Strict):
    action: Literal["flag", "refuse"] = "flag"


class ModerationPolicy(_Strict):
    version: int = 1
    text: TextPolicy = Field(default_factory=TextPolicy)
    image: ImagePolicy = Field(default_factory=ImagePolicy)
    pii: PiiPolicy = Field(default_factory=PiiPolicy)
    injection: InjectionPolicy = Field(default_factory=InjectionPolicy)
    hosted: HostedPolicy = Field(default_factory=HostedPolicy)


M = TypeVar("M", bound=BaseModel)


def load_policy_file(model: type[M], path: Path | None, *, packaged: str, what: str) -> M:
    """``path`` (the packaged ``policies/<packaged>`` when None) read and checked as ``model``.

    Raises :class:`BadInputError` naming the file (as ``what``) when it is unreadable or invalid.
    """
    if path is None:
        source = f"policies/{packaged}"
        package = resources.files("brandloop.policies")
        text = package.joinpath(packaged).read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise yaml_error(f"{what} {source}", exc) from None
        except OSError as exc:
            raise BadInputError(f"cannot read {what} {source}: {exc}") from exc
    data = parse_yaml(text, source=f"{what} {source}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(
            f"{what} {source} is invalid: {describe_validation_error(exc)}"
        ) from None
    except ValueError as exc:
        raise BadInputError(f"{what} {source} is invalid: {one_line(str(exc))}") from None


def load_moderation_policy(path: Path | None = None) -> ModerationPolicy:
    """Read a moderation policy (the packaged ``policies/moderation.yaml`` when None).

    Raises :class:`BadInputError` naming the file when it is unreadable or invalid.
    """
    return load_policy_file(
        ModerationPolicy, path, packaged="moderation.yaml", what="moderation policy"
    )


@once
def default_moderation_policy() -> ModerationPolicy:
    return load_moderation_policy()


def _packaged_defaults() -> dict[str, object]:
    path = Path(str(resources.files("brandloop.policies").joinpath("moderation.yaml")))
    data = read_policy_yaml(path)
    return dict(data) if isinstance(data, dict) else {}


def load_brand_moderation_policy(slug: str, *, search: Sequence[Path] = ()) -> ModerationPolicy:
    """One brand's moderation policy: the packaged defaults with the ``moderation:`` section
    of its policy file (``<slug>.yaml`` in ``search``, then the packaged
    ``policies/brands``) merged in key by key. Raises :class:`BadInputError` naming the file
    when that section is invalid, e.g. when it tries to give ``sexual/minors`` a threshold.
    """
    defaults = _packaged_defaults()
    path = brand_policy_file(slug, [*search, PACKAGED_BRAND_POLICIES]) if slug else None
    if path is None:
        return default_moderation_policy()
    data = read_policy_yaml(path, what="brand policy") or {}
    section = data.get("moderation", {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise BadInputError(f"brand policy {path}: 'moderation' must be a mapping")
    if not section:
        return default_moderation_policy()
    try:
        return ModerationPolicy.model_validate(deep_merge(defaults, section))
    except ValidationError as exc:
        raise BadInputError(
            f"brand policy {path}: {describe_validation_error(exc, within='moderation')}"
        ) from None
    except ValueError as exc:
        raise BadInputError(f"brand policy {path}: moderation: {one_line(str(exc))}") from None
