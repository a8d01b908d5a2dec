"""finalize: ship each accepted image (receipt, XMP, signed C2PA manifest; see
``agent/shipping.py``), then record them and settle the run's status and result in one
registry transaction."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.outages import nothing_came_back
from brandloop.agent.shipping import record, ship
from brandloop.agent.state import RunState
from brandloop.domain import AcceptedImage, RunResult, RunStatus, StopCause
from brandloop.policies.drift import load_drift_policy
from brandloop.registry import crud
from brandloop.templates import drift


def _status(state: RunState, accepted: int) -> RunStatus:
    if state.get("status") == "refused":
        return "refused"
    if accepted >= state["request"].count:
        return "succeeded"
    return "partial" if accepted else "failed"


def _stop_cause(state: RunState, status: RunStatus, outage: str | None) -> StopCause | None:
    """Why the run stopped short; a run refused before spending (a conflict policy that
    refuses or asks, a brief or prompt moderation refused) stopped short as ``refused``; one
    whose every call failed at its provider (``outage``), whatever stopped it, as
    ``providers_unavailable``."""
    if status == "succeeded":
        return None
    if status == "refused":
        return "refused"
    if status == "failed" and outage is not None:
        return "providers_unavailable"
    return state.get("stop_cause")


async def finalize(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    attempts = state.get("attempts", {})
    # Signing is done before the registry transaction opens: no write lock is held meanwhile.
    shipped = [
        await ship(
            ctx,
            run_id=run_id,
            attempt=attempts[attempt_id],
            redactions=state.get("redactions", []),
            output_format=state["request"].output_format,
        )
        for attempt_id in state.get("accepted", [])
    ]
    images: list[AcceptedImage] = [item.image for item in shipped]
    with ctx.db.session() as session:
        for item in shipped:
            record(session, ctx, item)
        status = _status(state, len(images))
        cached = sum(1 for image in images if image.cache_hit)
        reason = state.get("reason", "") or (
            f"{len(images)} of {state['request'].count} accepted"
            + (f", {cached} served from the cache at $0" if cached else "")
            if status != "refused"
            else ""
        )
        outage = nothing_came_back(ctx, state) if status == "failed" else None
        if outage is not None and state.get("stop_cause") != "providers_unavailable":
            reason = f"{reason}; {outage}"  # the outage, beside what stopped the run
        cost = round(sum(a.cost_usd for a in attempts.values()), 6)
        result = RunResult(
            run_id=run_id,
            status=status,
            brand=state["brand"].name,
            brief=state["request"].brief,
            reason=reason,
            images=images,
            attempts=len(attempts),
            cost_usd=cost,
            decisions=state.get("decisions", []),
            stop_cause=_stop_cause(state, status, outage),
            clarification=state.get("clarification"),
        )
        crud.finish_run(
            session,
            run_id=run_id,
            status=status,
            reason=reason,
            template_ref=state["template"].ref,
            cost_usd=cost,
            attempt_count=len(attempts),
            accepted_count=len(images),
            result=result.model_dump(mode="json"),
        )
        drifted = [
            {"template": e.template_ref, "model": e.model, "recent_mean": e.recent_mean}
            for e in drift.observe_run(
                session, tenant=ctx.tenant, run_id=run_id, policy=load_drift_policy()
            )
        ]
    for event in drifted:
        ctx.emit(run_id, "finalize", "drift", event)
    ctx.emit(
        run_id, "finalize", "done", {"status": status, "accepted": len(images), "cost_usd": cost}
    )
    return {"status": status, "reason": reason}
