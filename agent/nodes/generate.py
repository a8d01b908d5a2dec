"""generate: call the providers for the planned candidates, at most once per idempotency key.

Each candidate's key is derived from the run and the candidate, so a resumed run finds the
attempt a crashed run already paid for in the registry and reuses its image. Before each call
its estimated cost is reserved in the spend ledger (``agent/budgets.py``); the call is made
only if the reservation holds, and the reservation is settled to what the provider billed in
the transaction that records the attempts and caches their images. A call key already in the
ledger is never paid again: billed calls are rebuilt from the registry, unknown ones stay
unknown.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime
from sqlalchemy.orm import Session

from brandloop.agent.budgets import CallReservation, reserve_call
from brandloop.agent.context import RunContext
from brandloop.agent.diagnosis import NOT_SENT_AGAIN
from brandloop.agent.state import RunState
from brandloop.agent.tracing import provider_span
from brandloop.domain import (
    Attempt,
    AttemptOutcome,
    Billing,
    Candidate,
    Decision,
    ModerationVerdict,
)
from brandloop.errors import ProviderError
from brandloop.policies.catalog import image_price
from brandloop.providers import GeneratedImage, ImageProvider, ImageResult
from brandloop.registry import crud, fencing, spend
from brandloop.registry.artifact_owners import keep_artifact
from brandloop.tools import cache as generation_cache
from brandloop.tools.credentials import FIT_EDITS
from brandloop.tools.providers._http import redact_returned
from brandloop.tools.providers.batching import batch_candidates, batch_key, build_request
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    TerminalProviderError,
    billing_of,
)
from brandloop.tools.providers.postprocess import fit


def idempotency_key(run_id: str, candidate: Candidate) -> str:
    material = "|".join(
        [run_id, candidate.id, candidate.model, str(candidate.seed), candidate.prompt]
    )
    return "bl-" + hashlib.sha256(material.encode()).hexdigest()[:40]


def _already_paid(ctx: RunContext, key: str, candidate: Candidate) -> Attempt | None:
    with ctx.db.session() as session:
        row = crud.attempt_by_key(session, idempotency_key=key)
        if row is None or row.artifact_sha256 is None:
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
            billing=row.billing,  # type: ignore[arg-type,unused-ignore]
            latency_ms=row.latency_ms,
            cache_hit=row.cache_hit,
        )


def _recorded(ctx: RunContext, key: str, candidate: Candidate) -> Attempt:
    """A candidate whose call was billed already and made no usable image (content filtered,
    the wrong checkpoint): its attempt as the registry holds it, not paid again."""
    with ctx.db.session() as session:
        row = crud.attempt_by_key(session, idempotency_key=key)
        if row is None:
            return Attempt(
                id=candidate.id,
                candidate=candidate,
                outcome="error",
                idempotency_key=key,
                billing="billed",
                error="this call was billed but its attempt record is missing; not paid again",
            )
        outcome: AttemptOutcome = "refused" if row.outcome == "refused" else "error"
        return Attempt(
            id=row.id,
            candidate=candidate,
            outcome=outcome,
            provider_request_id=row.provider_request_id,
            idempotency_key=key,
            tries=row.tries,
            cost_usd=row.cost_usd,
            billing="billed",
            error=row.error or "this call was billed and its image is gone; not paid again",
            moderation=ModerationVerdict.model_validate(row.moderation) if row.moderation else None,
        )


def _from_cache(
    ctx: RunContext, key: str, candidate: Candidate, request_seed: int | None
) -> Attempt | None:
    """The cache step: an identical earlier generation, free, recorded as a hit - never one
    made for a request that named another seed."""
    if not ctx.use_cache:
        return None
    spec = ctx.model(candidate.model)
    with ctx.db.session() as session:
        entry = generation_cache.lookup(
            session,
            tenant=ctx.tenant,
            key=generation_cache.cache_key(
                spec, candidate, tenant=ctx.tenant, request_seed=request_seed
            ),
            spec=spec,
            template_ref=candidate.template,
        )
        if entry is None or not ctx.artifacts.exists(entry.artifact_sha256):
            return None
        return Attempt(
            id=candidate.id,
            candidate=candidate,
            outcome="pending",
            artifact_sha256=entry.artifact_sha256,
            seed_returned=entry.seed_returned,
            provider_request_id=entry.provider_request_id,
            idempotency_key=key,
            cost_usd=0.0,
            cache_hit=True,
        )


def _to_cache(
    ctx: RunContext, session: Session, attempt: Attempt, request_seed: int | None
) -> None:
    """Cache a paid image in ``session``: the transaction that settles its call and records
    its attempt, so an entry never outlives a failure of that transaction (a resumed run
    would take the billed call for a free hit and leave its reservation held)."""
    if not ctx.use_cache or attempt.artifact_sha256 is None or attempt.cache_hit:
        return
    spec = ctx.model(attempt.candidate.model)
    generation_cache.store(
        session,
        tenant=ctx.tenant,
        key=generation_cache.cache_key(
            spec, attempt.candidate, tenant=ctx.tenant, request_seed=request_seed
        ),
        spec=spec,
        template_ref=attempt.candidate.template,
        artifact_sha256=attempt.artifact_sha256,
        seed_returned=attempt.seed_returned,
        provider_request_id=attempt.provider_request_id,
        cost_usd=attempt.cost_usd,
    )


def _settled(
    ctx: RunContext, run_id: str, candidate: Candidate, request_seed: int | None
) -> Attempt | None:
    """An attempt already paid for (a resumed run) or an identical cached generation."""
    key = idempotency_key(run_id, candidate)
    return _already_paid(ctx, key, candidate) or _from_cache(ctx, key, candidate, request_seed)


#: an attempt whose call was in flight when its run was stopped
INTERRUPTED = "the run was stopped while this call was in flight: it may have been billed"


@dataclass(frozen=True)
class Settlement:
    """How one provider call ended, for its reservation."""

    call_key: str
    billing: Billing
    charged_usd: float


async def _attempt_all(
    ctx: RunContext,
    run_id: str,
    candidates: list[Candidate],
    refusals: list[str],
    request_seed: int | None,
) -> list[Attempt]:
    """Reuse, cache, or call - candidates that differ only in seed share one call where the
    backend makes several images per call. Each attempt is in the registry as soon as it is
    known, so a run killed while other calls are still in flight does not pay for it again.
    Candidates whose call the budgets could not hold get no attempt; ``refusals`` says why."""
    settled = {
        c.id: a for c in candidates if (a := _settled(ctx, run_id, c, request_seed)) is not None
    }
    for attempt in settled.values():
        with ctx.db.session() as session:
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
    batches = batch_candidates([c for c in candidates if c.id not in settled], ctx.model)

    async def call_and_record(batch: list[Candidate]) -> list[Attempt]:
        # Recorded as each call returns, not after the slowest one: a SIGKILL while another
        # call is in flight must not lose what this one paid for. The reservation is settled,
        # the attempts recorded and their images cached in one transaction, so the ledger,
        # the attempts and the cache never disagree: should it fail, the resumed run finds
        # the reservation held (unknown, not sent again), never a free cache hit.
        group, settlement = await _attempt_batch(ctx, run_id, batch, refusals)
        with ctx.db.session() as session:
            if settlement is not None:
                spend.settle(
                    session,
                    call_key=settlement.call_key,
                    billing=settlement.billing,
                    charged_usd=settlement.charged_usd,
                )
            for attempt in group:
                crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
            for attempt in group:
                _to_cache(ctx, session, attempt, request_seed)
        return group

    called = await asyncio.gather(*(call_and_record(batch) for batch in batches))
    for attempt in (a for group in called for a in group):
        settled[attempt.id] = attempt
    return [settled[c.id] for c in candidates if c.id in settled]


def _reserve(
    ctx: RunContext,
    run_id: str,
    provider: ImageProvider,
    batch: list[Candidate],
    call_key: str,
) -> CallReservation:
    """Hold the call's estimated cost against every budget before paying (see budgets.py)."""
    fence = fencing.current()
    with ctx.db.session() as session:
        return reserve_call(
            session,
            tenant=ctx.tenant,
            run_id=run_id,
            campaign_id=ctx.campaign_id,
            request_budget_usd=ctx.budget_usd,
            call_key=call_key,
            amount_usd=sum(c.estimated_cost_usd for c in batch),
            provider=provider.name,
            model=batch[0].model,
            attempt_ids=[c.id for c in batch],
            fence=fence.token if fence is not None else None,
            replay_safe=bool(getattr(provider, "replay_safe", False)),
        )


