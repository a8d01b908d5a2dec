"""review_gate and review: a human approves or rejects accepted images before delivery.

The brand's review policy (``policies/agent.py``) decides whether a run must wait. review_gate
marks the run ``awaiting_review``; review then stops the graph with LangGraph's ``interrupt()``
and continues when ``brandloop review approve|reject RUN_ID`` resumes it with the answer.
The gate and the wait are two nodes so that nothing with a side effect runs twice on resume.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from brandloop.agent.context import RunContext
from brandloop.agent.state import RunState
from brandloop.domain import Attempt, Decision
from brandloop.registry import crud
from brandloop.registry.models import RunRow


def review_reason(state: RunState, ctx: RunContext) -> str | None:
    """Why this run must wait for a human, or None if it need not."""
    policy = ctx.policy.review_for(state["brand"].slug)
    accepted = [state["attempts"][a] for a in state.get("accepted", [])]
    if policy.mode == "never" or not accepted:
        return None
    if policy.mode == "always":
        return f"brand {state['brand'].name} requires review of every delivery"
    if policy.mode == "below_score":
        low = [
            a for a in accepted if a.scores is not None and a.scores.composite < policy.score_band
        ]
        if low:
            worst = min(a.scores.composite for a in low if a.scores is not None)
            return f"{len(low)} accepted image(s) below the review band {policy.score_band:.2f} (lowest {worst:.2f})"
        return None
    template = state["template"]
    if template.status != "approved":
        return f"template {template.ref} is {template.status}, not approved for production"
    return None


async def review_gate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    reason = review_reason(state, ctx)
    if reason is None:
        return {}
    decision = Decision(node="review", action="request_review", reason=reason)
    attempts = state.get("attempts", {})
    with ctx.db.session() as session:
        crud.hold_run_for_review(
            session,
            run_id=state["run_id"],
            reason=reason,
            template_ref=state["template"].ref,
            cost_usd=round(sum(a.cost_usd for a in attempts.values()), 6),
            attempt_count=len(attempts),
            accepted_count=len(state.get("accepted", [])),
        )
    ctx.emit(state["run_id"], "review", "decision", decision.model_dump(mode="json"))
    return {"status": "awaiting_review", "decisions": [decision]}


async def review(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    answer = interrupt(
        {
            "run_id": state["run_id"],
            "accepted": list(state.get("accepted", [])),
            "question": "approve or reject the accepted images",
        }
    )
    verdict = str(answer.get("decision", "reject"))
    note = str(answer.get("note", ""))
    actor = str(answer.get("actor", "reviewer"))
    with ctx.db.session() as session:
        row = session.get(RunRow, state["run_id"])
        if row is not None:
            row.status = "running"
    if verdict == "approve":
        decision = Decision(
            node="review",
            action="approved",
            reason=f"approved by {actor}" + (f": {note}" if note else ""),
        )
        ctx.emit(state["run_id"], "review", "decision", decision.model_dump(mode="json"))
        left_out = _without_deleted(state, ctx)
        decisions = [decision, *left_out.pop("decisions", [])]
        return {"status": "running", "review": answer, "decisions": decisions, **left_out}
    rejected: dict[str, Attempt] = {
        a: state["attempts"][a].model_copy(update={"outcome": "rejected"})
        for a in state.get("accepted", [])
    }
    with ctx.db.session() as session:
        for attempt in rejected.values():
            crud.upsert_attempt(session, run_id=state["run_id"], attempt=attempt)
    reason = f"rejected in review by {actor}" + (f": {note}" if note else "")
    decision = Decision(node="review", action="rejected", reason=reason)
    ctx.emit(state["run_id"], "review", "decision", decision.model_dump(mode="json"))
    return {
        "status": "running",
        "review": answer,
        "attempts": rejected,
        "accepted": [],
        "reason": reason,
        "decisions": [decision],
    }


def _without_deleted(state: RunState, ctx: RunContext) -> dict[str, Any]:
    """An approval delivers the accepted images the tenant still has: one whose bytes were
    deleted while the run waited (``DELETE /v1/artifacts/{sha256}``) is left out, with a
    decision saying so, never signed and shipped from a copy another tenant may hold."""
    accepted = list(state.get("accepted", []))
    with ctx.db.session() as session:
        gone = [
            a
            for a in accepted
            if (sha := state["attempts"][a].artifact_sha256) is None
            or crud.get_artifact(session, tenant=ctx.tenant, sha256=sha) is None
        ]
    if not gone:
        return {}
    decisions = []
    for attempt_id in gone:
        sha = state["attempts"][attempt_id].artifact_sha256 or "?"
        decision = Decision(
            node="review",
            action="not_delivered",
            reason=f"image {sha[:12]} (attempt {attempt_id}) was deleted while the run waited "
            "for review: it is not delivered",
        )
        ctx.emit(state["run_id"], "review", "decision", decision.model_dump(mode="json"))
        decisions.append(decision)
    kept = [a for a in accepted if a not in gone]
    update: dict[str, Any] = {"accepted": kept, "decisions": decisions}
    if not kept:
        update["reason"] = (
            f"approved, but every accepted image ({len(gone)}) was deleted while the run "
            "waited for review: nothing delivered"
        )
    return update
