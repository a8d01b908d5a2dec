"""The moderation policy: text limits, the profanity threshold, image label thresholds, which
PII kinds to redact and what to do on prompt injection. Defaults in ``policies/moderation.yaml``.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.domain import MAX_BRIEF_CHARS
from brandloop.errors import BadInputError
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


class TextPolicy(_Strict):
    max_chars: int = Field(default=MAX_BRIEF_CHARS, ge=1, le=1_000_000)
    profanity_threshold: float = Field(default=0.95, gt=0, le=1)


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
        except OSError as exc:
            raise BadInputError(f"cannot read {what} {source}: {exc}") from exc
    try:
        return model.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError, ValueError) as exc:
        raise BadInputError(f"{what} {source} is invalid: {exc}") from exc


def load_moderation_policy(path: Path | None = None) -> ModerationPolicy:
    """Read a moderation policy (the packaged ``policies/moderation.yaml`` when None).

    Raises :class:`BadInputError` naming the file when it is unreadable or invalid.
    """
    return load_policy_file(
        ModerationPolicy, path, packaged="moderation.yaml", what="moderation policy"
    )


@functools.cache
def default_moderation_policy() -> ModerationPolicy:
    return load_moderation_policy()
