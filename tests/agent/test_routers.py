"""Each router's decisions, from hand-built states."""

from __future__ import annotations

from brandloop.agent.routers import (
    after_intake,
    after_observe,
    after_plan,
    after_preflight,
    after_review_gate,
)
from brandloop.domain import Candidate, GenerationRequest

REQUEST = GenerationRequest(brief="a cup", brand="Acme", count=2)
CANDIDATE = Candidate(
    id="c", template="t@1", prompt="p", model="procedural/draft", seed=1, width=64, height=64
)


def test_after_intake_sends_refusals_to_finalize() -> None:
    assert after_intake({"run_id": "r", "request": REQUEST, "status": "refused"}) == "finalize"
    assert after_intake({"run_id": "r", "request": REQUEST, "status": "running"}) == "preflight"


def test_after_preflight_ends_a_refused_or_asking_run_before_any_spending() -> None:
    assert after_preflight({"run_id": "r", "request": REQUEST, "status": "refused"}) == "finalize"
    assert after_preflight({"run_id": "r", "request": REQUEST, "status": "running"}) == "recall"


def test_after_plan_generates_only_when_there_are_candidates() -> None:
    assert after_plan({"run_id": "r", "request": REQUEST, "candidates": [CANDIDATE]}) == "generate"
    assert after_plan({"run_id": "r", "request": REQUEST, "candidates": []}) == "finalize"


def test_after_plan_sends_a_stop_with_accepted_images_through_the_review_gate() -> None:
    base = {"run_id": "r", "request": REQUEST, "candidates": [], "accepted": ["a"]}
    assert after_plan({**base, "reason": "stopping: not worth it"}) == "review_gate"
    assert after_plan({**base, "status": "failed"}) == "review_gate"  # no usable provider


def test_after_observe_goes_to_review_gate_with_images_or_finalize_without() -> None:
    base = {"run_id": "r", "request": REQUEST}
    assert after_observe({**base, "accepted": ["a"]}) == "plan"
    assert after_observe({**base, "accepted": ["a", "b"]}) == "review_gate"
    assert after_observe({**base, "accepted": ["a"], "reason": "budget spent"}) == "review_gate"
    assert after_observe({**base, "accepted": [], "reason": "budget spent"}) == "finalize"


def test_after_review_gate_waits_only_when_the_gate_asked_for_review() -> None:
    base = {"run_id": "r", "request": REQUEST}
    assert after_review_gate({**base, "status": "awaiting_review"}) == "review"
    assert after_review_gate({**base, "status": "running"}) == "finalize"
