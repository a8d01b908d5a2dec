"""Summaries, the bootstrap A/B comparison and baseline regression detection, on planted data."""

from __future__ import annotations

import random
from typing import Any

import pytest

from brandloop.evals.models import AttemptRecord, CaseResult
from brandloop.evals.stats import bootstrap_diff, compare, compare_baseline, summarize


def res(
    case_id: str, *, passed: bool, composite: float, cost: float = 0.05, **extra: Any
) -> CaseResult:
    attempts = [
        AttemptRecord(
            id=f"{case_id}-{i}",
            iteration=1,
            model="procedural/draft",
            template="brand-hero@1",
            prompt="p",
            seed=i,
            width=64,
            height=64,
            outcome="accepted" if i == 0 and passed else "rejected",
            composite=composite,
            signals={"palette": composite},
            cost_usd=cost / 2,
        )
        for i in range(2)
    ]
    return CaseResult(
        target=extra.pop("target", "a"),
        case_id=case_id,
        repeat=extra.pop("repeat", 0),
        tenant="x",
        status=extra.pop("status", "succeeded" if passed else "failed"),
        accepted=int(passed),
        accepted_composites=[composite] if passed else [],
        attempts=attempts,
        cost_usd=cost,
        latency_ms=extra.pop("latency_ms", 1000.0),
        passed=passed,
        score=1.0 if passed else 0.5,
        **extra,
    )


def population(target: str, shift: float = 0.0, seed: int = 1, n: int = 40) -> list[CaseResult]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        composite = min(1.0, max(0.0, rng.uniform(0.55, 0.85) + shift))
        out.append(res(f"case-{i}", passed=composite >= 0.65, composite=composite, target=target))
    return out


def test_the_bootstrap_detects_a_planted_improvement() -> None:
    a = population("a")
    b = [
        r.model_copy(
            update={
                "target": "b",
                "accepted_composites": [min(1.0, c + 0.08) for c in r.accepted_composites],
                "cost_usd": r.cost_usd - 0.01,
            }
        )
        for r in a
    ]
    verdicts = {c.metric: c for c in compare(a, b)}
    assert verdicts["composite"].verdict == "better"
    low, high = verdicts["composite"].ci_low, verdicts["composite"].ci_high
    assert low is not None and high is not None and 0 < low <= high
    assert verdicts["cost_usd"].verdict == "better", "lower cost is better"
    assert verdicts["pass_rate"].verdict == "no detectable difference"


def test_the_bootstrap_detects_a_planted_regression_in_pass_rate() -> None:
    a = population("a", shift=0.1)
    b = population("b", shift=-0.1)
    rows = {c.metric: c for c in compare(a, b)}
    assert rows["pass_rate"].verdict == "worse"
    assert rows["pass_rate"].diff is not None and rows["pass_rate"].diff < -0.3


def test_identical_targets_show_no_detectable_difference() -> None:
    a = population("a")
    b = [r.model_copy(update={"target": "b"}) for r in a]
    for row in compare(a, b):
        assert row.verdict == "no detectable difference", row
        assert row.diff in (0.0, None)


def test_noise_alone_is_not_called_a_difference() -> None:
    diff, low, high = bootstrap_diff([0.5, 0.6, 0.4, 0.7, 0.5, 0.6], [0.6, 0.5, 0.5, 0.6, 0.4, 0.7])
    assert low < 0 < high and abs(diff) < 0.05


def test_the_summary_reports_rates_costs_and_latency_percentiles() -> None:
    results = [
        res("a", passed=True, composite=0.9, latency_ms=100.0),
        res("b", passed=True, composite=0.8, latency_ms=200.0),
        res("c", passed=False, composite=0.3, latency_ms=300.0, status="refused"),
        res("d", passed=False, composite=0.3, latency_ms=1000.0, fallback=True),
    ]
    s = summarize("a", results)
    assert s.pass_rate == 0.5 and s.executions == 4 and s.accepted_images == 2
    assert s.cost_per_accepted_usd == pytest.approx(0.2 / 2)
    assert s.latency_p50_ms == pytest.approx(250.0)
    assert 700 < s.latency_p95_ms <= 1000
    assert s.refusal_rate == 0.25 and s.fallback_rate == 0.25
    assert s.signals["palette"].n == 8
    assert s.signals["composite_accepted"].mean == pytest.approx(0.85)
    nothing = summarize("z", [res("x", passed=False, composite=0.1)])
    assert nothing.cost_per_accepted_usd is None


def document(results: list[CaseResult]) -> dict[str, Any]:
    return {
        "cases": [
            {
                "target": r.target,
                "case_id": r.case_id,
                "passed": r.passed,
                "score": r.score,
                "accepted_composites": r.accepted_composites,
                "cost_usd": r.cost_usd,
                "attempt_count": len(r.attempts),
                "latency_ms": r.latency_ms,
            }
            for r in results
        ]
    }


def test_a_baseline_comparison_flags_a_significant_regression_and_the_cases() -> None:
    base = population("default", shift=0.1)
    current = population("default", shift=-0.1)
    report = compare_baseline(document(base), current, target="default", baseline_path="b.json")
    assert report.significant
    regressed = {c.case_id for c in report.cases if c.regressed}
    expected = {b.case_id for b, c in zip(base, current, strict=True) if b.passed and not c.passed}
    assert regressed == expected and report.regressions == len(expected)


def test_a_baseline_equal_to_the_run_is_not_a_regression() -> None:
    base = population("default")
    report = compare_baseline(document(base), base, target="other", baseline_path="b.json")
    assert not report.significant and report.regressions == 0
    assert report.baseline_target == "default", "falls back to the baseline's first target"


def test_one_flipped_case_among_many_is_flagged_but_not_significant() -> None:
    base = [res(f"c{i}", passed=True, composite=0.9) for i in range(30)]
    current = [*base[:-1], res("c29", passed=False, composite=0.9)]
    report = compare_baseline(document(base), current, target="a", baseline_path="b.json")
    assert report.regressions == 1 and not report.significant
