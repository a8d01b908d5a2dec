"""The semantic layer of text moderation: a classifier over sentence embeddings that catches
what no term list holds ("wearing nothing at all"). See ``PROVENANCE.md`` in this folder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ChunkScores:
    """Per-category probabilities for one chunk (``start``/``end`` index the text scored)."""

    start: int
    end: int
    scores: Mapping[str, float]


@runtime_checkable
class SemanticLayer(Protocol):
    """What the text gate needs from a classifier: chunk scores and calibrated thresholds."""

    categories: tuple[str, ...]
    thresholds: Mapping[str, float]
    #: A sexual score at or above this, with a minor referenced, is ``sexual/minors``.
    minors_sexual_threshold: float

    def score(self, text: str) -> list[ChunkScores]: ...


def default_semantic_layer() -> SemanticLayer | None:
    """The shipped classifier; none is shipped yet, so the layer is off."""
    return None


__all__ = ["ChunkScores", "SemanticLayer", "default_semantic_layer"]
