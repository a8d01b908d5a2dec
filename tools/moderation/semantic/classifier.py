"""Scoring text with the shipped classifier: chunk, embed, one sigmoid per category.

The text gate hands over the normalised text with benign look-alikes already removed (so
"nude lipstick" is read as "lipstick"). It is read in two views, embedded in one batch: chunks
of whole sentences, at most ``CHUNK_WORDS`` words each, and the clauses of the text (split at
commas, colons, semicolons, pipes, brackets and dashes; ``clause_spans``), so a request buried
after a benign frame ("Jacuzzi party poster: everyone in the water with their swimwear off")
is scored on its own. Every head scores every span; the gate keeps each category's best span,
which is reported with the finding. The thresholds are calibrated on the same views.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from brandloop.errors import BrandloopError
from brandloop.once import once

CLASSIFIER_PATH: Final = Path(__file__).with_name("classifier.json")
#: The sha256 of ``classifier.json`` as ``scripts/train_text_classifier.py`` wrote it.
CLASSIFIER_SHA256: Final = "791a9065cc02d8411d59b486dfdb264f6cc09d5c53f6471fb323270bb6bd3cf7"
FORMAT: Final = "brandloop.text-classifier/1"
#: A chunk holds whole sentences up to this many words (MiniLM reads 256 word pieces).
CHUNK_WORDS: Final = 48
#: Chunks scored per text at most: a 4 000-character brief is about 12 of them.
MAX_CHUNKS: Final = 24
#: Clauses scored per text at most, besides the chunks (the first ones of a long brief).
MAX_CLAUSES: Final = 24
#: A clause shorter than this many words is not scored on its own ("frontal", "4K").
CLAUSE_MIN_WORDS: Final = 3
#: A clause opening with one of these rules something out ("no people in revealing clothing",
#: "without logos"): read only in its sentence, never on its own.
NEGATIONS: Final = frozenset({"no", "not", "without", "avoid", "avoiding", "never", "excluding"})

Embedder = Callable[[list[str]], npt.NDArray[np.float32]]

_SENTENCE: Final = re.compile(r"[^.!?;\n]+[.!?;\n]*")
_WORD: Final = re.compile(r"\S+")
#: A clause: text between sentence ends, commas, colons, semicolons, pipes, brackets and
#: dashes set off by spaces (not the hyphen inside "see-through").
_CLAUSE: Final = re.compile(r"(?:[^,:;|.!?\n()\[\]–—-]|(?<=\S)-(?=\S))+")


class ClassifierFileError(BrandloopError):
    """The classifier file is missing, altered or not for the embedding model in use."""


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
    #: The ``sexual/minors`` head at or above this, with a minor referenced, is
    #: ``sexual/minors`` whatever the sexual head says (``None``: no such rule).
    minors_head_threshold: float | None
    #: A sexual score at or above this blocks on its own; between the sexual threshold and
    #: this one it blocks only with lexical support (a suggestive term, a minor referenced or
    #: a child cue). ``None``: the sexual threshold alone decides.
    sexual_alone_threshold: float | None

    def score(self, text: str) -> list[ChunkScores]: ...


def chunk_spans(text: str, *, words: int = CHUNK_WORDS) -> list[tuple[int, int]]:
    """Spans of ``text`` holding whole sentences, up to ``words`` words each.

    A sentence longer than ``words`` is cut at word boundaries. The whole text is one chunk
    when it is short enough, as nearly every brief is.
    """
    chunks: list[tuple[int, int]] = []
    start: int | None = None
    end = 0
    count = 0
    for sentence in _SENTENCE.finditer(text):
        tokens = list(_WORD.finditer(sentence.group()))
        if not tokens:
            continue
        offset = sentence.start()
        if start is not None and count + len(tokens) > words:
            chunks.append((start, end))
            start, count = None, 0
        for index in range(0, len(tokens), words):
            piece = tokens[index : index + words]
            piece_start, piece_end = offset + piece[0].start(), offset + piece[-1].end()
            if start is None:
                start = piece_start
            elif count + len(piece) > words:
                chunks.append((start, end))
                start, count = piece_start, 0
            end, count = piece_end, count + len(piece)
    if start is not None:
        chunks.append((start, end))
    return chunks


def clause_spans(
    text: str, *, min_words: int = CLAUSE_MIN_WORDS, negated: bool = False
) -> list[tuple[int, int]]:
    """Spans of the clauses of ``text`` with at least ``min_words`` words, trimmed of spaces,
    without those opening with a negation (``NEGATIONS``) unless ``negated``.

    None when the text is a single clause: its chunk already reads it whole.
    """
    spans: list[tuple[int, int] | None] = []
    for match in _CLAUSE.finditer(text):
        tokens = list(_WORD.finditer(match.group()))
        if len(tokens) < min_words:
            continue
        if not negated and tokens[0].group().lower() in NEGATIONS:
            spans.append(None)  # counted as a clause, not scored on its own
            continue
        spans.append((match.start() + tokens[0].start(), match.start() + tokens[-1].end()))
    return [span for span in spans if span is not None] if len(spans) > 1 else []


def views(text: str, *, negated: bool = False) -> list[tuple[int, int]]:
    """The spans the classifier scores: sentence chunks, then clauses not already a chunk
    (``negated``: also the clauses that rule something out, as training calibrates on)."""
    chunks = chunk_spans(text)[:MAX_CHUNKS]
    seen = set(chunks)
    clauses = [s for s in clause_spans(text, negated=negated) if s not in seen][:MAX_CLAUSES]
    return chunks + clauses


class EmbeddingClassifier:
    """Logistic-regression heads over sentence embeddings; see the module docstring."""

    def __init__(
        self,
        *,
        categories: tuple[str, ...],
        weights: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32],
        thresholds: Mapping[str, float],
        minors_sexual_threshold: float,
        embed: Embedder,
        minors_head_threshold: float | None = None,
        sexual_alone_threshold: float | None = None,
    ) -> None:
        if weights.shape != (len(categories), weights.shape[1]) or bias.shape != (len(categories),):
            raise ClassifierFileError("classifier weights do not match its categories")
        missing = set(categories) - set(thresholds)
        if missing:
            raise ClassifierFileError(f"classifier has no threshold for {sorted(missing)}")
        self.categories: tuple[str, ...] = categories
        self.thresholds: Mapping[str, float] = dict(thresholds)
        self.minors_sexual_threshold: float = minors_sexual_threshold
        self.minors_head_threshold: float | None = minors_head_threshold
        self.sexual_alone_threshold: float | None = sexual_alone_threshold
        self._weights = weights
        self._bias = bias
        self._embed = embed

    def probabilities(self, texts: list[str]) -> npt.NDArray[np.float64]:
        """``(len(texts), len(categories))`` probabilities, for training checks and scoring."""
        if not texts:
            return np.zeros((0, len(self.categories)))
        vectors = self._embed(texts).astype(np.float64)
        logits = vectors @ self._weights.T.astype(np.float64) + self._bias.astype(np.float64)
        result: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits))
        return result

    def score(self, text: str) -> list[ChunkScores]:
        spans = views(text)
        if not spans:
            return []
        probabilities = self.probabilities([text[s:e] for s, e in spans])
        return [
            ChunkScores(
                start=start,
                end=end,
                scores={c: float(p) for c, p in zip(self.categories, row, strict=True)},
            )
            for (start, end), row in zip(spans, probabilities, strict=True)
        ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_classifier(
    path: Path = CLASSIFIER_PATH,
    *,
    sha256: str | None = CLASSIFIER_SHA256,
    embed: Embedder | None = None,
) -> EmbeddingClassifier:
    """Read a classifier file, checked against ``sha256`` (``None``: not checked, for the
    training script) and against the embedding model it was trained on."""
    from brandloop.memory.embeddings import MODEL_SHA256, TOKENIZER_SHA256

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ClassifierFileError(f"cannot read the text classifier {path}: {exc}") from exc
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise ClassifierFileError(
            f"text classifier {path} is not the pinned file (sha256 {_sha256(path)}); "
            "retrain with scripts/train_text_classifier.py and pin the new digest"
        )
    data: dict[str, Any] = json.loads(raw)
    if data.get("format") != FORMAT:
        raise ClassifierFileError(f"{path} is not a {FORMAT} file")
    if (data.get("embedding_model_sha256"), data.get("tokenizer_sha256")) != (
        MODEL_SHA256,
        TOKENIZER_SHA256,
    ):
        raise ClassifierFileError(f"{path} was trained on another embedding model")
    if embed is None:
        embed = _minilm()
    thresholds = {c: float(t) for c, t in data["thresholds"].items()}
    head = data.get("minors_head_threshold")
    alone = data.get("sexual_alone_threshold")
    optional = [float(t) for t in (head, alone) if t is not None]
    checked = [*thresholds.values(), *optional]
    if not all(0.0 < t <= 1.0 and math.isfinite(t) for t in checked):
        raise ClassifierFileError(f"{path} has a threshold outside (0, 1]")
    return EmbeddingClassifier(
        categories=tuple(data["categories"]),
        weights=np.asarray(data["weights"], dtype=np.float32),
        bias=np.asarray(data["bias"], dtype=np.float32),
        thresholds=thresholds,
        minors_sexual_threshold=float(data["minors_sexual_threshold"]),
        minors_head_threshold=(
            None
            if data.get("minors_head_threshold") is None
            else float(data["minors_head_threshold"])
        ),
        sexual_alone_threshold=None if alone is None else float(alone),
        embed=embed,
    )


def _minilm() -> Embedder:
    from brandloop.memory.embeddings import MiniLMEmbeddingFunction

    return MiniLMEmbeddingFunction().embed


@once
def default_semantic_layer() -> EmbeddingClassifier:
    """The shipped classifier, loaded once per process."""
    return load_classifier()
