"""finalize: write each accepted image with its receipt, settle the run's status and result."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from brandloop.agent.context import RunContext
from brandloop.agent.state import RunState
from brandloop.artifacts import sha256_hex
from brandloop.domain import AcceptedImage, Attempt, Receipt, RunResult, RunStatus
from brandloop.errors import present
from brandloop.policies.drift import load_drift_policy
from brandloop.providers import PREVIEW_PROVIDER
from brandloop.registry import crud
from brandloop.registry.artifact_owners import keep_artifact
from brandloop.templates import drift

PREVIEW_NOTE = (
    "procedural is brandloop's offline preview renderer: deterministic shapes and colours, "
    "not a generative model"
)


def is_preview(provider: str) -> bool:
    """The procedural renderer makes previews; every other provider is a generative model."""
    return provider == PREVIEW_PROVIDER


def _status(state: RunState, accepted: int) -> RunStatus:
    if state.get("status") == "refused":
        return "refused"
    if accepted >= state["request"].count:
        return "succeeded"
    return "partial" if accepted else "failed"


_ASKED = {"template", "prompt", "negative_prompt", "model", "width", "height", "params"}


def build_receipt(
    ctx: RunContext, run_id: str, attempt: Attempt, redactions: list[str] | None = None
) -> Receipt:
    cand = attempt.candidate
    spec = ctx.model(cand.model)
    return Receipt(
        run_id=run_id,
        attempt_id=attempt.id,
        source_sha256=attempt.artifact_sha256,
        # what was asked, as the candidate says it
        **cand.model_dump(include=_ASKED),
        seed_requested=cand.seed,
        model_version=spec.version,
        provider=spec.provider,
        provider_request_id=attempt.provider_request_id,
        seed_returned=attempt.seed_returned,
        revised_prompt=attempt.revised_prompt,
        tries=attempt.tries,
        scores=attempt.scores.values() if attempt.scores else {},
        composite=round(attempt.scores.composite, 4) if attempt.scores else 0.0,
        moderation=[attempt.moderation] if attempt.moderation else [],
        cost_usd=attempt.cost_usd,
        redactions=list(redactions or []),
        notes=[PREVIEW_NOTE] if is_preview(spec.provider) else [],
        preview=is_preview(spec.provider),
    )


async def finalize(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    attempts = state.get("attempts", {})
    images: list[AcceptedImage] = []
    with ctx.db.session() as session:
        for attempt_id in state.get("accepted", []):
            attempt = attempts[attempt_id]
            raw = present(attempt.artifact_sha256, f"accepted {attempt.id}'s image")
            scores = present(attempt.scores, f"accepted {attempt.id}'s scores")
            receipt = build_receipt(ctx, run_id, attempt, state.get("redactions", []))
            data = ctx.artifacts.encode(ctx.artifacts.get(raw), receipt.model_dump(mode="json"))
            receipt = receipt.model_copy(update={"sha256": sha256_hex(data)})
            sha, path = keep_artifact(
                session,
                ctx.artifacts,
                data,
                tenant=ctx.tenant,
                width=attempt.candidate.width,
                height=attempt.candidate.height,
                run_id=run_id,
                attempt_id=attempt.id,
                receipt=receipt.model_dump(mode="json"),
            )
            images.append(
                AcceptedImage(
                    path=str(path),
                    sha256=sha,
                    model=attempt.candidate.model,
                    seed=attempt.seed_returned,
                    template=attempt.candidate.template,
                    prompt=attempt.candidate.prompt,
                    negative_prompt=attempt.candidate.negative_prompt,
                    scores=scores.values(),
                    composite=round(scores.composite, 4),
                    cost_usd=attempt.cost_usd,
                    width=attempt.candidate.width,
                    height=attempt.candidate.height,
                    preview=receipt.preview,
                    cache_hit=attempt.cache_hit,
                )
            )
        status = _status(state, len(images))
        cached = sum(1 for image in images if image.cache_hit)
        reason = state.get("reason", "") or (
            f"{len(images)} of {state['request'].count} accepted"
            + (f", {cached} served from the cache at $0" if cached else "")
            if status != "refused"
            else ""
        )
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
            stop_cause=state.get("stop_cause") if status != "succeeded" else None,
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
