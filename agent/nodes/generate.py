"""generate: call the providers for the planned candidates, at most once per idempotency key.

Each candidate's key is derived from the run and the candidate, so a resumed run finds the
attempt a crashed run already paid for in the registry and reuses its image.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from langgraph.runtime import Runtime

from agent.context import RunContext
from agent.state import RunState
from brandloop.domain import Attempt, Candidate, ModerationVerdict
from brandloop.errors import ProviderError
from brandloop.registry import crud
from brandloop.registry.db import session_scope
from tools.providers.base import ImageRequest
from tools.providers.errors import RefusedByProviderError


def idempotency_key(run_id: str, candidate: Candidate) -> str:
    material = "|".join(
        [run_id, candidate.id, candidate.model, str(candidate.seed), candidate.prompt]
    )
    return "bl-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def _already_paid(ctx: RunContext, key: str, candidate: Candidate) -> Attempt | None:
    with session_scope(ctx.database_url) as session:
        row = crud.attempt_by_key(session, idempotency_key=key)
        if row is None or row.outcome == "pending" or row.artifact_sha256 is None:
            return None
        if not ctx.artifacts.exists(row.artifact_sha256):
            return None
        return Attempt(
            id=row.id,
            candidate=candidate,
            outcome="pending",
            artifact_sha256=row.artifact_sha256,
            seed_returned=row.seed_returned,
            provider_request_id=row.provider_request_id,
            idempotency_key=key,
            cost_usd=row.cost_usd,
            latency_ms=row.latency_ms,
        )


async def _attempt(ctx: RunContext, run_id: str, candidate: Candidate) -> Attempt:
    key = idempotency_key(run_id, candidate)
    reused = _already_paid(ctx, key, candidate)
    if reused is not None:
        return reused
    spec = ctx.model(candidate.model)
    provider = ctx.providers[spec.provider]
    attempt = Attempt(id=candidate.id, candidate=candidate, outcome="pending", idempotency_key=key)
    request = ImageRequest(
        model=spec.model,
        prompt=candidate.prompt,
        negative_prompt=candidate.negative_prompt,
        seed=candidate.seed,
        width=candidate.width,
        height=candidate.height,
        params=candidate.params,
        idempotency_key=key,
    )
    started = time.perf_counter()
    try:
        result = await provider.generate(request)
    except RefusedByProviderError as exc:
        return attempt.model_copy(
            update={
                "outcome": "refused",
                "error": str(exc),
                "moderation": ModerationVerdict(
                    allowed=False,
                    source="provider",
                    categories=["provider_refusal"],
                    reasons=[str(exc)],
                ),
            }
        )
    except ProviderError as exc:
        return attempt.model_copy(
            update={"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
        )
    finally:
        finished = time.perf_counter()
        elapsed = finished - started
        ctx.provider_intervals.append((started, finished))
    if result.finish_reason == "content_filtered" or not result.images:
        return attempt.model_copy(
            update={
                "outcome": "refused",
                "cost_usd": result.cost_usd,
                "error": "provider returned no image (content filtered)",
                "moderation": ModerationVerdict(
                    allowed=False, source="provider", categories=["content_filtered"]
                ),
            }
        )
    image = result.images[0]
    sha, path = ctx.artifacts.put(image.data)
    with session_scope(ctx.database_url) as session:
        crud.record_artifact(
            session,
            sha256=sha,
            tenant=ctx.tenant,
            path=str(path),
            width=image.width,
            height=image.height,
            size_bytes=len(image.data),
            run_id=run_id,
            attempt_id=attempt.id,
            receipt=None,
        )
    return attempt.model_copy(
        update={
            "artifact_sha256": sha,
            "seed_returned": image.seed if image.seed is not None else result.seed,
            "provider_request_id": result.provider_request_id,
            "cost_usd": result.cost_usd,
            "latency_ms": elapsed * 1000,
        }
    )


async def generate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    candidates = state.get("candidates", [])
    for candidate in candidates:
        ctx.emit(
            run_id,
            "generate",
            "attempt_started",
            {"attempt": candidate.id, "model": candidate.model},
        )
    attempts = await asyncio.gather(*(_attempt(ctx, run_id, c) for c in candidates))
    spent = state.get("spent_usd", 0.0)
    with session_scope(ctx.database_url) as session:
        for attempt in attempts:
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
    for attempt in attempts:
        spent += attempt.cost_usd
        ctx.emit(
            run_id,
            "generate",
            "attempt_finished",
            {
                "attempt": attempt.id,
                "outcome": attempt.outcome,
                "cost_usd": attempt.cost_usd,
                "error": attempt.error,
            },
        )
    return {"attempts": {a.id: a for a in attempts}, "spent_usd": round(spent, 6)}
