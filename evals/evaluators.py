"""Evaluators: one small class per assertion kind, each a pure function of recorded results.

A case passes when the weighted share of its passing assertions reaches the case's
``threshold`` (1.0 by default: every assertion must pass). Group assertions
(``min_consistency``) also see the other cases of the group from the same target and repeat.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import ClassVar, Protocol

from brandloop.evals.models import (
    Accepted,
    Assertion,
    AssertionResult,
    BlockedByModeration,
    Case,
    CaseResult,
    MaxAttempts,
    MaxCost,
    MaxLatency,
    MinConsistency,
    MinScore,
    NoPii,
    RefusedAtIntake,
)


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


class MinScoreEvaluator:
    kind: ClassVar[str] = "min_score"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, MinScore)
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
        passed = value >= assertion.min
        label = {"every": "lowest", "mean": "mean", "best": "best"}[assertion.over]
        return _result(
            assertion,
            passed,
            f"{label} {assertion.signal} {value:.3f} {'>=' if passed else '<'} {assertion.min}",
            value=value,
            threshold=assertion.min,
        )


class AcceptedEvaluator:
    kind: ClassVar[str] = "accepted"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, Accepted)
        wanted = assertion.min_images or result.count
        passed = result.accepted >= wanted and result.status in {"succeeded", "partial"}
        return _result(
            assertion,
            passed,
            f"{result.accepted} of {wanted} wanted images accepted (status {result.status})",
            value=result.accepted,
            threshold=wanted,
        )


class RefusedEvaluator:
    kind: ClassVar[str] = "refused"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, RefusedAtIntake)
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


class BlockedEvaluator:
    kind: ClassVar[str] = "blocked"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, BlockedByModeration)
        blocked = [a for a in result.attempts if a.outcome == "blocked"]
        passed = bool(blocked)
        message = (
            f"{len(blocked)} attempt(s) blocked by moderation"
            if passed
            else f"no attempt was blocked (outcomes: {_outcomes(result)})"
        )
        return _result(assertion, passed, message, value=len(blocked), threshold=1)


class NoPiiEvaluator:
    kind: ClassVar[str] = "no_pii"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, NoPii)
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


class MaxCostEvaluator:
    kind: ClassVar[str] = "max_cost"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, MaxCost)
        passed = result.cost_usd <= assertion.max_usd + 1e-9
        return _result(
            assertion,
            passed,
            f"cost ${result.cost_usd:.3f} {'<=' if passed else '>'} ${assertion.max_usd:.3f}",
            value=result.cost_usd,
            threshold=assertion.max_usd,
        )


class MaxAttemptsEvaluator:
    kind: ClassVar[str] = "max_attempts"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, MaxAttempts)
        count = len(result.attempts)
        passed = count <= assertion.max
        return _result(
            assertion,
            passed,
            f"{count} attempts {'<=' if passed else '>'} {assertion.max}",
            value=count,
            threshold=assertion.max,
        )


class MaxLatencyEvaluator:
    kind: ClassVar[str] = "max_latency"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, MaxLatency)
        passed = result.latency_ms <= assertion.max_ms
        return _result(
            assertion,
            passed,
            f"latency {result.latency_ms:.0f} ms {'<=' if passed else '>'} {assertion.max_ms:.0f}",
            value=result.latency_ms,
            threshold=assertion.max_ms,
        )


class MinConsistencyEvaluator:
    kind: ClassVar[str] = "min_consistency"

    def __call__(
        self, assertion: Assertion, result: CaseResult, group: Sequence[CaseResult]
    ) -> AssertionResult:
        assert isinstance(assertion, MinConsistency)
        members = list(group) or [result]
        value = group_consistency(members)
        if value is None:
            return _result(
                assertion,
                False,
                "fewer than two accepted images in the group",
                threshold=assertion.min,
            )
        passed = value >= assertion.min
        return _result(
            assertion,
            passed,
            f"group consistency {value:.3f} {'>=' if passed else '<'} {assertion.min}"
            f" over {len(members)} case(s)",
            value=value,
            threshold=assertion.min,
        )


EVALUATORS: dict[str, Evaluator] = {
    e.kind: e()
    for e in (
        MinScoreEvaluator,
        AcceptedEvaluator,
        RefusedEvaluator,
        BlockedEvaluator,
        NoPiiEvaluator,
        MaxCostEvaluator,
        MaxAttemptsEvaluator,
        MaxLatencyEvaluator,
        MinConsistencyEvaluator,
    )
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