def _settle_unknown(ctx: RunContext, run_id: str, call_key: str, attempts: list[Attempt]) -> None:
    """The call was interrupted in flight (the run was cancelled, or the worker is stopping):
    it may have been billed. Its attempts are recorded as unknown at their share of the
    reservation, in the transaction that settles it, so the run's cost says what the ledger
    holds (reconciling the call corrects both)."""
    share = round(sum(a.candidate.estimated_cost_usd for a in attempts) / len(attempts), 6)
    with ctx.db.session() as session:
        spend.settle(session, call_key=call_key, billing="unknown", charged_usd=0.0)
        for attempt in attempts:
            crud.upsert_attempt(
                session, run_id=run_id, attempt=_unknown(attempt, share, INTERRUPTED)
            )


def _unknown(attempt: Attempt, share: float, reason: str) -> Attempt:
    return attempt.model_copy(
        update={
            "outcome": "error",
            "tries": 0,
            "billing": "unknown",
            "cost_usd": share,
            "error": reason,
        }
    )


def _failed(attempt: Attempt, exc: ProviderError, cost_usd: float = 0.0) -> Attempt:
    """A provider error or refusal as the attempt's outcome, with how many tries it took and
    what it cost (a billed refusal, an unknown outcome)."""
    tries = getattr(exc, "tries", 1)
    detail = f"{exc} (after {tries} tries)" if tries > 1 else str(exc)
    billing, _ = billing_of(exc)
    if isinstance(exc, RefusedByProviderError):
        return attempt.model_copy(
            update={
                "tries": tries,
                "cost_usd": cost_usd,
                "billing": billing,
                "outcome": "refused",
                "error": detail,
                "moderation": ModerationVerdict(
                    allowed=False,
                    source="provider",
                    categories=["provider_refusal"],
                    reasons=[str(exc)],
                ),
            }
        )
    return attempt.model_copy(
        update={
            "tries": tries,
            "cost_usd": cost_usd,
            "billing": billing,
            "outcome": "error",
            "error": f"{type(exc).__name__}: {detail}",
        }
    )


