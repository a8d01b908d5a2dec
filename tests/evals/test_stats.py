"""Summaries, the bootstrap A/B comparison and baseline regression detection, on planted data."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from brandloop.evals.models import AttemptRecord, CaseResult
from brandloop.evals.stats import (
    BaselineDocument,
    bootstrap_diff,
    compare,
    compare_baseline,
    gate_text,
    meets_gate,
    parse_baseline,
    pass_rate_text,
    rate_floor,
    summarize,
)

#: the fewest pairs a comparison measures (``evals.stats.MIN_PAIRS``), spelt out as the rule
MIN_PAIRS = 6


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
        # every metric was compared: a difference of 0 over pairs, never an empty comparison
        assert row.verdict == "no detectable difference", row
        assert row.diff == 0.0 and row.n >= MIN_PAIRS, row


def test_a_metric_no_case_has_on_both_sides_is_not_measured() -> None:
    a = population("a")
    # the same cases, none of them with an accepted image: no composite to pair
    b = [r.model_copy(update={"target": "b", "accepted_composites": []}) for r in a]
    rows = {c.metric: c for c in compare(a, b)}
    composite = rows["composite"]
    assert composite.verdict == "not measured" and composite.n == 0
    assert (composite.a, composite.b, composite.diff, composite.ci_low) == (None, None, None, None)
    assert rows["pass_rate"].verdict == "no detectable difference", "the rest is measured"
    # no shared case at all: nothing is measured, whatever the metric
    other = [r.model_copy(update={"target": "b", "case_id": "x-" + r.case_id}) for r in a]
    assert {c.verdict for c in compare(a, other)} == {"not measured"}


def test_fewer_than_six_pairs_are_not_measured_even_when_every_case_moved() -> None:
    a = [res(f"c{i}", passed=True, composite=0.9) for i in range(MIN_PAIRS)]
    b = [res(f"c{i}", passed=False, composite=0.3, target="b") for i in range(MIN_PAIRS)]
    few = {c.metric: c for c in compare(a[:5], b[:5])}
    # five cases that all failed are p = 0.0625 by a sign test; the bootstrap of so few said
    # "worse" (one case alone too)
    assert few["pass_rate"].verdict == "not measured", few["pass_rate"]
    assert few["pass_rate"].diff == -1.0 and few["pass_rate"].n == 5, "the means are kept"
    assert few["pass_rate"].ci_low is None and few["pass_rate"].ci_high is None
    assert compare(a[:1], b[:1])[0].verdict == "not measured"
    enough = {c.metric: c for c in compare(a, b)}
    assert enough["pass_rate"].verdict == "worse" and enough["pass_rate"].n == MIN_PAIRS


def test_the_bootstrap_of_no_pair_is_an_error_not_a_zero_difference() -> None:
    with pytest.raises(ValueError, match="at least one pair"):
        bootstrap_diff([], [])


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


def test_the_gate_compares_exact_counts_not_the_rounded_pass_rate() -> None:
    assert round(296 / 299, 4) == 0.99, "what the summary shows"
    assert not meets_gate(296, 299, 0.99) and rate_floor(296, 299) == "98.9%"
    assert meets_gate(99, 100, 0.99) and meets_gate(297, 300, 0.99)
    assert meets_gate(0, 5, 0.0) and not meets_gate(0, 0, 0.5)


@pytest.mark.parametrize(
    ("gate", "shown", "two_of_three"),
    [
        (0.667, "66.7%", "66.6%"),
        (0.995, "99.5%", "66.6%"),  # the report showed this gate as 0.99
        (0.9, "90.0%", "66.6%"),
        (0.6667, "66.67%", "66.66%"),
        (2 / 3, "66.667%", "66.666%"),  # more decimals than shown: rounded up
        (0.0, "0.0%", "66.6%"),
    ],
)
def test_a_gate_is_shown_as_written_and_a_rate_rounded_down_to_its_decimals(
    gate: float, shown: str, two_of_three: str
) -> None:
    assert gate_text(gate) == shown
    assert pass_rate_text(2, 3, gate) == two_of_three
    assert pass_rate_text(3, 3, gate) == "100." + "0" * (len(shown.split(".")[1]) - 1) + "%"


def document(results: list[CaseResult]) -> BaselineDocument:
    targets = list(dict.fromkeys(r.target for r in results))
    return parse_baseline(raw_document(results, targets))


def raw_document(results: list[CaseResult], targets: list[str]) -> dict[str, Any]:
    return {
        "targets": [{"name": name} for name in targets],
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
        ],
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


def test_a_baseline_sharing_fewer_than_six_cases_is_refused() -> None:
    base = population("default", n=5)
    with pytest.raises(ValueError, match=r"shares only 5 case\(s\) with this run"):
        compare_baseline(document(base), base, target="default", baseline_path="b.json")


def test_a_run_that_lost_the_baseline_composite_fails_the_check() -> None:
    base = [res(f"c{i}", passed=True, composite=0.8) for i in range(8)]
    # every case still passes its assertions, but only two accepted an image
    current = [
        r if i < 2 else r.model_copy(update={"accepted": 0, "accepted_composites": []})
        for i, r in enumerate(base)
    ]
    report = compare_baseline(document(base), current, target="a", baseline_path="b.json")
    rows = {c.metric: c for c in report.comparisons}
    assert rows["composite"].verdict == "not measured" and rows["composite"].n == 2
    assert rows["pass_rate"].verdict == "no detectable difference"
    assert not report.significant and report.lost == ["composite"] and not report.passed
    assert "composite not measured in this run: the baseline has it for 8 shared case(s), " in (
        report.summary
    )


def test_a_composite_the_baseline_did_not_measure_either_is_named_not_failed() -> None:
    # a suite of refusals: no case accepts an image, in the baseline or now
    base = [res(f"c{i}", passed=True, composite=0.0) for i in range(8)]
    base = [r.model_copy(update={"accepted": 0, "accepted_composites": []}) for r in base]
    report = compare_baseline(document(base), base, target="a", baseline_path="b.json")
    assert report.passed and report.lost == []
    assert "composite not measured (0 shared case(s) have it on both sides" in report.summary


def test_the_baseline_target_used_is_the_first_the_baseline_ran_not_the_first_by_name() -> None:
    """A saved A/B run lists its rows sorted by target name; its own first target is the one
    a run of another name is compared with (docs/evals.md, Baseline)."""
    main = population("main", shift=0.1)
    candidate = [r.model_copy(update={"target": "alpha"}) for r in population("x", shift=0.3)]
    rows = sorted([*main, *candidate], key=lambda r: r.target)
    baseline = parse_baseline(raw_document(rows, ["main", "alpha"]))
    report = compare_baseline(baseline, main, target="other", baseline_path="b.json")
    assert report.baseline_target == "main"
    assert not report.significant and report.regressions == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"passed": "false"}, "cases.3.passed"),
        ({"accepted_composites": [None]}, "cases.3.accepted_composites.0"),
        ({"latency_ms": float("nan")}, "cases.3.latency_ms"),
        ({"target": "ghost"}, "cases.3.target: 'ghost' is not among the document's targets"),
    ],
)
def test_a_malformed_baseline_row_is_refused_naming_its_field(
    change: dict[str, Any], named: str
) -> None:
    data = raw_document(population("default"), ["default"])
    data["cases"][3].update(change)
    with pytest.raises(ValueError, match=re.escape(named)):
        parse_baseline(data)
    del data["cases"][3]["passed"]
    with pytest.raises(ValueError, match=re.escape("cases.3.passed: Field required")):
        parse_baseline(data)


def test_a_worse_latency_beside_a_regression_is_named_as_not_gating() -> None:
    """Latency never gates: the line once read "significant regression in composite,
    latency_ms"."""
    base = [res(f"c{i}", passed=True, composite=0.9, latency_ms=100.0 + i) for i in range(8)]
    current = [
        res(f"c{i}", passed=True, composite=0.5 + i / 100, latency_ms=900.0 + i) for i in range(8)
    ]
    report = compare_baseline(document(base), current, target="a", baseline_path="b.json")
    assert report.significant
    assert "significant regression in composite (also worse, not gating: latency_ms)" in (
        report.summary
    ), report.summary
    slower = compare_baseline(
        document(base),
        [r.model_copy(update={"latency_ms": r.latency_ms + 800}) for r in base],
        target="a",
        baseline_path="b.json",
    )
    assert not slower.significant and slower.passed
    assert "no significant regression (also worse, not gating: latency_ms)" in slower.summary
