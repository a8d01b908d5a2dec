"""Assertion semantics: each kind, weights and thresholds, group consistency, PII matching."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from brandloop.evals.evaluators import evaluate_case, group_consistency
from brandloop.evals.models import Assertion, AttemptRecord, Case, CaseResult, RequestParams
from brandloop.evals.runner import find_pii

ASSERTION = TypeAdapter(Assertion)


def attempt(
    outcome: str = "accepted", composite: float | None = 0.8, **extra: Any
) -> AttemptRecord:
    return AttemptRecord(
        id=extra.pop("id", f"att-{outcome}"),
        iteration=1,
        model="procedural/studio",
        template="brand-hero@1",
        prompt="p",
        seed=1,
        width=64,
        height=64,
        outcome=outcome,
        composite=composite,
        **extra,
    )


def result(**fields: Any) -> CaseResult:
    base: dict[str, Any] = {
        "target": "t",
        "case_id": "c",
        "repeat": 0,
        "tenant": "x",
        "status": "succeeded",
        "accepted": 1,
        "accepted_composites": [0.8],
        "accepted_signals": [{"palette": 0.7, "sharpness": 0.9}],
        "attempts": [attempt()],
        "cost_usd": 0.05,
        "latency_ms": 900.0,
    }
    return CaseResult(**{**base, **fields})


def case(*assertions: dict[str, Any], threshold: float = 1.0, group: str | None = None) -> Case:
    return Case(
        id="c",
        brief="b",
        brand="Acme Coffee",
        group=group,
        request=RequestParams(),
        assertions=[ASSERTION.validate_python(a) for a in assertions],
        threshold=threshold,
    )


def verdict(
    assertion: dict[str, Any], res: CaseResult, group: list[CaseResult] | None = None
) -> bool:
    evaluated = evaluate_case(case(assertion), res, group or [res])
    return evaluated.assertions[0].passed


def test_min_score_reads_every_mean_or_best_accepted_image() -> None:
    res = result(
        accepted=2,
        accepted_composites=[0.55, 0.95],
        accepted_signals=[{"palette": 0.6}, {"palette": 0.9}],
    )
    assert not verdict({"kind": "min_score", "min": 0.6}, res)
    assert verdict({"kind": "min_score", "min": 0.6, "over": "mean"}, res)
    assert verdict({"kind": "min_score", "min": 0.9, "over": "best"}, res)
    assert verdict({"kind": "min_score", "signal": "palette", "min": 0.6}, res)
    assert not verdict({"kind": "min_score", "signal": "palette", "min": 0.61}, res)
    assert not verdict({"kind": "min_score", "signal": "alignment", "min": 0.1}, res)
    nothing = result(accepted=0, accepted_composites=[], accepted_signals=[], status="failed")
    assert not verdict({"kind": "min_score", "min": 0.0}, nothing)


def test_accepted_wants_the_request_count_unless_told_otherwise() -> None:
    partial = result(status="partial", count=2, accepted=1)
    assert not verdict({"kind": "accepted"}, partial)
    assert verdict({"kind": "accepted", "min_images": 1}, partial)
    assert verdict({"kind": "accepted"}, result())
    assert not verdict({"kind": "accepted"}, result(status="failed", accepted=0))


def test_refused_means_refused_at_intake_before_any_attempt() -> None:
    refused = result(status="refused", reason="brief refused: sexual", accepted=0, attempts=[])
    assert verdict({"kind": "refused"}, refused)
    assert verdict({"kind": "refused", "reason_contains": "SEXUAL"}, refused)
    assert not verdict({"kind": "refused", "reason_contains": "violence"}, refused)
    assert not verdict({"kind": "refused"}, result())
    late = refused.model_copy(update={"attempts": [attempt("refused")]})
    assert not verdict({"kind": "refused"}, late), "a refusal after paid attempts is too late"


def test_blocked_needs_an_attempt_blocked_by_moderation() -> None:
    assert verdict({"kind": "blocked"}, result(attempts=[attempt("blocked"), attempt()]))
    assert not verdict({"kind": "blocked"}, result(attempts=[attempt("rejected"), attempt()]))
    assert not verdict({"kind": "blocked"}, result(status="refused", attempts=[]))


def test_no_pii_fails_on_a_value_found_in_stored_prompts_without_repeating_it() -> None:
    leaked = result(pii_found=["jane.doe@example.com"])
    evaluated = evaluate_case(
        case({"kind": "no_pii", "values": ["jane.doe@example.com", "+1 415 555 0134"]}),
        leaked,
        [leaked],
    )
    assert not evaluated.passed
    assert "jane.doe@example.com" not in evaluated.assertions[0].message
    assert verdict({"kind": "no_pii", "values": ["jane.doe@example.com"]}, result())
    assert not verdict({"kind": "no_pii", "values": ["x@y.z"]}, result(status="error"))


def test_pii_matching_ignores_case_and_separators() -> None:
    stored = [
        "Poster; mail JANE.DOE@Example.com or call +1 (415) 555-0134",
        "card 4111111111111111",
    ]
    values = ["jane.doe@example.com", "+1 415 555 0134", "4111 1111 1111 1111", "DE89 3704"]
    assert find_pii(stored, values) == values[:3]
    assert find_pii(["Poster; [redacted email] or [redacted phone]"], values) == []


@pytest.mark.parametrize(
    "stored",
    [
        "call +44\u201320\u20137946\u20130958, card 4111\u20131111\u20131111\u20131111",
        "call +44\u201020\u20107946\u20100958, card 4111_1111_1111_1111",
        "call +44\u221220\u22127946\u22120958, card 4111.1111.1111.1111",
        "call +44 20 7946 0958, card 4111/1111/1111/1111",
    ],
)
def test_pii_matching_ignores_typographic_dashes_and_other_separators(stored: str) -> None:
    values = ["+44 20 7946 0958", "4111 1111 1111 1111"]
    assert find_pii([stored], values) == values
    assert find_pii(["+44 20 7946 0958"], ["+44\u201320\u20137946\u20130958"]) != []


@pytest.mark.parametrize(
    ("assertion", "ok", "bad"),
    [
        ({"kind": "max_cost", "max_usd": 0.05}, {"cost_usd": 0.05}, {"cost_usd": 0.0501}),
        ({"kind": "max_attempts", "max": 1}, {}, {"attempts": [attempt(), attempt(id="b")]}),
        ({"kind": "max_latency", "max_ms": 900}, {}, {"latency_ms": 900.5}),
    ],
)
def test_limits_pass_at_the_limit_and_fail_above_it(
    assertion: dict[str, Any], ok: dict[str, Any], bad: dict[str, Any]
) -> None:
    assert verdict(assertion, result(**ok))
    assert not verdict(assertion, result(**bad))


def test_consistency_compares_the_groups_accepted_images() -> None:
    warm = [0.0] * 64
    warm[10], warm[20] = 0.6, 0.4
    cold = [0.0] * 64
    cold[50] = 1.0
    a = result(case_id="a", histograms=[warm])
    b = result(case_id="b", histograms=[warm])
    c = result(case_id="c", histograms=[cold])
    assert group_consistency([a, b]) == pytest.approx(1.0)
    assert group_consistency([a, c]) == pytest.approx(0.0)
    assert group_consistency([a, b, c]) == pytest.approx(1 / 3)
    assert group_consistency([a]) is None
    assertion = {"kind": "min_consistency", "min": 0.5}
    assert verdict(assertion, a, [a, b])
    assert not verdict(assertion, a, [a, b, c])
    assert not verdict(assertion, a, [a]), "one image is not evidence of consistency"


def test_weights_and_threshold_decide_the_case() -> None:
    res = result(cost_usd=0.2)
    assertions = (
        {"kind": "accepted", "weight": 3},
        {"kind": "max_cost", "max_usd": 0.1, "weight": 1},
    )
    strict = evaluate_case(case(*assertions), res, [res])
    assert not strict.passed and strict.score == pytest.approx(0.75)
    lenient = evaluate_case(case(*assertions, threshold=0.75), res, [res])
    assert lenient.passed
    broken = result(status="error", error="boom")
    assert not evaluate_case(case({"kind": "max_cost", "max_usd": 1}), broken, [broken]).passed