def _call_failed(
    batch: list[Candidate], attempts: list[Attempt], call_key: str, exc: ProviderError
) -> tuple[list[Attempt], Settlement]:
    """A failed call costs what the provider billed (its charge, else the reservation), the
    whole reservation when the outcome is unknown, nothing when it was not billed."""
    billing, charged = billing_of(exc)
    reserved = sum(c.estimated_cost_usd for c in batch)
    cost = {"billed": reserved if charged is None else charged, "unknown": reserved}.get(
        billing, 0.0
    )
    share = round(cost / len(batch), 6)
    return [_failed(a, exc, share) for a in attempts], Settlement(call_key, billing, cost)


def _at_catalog_price(ctx: RunContext, candidate: Candidate) -> Candidate:
    """``candidate`` estimated at no less than the catalog's price for its image: whatever
    planned it, a candidate that reaches a provider is never reserved below what the call
    may cost ($0 only where the catalog says the image is free)."""
    price = image_price(
        ctx.model(candidate.model),
        width=candidate.width,
        height=candidate.height,
        quality=candidate.params.get("quality"),
    )
    if candidate.estimated_cost_usd >= price:
        return candidate
    return candidate.model_copy(update={"estimated_cost_usd": price})


async def _attempt_batch(
    ctx: RunContext, run_id: str, batch: list[Candidate], refusals: list[str]
) -> tuple[list[Attempt], Settlement | None]:
    """One provider call for a batch of candidates that differ only in seed, made only once
    its reservation holds; returns the attempts and how to settle the reservation."""
    spec = ctx.model(batch[0].model)
    batch = [_at_catalog_price(ctx, c) for c in batch]
    keys = [idempotency_key(run_id, c) for c in batch]
    attempts = [
        Attempt(id=c.id, candidate=c, outcome="pending", idempotency_key=k)
        for c, k in zip(batch, keys, strict=True)
    ]
    provider = ctx.providers.get(spec.provider)
    if provider is None:
        error = TerminalProviderError(f"provider {spec.provider!r} is not configured")
        return [_failed(a, error) for a in attempts], None
    request = build_request(spec, batch, idempotency_key=batch_key(keys))
    call_key = request.idempotency_key
    reservation = _reserve(ctx, run_id, provider, batch, call_key)
    if reservation.verdict == "refused":
        refusals.append(reservation.reason)
        return [], None
    if reservation.verdict == "billed":
        return [_recorded(ctx, k, c) for k, c in zip(keys, batch, strict=True)], None
    if reservation.verdict == "unknown":
        share = round(sum(c.estimated_cost_usd for c in batch) / len(batch), 6)
        return [_unknown(a, share, NOT_SENT_AGAIN) for a in attempts], None
    started = time.perf_counter()
    try:
        with provider_span(spec.provider, spec.model, call_key, len(batch)):
            result = await provider.generate(request)
        # what the backend says back is traced and stored: never a key or personal data
        result = redact_returned(result, secrets=ctx.secrets, pii=ctx.moderation.pii.redact)
    except ProviderError as exc:
        _trace_call(ctx, run_id, batch, call_key, error=exc)
        return _call_failed(batch, attempts, call_key, exc)
    except asyncio.CancelledError:
        _settle_unknown(ctx, run_id, call_key, attempts)
        raise
    finally:
        finished = time.perf_counter()
        elapsed = finished - started
        ctx.provider_intervals.append((started, finished))
    _trace_call(ctx, run_id, batch, call_key, result=result)
    settlement = Settlement(
        call_key, "billed" if result.cost_usd > 0 else "not_billed", result.cost_usd
    )
    share = round(result.cost_usd / len(batch), 6)
    billing: Billing = settlement.billing
    if result.finish_reason == "content_filtered" or not result.images:
        return [
            a.model_copy(
                update={
                    "outcome": "refused",
                    "tries": result.tries,
                    "cost_usd": share,
                    "billing": billing,
                    "error": "provider returned no image (content filtered)",
                    "moderation": ModerationVerdict(
                        allowed=False, source="provider", categories=["content_filtered"]
                    ),
                }
            )
            for a in attempts
        ], settlement
    done = []
    for index, attempt in enumerate(attempts):
        if index >= len(result.images):
            error = MalformedResponseError(
                f"{spec.provider} returned {len(result.images)} of {len(batch)} images"
            )
            done.append(_failed(attempt, error, share))
            continue
        image = result.images[index]
        try:
            fitted = await _fitted(image, attempt.candidate)
            edits = list(FIT_EDITS) if fitted is not image else []
            stored = _store(ctx, run_id, attempt, fitted, edits)
        except MalformedResponseError as exc:
            done.append(_failed(attempt, exc, share))
            continue
        done.append(
            stored.model_copy(
                update={
                    "seed_returned": image.seed if image.seed is not None else result.seed,
                    "provider_request_id": result.provider_request_id,
                    "tries": result.tries,
                    "revised_prompt": result.revised_prompt,
                    "cost_usd": share,
                    "billing": billing,
                    "latency_ms": elapsed * 1000,
                }
            )
        )
    return done, settlement


