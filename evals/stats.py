"""Statistics over case results: per-target summaries, A/B comparisons with bootstrap
confidence intervals, and comparison with a saved baseline run.

Comparisons are paired by case: each case contributes one value per side (the mean over its
repeats), and the bootstrap resamples cases. A difference is "detectable" when its 95%
interval excludes zero. A metric with fewer than :data:`MIN_PAIRS` pairs (none at all: no
shared case has it on both sides) is "not measured", never "no detectable difference".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.errors import present
from brandloop.evals.models import CaseResult
from brandloop.policy_files import describe_validation_error

Verdict = Literal["better", "worse", "no detectable difference", "not measured"]
#: metric name -> True when higher is better
METRICS: dict[str, bool] = {
    "pass_rate": True,
    "score": True,
    "composite": True,
    "cost_usd": False,
    "attempts": False,
    "latency_ms": False,
}
BOOTSTRAP_RESAMPLES = 2000
#: Fewer pairs than this are "not measured": with five cases that all moved the same way a
#: sign test gives p = 2 * 0.5**5 = 0.0625, so no distribution-free test can tell five from
#: chance at 95% (six: 0.031), while the percentile bootstrap of so few would call any
#: unanimous shift, one case included, "better" or "worse".
MIN_PAIRS = 6
#: the metrics a baseline comparison gates on (``BaselineReport.passed``)
REQUIRED_METRICS = ("pass_rate", "composite")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignalStats(_Model):
    n: int
    mean: float
    std: float
    min: float
    max: float


class TargetSummary(_Model):
    target: str
    executions: int
    passed: int
    pass_rate: float
    signals: dict[str, SignalStats] = Field(
        default_factory=dict, description="over every scored attempt; composite_accepted too"
    )
    accepted_images: int
    cost_usd: float
    cost_per_accepted_usd: float | None
    attempts_mean: float
    latency_p50_ms: float
    latency_p95_ms: float
    refusal_rate: float
    blocked_rate: float
    fallback_rate: float
    error_rate: float
    cache_hits: int


class Comparison(_Model):
    metric: str
    a: float | None = Field(description="mean over the pairs; None with no pair")
    b: float | None
    diff: float | None = Field(description="b - a")
    ci_low: float | None = Field(description="None when not measured")
    ci_high: float | None
    n: int = Field(description="pairs: cases with the metric on both sides")
    verdict: Verdict


class CaseRegression(_Model):
    case_id: str
    baseline_pass_rate: float
    current_pass_rate: float
    baseline_composite: float | None
    current_composite: float | None
    regressed: bool


class BaselineReport(_Model):
    baseline_path: str
    target: str
    baseline_target: str
    compared: int = Field(default=0, description="cases in both the run and the baseline")
    only_current: int = Field(default=0, description="cases of the run the baseline lacks")
    only_baseline: int = Field(default=0, description="baseline cases the run lacks")
    comparisons: list[Comparison]
    cases: list[CaseRegression]
    regressions: int
    significant: bool = Field(description="a required metric is worse")
    lost: list[str] = Field(
        default_factory=list,
        description="required metrics the baseline measured that this run could not be "
        "compared on (too few shared cases have them here): they fail the check as a "
        "regression does",
    )
    passed: bool = Field(description="the check passed: not significant and nothing lost")
    summary: str


class GateVerdict(_Model):
    """What ``brandloop eval run`` decided, stored in the result set's manifest so readers
    (the studio's page and report) show that verdict instead of deciding again."""

    min_pass_rate: float
    passed: dict[str, bool] = Field(description="per target: its pass rate met the gate")
    baseline: BaselineReport | None = None

    @property
    def all_passed(self) -> bool:
        """The run passed: every target met the gate and the baseline check (if any) passed."""
        return all(self.passed.values()) and (self.baseline is None or self.baseline.passed)


class _Saved(BaseModel):
    """Part of a saved run (``--baseline``): the fields the comparison reads, in their exact
    types (``"passed": "false"`` is not a bool), numbers finite; other fields are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class BaselineRow(_Saved):
    """One case result of a saved run (``reports.document.case_row``)."""

    target: str
    case_id: str
    passed: bool
    score: float
    accepted_composites: list[float]
    cost_usd: float
    attempt_count: int = Field(ge=0)
    latency_ms: float


class BaselineTarget(_Saved):
    name: str


class BaselineSuite(_Saved):
    name: str
    version: int


class BaselineDocument(_Saved):
    """A saved ``brandloop eval run --json`` document, as far as a baseline check reads it."""

    suite: BaselineSuite | None = None
    targets: list[BaselineTarget] = Field(min_length=1, description="in the run's order")
    cases: list[BaselineRow] = Field(min_length=1)


def parse_baseline(data: Any) -> BaselineDocument:
    """``data`` checked as a baseline, whole, before anything runs: a ValueError names the
    first field that is missing or of the wrong type (a malformed row was found only after
    every case ran, as ``internal error: KeyError``), or a row of a target the document does
    not list."""
    try:
        document = BaselineDocument.model_validate(data)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None
    names = {t.name for t in document.targets}
    for i, row in enumerate(document.cases):
        if row.target not in names:
            raise ValueError(
                f"cases.{i}.target: {row.target!r} is not among the document's targets "
                f"({', '.join(t.name for t in document.targets)})"
            )
    return document


def _stats(values: Sequence[float]) -> SignalStats:
    return SignalStats(
        n=len(values),
        mean=round(statistics.fmean(values), 4),
        std=round(statistics.pstdev(values), 4) if len(values) > 1 else 0.0,
        min=round(min(values), 4),
        max=round(max(values), 4),
    )


def meets_gate(passed: int, executions: int, min_pass_rate: float) -> bool:
    """Whether ``passed`` of ``executions`` reach ``min_pass_rate``, in exact arithmetic.

    The gate as written (``0.99``) is taken as the decimal it reads as, and compared with the
    exact count: the rounded ``pass_rate`` (4 decimals, for display) once let 296 of 299
    (0.98997) through a 0.99 gate. No execution at all is a pass rate of 0."""
    if executions == 0:
        return min_pass_rate <= 0
    return Fraction(passed) >= Fraction(repr(min_pass_rate)) * executions


#: the most decimals a gate is shown with (as a percentage); a gate written with more is
#: shown rounded up to them, so it never reads as less than it is
MAX_GATE_DECIMALS = 3


def rate_floor(passed: int, executions: int, decimals: int = 1) -> str:
    """``passed / executions`` as a percentage with ``decimals`` decimals, rounded down, so a
    rate below a gate never reads as the gate (296 of 299 is 98.9%, not 99.0%)."""
    if executions == 0:
        return f"{0:.{decimals}f}%"
    units = passed * 100 * 10**decimals // executions
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}%" if decimals else f"{whole}%"


def gate_decimals(min_pass_rate: float) -> int:
    """The decimals the gate has as a percentage, at least one (0.9 is 90.0%, 0.667 is 66.7%,
    0.6667 is 66.67%), at most :data:`MAX_GATE_DECIMALS`: rates are shown with as many, so a
    rate that meets the gate never reads below it and one below it never reads as it."""
    exponent = (Decimal(repr(min_pass_rate)) * 100).normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 0
    return min(MAX_GATE_DECIMALS, max(1, decimals))


def gate_text(min_pass_rate: float) -> str:
    """The gate as a percentage, exactly as written when it has at most
    :data:`MAX_GATE_DECIMALS` decimals, else rounded up (a 0.995 gate read 0.99, and a 0.667
    one 67%, in the report and the studio)."""
    step = Decimal(1).scaleb(-gate_decimals(min_pass_rate))
    shown = (Decimal(repr(min_pass_rate)) * 100).quantize(step, rounding=ROUND_CEILING)
    return f"{shown}%"


def pass_rate_text(passed: int, executions: int, min_pass_rate: float) -> str:
    """A target's pass rate as the CLI, the HTML report and the studio all show it: rounded
    down, with as many decimals as the gate (:func:`gate_text`) it is held against."""
    return rate_floor(passed, executions, gate_decimals(min_pass_rate))


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=float), q))


def summarize(target: str, results: Sequence[CaseResult]) -> TargetSummary:
    """Pass rate, signal spreads, cost per accepted image, attempts, latency, rates."""
    n = len(results)
    by_signal: dict[str, list[float]] = {}
    for r in results:
        for a in r.attempts:
            if a.composite is not None:
                by_signal.setdefault("composite", []).append(a.composite)
            for name, value in a.signals.items():
                by_signal.setdefault(name, []).append(value)
        by_signal.setdefault("composite_accepted", []).extend(r.accepted_composites)
    accepted = sum(r.accepted for r in results)
    cost = sum(r.cost_usd for r in results)
    latencies = [r.latency_ms for r in results]
    return TargetSummary(
        target=target,
        executions=n,
        passed=sum(r.passed for r in results),
        pass_rate=round(sum(r.passed for r in results) / n, 4) if n else 0.0,
        signals={k: _stats(v) for k, v in sorted(by_signal.items()) if v},
        accepted_images=accepted,
        cost_usd=round(cost, 4),
        cost_per_accepted_usd=round(cost / accepted, 4) if accepted else None,
        attempts_mean=round(statistics.fmean(len(r.attempts) for r in results), 3) if n else 0,
        latency_p50_ms=round(percentile(latencies, 50), 1),
        latency_p95_ms=round(percentile(latencies, 95), 1),
        refusal_rate=round(sum(r.status == "refused" for r in results) / n, 4) if n else 0,
        blocked_rate=round(
            sum(any(a.outcome == "blocked" for a in r.attempts) for r in results) / n, 4
        )
        if n
        else 0,
        fallback_rate=round(sum(r.fallback for r in results) / n, 4) if n else 0,
        error_rate=round(sum(r.status == "error" for r in results) / n, 4) if n else 0,
        cache_hits=sum(a.cache_hit for r in results for a in r.attempts),
    )


def case_metrics(results: Sequence[CaseResult]) -> dict[str, dict[str, float | None]]:
    """Per case (mean over repeats): pass rate, score, accepted composite, cost, attempts,
    latency. ``composite`` is None for a case with no accepted image."""
    grouped: dict[str, list[CaseResult]] = {}
    for r in results:
        grouped.setdefault(r.case_id, []).append(r)
    out: dict[str, dict[str, float | None]] = {}
    for case_id, rs in grouped.items():
        composites = [c for r in rs for c in r.accepted_composites]
        out[case_id] = {
            "pass_rate": statistics.fmean(float(r.passed) for r in rs),
            "score": statistics.fmean(r.score for r in rs),
            "composite": statistics.fmean(composites) if composites else None,
            "cost_usd": statistics.fmean(r.cost_usd for r in rs),
            "attempts": statistics.fmean(len(r.attempts) for r in rs),
            "latency_ms": statistics.fmean(r.latency_ms for r in rs),
        }
    return out


def bootstrap_diff(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """Mean of ``b - a`` over paired values and its percentile bootstrap interval. No pair at
    all is a ValueError: nothing compared is not a difference of 0."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same number of values on both sides")
    if not a:
        raise ValueError("paired bootstrap needs at least one pair")
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diffs), size=(resamples, len(diffs)))
    means = diffs[idx].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diffs.mean()), float(low), float(high)


