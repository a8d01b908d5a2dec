"""Labelled exemplar files (``exemplars/train.yaml``, the demoted test splits
``exemplars/dev*.yaml``, ``exemplars/validation.yaml`` and the held-out
``benchmarks/data/text_moderation_test.yaml``): one shape, one reader.

A file has ``harmful`` (category → lines), ``benign`` (domain → lines) and, under ``benign``,
``look_alikes`` (sense → lines). A ``sexual/minors`` line is also a ``sexual`` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.errors import BadInputError
from brandloop.tools.moderation.categories import SEMANTIC_CATEGORIES, SEXUAL, SEXUAL_MINORS

EXEMPLARS_DIR: Final = Path(__file__).with_name("exemplars")
FORMAT: Final = "brandloop.moderation-exemplars/1"


@dataclass(frozen=True)
class Exemplar:
    """One line and what it is: its categories (empty: benign) and its group."""

    text: str
    labels: frozenset[str]
    group: str

    @property
    def benign(self) -> bool:
        return not self.labels


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str
    split: str
    harmful: dict[str, list[str]] = Field(default_factory=dict)
    benign: dict[str, list[str] | dict[str, list[str]]] = Field(default_factory=dict)


def training_files() -> list[Path]:
    """The files that fit the classifier's weights: the training split and every earlier test
    split, each demoted to development data after it was measured (``dev.yaml``, ``dev2.yaml``
    … ``dev6.yaml``)."""
    return [EXEMPLARS_DIR / "train.yaml", *sorted(EXEMPLARS_DIR.glob("dev*.yaml"))]


def load_exemplars(path: Path) -> list[Exemplar]:
    """Every line of an exemplar file with its labels; bad files are a :class:`BadInputError`."""
    try:
        data = _File.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise BadInputError(f"exemplar file {path} is invalid: {exc}") from exc
    if data.format != FORMAT:
        raise BadInputError(f"{path}: format must be {FORMAT}")
    unknown = sorted(set(data.harmful) - set(SEMANTIC_CATEGORIES))
    if unknown:
        raise BadInputError(f"{path}: unknown categories {unknown}")
    out: list[Exemplar] = []
    for category, lines in data.harmful.items():
        labels = frozenset({category, SEXUAL} if category == SEXUAL_MINORS else {category})
        out += [Exemplar(line, labels, f"harmful:{category}") for line in lines]
    for domain, entries in data.benign.items():
        if isinstance(entries, dict):
            for sense, sense_lines in entries.items():
                out += [Exemplar(line, frozenset(), f"{domain}:{sense}") for line in sense_lines]
        else:
            out += [Exemplar(line, frozenset(), f"benign:{domain}") for line in entries]
    texts = [e.text for e in out]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    if repeated:
        raise BadInputError(f"{path}: lines listed twice: {repeated[:3]}")
    return out
