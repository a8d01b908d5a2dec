"""intake: load the brand and template, moderate the brief; refusals end the run here."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from agent.templates import resolve_template
from brandloop.domain import Decision
from brandloop.registry import crud
from brandloop.registry.db import session_scope
from tools.moderation.text import moderate_text


async def intake(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    request = state["request"]
    with session_scope(ctx.database_url) as session:
        brand_row = crud.get_brand(session, tenant=ctx.tenant, ref=request.brand)
        assert brand_row is not None, "the runner checks the brand before the run starts"
        brand = crud.brand_kit(brand_row)
        template = resolve_template(
            session, tenant=ctx.tenant, ref=request.template, request_id=state["run_id"]
        )
    verdict = moderate_text(request.brief, forbidden_terms=brand.forbidden_terms, source="brief")
    if not verdict.allowed:
        decision = Decision(
            node="intake",
            action="refuse",
            reason="brief refused by text moderation: " + "; ".join(verdict.reasons),
        )
        ctx.emit(state["run_id"], "intake", "decision", decision.model_dump(mode="json"))
        return {
            "brand": brand,
            "brand_id": brand_row.id,
            "template": template,
            "status": "refused",
            "reason": decision.reason,
            "decisions": [decision],
        }
    decision = Decision(
        node="intake",
        action="accept_brief",
        reason=f"brief passed moderation; brand {brand.name}, template {template.ref}",
    )
    ctx.emit(state["run_id"], "intake", "decision", decision.model_dump(mode="json"))
    return {
        "brand": brand,
        "brand_id": brand_row.id,
        "template": template,
        "emphasis": "normal",
        "modifiers": [],
        "model_index": 0,
        "iteration": 0,
        "spent_usd": 0.0,
        "accepted": [],
        "attempts": {},
        "status": "running",
        "decisions": [decision],
    }
