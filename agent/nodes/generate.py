"""generate: call the providers for the planned candidates, at most once per idempotency key.

Each candidate's key is derived from the run and the candidate, so a resumed run finds the
attempt a crashed run already paid for in the registry and reuses its image. Before each call
its estimated cost is reserved in the spend ledger (``agent/budgets.py``); the call is made
only if the reservation holds, and the reservation is settled to what the provider billed in
the transaction that keeps the images, records the attempts and caches the images. Once the
provider has answered, post-processing and that transaction run to their end even if the run is
cancelled meanwhile (the charge is known: it is settled, not left unknown). When one call
fails, the calls still running beside it are cancelled, each recording how it ended. A call key
already in the ledger is never paid again: billed calls are rebuilt from the registry, unknown
ones stay unknown.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
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
from brandloop.artifacts import sha256_hex
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
from brandloop.registry.artifact_owners import discard_unowned, keep_artifact
from brandloop.registry.types import usd
from brandloop.tools import cache as generation_cache
from brandloop.tools.credentials import FIT_EDITS
from brandloop.tools.providers._http import redact_error, redact_returned
from brandloop.tools.providers.batching import batch_candidates, batch_key, build_request
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RefusedByProviderError,
    TerminalProviderError,
    billing_of,
)
from brandloop.tools.providers.postprocess import fit

log = logging.getLogger(__name__)


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
) -> tuple[Attempt, str] | None:
    """The cache step: an identical earlier generation, free, recorded as a hit - never one
    made for a request that named another seed. Returns the attempt and the entry's key: its
    hit is counted in the transaction that records the attempt."""
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
        ), entry.key


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
) -> tuple[Attempt, str | None] | None:
    """An attempt already paid for (a resumed run), or an identical cached generation with the
    key of the cache entry whose hit it is (None: nothing to count)."""
    key = idempotency_key(run_id, candidate)
    paid = _already_paid(ctx, key, candidate)
    if paid is not None:
        return paid, None
    return _from_cache(ctx, key, candidate, request_seed)


#: an attempt whose call was in flight when its run was stopped
INTERRUPTED = "the run was stopped while this call was in flight: it may have been billed"
#: an attempt whose call failed in a way no provider error describes (a broken client)
BROKEN = "the call failed unexpectedly ({error}): it may have been billed"


@dataclass(frozen=True)
class Settlement:
    """How one provider call ended, for its reservation."""

    call_key: str
    billing: Billing
    charged_usd: float


@dataclass(frozen=True)
class _Image:
    """A paid image to keep as its attempt's artifact, in the transaction that settles its call."""

    attempt_id: str
    image: GeneratedImage
    edits: list[str]


@dataclass(frozen=True)
class _Call:
    """One batch's call as it came back: its attempts (final, unless ``result`` holds the
    provider's answer, still to post-process) and how to settle its reservation."""

    batch: list[Candidate]
    attempts: list[Attempt]
    settlement: Settlement | None = None
    result: ImageResult | None = None
    elapsed_s: float = 0.0


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
    settled: dict[str, Attempt] = {}
    for candidate in candidates:
        found = _settled(ctx, run_id, candidate, request_seed)
        if found is None:
            continue
        attempt, hit = found
        # a cache hit is counted with the attempt it serves: never one without the other
        with ctx.db.session() as session:
            if hit is not None:
                generation_cache.count_hit(session, key=hit)
            crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
        settled[candidate.id] = attempt
    batches = batch_candidates([c for c in candidates if c.id not in settled], ctx.model)

    async def call_and_record(batch: list[Candidate]) -> list[Attempt]:
        # Recorded as each call returns, not after the slowest one: a SIGKILL while another
        # call is in flight must not lose what this one paid for. Once the provider has
        # answered, the rest runs to its end even if the run is cancelled meanwhile: the
        # charge is known, so it is settled rather than left held (unknown at the whole
        # reservation).
        call = await _attempt_batch(ctx, run_id, batch, refusals)
        return await _finish(ctx, run_id, call, request_seed)

    tasks = [asyncio.ensure_future(call_and_record(batch)) for batch in batches]
    try:
        called = await asyncio.gather(*tasks)
    except BaseException:
        # one call failed (or the run was stopped): the calls still running stop too, each
        # recording how it ended (unknown in flight, settled once answered), before this raises
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for attempt in (a for group in called for a in group):
        settled[attempt.id] = attempt
    return [settled[c.id] for c in candidates if c.id in settled]


