"""remember: what was accepted goes into the brand's memory for later tasks to recall."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState


async def remember(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    if ctx.memory is None:
        return {}
    request = state["request"]
    stored = 0
    for attempt_id in state.get("accepted", []):
        attempt = state["attempts"][attempt_id]
        ctx.memory.remember_prompt(
            tenant=ctx.tenant,
            brand=state["brand"].slug,
            prompt=attempt.candidate.prompt,
            model=attempt.candidate.model,
            seed=attempt.seed_returned
            if attempt.seed_returned is not None
            else attempt.candidate.seed,
            template=attempt.candidate.template,
            run_id=state["run_id"],
            campaign_id=request.campaign_id,
            scores=attempt.scores.values() if attempt.scores else {},
        )
        stored += 1
    ctx.emit(state["run_id"], "remember", "remembered", {"prompts": stored})
    return {}
