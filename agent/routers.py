"""Pure routing functions: the next node from the state, nothing else."""

from __future__ import annotations

from typing import Literal

from brandloop.agent.state import RunState


def after_intake(state: RunState) -> Literal["preflight", "finalize"]:
    return "finalize" if state.get("status") == "refused" else "preflight"


def after_preflight(state: RunState) -> Literal["recall", "finalize"]:
    return "finalize" if state.get("status") == "refused" else "recall"


def after_plan(state: RunState) -> Literal["generate", "finalize"]:
    return "generate" if state.get("candidates") else "finalize"


def after_observe(state: RunState) -> Literal["plan", "review_gate", "finalize"]:
    if len(state.get("accepted", [])) >= state["request"].count or state.get("reason"):
        return "review_gate" if state.get("accepted") else "finalize"
    return "plan"


def after_review_gate(state: RunState) -> Literal["review", "finalize"]:
    return "review" if state.get("status") == "awaiting_review" else "finalize"
