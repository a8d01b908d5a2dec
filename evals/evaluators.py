"""Evaluators: one small function per assertion kind, each a pure function of recorded results.

A case passes when the weighted share of its passing assertions reaches the case's
``threshold`` (1.0 by default: every assertion must pass). Group assertions
(``min_consistency``) also see the other cases of the group from the same target and repeat.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from brandloop.evals.models import (
    Accepted,
    Assertion,
    AssertionBase,
    AssertionResult,
    BlockedByModeration,
    Case,
    CaseResult,
    MaxAttempts,
    MaxCost,
    MaxLatency,
    MaxRounds,
    MinConsistency,
    MinScore,
    NoPii,
    RefusedAtIntake,
)
from brandloop.registry.types import usd


class Evaluator(Protocol):
    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult: ...


def _result(
    assertion: Assertion,
    passed: bool,
    message: str,
    *,
    value: float | None = None,
    threshold: float | None = None,
) -> AssertionResult:
    return AssertionResult(
        kind=assertion.kind,
        passed=passed,
        weight=assertion.weight,
        value=None if value is None else round(value, 6),
        threshold=threshold,
        message=message,
    )


def _at_least(
    assertion: Assertion, value: float, minimum: float, message: Callable[[str], str]
) -> AssertionResult:
    """``value >= minimum``; ``message`` gets the comparison that held (``>=`` or ``<``)."""
    passed = value >= minimum
    return _result(
        assertion, passed, message(">=" if passed else "<"), value=value, threshold=minimum
    )


def _at_most(
    assertion: Assertion,
    value: float,
    maximum: float,
    message: Callable[[str], str],
    *,
    slack: float = 0.0,
) -> AssertionResult:
    """``value <= maximum``; ``message`` gets the comparison that held (``<=`` or ``>``)."""
    passed = value <= maximum + slack
    return _result(
        assertion, passed, message("<=" if passed else ">"), value=value, threshold=maximum
    )


def min_score(
    assertion: MinScore, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    if assertion.signal == "composite":
        values = list(result.accepted_composites)
    else:
        values = [s[assertion.signal] for s in result.accepted_signals if assertion.signal in s]
    if not values:
        return _result(
            assertion,
            False,
            f"no accepted image has a {assertion.signal} score",
            threshold=assertion.min,
        )
    value = {
        "every": min(values),
        "mean": statistics.fmean(values),
        "best": max(values),
    }[assertion.over]
    label = {"every": "lowest", "mean": "mean", "best": "best"}[assertion.over]
    return _at_least(
        assertion,
        value,
        assertion.min,
        lambda op: f"{label} {assertion.signal} {value:.3f} {op} {assertion.min}",
    )


def accepted(
    assertion: Accepted, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    wanted = assertion.min_images or result.count
    passed = result.accepted >= wanted and result.status in {"succeeded", "partial"}
    return _result(
        assertion,
        passed,
        f"{result.accepted} of {wanted} wanted images accepted (status {result.status})",
        value=result.accepted,
        threshold=wanted,
    )


def refused_at_intake(
    assertion: RefusedAtIntake, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    refused = result.status == "refused"
    reason_ok = (
        assertion.reason_contains is None
        or assertion.reason_contains.lower() in result.reason.lower()
    )
    passed = refused and reason_ok and not result.attempts
    if not refused:
        message = f"not refused: status {result.status}"
    elif result.attempts:
        message = f"refused, but only after {len(result.attempts)} attempts"
    elif not reason_ok:
        message = f"refused, but the reason lacks {assertion.reason_contains!r}"
    else:
        message = f"refused at intake: {result.reason}"
    return _result(assertion, passed, message)


def blocked_by_moderation(
    assertion: BlockedByModeration, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    blocked = [a for a in result.attempts if a.outcome == "blocked"]
    passed = bool(blocked)
    message = (
        f"{len(blocked)} attempt(s) blocked by moderation"
        if passed
        else f"no attempt was blocked (outcomes: {_outcomes(result)})"
    )
    return _result(assertion, passed, message, value=len(blocked), threshold=1)


def no_pii(assertion: NoPii, result: CaseResult, group: Sequence[CaseResult]) -> AssertionResult:
    found = [v for v in assertion.values if v in result.pii_found]
    if result.status == "error":
        return _result(assertion, False, "the run failed; stored prompts were not checked")
    passed = not found
    message = (
        f"none of {len(assertion.values)} PII value(s) in stored prompts"
        if passed
        else f"{len(found)} PII value(s) stored in clear: " + ", ".join(_mask(v) for v in found)
    )
    return _result(assertion, passed, message, value=len(found), threshold=0)


def max_cost(
    assertion: MaxCost, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    return _at_most(
        assertion,
        result.cost_usd,
        assertion.max_usd,
        lambda op: f"cost {usd(result.cost_usd)} {op} {usd(assertion.max_usd)}",
        slack=1e-9,
    )


def max_attempts(
    assertion: MaxAttempts, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    count = len(result.attempts)
    return _at_most(
        assertion, count, assertion.max, lambda op: f"{count} attempts {op} {assertion.max}"
    )


def max_rounds(
    assertion: MaxRounds, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    rounds = max((a.iteration for a in result.attempts), default=0)
    return _at_most(
        assertion, rounds, assertion.max, lambda op: f"{rounds} round(s) {op} {assertion.max}"
    )


def max_latency(
    assertion: MaxLatency, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    return _at_most(
        assertion,
        result.latency_ms,
        assertion.max_ms,
        lambda op: f"latency {result.latency_ms:.0f} ms {op} {assertion.max_ms:.0f}",
    )


def min_consistency(
    assertion: MinConsistency, result: CaseResult, group: Sequence[CaseResult]
) -> AssertionResult:
    members = list(group) or [result]
    value = group_consistency(members)
    if value is None:
        return _result(
            assertion,
            False,
            "fewer than two accepted images in the group",
            threshold=assertion.min,
        )
    return _at_least(
        assertion,
        value,
        assertion.min,
        lambda op: (
            f"group consistency {value:.3f} {op} {assertion.min} over {len(members)} case(s)"
        ),
    )


A = TypeVar("A", bound=AssertionBase)


def _for(
    kind: type[A], check: Callable[[A, CaseResult, Sequence[CaseResult]], AssertionResult]
) -> Evaluator:
    """``check`` behind the common signature, refusing an assertion of another kind."""

    def evaluate(
        assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        if not isinstance(assertion, kind):
            raise TypeError(f"{check.__name__} evaluates {kind.__name__}, not {assertion.kind}")
        return check(assertion, result, group)

    return evaluate


#: one evaluator per assertion kind (``evals/models.py``)
EVALUATORS: dict[str, Evaluator] = {
    "min_score": _for(MinScore, min_score),
    "accepted": _for(Accepted, accepted),
    "refused": _for(RefusedAtIntake, refused_at_intake),
    "blocked": _for(BlockedByModeration, blocked_by_moderation),
    "no_pii": _for(NoPii, no_pii),
    "max_cost": _for(MaxCost, max_cost),
    "max_attempts": _for(MaxAttempts, max_attempts),
    "max_rounds": _for(MaxRounds, max_rounds),
    "max_latency": _for(MaxLatency, max_latency),
    "min_consistency": _for(MinConsistency, min_consistency),
}


def histogram_intersection(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(min(x, y) for x, y in zip(a, b, strict=True))


def group_consistency(results: Sequence[CaseResult]) -> float | None:
    """Mean colour-histogram intersection over pairs of accepted images from different cases
    of the group (pairs within one case when only one case has images); None below two."""
    images = [(r.case_id, h) for r in results for h in r.histograms]
    if len(images) < 2:
        return None
    pairs = [(a, b) for a, b in itertools.combinations(images, 2) if a[0] != b[0]]
    if not pairs:
        pairs = list(itertools.combinations(images, 2))
    return statistics.fmean(histogram_intersection(a[1], b[1]) for a, b in pairs)


def evaluate_case(case: Case, result: CaseResult, group: Sequence[CaseResult]) -> CaseResult:
    """Run every assertion of ``case`` on ``result``; returns the result with the verdicts."""
    verdicts = [EVALUATORS[a.kind](a, result, group) for a in case.assertions]
    total = sum(v.weight for v in verdicts)
    score = sum(v.weight for v in verdicts if v.passed) / total if total else 0.0
    passed = result.status != "error" and score >= case.threshold - 1e-9
    return result.model_copy(
        update={"assertions": verdicts, "score": round(score, 6), "passed": passed}
    )


def _outcomes(result: CaseResult) -> str:
    counts: dict[str, int] = {}
    for attempt in result.attempts:
        counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _mask(value: str) -> str:
    """Name a PII value in a message without repeating it."""
    return value[:2] + "…" if len(value) > 4 else "…"
