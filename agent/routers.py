"""Pure routing functions: the next node from the state, nothing else.

Every path to delivery passes the review gate: a run that ends with accepted images, whether
observe stopped it (enough accepted, round cap, budget, unpromising) or plan did (the stopping
rule, a budget that pays for no next image, no usable provider), goes to ``review_gate``, which
holds it for a human when the brand's review policy asks. Only a run with nothing accepted
(nothing to deliver) goes straight to ``finalize``.
"""

from __future__ import annotations

from typing import Literal

from brandloop.agent.state import RunState


def _to_delivery(state: RunState) -> Literal["review_gate", "finalize"]:
    """The way out of the loop: through the review gate whenever there is something to deliver."""
    return "review_gate" if state.get("accepted") else "finalize"


def after_intake(state: RunState) -> Literal["preflight", "finalize"]:
    return "finalize" if state.get("status") == "refused" else "preflight"


def after_preflight(state: RunState) -> Literal["recall", "finalize"]:
    return "finalize" if state.get("status") == "refused" else "recall"


def after_plan(state: RunState) -> Literal["generate", "review_gate", "finalize"]:
    return "generate" if state.get("candidates") else _to_delivery(state)


def after_observe(state: RunState) -> Literal["plan", "review_gate", "finalize"]:
    if len(state.get("accepted", [])) >= state["request"].count or state.get("reason"):
        return _to_delivery(state)
    return "plan"


def after_review_gate(state: RunState) -> Literal["review", "finalize"]:
    return "review" if state.get("status") == "awaiting_review" else "finalize"