async def _finish(
    ctx: RunContext, run_id: str, call: _Call, request_seed: int | None
) -> list[Attempt]:
    """Post-process the call's images and record it (see :func:`_record`). The provider has
    answered, so the charge is known: a cancel that lands meanwhile (the only wait is fitting
    an image to size, :func:`_fitted`) is held back until the call is recorded and settled,
    then raised. Nothing here gives the loop away otherwise, so a call answered at once is
    settled before the round's next call reserves (``test_budget_stops``)."""
    stopped: list[bool] = []
    attempts, images = await _post_processed(ctx, call, stopped)
    _record(ctx, run_id, attempts, images, call.settlement, request_seed)
    if stopped:
        raise asyncio.CancelledError
    return attempts


def _record(
    ctx: RunContext,
    run_id: str,
    attempts: list[Attempt],
    images: list[_Image],
    settlement: Settlement | None,
    request_seed: int | None,
) -> None:
    """One transaction keeps the call's images (artifact rows), settles its reservation,
    records its attempts and caches the images, so the ledger, the attempts, the artifacts and
    the cache never disagree. Should it fail, none of them stays: the resumed run finds the
    reservation held (unknown, not sent again), never a free cache hit, and no artifact row
    is left that nothing points to; image files it wrote that no tenant owns are removed. A
    worker whose lease moved on writes no file either."""
    if images:
        fencing.verify_current()
    try:
        with ctx.db.session() as session:
            for kept in images:
                keep_artifact(
                    session,
                    ctx.artifacts,
                    kept.image.data,
                    tenant=ctx.tenant,
                    width=kept.image.width,
                    height=kept.image.height,
                    run_id=run_id,
                    attempt_id=kept.attempt_id,
                    edits=kept.edits or None,
                )
            if settlement is not None:
                spend.settle(
                    session,
                    call_key=settlement.call_key,
                    billing=settlement.billing,
                    charged_usd=settlement.charged_usd,
                )
            for attempt in attempts:
                crud.upsert_attempt(session, run_id=run_id, attempt=attempt)
            for attempt in attempts:
                _to_cache(ctx, session, attempt, request_seed)
    except Exception:
        _discard_files(ctx, images)
        raise


def _discard_files(ctx: RunContext, images: list[_Image]) -> None:
    """The files a failed :func:`_record` wrote, removed unless a tenant owns them (best
    effort: the database may be what failed)."""
    for sha256 in {sha256_hex(kept.image.data) for kept in images}:
        try:
            with ctx.db.session() as session:
                discard_unowned(session, ctx.artifacts, sha256=sha256)
        except Exception as exc:
            log.warning("could not remove the unrecorded image %s: %r", sha256, exc)


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


def _settle_unknown(
    ctx: RunContext, run_id: str, call_key: str, attempts: list[Attempt], reason: str
) -> None:
    """The call was interrupted in flight (the run was cancelled, the worker is stopping, the
    provider's client broke): it may have been billed. Its attempts are recorded as unknown at
    their share of the reservation, in the transaction that settles it, so the run's cost says
    what the ledger holds (reconciling the call corrects both)."""
    share = round(sum(a.candidate.estimated_cost_usd for a in attempts) / len(attempts), 6)
    with ctx.db.session() as session:
        spend.settle(session, call_key=call_key, billing="unknown", charged_usd=0.0)
        for attempt in attempts:
            crud.upsert_attempt(session, run_id=run_id, attempt=_unknown(attempt, share, reason))


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
) -> _Call:
    """One provider call for a batch of candidates that differ only in seed, made only once
    its reservation holds; returns its attempts and how to settle the reservation, with the
    provider's answer still to post-process (:func:`_post_processed`)."""
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
        return _Call(batch, [_failed(a, error) for a in attempts])
    request = build_request(spec, batch, idempotency_key=batch_key(keys))
    call_key = request.idempotency_key
    reservation = _reserve(ctx, run_id, provider, batch, call_key)
    if reservation.verdict == "refused":
        refusals.append(reservation.reason)
        return _Call(batch, [])
    if reservation.verdict == "billed":
        return _Call(batch, [_recorded(ctx, k, c) for k, c in zip(keys, batch, strict=True)])
    if reservation.verdict == "unknown":
        share = round(sum(c.estimated_cost_usd for c in batch) / len(batch), 6)
        return _Call(batch, [_unknown(a, share, NOT_SENT_AGAIN) for a in attempts])
    started = time.perf_counter()
    try:
        with provider_span(spec.provider, spec.model, call_key, len(batch)):
            result = await provider.generate(request)
        # what the backend says back is traced and stored: never a key or personal data
        result = redact_returned(result, secrets=ctx.secrets, pii=ctx.moderation.pii.redact)
    except ProviderError as exc:
        redact_error(exc, ctx.secrets)  # a server may echo any credential, not only its own
        _trace_call(ctx, run_id, batch, call_key, error=exc)
        failed, settlement = _call_failed(batch, attempts, call_key, exc)
        return _Call(batch, failed, settlement)
    except asyncio.CancelledError:
        _settle_unknown(ctx, run_id, call_key, attempts, INTERRUPTED)
        raise
    except Exception as exc:  # a broken client: the request may have gone out and been billed
        _settle_unknown(ctx, run_id, call_key, attempts, BROKEN.format(error=type(exc).__name__))
        raise
    finally:
        finished = time.perf_counter()
        elapsed = finished - started
        ctx.provider_intervals.append((started, finished))
    _trace_call(ctx, run_id, batch, call_key, result=result)
    settlement = Settlement(
        call_key, "billed" if result.cost_usd > 0 else "not_billed", result.cost_usd
    )
    return _Call(batch, attempts, settlement, result, elapsed)