def verdict(metric: str, low: float, high: float) -> Verdict:
    eps = 1e-12
    higher_better = METRICS.get(metric, True)
    if low > eps:
        return "better" if higher_better else "worse"
    if high < -eps:
        return "worse" if higher_better else "better"
    return "no detectable difference"


def compare(
    a: Sequence[CaseResult],
    b: Sequence[CaseResult],
    *,
    metrics: Sequence[str] = tuple(METRICS),
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> list[Comparison]:
    """B against A on the cases both ran; a verdict per metric ("better" means B is)."""
    return compare_metrics(case_metrics(a), case_metrics(b), metrics=metrics, resamples=resamples)


def compare_metrics(
    ma: dict[str, dict[str, float | None]],
    mb: dict[str, dict[str, float | None]],
    *,
    metrics: Sequence[str] = tuple(METRICS),
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> list[Comparison]:
    """B (``mb``) against A (``ma``) per metric over the cases both have it for. Fewer than
    :data:`MIN_PAIRS` pairs: "not measured", with the means of what there is (None with no
    pair) and no interval."""
    shared = sorted(set(ma) & set(mb))
    out = []
    for metric in metrics:
        pairs = [
            (va, vb)
            for case in shared
            if (va := ma[case].get(metric)) is not None and (vb := mb[case].get(metric)) is not None
        ]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(pairs) < MIN_PAIRS:
            mean_a = round(statistics.fmean(xs), 6) if pairs else None
            mean_b = round(statistics.fmean(ys), 6) if pairs else None
            out.append(
                Comparison(
                    metric=metric,
                    a=mean_a,
                    b=mean_b,
                    diff=None if mean_a is None or mean_b is None else round(mean_b - mean_a, 6),
                    ci_low=None,
                    ci_high=None,
                    n=len(pairs),
                    verdict="not measured",
                )
            )
            continue
        diff, low, high = bootstrap_diff(xs, ys, resamples=resamples)
        out.append(
            Comparison(
                metric=metric,
                a=round(statistics.fmean(xs), 6),
                b=round(statistics.fmean(ys), 6),
                diff=round(diff, 6),
                ci_low=round(low, 6),
                ci_high=round(high, 6),
                n=len(pairs),
                verdict=verdict(metric, low, high),
            )
        )
    return out


def baseline_cases(
    baseline: BaselineDocument, target: str
) -> tuple[str, dict[str, list[BaselineRow]]]:
    """The baseline target compared with ``target`` (the one of the same name, else the first
    of the baseline's ``targets``, in the order that run had them) and its rows by case id."""
    names = [t.name for t in baseline.targets]
    base_target = target if target in names else names[0]
    grouped: dict[str, list[BaselineRow]] = {}
    for row in baseline.cases:
        if row.target == base_target:
            grouped.setdefault(row.case_id, []).append(row)
    return base_target, grouped


def check_baseline_overlap(baseline: BaselineDocument, target: str, case_ids: set[str]) -> set[str]:
    """The case ids the run and the baseline share. Fewer than :data:`MIN_PAIRS` is a
    ValueError: the pass rate could not be measured, and a check that measured nothing would
    report no regression (none at all: a baseline of another suite, or renamed cases)."""
    base_target, grouped = baseline_cases(baseline, target)
    shared = set(grouped) & case_ids
    if len(shared) < MIN_PAIRS:
        suite = baseline.suite
        of = f" of suite {suite.name} v{suite.version}" if suite is not None and suite.name else ""
        if not shared:
            raise ValueError(
                f"shares no case with this run: its target {base_target}{of} has "
                f"{len(grouped)} case(s), none of them among this run's {len(case_ids)}"
            )
        raise ValueError(
            f"shares only {len(shared)} case(s) with this run (its target {base_target}{of} "
            f"has {len(grouped)}, this run {len(case_ids)}): a regression is measured over "
            f"at least {MIN_PAIRS} shared cases, fewer cannot be told from chance even when "
            "every one of them got worse"
        )
    return shared


def _regression_words(worse: list[str]) -> str:
    """What the worse metrics mean for the check: only the required ones are a significant
    regression; the others (cost, attempts, latency) are named as worse and never gate (the
    line once read "significant regression in composite, latency_ms")."""
    required = [m for m in worse if m in REQUIRED_METRICS]
    other = [m for m in worse if m not in REQUIRED_METRICS]
    words = (
        "significant regression in " + ", ".join(required)
        if required
        else "no significant regression"
    )
    if other:
        words += f" (also worse, not gating: {', '.join(other)})"
    return words


def compare_baseline(
    baseline: BaselineDocument,
    current: Sequence[CaseResult],
    *,
    target: str,
    baseline_path: str,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> BaselineReport:
    """Compare ``current`` (one target's results) with a saved run's JSON document.

    The baseline's target of the same name is used, else the first of its ``targets``. A case regresses
    when its pass rate drops; the run regresses significantly when the pass rate or the mean
    accepted composite is worse with a 95% interval that excludes zero. The check fails
    (``passed`` False) on that, and when a required metric the baseline measured cannot be
    compared here (``lost``: e.g. the composite, once this run accepts no image in most of the
    cases where the baseline did). A required metric the baseline did not measure either (a
    suite of refusals has no composite) is named as not measured in the summary and does not
    fail the check. Fewer than :data:`MIN_PAIRS` shared cases is a ValueError.
    """
    base_target, grouped = baseline_cases(baseline, target)
    current_ids = {r.case_id for r in current}
    shared = check_baseline_overlap(baseline, target, current_ids)
    base_metrics: dict[str, dict[str, float | None]] = {}
    for case_id, rs in grouped.items():
        composites = [c for r in rs for c in r.accepted_composites]
        base_metrics[case_id] = {
            "pass_rate": statistics.fmean(float(r.passed) for r in rs),
            "score": statistics.fmean(r.score for r in rs),
            "composite": statistics.fmean(composites) if composites else None,
            "cost_usd": statistics.fmean(r.cost_usd for r in rs),
            "attempts": statistics.fmean(float(r.attempt_count) for r in rs),
            "latency_ms": statistics.fmean(r.latency_ms for r in rs),
        }
    current_metrics = case_metrics(current)
    comparisons = compare_metrics(base_metrics, current_metrics, resamples=resamples)
    cases = []
    for case_id in sorted(set(base_metrics) & set(current_metrics)):
        b, c = base_metrics[case_id], current_metrics[case_id]
        # a pass rate is a mean over at least one repeat, never None
        before = present(b["pass_rate"], f"{case_id}'s baseline pass rate")
        after = present(c["pass_rate"], f"{case_id}'s pass rate")
        cases.append(
            CaseRegression(
                case_id=case_id,
                baseline_pass_rate=round(before, 4),
                current_pass_rate=round(after, 4),
                baseline_composite=None if b["composite"] is None else round(b["composite"], 4),
                current_composite=None if c["composite"] is None else round(c["composite"], 4),
                regressed=after < before - 1e-9,
            )
        )
    significant = any(c.verdict == "worse" for c in comparisons if c.metric in REQUIRED_METRICS)
    # a required metric the baseline has for enough shared cases but this run cannot be
    # compared on (it stopped accepting images there): not measured, and never a pass
    lost: list[str] = []
    unmeasured: list[str] = []
    for row in comparisons:
        if row.verdict != "not measured":
            continue
        had = sum(base_metrics[case_id].get(row.metric) is not None for case_id in shared)
        if row.metric in REQUIRED_METRICS and had >= MIN_PAIRS:
            lost.append(row.metric)
            unmeasured.append(
                f"{row.metric} not measured in this run: the baseline has it for {had} shared "
                f"case(s), this run for {row.n} of them ({MIN_PAIRS} needed)"
            )
        else:
            unmeasured.append(
                f"{row.metric} not measured ({row.n} shared case(s) have it on both sides, "
                f"{MIN_PAIRS} needed)"
            )
    regressions = sum(c.regressed for c in cases)
    worse = [c.metric for c in comparisons if c.verdict == "worse"]
    summary = (
        f"compared {len(shared)} of {len(current_ids)} case(s)"
        + (
            f" (also {len(grouped) - len(shared)} baseline case(s) not in this run)"
            if len(grouped) > len(shared)
            else ""
        )
        + (f" against baseline target {base_target}" if base_target != target else "")
        + f": {regressions} case(s) regressed; "
        + _regression_words(worse)
        + "".join(f"; {line}" for line in unmeasured)
    )
    return BaselineReport(
        baseline_path=baseline_path,
        target=target,
        baseline_target=base_target,
        compared=len(shared),
        only_current=len(current_ids - shared),
        only_baseline=len(set(grouped) - shared),
        comparisons=comparisons,
        cases=cases,
        regressions=regressions,
        significant=significant,
        lost=lost,
        passed=not significant and not lost,
        summary=summary,
    )
