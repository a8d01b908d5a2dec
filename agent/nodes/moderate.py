"""moderate: every generated image and every provider refusal gets a moderation verdict."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from brandloop.domain import Attempt, ModerationVerdict
from brandloop.registry import crud
from brandloop.registry.db import session_scope


async def moderate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    batch = {c.id for c in state.get("candidates", [])}
    updated: dict[str, Attempt] = {}
    for attempt_id in batch:
        attempt = state["attempts"][attempt_id]
        if attempt.outcome == "refused":
            ctx.emit(
                state["run_id"],
                "moderate",
                "moderation",
                {
                    "attempt": attempt_id,
                    "allowed": False,
                    "source": "provider",
                    "reason": attempt.error,
                },
            )
            continue
        if attempt.outcome != "pending" or attempt.artifact_sha256 is None:
            continue
        verdict = ctx.image_moderator(ctx.artifacts.get(attempt.artifact_sha256))
        if not verdict.allowed:
            updated[attempt_id] = attempt.model_copy(
                update={"outcome": "blocked", "moderation": verdict}
            )
        else:
            updated[attempt_id] = attempt.model_copy(update={"moderation": verdict})
        ctx.emit(
            state["run_id"],
            "moderate",
            "moderation",
            {"attempt": attempt_id, "allowed": verdict.allowed, "categories": verdict.categories},
        )
    if updated:
        with session_scope(ctx.database_url) as session:
            for attempt in updated.values():
                crud.upsert_attempt(session, run_id=state["run_id"], attempt=attempt)
    return {"attempts": updated}


def allow_all(_image: bytes) -> ModerationVerdict:
    """The image check used when no detector is configured; says so in its verdict."""
    return ModerationVerdict(allowed=True, source="image", reasons=["no image detector configured"])