async def _post_processed(
    ctx: RunContext, call: _Call, stopped: list[bool]
) -> tuple[list[Attempt], list[_Image]]:
    """The call's attempts once its images are fitted to the candidates' sizes, and the images
    to keep; a call with no answer to post-process keeps its attempts as they are."""
    result, settlement = call.result, call.settlement
    if result is None or settlement is None:
        return call.attempts, []
    spec = ctx.model(call.batch[0].model)
    share = round(result.cost_usd / len(call.batch), 6)
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
            for a in call.attempts
        ], []
    done: list[Attempt] = []
    images: list[_Image] = []
    for index, attempt in enumerate(call.attempts):
        if index >= len(result.images):
            error = MalformedResponseError(
                f"{spec.provider} returned {len(result.images)} of {len(call.batch)} images"
            )
            done.append(_failed(attempt, error, share))
            continue
        image = result.images[index]
        try:
            fitted = await _fitted(image, attempt.candidate, stopped)
        except MalformedResponseError as exc:
            done.append(_failed(attempt, exc, share))
            continue
        images.append(_Image(attempt.id, fitted, list(FIT_EDITS) if fitted is not image else []))
        done.append(
            attempt.model_copy(
                update={
                    "artifact_sha256": sha256_hex(fitted.data),
                    "seed_returned": image.seed if image.seed is not None else result.seed,
                    "provider_request_id": result.provider_request_id,
                    "tries": result.tries,
                    "revised_prompt": result.revised_prompt,
                    "cost_usd": share,
                    "billing": billing,
                    "latency_ms": call.elapsed_s * 1000,
                }
            )
        )
    return done, images


async def _fitted(image: GeneratedImage, cand: Candidate, stopped: list[bool]) -> GeneratedImage:
    """The image at the size the candidate asked for: post-processed (in a thread, off the
    event loop) when the model made its nearest supported size instead. A cancel meanwhile
    lets the fit finish and is noted in ``stopped`` for the caller to raise once the call is
    recorded (:func:`_finish`)."""
    if (image.width, image.height) == (cand.width, cand.height):
        return image
    work = asyncio.ensure_future(asyncio.to_thread(fit, image, cand.width, cand.height))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        stopped.append(True)
        await asyncio.wait({work})
        return work.result()


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
    above = _billed_above_reservation(attempts, spent, state["request"].budget_usd)
    if above is not None:
        ctx.emit(run_id, "generate", "decision", above.model_dump(mode="json"))
        update["decisions"] = [above]
    if refusals:  # another run took the money meanwhile: keep what was paid for, then stop
        unfunded = _unfunded(ctx, run_id, candidates, attempts, refusals[0])
        update |= {**unfunded, "decisions": [*update.get("decisions", []), *unfunded["decisions"]]}
    return update


def _billed_above_reservation(
    attempts: list[Attempt], spent: float, budget: float | None
) -> Decision | None:
    """A decision saying so when the round's calls were billed more than their reservations:
    a provider that prices by the usage it reports (text tokens of a long prompt, say) can
    charge past the catalog's price each call was reserved at, and so past the request's
    budget, after the fact. The run stops spending at the next check (observe: the budget is
    spent); this says why its cost passed its budget (it said nothing)."""
    paid = [a for a in attempts if not a.cache_hit and a.billing == "billed"]
    charged = round(sum(a.cost_usd for a in paid), 6)
    reserved = round(sum(a.candidate.estimated_cost_usd for a in paid), 6)
    if charged <= reserved + 1e-6:
        return None
    passed = (
        f"; the request's budget {usd(budget)} is passed by {usd(spent - budget)}"
        if budget is not None and spent > budget + 1e-9
        else ""
    )
    return Decision(
        node="generate",
        action="billed_above_reservation",
        reason=f"the provider billed {usd(charged)} for {len(paid)} image(s) reserved at "
        f"{usd(reserved)} (the price it reported, not the catalog's){passed}",
        signals={"charged_usd": charged, "reserved_usd": reserved},
    )


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
