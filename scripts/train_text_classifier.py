"""Train the semantic text classifier and calibrate its thresholds; write classifier.json.

Reads ``tools/moderation/semantic/exemplars/train.yaml`` and ``dev*.yaml`` (the earlier test
splits, each demoted after it was measured; all fit the weights) and ``validation.yaml``
(chooses C and the thresholds). The held-out test split
(``benchmarks/data/text_moderation_test.yaml``) is never read here.

Each training line is used as written and wrapped the way briefs wrap a subject
(``WRAPPINGS``); the clauses of benign lines are fitted as benign rows too, so a fragment out
of its context is not read as a request. Every exemplar goes through what the text gate does
before the classifier sees a text: PII redaction, normalisation, look-alikes in a benign sense
removed. Each head is a scikit-learn logistic regression (balanced class weights) over the
384-d MiniLM embeddings, one-vs-rest; a ``sexual/minors`` line is positive for ``sexual`` too;
C is chosen per head by average precision on the validation split.

Validation lines and the benign lines thresholds are calibrated on are scored the way the
text gate scores a text: every view of it (sentence chunks and clauses,
``semantic.classifier.views``), keeping each head's highest score. Training reads the clauses
that open with a negation too ("no people in revealing clothing"), which the gate does not
score on their own: calibration sees a superset of the gate's views.

Thresholds, per head, from benign lines the head was not fitted on: the validation split's
benign lines plus out-of-fold scores of the training split's benign lines (5 folds, a line
and its wrappings always in the same fold). The threshold is the lowest at which at most
``--benign-rate`` of those lines (0.5 % by default) reach it, floored at 0.5; for the
``sexual`` head, which blocks on its own, ``--sexual-benign-rate`` (1 % by default: on split
v3, held out from the round-5 weights while they were chosen, 0.5 % put the threshold at 0.86
with no false block on 212 briefs and 0.75 recall of adult lines for the classifier alone;
1 % put it at 0.80 with 2 false blocks and 0.85 recall). The minors rule's sexual threshold:
the lowest at which no such benign line that mentions a minor (or carries a child cue,
"pigtails", "a lunchbox") reaches it, floored at 0.3 and capped at the sexual threshold. The
minors head's rule (a minor referenced and the ``sexual/minors`` head at or above it, whatever
the sexual head says): the lowest threshold no such benign line reaches, floored at 0.5.
The sexual head's *alone* threshold (round 7): a sexual score at or above it blocks by
itself; between the sexual threshold and it, only with lexical support (a suggestive term that
says intent, not a clothing one such as "lingerie"; a minor referenced; a child cue). It is the lowest threshold at which at most
``--sexual-alone-benign-rate`` (0.25 % by default) of the calibration benign lines *without*
such support reach it, never below the sexual threshold. On split v5 (round 6, held out), 7
of the 8 briefs the sexual head blocked by mistake had no such support.

Deterministic: the same files give the same weights. Prints the digest to pin in
``tools/moderation/semantic/classifier.py`` (``CLASSIFIER_SHA256``) and PROVENANCE.md.

Usage: .venv/bin/python scripts/train_text_classifier.py [--benign-rate 0.005]
       [--sexual-benign-rate 0.01] [--sexual-alone-benign-rate 0.0025]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brandloop.memory.embeddings import (  # noqa: E402
    MODEL_SHA256,
    TOKENIZER_SHA256,
    MiniLMEmbeddingFunction,
)
from brandloop.tools.moderation.categories import (  # noqa: E402
    SEMANTIC_CATEGORIES,
    SEXUAL,
    SEXUAL_MINORS,
)
from brandloop.tools.moderation.lexical import scan  # noqa: E402
from brandloop.tools.moderation.lexicon import default_lexicon  # noqa: E402
from brandloop.tools.moderation.semantic.classifier import (  # noqa: E402
    CLASSIFIER_PATH,
    FORMAT,
    clause_spans,
    views,
)
from brandloop.tools.moderation.semantic.exemplars import (  # noqa: E402
    EXEMPLARS_DIR,
    Exemplar,
    load_exemplars,
    training_files,
)

#: Training lines are also seen wrapped as a brief would wrap them, so a head learns the
#: content and not the bare-sentence style of the exemplars. Validation lines are not wrapped.
WRAPPINGS = (
    "{}",
    "Hero banner for the new campaign: {}",
    "{}, shot on film, soft natural light",
    "Social post for our brand - {}",
)
FOLDS = 5
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
THRESHOLD_FLOOR = 0.5
MINORS_FLOOR = 0.3


def prepared(
    exemplars: list[Exemplar],
) -> tuple[list[str], list[bool], list[bool], list[bool]]:
    """The texts the classifier would see, whether each mentions a minor, whether it
    mentions a minor or carries a child cue, and whether it has lexical support for a sexual
    score below the "alone" threshold (a suggestive term that says intent, a minor or a child
    cue)."""
    lexicon = default_lexicon()
    texts, minors, cued, supported = [], [], [], []
    for exemplar in exemplars:
        result = scan(exemplar.text, lexicon)
        texts.append(result.resolved)
        minors.append(bool(result.minor_references))
        cued.append(bool(result.minor_references or result.child_cues))
        supported.append(bool(result.suggestive or result.minor_references or result.child_cues))
    return texts, minors, cued, supported


class Views:
    """Every view of some texts (``views``), embedded once; scores are the max per text."""

    def __init__(self, texts: list[str], embed: MiniLMEmbeddingFunction) -> None:
        spans = [views(text, negated=True) or [(0, len(text))] for text in texts]
        pieces = [
            text[s:e] for text, text_spans in zip(texts, spans, strict=True) for s, e in text_spans
        ]
        self.x = embed.embed(pieces).astype(np.float64)
        self.owner = np.repeat(np.arange(len(texts)), [len(v) for v in spans])
        self.starts = np.concatenate([[0], np.cumsum([len(v) for v in spans])[:-1]]).astype(int)

    def max_scores(self, model: Any) -> npt.NDArray[np.float64]:
        probabilities = model.predict_proba(self.x)[:, 1]
        result: npt.NDArray[np.float64] = np.maximum.reduceat(probabilities, self.starts)
        return result


def average_precision(scores: npt.NDArray[np.float64], labels: npt.NDArray[np.bool_]) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    if not hits.any():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def threshold_for(benign_scores: npt.NDArray[np.float64], allowed_hits: int, floor: float) -> float:
    """The lowest threshold at which at most ``allowed_hits`` benign scores reach it."""
    ordered = np.sort(benign_scores)[::-1]
    if len(ordered) <= allowed_hits:
        return floor
    above = float(ordered[allowed_hits])  # the first benign score that must stay below
    return float(max(floor, min(0.999, np.nextafter(above, 1.0) + 1e-4)))


def fit(x: npt.NDArray[np.float64], y: npt.NDArray[np.bool_], c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=5000, solver="lbfgs").fit(x, y)


def out_of_fold(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.bool_],
    lines: npt.NDArray[np.int64],
    c: float,
    scored: Views,
    scored_lines: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The score of each of ``scored`` (the views of training lines ``scored_lines``) from a
    model fitted without that line or any of its wrappings."""
    scores = np.zeros(len(scored_lines))
    folds = lines % FOLDS
    for fold in range(FOLDS):
        held = folds == fold
        model = fit(x[~held], y[~held], c)
        in_fold = scored_lines % FOLDS == fold
        scores[in_fold] = scored.max_scores(model)[in_fold]
    return scores


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--benign-rate", type=float, default=0.005)
    parser.add_argument("--sexual-benign-rate", type=float, default=0.01)
    parser.add_argument("--sexual-alone-benign-rate", type=float, default=0.0025)
    parser.add_argument("--out", type=Path, default=CLASSIFIER_PATH)
    args = parser.parse_args()

    originals = [exemplar for path in training_files() for exemplar in load_exemplars(path)]
    train = [
        Exemplar(wrapping.format(e.text), e.labels, e.group)
        for e in originals
        for wrapping in WRAPPINGS
    ]
    lines = np.repeat(np.arange(len(originals)), len(WRAPPINGS))
    unwrapped = np.tile(np.arange(len(WRAPPINGS)) == 0, len(originals))
    validation = load_exemplars(EXEMPLARS_DIR / "validation.yaml")
    embed = MiniLMEmbeddingFunction()
    train_texts, _, train_cued, train_supported = prepared(train)
    val_texts, val_minors, val_cued, val_supported = prepared(validation)
    x_val = Views(val_texts, embed)
    val_benign = np.array([e.benign for e in validation])
    train_benign = np.array([e.benign for e in train]) & unwrapped
    # the training split's benign lines, as written, in every view the gate scores
    benign_rows = np.flatnonzero(train_benign)
    benign_views = Views([train_texts[i] for i in benign_rows], embed)
    # the clauses of benign lines are benign too: fitted as such, so a fragment out of its
    # context ("the more of the image it gets") is not read as a request
    clause_rows = [
        (i, train_texts[i][start:end])
        for i in benign_rows
        for start, end in clause_spans(train_texts[i], negated=True)
    ]
    x_train = embed.embed(train_texts + [text for _, text in clause_rows]).astype(np.float64)
    fit_labels = [e.labels for e in train] + [frozenset[str]()] * len(clause_rows)
    lines = np.concatenate([lines, lines[[i for i, _ in clause_rows]]]).astype(np.int64)
    calibration_size = int(val_benign.sum() + train_benign.sum())
    allowed_hits = {
        category: int(
            (args.sexual_benign_rate if category == SEXUAL else args.benign_rate) * calibration_size
        )
        for category in SEMANTIC_CATEGORIES
    }

    weights, bias, thresholds, report = [], [], {}, {}
    val_scores: dict[str, npt.NDArray[np.float64]] = {}
    oof_scores: dict[str, npt.NDArray[np.float64]] = {}
    for category in SEMANTIC_CATEGORIES:
        y_train = np.array([category in labels for labels in fit_labels])
        y_val = np.array([category in e.labels for e in validation])
        best: tuple[float, float, Any] | None = None
        for c in C_GRID:
            model = fit(x_train, y_train, c)
            ap = average_precision(x_val.max_scores(model), y_val)
            if best is None or ap > best[0] + 1e-9:
                best = (ap, c, model)
        assert best is not None
        ap, c, model = best
        scores = x_val.max_scores(model)
        oof = out_of_fold(x_train, y_train, lines, c, benign_views, lines[benign_rows])
        val_scores[category] = scores
        oof_scores[category] = oof
        benign_scores = np.concatenate([scores[val_benign], oof])
        threshold = threshold_for(benign_scores, allowed_hits[category], THRESHOLD_FLOOR)
        thresholds[category] = round(threshold, 4)
        positives = scores[y_val]
        report[category] = {
            "C": c,
            "validation_average_precision": round(ap, 4),
            "threshold": thresholds[category],
            "validation_recall_at_threshold": round(float((positives >= threshold).mean()), 4),
            "validation_benign_over_threshold": int((scores[val_benign] >= threshold).sum()),
            "calibration_benign_over_threshold": int((benign_scores >= threshold).sum()),
            "train_positives": int(y_train.sum()),
            "validation_positives": int(y_val.sum()),
        }
        weights.append([round(float(w), 6) for w in model.coef_[0]])
        bias.append(round(float(model.intercept_[0]), 6))

    benign_with_minor = val_benign & np.array(val_minors)
    benign_with_cue = val_benign & np.array(val_cued)
    train_cued_rows = np.array([train_cued[i] for i in benign_rows], dtype=bool)
    train_minor_rows = np.array(
        [bool(scan(train[i].text, default_lexicon()).minor_references) for i in benign_rows],
        dtype=bool,
    )
    minors_threshold = threshold_for(
        np.concatenate([val_scores[SEXUAL][benign_with_cue], oof_scores[SEXUAL][train_cued_rows]]),
        0,
        MINORS_FLOOR,
    )
    minors_threshold = round(min(minors_threshold, thresholds[SEXUAL]), 4)
    minors_head_threshold = round(
        threshold_for(
            np.concatenate(
                [
                    val_scores[SEXUAL_MINORS][benign_with_minor],
                    oof_scores[SEXUAL_MINORS][train_minor_rows],
                ]
            ),
            0,
            THRESHOLD_FLOOR,
        ),
        4,
    )
    # the sexual head alone (no suggestive term, minor or child cue to support it): the lowest
    # threshold at which at most --sexual-alone-benign-rate of the calibration lines without
    # such support reach it, never below the sexual threshold
    train_supported_rows = np.array([train_supported[i] for i in benign_rows], dtype=bool)
    val_unsupported = val_benign & ~np.array(val_supported)
    unsupported_scores = np.concatenate(
        [val_scores[SEXUAL][val_unsupported], oof_scores[SEXUAL][~train_supported_rows]]
    )
    sexual_alone_threshold = round(
        threshold_for(
            unsupported_scores,
            int(args.sexual_alone_benign_rate * len(unsupported_scores)),
            thresholds[SEXUAL],
        ),
        4,
    )
    sexual_positives = np.array([SEXUAL in e.labels for e in validation])
    blocked = (val_scores[SEXUAL] >= sexual_alone_threshold) | (
        (val_scores[SEXUAL] >= thresholds[SEXUAL]) & np.array(val_supported)
    )
    report["sexual_alone_rule"] = {
        "sexual_alone_threshold": sexual_alone_threshold,
        "calibration_benign_lines_without_support": len(unsupported_scores),
        "calibration_benign_without_support_over_it": int(
            (unsupported_scores >= sexual_alone_threshold).sum()
        ),
        "validation_sexual_recall_with_the_rule": round(float(blocked[sexual_positives].mean()), 4),
        "validation_sexual_recall_without_it": round(
            float((val_scores[SEXUAL] >= thresholds[SEXUAL])[sexual_positives].mean()), 4
        ),
        "validation_benign_blocked_with_the_rule": int(blocked[val_benign].sum()),
        "validation_benign_lines": int(val_benign.sum()),
    }
    minors_positives = np.array([SEXUAL_MINORS in e.labels for e in validation])
    caught = (val_scores[SEXUAL] >= minors_threshold) & np.array(val_cued)
    caught_by_head = (val_scores[SEXUAL_MINORS] >= minors_head_threshold) & np.array(val_minors)
    report["minors_rule"] = {
        "sexual_threshold": minors_threshold,
        "minors_head_threshold": minors_head_threshold,
        "calibration_benign_lines_mentioning_a_minor": int(
            benign_with_minor.sum() + train_minor_rows.sum()
        ),
        "calibration_benign_lines_with_a_minor_or_child_cue": int(
            benign_with_cue.sum() + train_cued_rows.sum()
        ),
        "validation_minors_recall_by_this_rule": round(float(caught[minors_positives].mean()), 4),
        "validation_minors_recall_by_the_head_rule": round(
            float(caught_by_head[minors_positives].mean()), 4
        ),
        "validation_minors_recall_by_either": round(
            float((caught | caught_by_head)[minors_positives].mean()), 4
        ),
    }
    document = {
        "format": FORMAT,
        "embedding_model_sha256": MODEL_SHA256,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "categories": list(SEMANTIC_CATEGORIES),
        "thresholds": thresholds,
        "minors_sexual_threshold": minors_threshold,
        "minors_head_threshold": minors_head_threshold,
        "sexual_alone_threshold": sexual_alone_threshold,
        "training": {
            "train_lines": len(train),
            "benign_clause_rows": len(clause_rows),
            "validation_lines": len(validation),
            "benign_rate": args.benign_rate,
            "sexual_benign_rate": args.sexual_benign_rate,
            "sexual_alone_benign_rate": args.sexual_alone_benign_rate,
            "calibration_benign_lines": calibration_size,
            "allowed_benign_hits_per_head": allowed_hits,
            "report": report,
        },
        "bias": bias,
        "weights": weights,
    }
    text = json.dumps(document, indent=1, sort_keys=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(json.dumps(report, indent=1))
    print(f"wrote {args.out}: sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