async def _fitted(image: GeneratedImage, cand: Candidate) -> GeneratedImage:
    """The image at the size the candidate asked for: post-processed (in a thread, off the
    event loop) when the model made its nearest supported size instead."""
    if (image.width, image.height) == (cand.width, cand.height):
        return image
    return await asyncio.to_thread(fit, image, cand.width, cand.height)


def _store(
    ctx: RunContext, run_id: str, attempt: Attempt, image: GeneratedImage, edits: list[str]
) -> Attempt:
    """Keep the image as the attempt's artifact, owned by the run's tenant, with the edits
    post-processing made to it (the signed manifest of an accepted image lists them); a worker
    whose lease moved on writes no file either."""
    fencing.verify_current()
    with ctx.db.session() as session:
        sha, _ = keep_artifact(
            session,
            ctx.artifacts,
            image.data,
            tenant=ctx.tenant,
            width=image.width,
            height=image.height,
            run_id=run_id,
            attempt_id=attempt.id,
            edits=edits or None,
        )
    return attempt.model_copy(update={"artifact_sha256": sha})


def _trace_call(
    ctx: RunContext,
    run_id: str,
    batch: list[Candidate],
    key: str,
    *,
    result: ImageResult | None = None,
    error: ProviderError | None = None,
) -> None:
    """One trace event per provider call: tries, cost, request id, revised prompt, error."""
    payload: dict[str, Any] = {
        "attempts": [c.id for c in batch],
        "model": batch[0].model,
        "idempotency_key": key,
        "tries": result.tries if result is not None else getattr(error, "tries", 1),
    }
    if result is not None:
        payload |= {
            "cost_usd": result.cost_usd,
            "provider_request_id": result.provider_request_id,
            "revised_prompt": result.revised_prompt,
            "usage": result.usage,
        }
    if error is not None:
        payload["error"] = f"{type(error).__name__}: {error}"
    ctx.emit(run_id, "generate", "provider_call", payload)


