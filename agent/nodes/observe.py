"""observe: accept what meets the bar, then stop, or diagnose and set up the next round."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.diagnosis import diagnose, is_accepted, quality_index
from brandloop.agent.state import RunState
from brandloop.domain import Attempt, Decision
from brandloop.registry import crud


def _duplicates(state: RunState, batch: list[Attempt]) -> int:
    """Images of this round whose bytes another attempt of the run already produced."""
    batch_ids = {a.id for a in batch}
    seen = {
        a.artifact_sha256
        for a in state.get("attempts", {}).values()
        if a.id not in batch_ids and a.artifact_sha256
    }
    count = 0
    for attempt in batch:
        if attempt.artifact_sha256 is None:
            continue
        if attempt.artifact_sha256 in seen:
            count += 1
        seen.add(attempt.artifact_sha256)
    return count


async def observe(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    request = state["request"]
    batch = [state["attempts"][c.id] for c in state.get("candidates", [])]
    accepted = list(state.get("accepted", []))
    judged: dict[str, Attempt] = {}
    rejected: list[Attempt] = []
    for attempt in batch:
        if is_accepted(attempt, ctx.policy) and len(accepted) < request.count:
            judged[attempt.id] = attempt.model_copy(update={"outcome": "accepted"})
            accepted.append(attempt.id)
        else:
            outcome = attempt.outcome if attempt.outcome != "pending" else "rejected"
            judged[attempt.id] = attempt.model_copy(update={"outcome": outcome})
            rejected.append(judged[attempt.id])
    with ctx.db.session() as session:
        for attempt in judged.values():
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)

    ctx.emit(run_id, "observe", "accepted", {"accepted": len(accepted), "wanted": request.count})
    update: dict[str, Any] = {"attempts": judged, "accepted": accepted}
    spent = state.get("spent_usd", 0.0)
    cheapest = min(m.price_per_image_usd for m in ctx.models)
    if len(accepted) >= request.count:
        decisions = [
            Decision(
                node="observe",
                action="finalize",
                reason=f"{len(accepted)} of {request.count} accepted",
            )
        ]
    elif state.get("iteration", 0) >= ctx.policy.max_iterations:
        reason = f"stopped after {state['iteration']} rounds with {len(accepted)} of {request.count} accepted"
        decisions = [Decision(node="observe", action="stop_iterations", reason=reason)]
        update["reason"] = reason
    elif ctx.budget_usd - spent + 1e-9 < cheapest:
        reason = f"budget spent (${spent:.3f} of ${ctx.budget_usd:.3f}) with {len(accepted)} of {request.count} accepted"
        decisions = [Decision(node="observe", action="stop_budget", reason=reason)]
        update["reason"] = reason
    else:
        replan = diagnose(
            rejected,
            emphasis=state.get("emphasis", "normal"),
            modifiers=state.get("modifiers", []),
            model_index=state.get("model_index", 0),
            ladder_size=len(ctx.models),
            excluded_models=state.get("excluded_models", []),
            duplicates=_duplicates(state, batch),
            quality_boost=state.get("quality_boost", 0),
            can_raise_quality=any(
                quality_index(ctx.model(a.candidate.model), state.get("quality_boost", 0) + 1)
                is not None
                for a in rejected
            ),
        )
        decisions = replan.decisions
        update.update(
            emphasis=replan.emphasis,
            modifiers=replan.modifiers,
            model_index=replan.model_index,
            excluded_models=replan.excluded_models,
            quality_boost=replan.quality_boost,
        )
        if replan.stop:
            update["reason"] = replan.stop
    for decision in decisions:
        ctx.emit(run_id, "observe", "decision", decision.model_dump(mode="json"))
    update["decisions"] = decisions
    return update
