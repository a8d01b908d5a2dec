"""moderate: every generated image and every provider refusal gets a moderation verdict.

Images go through ``RunContext.image_moderator`` (NudeNet with the policy's label thresholds
by default, see :mod:`brandloop.tools.moderation.image`); provider refusals, already recorded by
generate, are traced here as verdicts of the same shape.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.moderation import check_hosted
from brandloop.agent.state import RunState
from brandloop.domain import Attempt
from brandloop.errors import present
from brandloop.registry import crud
from brandloop.tools.moderation.hosted import combined
from brandloop.tools.moderation.image import UNREADABLE, provider_refusal


async def moderate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    batch = [state["attempts"][c.id] for c in state.get("candidates", [])]
    for attempt in batch:
        if attempt.outcome == "refused":
            verdict = attempt.moderation or provider_refusal(
                attempt.candidate.model, "refused", attempt.error or ""
            )
            ctx.emit(
                run_id,
                "moderate",
                "moderation",
                {"attempt": attempt.id, **verdict.model_dump(mode="json")},
            )
    images = [a for a in batch if a.outcome == "pending" and a.artifact_sha256 is not None]

    async def one(attempt: Attempt) -> Attempt:
        data = ctx.artifacts.get(present(attempt.artifact_sha256, f"{attempt.id}'s image"))
        verdict = await asyncio.to_thread(ctx.image_moderator, data)
        if verdict.allowed and ctx.hosted_moderator is not None:
            hosted, note = await check_hosted(
                ctx, run_id, node="moderate", source="image", images=[data]
            )
            verdict = combined(verdict, hosted, note)
        update: dict[str, Any] = {"moderation": verdict}
        if UNREADABLE in verdict.categories:
            # a broken or oversized file is the backend's failure, not a safety block
            update.update(outcome="error", error="unreadable image: " + "; ".join(verdict.reasons))
        elif not verdict.allowed:
            update["outcome"] = "blocked"
        return attempt.model_copy(update=update)

    moderated = await asyncio.gather(*(one(a) for a in images))
    for attempt in moderated:
        moderation = present(attempt.moderation, f"{attempt.id}'s verdict")
        ctx.emit(
            run_id,
            "moderate",
            "moderation",
            {"attempt": attempt.id, **moderation.model_dump(mode="json")},
        )
    if moderated:
        with ctx.db.session() as session:
            for attempt in moderated:
                crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
    return {"attempts": {a.id: a for a in moderated}}