async def generate(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    run_id = state["run_id"]
    candidates = state.get("candidates", [])
    # a resumed run runs this node again: what its trace already says is not said twice
    with ctx.db.session() as session:
        started = crud.traced_attempts(session, run_id=run_id, kind="attempt_started")
        finished = crud.traced_attempts(session, run_id=run_id, kind="attempt_finished")
    for candidate in candidates:
        if candidate.id in started:
            continue
        ctx.emit(
            run_id,
            "generate",
            "attempt_started",
            {"attempt": candidate.id, "model": candidate.model},
        )
    refusals: list[str] = []
    try:
        attempts = await _attempt_all(ctx, run_id, candidates, refusals, state["request"].seed)
    except asyncio.CancelledError:
        _trace_stopped(ctx, run_id, candidates, finished)
        raise
    spent = state.get("spent_usd", 0.0)
    with ctx.db.session() as session:
        for attempt in attempts:
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
    for attempt in attempts:
        spent += attempt.cost_usd
        if attempt.id in finished:
            continue
        ctx.emit(
            run_id,
            "generate",
            "attempt_finished",
            {
                "attempt": attempt.id,
                "outcome": attempt.outcome,
                "cost_usd": attempt.cost_usd,
                "error": attempt.error,
                "cache_hit": attempt.cache_hit,
                "billing": attempt.billing,
            },
        )
    update: dict[str, Any] = {"attempts": {a.id: a for a in attempts}, "spent_usd": round(spent, 6)}
    if refusals:  # another run took the money meanwhile: keep what was paid for, then stop
        update |= _unfunded(ctx, run_id, candidates, attempts, refusals[0])
    return update


def _trace_stopped(
    ctx: RunContext, run_id: str, candidates: list[Candidate], finished: set[str]
) -> None:
    """The run was stopped (cancelled, or its worker is stopping) with calls in flight: each
    attempt they recorded - unknown at its share of the reservation, or settled - gets its
    ``attempt_finished`` now, as the registry holds it, so no paid attempt is left started
    and never finished. A candidate with no attempt yet had no call made: a resumed run makes
    it and tells its end then."""
    ids = {c.id for c in candidates} - finished
    with ctx.db.session() as session:
        rows = [row for row in crud.list_attempts(session, run_id=run_id) if row.id in ids]
    for row in rows:
        ctx.emit(
            run_id,
            "generate",
            "attempt_finished",
            {
                "attempt": row.id,
                "outcome": row.outcome,
                "cost_usd": row.cost_usd,
                "error": row.error,
                "cache_hit": row.cache_hit,
                "billing": row.billing,
            },
        )


def _unfunded(
    ctx: RunContext,
    run_id: str,
    candidates: list[Candidate],
    attempts: list[Attempt],
    reason: str,
) -> dict[str, Any]:
    """The state update when a reservation was refused: only the funded candidates go on,
    and the run stops after judging them - a budget stop like the planner's and the
    observer's (``stop_cause`` budget: the job's ``budget-exhausted`` error, the CLI's exit 4
    when nothing was accepted)."""
    funded = {a.id for a in attempts}
    decision = Decision(node="generate", action="stop_budget", reason=reason)
    ctx.emit(run_id, "generate", "decision", decision.model_dump(mode="json"))
    return {
        "candidates": [c for c in candidates if c.id in funded],
        "reason": reason,
        "stop_cause": "budget",
        "decisions": [decision],
    }
