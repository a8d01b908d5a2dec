"""score: quality signals from the pixels of every image that passed moderation."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from brandloop.domain import Attempt
from brandloop.registry import crud
from brandloop.registry.db import session_scope
from tools.scoring.signals import score_image


async def score(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    brand = state["brand"]
    pending = [
        state["attempts"][c.id]
        for c in state.get("candidates", [])
        if state["attempts"][c.id].outcome == "pending"
    ]

    async def one(attempt: Attempt) -> Attempt:
        assert attempt.artifact_sha256 is not None
        data = ctx.artifacts.get(attempt.artifact_sha256)
        scores = await asyncio.to_thread(
            score_image,
            data,
            brand=brand,
            width=attempt.candidate.width,
            height=attempt.candidate.height,
            policy=ctx.scoring,
        )
        return attempt.model_copy(update={"scores": scores})

    scored = await asyncio.gather(*(one(a) for a in pending))
    with session_scope(ctx.database_url) as session:
        for attempt in scored:
            crud.upsert_attempt(session, run_id=state["run_id"], attempt=attempt)
    for attempt in scored:
        assert attempt.scores is not None
        ctx.emit(
            state["run_id"],
            "score",
            "scored",
            {
                "attempt": attempt.id,
                "composite": round(attempt.scores.composite, 4),
                "signals": attempt.scores.values(),
                "failed": attempt.scores.failed,
            },
        )
    return {"attempts": {a.id: a for a in scored}}
