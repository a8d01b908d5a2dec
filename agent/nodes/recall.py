"""recall: what this brand (and campaign) already established - style notes, prompts that worked."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from brandloop.domain import Decision


async def recall(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    if ctx.memory is None:
        decision = Decision(node="recall", action="skip", reason="memory is off for this run")
        ctx.emit(state["run_id"], "recall", "decision", decision.model_dump(mode="json"))
        return {"style_notes": [], "recalled_seeds": [], "decisions": [decision]}
    hits = ctx.memory.recall(
        tenant=ctx.tenant,
        brand=state["brand"].slug,
        query=request.brief,
        k=5,
        campaign_id=request.campaign_id,
    )
    notes = [hit.text for hit in hits if hit.kind == "note"]
    seeds = [
        int(hit.metadata["seed"])
        for hit in hits
        if hit.kind == "prompt" and hit.metadata.get("seed") is not None
    ]
    decision = Decision(
        node="recall",
        action="recalled",
        reason=f"{len(hits)} memories for {state['brand'].name}: "
        f"{len(notes)} style notes, {len(seeds)} accepted prompts with seeds",
    )
    ctx.emit(state["run_id"], "recall", "decision", decision.model_dump(mode="json"))
    return {"style_notes": notes, "recalled_seeds": seeds, "decisions": [decision]}
