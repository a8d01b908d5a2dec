"""Start or resume a run: check the request, build the run's context, drive the graph.

This is the one entry point the CLI, the API and the eval harness call.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.agent import review_claims, run_leases
from brandloop.agent.checkpoints import checkpointer_for
from brandloop.agent.context import EventSink, ImageModerator, RunContext
from brandloop.agent.graph import compile_graph
from brandloop.agent.nodes.intake import redacted_request
from brandloop.agent.nodes.plan import fit_prompt
from brandloop.agent.retention import FINISHED, prune_checkpoints
from brandloop.agent.review_claims import Verdict
from brandloop.agent.state import RunInput, RunState
from brandloop.agent.templates import resolve_template
from brandloop.agent.writer import PromptWriter, build_writer
from brandloop.artifacts import ArtifactStore
from brandloop.domain import (
    MAX_BRIEF_CHARS,
    Decision,
    GenerationRequest,
    ModelSpec,
    RunResult,
    RunStatus,
    campaign_id_problem,
)
from brandloop.errors import (
    BadInputError,
    ConflictError,
    LeaseLostError,
    NotFoundError,
    RefusedError,
)
from brandloop.logs import bound
from brandloop.memory.store import BrandMemory
from brandloop.policies.agent import AgentPolicy, load_agent_policy
from brandloop.policies.brand_policy import (
    BrandRunPolicy,
    load_brand_run_policy,
    load_brand_scoring_policy,
)
from brandloop.policies.catalog import (
    TIER_ORDER,
    allowed_providers,
    catalog_path,
    configured_providers,
    load_catalog,
    plannable,
)
from brandloop.policies.scoring import ScoringPolicy
from brandloop.providers import PREVIEW_PROVIDER, ImageProvider
from brandloop.registry import crud, fencing, spend
from brandloop.registry.db import Database
from brandloop.registry.models import BrandRow, RunRow
from brandloop.settings import Settings, credentials_to_redact, get_writer_settings
from brandloop.tools import cache as generation_cache
from brandloop.tools.composer import compose
from brandloop.tools.credentials import signer_from_settings
from brandloop.tools.moderation.hosted import build_hosted_moderator
from brandloop.tools.moderation.image import NudeNetModerator
from brandloop.tools.moderation.policy import ModerationPolicy, load_brand_moderation_policy
from brandloop.tools.providers.factory import build_providers
from brandloop.tools.providers.factory import closing as providers_closing


@dataclass
class RunTiming:
    wall_s: float
    provider_s: float

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.provider_s


def default_providers(settings: Settings) -> dict[str, ImageProvider]:
    """Every provider the settings configure (procedural always), each behind retries,
    limits and a circuit breaker; a run closes the ones it built (``providers_closing``)."""
    return build_providers(settings, load_catalog(catalog_path(settings)))


def catalog_models(db: Database, settings: Settings) -> list[ModelSpec]:
    """The registry's catalog, with the deployment's catalog YAML merged in (``settings``
    name it: ``BRANDLOOP_CATALOG_PATH`` or ``<data_dir>/catalog.yaml``; else the shipped one).
    Every reader passes its settings: a reader that merged the shipped YAML instead would show
    the shipped prices and write them back over the deployment's."""
    with db.session() as session:
        crud.sync_catalog(session, specs=load_catalog(catalog_path(settings)))
        return crud.list_models(session)


def model_ladder(
    settings: Settings,
    models: list[ModelSpec],
    request: GenerationRequest,
    brand_policy: BrandRunPolicy,
    *,
    providers_as: str = "providers",
) -> list[ModelSpec]:
    """The models a run may use, cheapest tier first; just one when the request names it.

    Only allowed providers count: the request's and the brand's allow-lists, and the preview
    renderer only when no real provider is configured or previews are allowed (a request that
    names a procedural model allows it). An error about the request's allow-list names it as
    ``providers_as`` (the API's field; the CLI passes its flag).
    """
    policy = brand_policy
    requested = request.model
    pinned_preview = requested is not None and requested.startswith(PREVIEW_PROVIDER + "/")
    allowed = allowed_providers(
        settings,
        requested=request.providers,
        brand=policy.providers,
        allow_preview=request.allow_preview or policy.allow_preview or pinned_preview,
        requested_as=providers_as,
    )
    usable = plannable(models, settings, allowed)
    if requested is None:
        if not usable:
            raise BadInputError(
                "no model is usable: check the catalog, the provider settings and allow-lists "
                f"(allowed providers: {', '.join(sorted(allowed)) or 'none'})"
            )
        return usable
    spec = next((m for m in models if m.id == requested), None)
    if spec is None:  # a model this catalog does not hold, like an unknown brand: not found
        known = ", ".join(m.id for m in models)
        raise NotFoundError(f"unknown model {requested!r}; known models: {known}")
    if spec.status == "retired":
        raise BadInputError(f"model {requested!r} is retired")
    if spec.provider not in configured_providers(settings):
        raise BadInputError(
            f"model {requested!r} needs provider {spec.provider!r}, which is not configured"
        )
    if spec.provider not in allowed:
        raise BadInputError(
            f"model {requested!r} is from provider {spec.provider!r}, which the allow-list "
            f"leaves out (allowed: {', '.join(sorted(allowed))})"
        )
    return [spec]


def missing_brand(request: GenerationRequest) -> str:
    """Why ``request``'s brand is not there: no brand has that name or id, or - a request
    bound to its brand's id when it was admitted - that brand was removed since (never
    "unknown" then: a brand of that name may well exist, a namesake the work must not use)."""
    if request.brand_id is None:
        return f"unknown brand {request.brand!r}; add it with `brandloop brands add`"
    return f"brand {request.brand!r} ({request.brand_id}) was removed after its work was accepted"


def bound_to_brand(session: Session, request: GenerationRequest) -> GenerationRequest:
    """``request`` bound to its brand's id, under the brand's name as it is now
    (:class:`NotFoundError` when there is none). Admission binds it - a job accepted, a
    campaign planned, a run started - and every later step (the worker, the runner, intake,
    memory) finds the kit by that id: looked up by name again, a rename in between, and
    another brand taking the old name, ran the work under that other brand's kit."""
    return brand_binding(session, request)[0]


def brand_binding(
    session: Session, request: GenerationRequest
) -> tuple[GenerationRequest, BrandRow]:
    """:func:`bound_to_brand`, and the brand's row: a caller that holds it while it goes on in
    the same session reads the brand again from the session's identity map, not the database
    (the map holds rows weakly: one nobody holds is read again)."""
    row = crud.request_brand(session, request)
    if row is None:
        raise NotFoundError(missing_brand(request))
    if (row.id, row.name) == (request.brand_id, request.brand):
        return request, row
    return request.model_copy(update={"brand_id": row.id, "brand": row.name}), row


def check_request(
    db: Database, request: GenerationRequest, *, run_id: str | None = None
) -> str | None:
    """Refuse, before anything is stored, a request that names things that do not exist.

    With ``run_id`` the template is resolved as the run's intake will resolve it (a label's
    split picks the version by the run id), so a version refused for that run (rejected in
    review) is refused here, before the run row exists, and so is one that does not render
    with the brief (:func:`check_rendering`); the prompt it renders is returned (None without
    ``run_id``), for the door's moderation (``tools/moderation/minors.py``)."""
    for last in (False, True):
        try:
            with db.session() as session:
                if crud.request_brand(session, request) is None:
                    raise NotFoundError(missing_brand(request))
                resolve_template(
                    session,
                    tenant=request.tenant,
                    ref=request.template,
                    request_id=run_id or "check",
                )
            break
        except IntegrityError:  # a concurrent first request seeded the shipped templates
            if last:
                raise
    if request.budget_usd is not None and request.budget_usd <= 0:
        raise BadInputError("budget must be greater than zero")
    if request.campaign_id is not None and (problem := campaign_id_problem(request.campaign_id)):
        raise BadInputError(f"campaign_id: {problem}")
    if run_id is None:
        return None
    return check_rendering(db, redacted_request(request), run_id=run_id)


def check_rendering(
    db: Database, request: GenerationRequest, *, run_id: str, session: Session | None = None
) -> str:
    """Refuse, before the run is stored, a template version (the one this run gets) that does
    not render with the brief and the brand's clauses: past the rendered-size cap, say. Plan
    renders the same, with memory's notes on top (those give way when the prompt is long).
    The prompt is returned fitted to the text moderation's limit as plan fits it (the brief's
    tail gives way; the brief alone when the brand was removed since), for the door's check.

    With ``session`` (the API's submission, before it locks or writes anything) the brand and
    the template are read in the caller's transaction instead of a session of their own: the
    same rows, read as this request reads them, never remembered across requests."""
    if session is not None:
        return _check_rendering(session, request, run_id=run_id)
    with db.session() as own:
        return _check_rendering(own, request, run_id=run_id)


def _check_rendering(session: Session, request: GenerationRequest, *, run_id: str) -> str:
    brand_row = crud.request_brand(session, request)
    if brand_row is None:  # check_request refused it; removed since: intake says so
        return request.brief
    brand = crud.brand_kit(brand_row)
    template = resolve_template(
        session, tenant=request.tenant, ref=request.template, request_id=run_id
    )

    def build(brief: str, notes: list[str]) -> tuple[str, str]:
        return compose(
            template,
            brand=brand,
            brief=brief,
            style_notes=notes,
            avoid=request.avoid,
            shifts=request.shifts,
        )

    prompt, _, _ = fit_prompt(build, brief=request.brief, style_notes=[], limit=MAX_BRIEF_CHARS)
    return prompt


def final_refusal(error: BaseException) -> bool:
    """Bad input or a policy refusal the graph raised: final for this run (a conflict, a lost
    lease or an outage is not; those leave the run to be resumed)."""
    return isinstance(error, BadInputError | RefusedError) and not isinstance(error, ConflictError)


async def _end_refused(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    ctx: RunContext,
    *,
    tenant: str,
    run_id: str,
    error: BaseException,
) -> RunResult | None:
    """End a run the graph stopped with bad input or a refusal (a template version rejected
    in review, a template rendering past its cap, a brand removed meanwhile): ``refused``
    with the error as its reason (``failed`` if it had made attempts), so it is never left
    ``running``, and resuming it gives that result instead of failing again. A run that has
    finished, or is not running, is left as it is."""
    snapshot = await graph.aget_state(_config(run_id))
    values = snapshot.values or {}
    node = snapshot.next[0] if snapshot.next else "intake"
    reason = str(error)
    decision = Decision(node=node, action="refuse", reason=reason)
    with ctx.db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None or row.result is not None or row.status != "running":
            return None
    ctx.emit(run_id, node, "decision", decision.model_dump(mode="json"))
    with ctx.db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None or row.result is not None or row.status != "running":
            return None
        attempts = crud.list_attempts(session, run_id=run_id)
        cost = round(sum(a.cost_usd for a in attempts), 6)
        status: RunStatus = "failed" if attempts else "refused"
        result = RunResult(
            run_id=run_id,
            status=status,
            brand=row.brand_name,
            brief=row.brief,
            reason=reason,
            attempts=len(attempts),
            cost_usd=cost,
            decisions=[*values.get("decisions", []), decision],
            stop_cause="refused",
        )
        template = values.get("template")
        crud.finish_run(
            session,
            run_id=run_id,
            status=status,
            reason=reason,
            template_ref=template.ref if template is not None else row.template_ref,
            cost_usd=cost,
            attempt_count=len(attempts),
            accepted_count=0,
            result=result.model_dump(mode="json"),
        )
    return result


async def _drive(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    start: RunInput | None,
    ctx: RunContext,
    *,
    settings: Settings,
    saver: BaseCheckpointSaver[str],
    tenant: str,
    run_id: str,
) -> None:
    """Run the graph from ``start`` (None: from its checkpoint); bad input or a refusal it
    raises ends the run (:func:`_end_refused`) and is raised on, for the caller's exit code
    or problem."""
    try:
        await graph.ainvoke(start, _config(run_id), context=ctx, durability=DURABILITY)
    except Exception as exc:
        if final_refusal(exc):
            ended = await _end_refused(graph, ctx, tenant=tenant, run_id=run_id, error=exc)
            if ended is not None:
                await _retain(saver, settings, ended)
        raise


_memory_cache: dict[str, BrandMemory] = {}
PLUGINS_ENV = "BRANDLOOP_PROVIDER_PLUGINS"
log = logging.getLogger(__name__)


def open_memory(settings: Settings) -> BrandMemory:
    key = f"{settings.chroma_host}:{settings.chroma_port}:{settings.resolved_chroma_path.resolve()}"
    if key not in _memory_cache:
        from brandloop.memory.embeddings import MiniLMEmbeddingFunction
        from brandloop.memory.store import make_chroma_store

        _memory_cache[key] = BrandMemory(make_chroma_store(settings), MiniLMEmbeddingFunction())
    return _memory_cache[key]


def provider_plugins() -> dict[str, ImageProvider]:
    """Providers named by ``BRANDLOOP_PROVIDER_PLUGINS`` (``module:factory``, comma-separated).

    Each factory is called with no arguments and returns an :class:`ImageProvider`; it takes
    the place of the built-in provider of the same name. This is how a deployment plugs in an
    in-house backend, and how the crash tests put a counting fake behind the real CLI.
    """
    spec = os.environ.get(PLUGINS_ENV, "").strip()
    found: dict[str, ImageProvider] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        module_name, _, factory_name = item.partition(":")
        if not module_name or not factory_name:
            raise BadInputError(f"{PLUGINS_ENV} entry {item!r} is not module:factory")
        factory = getattr(importlib.import_module(module_name), factory_name)
        provider = factory()
        if not isinstance(provider, ImageProvider):
            raise BadInputError(f"{item} did not return an image provider")
        found[provider.name] = provider
    return found


#: where a brighter or darker revision moves the exposure signal's target mean luminance
EXPOSURE_KEYS: dict[str, float] = {"brighter": 165.0, "darker": 90.0}


def _brand_slug(db: Database, request: GenerationRequest) -> str:
    with db.session() as session:
        row = crud.request_brand(session, request)
        return crud.brand_kit(row).slug if row is not None else ""


def brand_scoring_policy(
    settings: Settings, db: Database, request: GenerationRequest
) -> ScoringPolicy:
    """The request's brand's own weights and thresholds (``policies/brand_policy.py``), with
    the exposure target a brighter or darker revision asked for."""
    slug = _brand_slug(db, request)
    policy = load_brand_scoring_policy(slug, search=[settings.data_dir / "policies"])
    for shift in request.shifts:
        if shift in EXPOSURE_KEYS:
            exposure = policy.exposure.model_copy(update={"key_target": EXPOSURE_KEYS[shift]})
            policy = policy.model_copy(update={"exposure": exposure})
    return policy


def brand_run_policy(
    settings: Settings, db: Database, request: GenerationRequest
) -> BrandRunPolicy:
    """The request's brand's conflict choice, provider allow-list and preview permission."""
    slug = _brand_slug(db, request)
    return load_brand_run_policy(slug, search=[settings.data_dir / "policies"])


def brand_moderation_policy(
    settings: Settings, db: Database, request: GenerationRequest
) -> ModerationPolicy:
    """The request's brand's moderation thresholds, senses and limits over the defaults."""
    return load_brand_moderation_policy(
        _brand_slug(db, request), search=[settings.data_dir / "policies"]
    )


def build_context(
    settings: Settings,
    db: Database,
    request: GenerationRequest,
    *,
    providers: dict[str, ImageProvider] | None = None,
    on_event: EventSink | None = None,
    use_memory: bool = True,
    image_moderator: ImageModerator | None = None,
    models: list[ModelSpec] | None = None,
    policy: AgentPolicy | None = None,
    use_cache: bool = True,
    writer: PromptWriter | None = None,
) -> RunContext:
    catalog = models if models is not None else catalog_models(db, settings)
    brand_policy = brand_run_policy(settings, db, request)
    ladder = (
        sorted(catalog, key=lambda m: (TIER_ORDER[m.tier], m.price_per_image_usd))
        if models is not None
        else model_ladder(settings, catalog, request, brand_policy)
    )
    if use_cache:
        with db.session() as session:
            generation_cache.invalidate_stale(session, tenant=request.tenant, models=catalog)
    moderation = brand_moderation_policy(settings, db, request)
    hosted = build_hosted_moderator(settings)
    return RunContext(
        db=db,
        tenant=request.tenant,
        providers=providers or {**default_providers(settings), **provider_plugins()},
        models=ladder,
        artifacts=ArtifactStore(settings.artifacts_dir, settings.thumbs_dir),
        scoring=brand_scoring_policy(settings, db, request),
        policy=policy or load_agent_policy(),
        budget_usd=request.budget_usd
        if request.budget_usd is not None
        else settings.default_budget_usd,
        image_moderator=image_moderator or NudeNetModerator(moderation.image),
        signer=signer_from_settings(settings),
        memory=open_memory(settings) if use_memory else None,
        campaign_id=request.campaign_id,
        on_event=on_event,
        use_cache=use_cache,
        writer=writer if writer is not None else build_writer(),
        brand_policy=brand_policy,
        moderation=moderation,
        hosted_moderator=hosted.with_policy(moderation.hosted) if hosted is not None else None,
        secrets=credentials_to_redact(settings, get_writer_settings()),
    )


def _log_result(result: RunResult) -> RunResult:
    log.info(
        "run settled",
        extra={
            "status": result.status,
            "accepted": len(result.images),
            "attempts": result.attempts,
            "cost_usd": result.cost_usd,
        },
    )
    return result


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:16]


#: Each node's checkpoint is written before the next node starts (LangGraph's default,
#: "async", writes it while the next node runs: a process killed then lost the checkpoints of
#: nodes that had finished, and a resume ran them again, their trace events twice). Costs
#: about a millisecond a node step (docs/agent.md, Checkpoints).
DURABILITY: Literal["sync"] = "sync"


def _config(run_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": run_id}, "recursion_limit": 100}


async def _settle(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    db: Database,
    *,
    tenant: str,
    run_id: str,
) -> RunResult:
    """The run's result; for a run waiting on review, what it has so far and how to go on."""
    snapshot = await graph.aget_state(_config(run_id))
    if snapshot.next:
        values = snapshot.values
        return RunResult(
            run_id=run_id,
            status="awaiting_review",
            brand=values["brand"].name,
            brief=values["request"].brief,
            reason=f"waiting for review: brandloop review approve|reject {run_id}",
            attempts=len(values.get("attempts", {})),
            cost_usd=round(sum(a.cost_usd for a in values.get("attempts", {}).values()), 6),
            decisions=values.get("decisions", []),
        )
    return load_result(db, tenant=tenant, run_id=run_id)


async def _retain(saver: BaseCheckpointSaver[str], settings: Settings, result: RunResult) -> None:
    """A finished run keeps only its newest checkpoints (``BRANDLOOP_CHECKPOINT_KEEP``)."""
    if result.status in FINISHED:
        await prune_checkpoints(saver, [result.run_id], keep=settings.checkpoint_keep)


async def run_generation(
    request: GenerationRequest,
    *,
    settings: Settings,
    db: Database,
    run_id: str | None = None,
    on_event: EventSink | None = None,
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
    timing: Callable[[RunTiming], Any] | None = None,
    models: list[ModelSpec] | None = None,
    policy: AgentPolicy | None = None,
    use_cache: bool = True,
    writer: PromptWriter | None = None,
    image_moderator: ImageModerator | None = None,
) -> RunResult:
    """Run the loop for one request to its end (or to a review wait) and return its result."""
    started = time.perf_counter()
    run_id = run_id or new_run_id()
    with db.session() as session:  # a job's request was bound when it was accepted
        request = bound_to_brand(session, request)
    check_request(db, request, run_id=run_id)
    # PII never reaches the runs table, the checkpoints, the trace, memory or a provider.
    request = redacted_request(request)
    ctx = build_context(
        settings,
        db,
        request,
        providers=providers,
        on_event=on_event,
        use_memory=use_memory,
        models=models,
        policy=policy,
        use_cache=use_cache,
        writer=writer,
        image_moderator=image_moderator,
    )
    with db.session() as session:
        brand = crud.request_brand(session, request)
        if brand is None:  # checked above; removed since
            raise NotFoundError(missing_brand(request))
        crud.create_run(
            session,
            run_id=run_id,
            tenant=request.tenant,
            brand_id=brand.id,
            brand_name=brand.name,
            brief=request.brief,
            request=request.model_dump(mode="json"),
            campaign_id=request.campaign_id,
            thread_id=request.thread_id,
        )
    async with (
        bound(run_id=run_id),
        _driving(settings, db, tenant=request.tenant, run_id=run_id),
        providers_closing(ctx.providers, owned=providers is None),
        checkpointer_for(db.url, settings.checkpoints_path) as saver,
    ):
        log.info("run started", extra={"tenant": request.tenant, "brand": request.brand})
        graph = compile_graph(saver)
        await _drive(
            graph,
            {"run_id": run_id, "request": request},
            ctx,
            settings=settings,
            saver=saver,
            tenant=request.tenant,
            run_id=run_id,
        )
        result = await _settle(graph, db, tenant=request.tenant, run_id=run_id)
        await _retain(saver, settings, result)
        _log_result(result)
    if timing is not None:
        timing(
            RunTiming(wall_s=time.perf_counter() - started, provider_s=ctx.provider_busy_seconds())
        )
    return result


#: the loop's ways out: an older release's checkpoint may have sent a stop from one of them
#: straight to finalize (plan's stops did, before every exit with accepted images passed
#: review_gate)
_LOOP_EXITS = ("plan", "observe")


async def _reroute_stale_exit(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    config: RunnableConfig,
) -> str | None:
    """Take the way out of the loop again, with today's routers, when the checkpoint has a run
    with accepted images about to go from plan or observe straight to ``finalize``: a release
    older than the review gate on every exit wrote it (a worker killed between plan's stop
    and finalize, resumed after an upgrade), and running it as it is would deliver the images
    unreviewed whatever the brand's review policy says. The routers send it to
    ``review_gate``, which holds it for review when the policy asks and lets it through
    otherwise.

    LangGraph's ``update_state(..., as_node=node)`` writes a checkpoint as if ``node`` had
    just run again with no update: its conditional edges are evaluated afresh and the stale
    ``finalize`` trigger is superseded. Returns the node routed from, or None when the
    checkpoint needs nothing (a current checkpoint, or nothing to deliver)."""
    snapshot = await graph.aget_state(config)
    if snapshot.next != ("finalize",) or not snapshot.values.get("accepted"):
        return None
    history = [step async for step in graph.aget_state_history(config, limit=2)]
    if len(history) < 2 or len(history[1].next) != 1 or history[1].next[0] not in _LOOP_EXITS:
        return None  # finalize comes after the gate or the review: already decided there
    node = history[1].next[0]
    await graph.aupdate_state(config, None, as_node=node)
    return node


async def resume_run(
    run_id: str,
    *,
    settings: Settings,
    db: Database,
    tenant: str = "default",
    on_event: EventSink | None = None,
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
    review: dict[str, str] | None = None,
) -> RunResult:
    """Continue a run from its last checkpoint; attempts already paid for are not paid again.

    ``review`` answers a run waiting for review (see :func:`review_run`); without it such a
    run stays waiting.
    """
    with db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        finished_before = RunResult.model_validate(row.result) if row.result is not None else None
        if (
            finished_before is None and row.status == "cancelled"
        ):  # cancelling is final: nothing continues it
            raise ConflictError(f"run {run_id} was cancelled; start a new run instead")
        request = GenerationRequest.model_validate(row.request)
        if request.brand_id is None and row.brand_id is not None:  # a run from before binding
            request = request.model_copy(update={"brand_id": row.brand_id})
    if finished_before is not None:
        # finished by a process that may have stopped before pruning its checkpoints
        async with checkpointer_for(db.url, settings.checkpoints_path) as saver:
            await _retain(saver, settings, finished_before)
        return finished_before
    ctx = build_context(
        settings, db, request, providers=providers, on_event=on_event, use_memory=use_memory
    )
    config = _config(run_id)
    async with (
        bound(run_id=run_id),
        providers_closing(ctx.providers, owned=providers is None),
        checkpointer_for(db.url, settings.checkpoints_path) as saver,
    ):
        graph = compile_graph(saver)
        snapshot = await graph.aget_state(config)
        if snapshot.next and "review" in snapshot.next and review is None:
            return await _settle(graph, db, tenant=tenant, run_id=run_id)
        async with _driving(settings, db, tenant=tenant, run_id=run_id):
            finished = load_finished(db, tenant=tenant, run_id=run_id)
            if finished is not None:  # finished by the process that held it till now
                await _retain(saver, settings, finished)
                return finished
            await _drive_on(
                graph,
                ctx,
                settings=settings,
                saver=saver,
                run_id=run_id,
                request=request,
                review=review,
            )
        result = await _settle(graph, db, tenant=tenant, run_id=run_id)
        await _retain(saver, settings, result)
        return _log_result(result)


async def _drive_on(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    ctx: RunContext,
    *,
    settings: Settings,
    saver: BaseCheckpointSaver[str],
    run_id: str,
    request: GenerationRequest,
    review: dict[str, str] | None,
) -> None:
    """Drive a run on from its checkpoint: with a review's answer when it waits for one, else
    from where it stopped (routed again when an older release's checkpoint skips the gate)."""
    config = _config(run_id)
    if review is not None and await _reopen_review(graph, config, ctx, review):
        log.info("an earlier verdict did not finish the run; its review is given again")
    snapshot = await graph.aget_state(config)
    if snapshot.next and "review" in snapshot.next:
        if review is None:
            return
        log.info("run resumed with a review", extra={"decision": review.get("decision")})
        await graph.ainvoke(Command(resume=review), config, context=ctx, durability=DURABILITY)
        return
    log.info("run resumed", extra={"from_checkpoint": bool(snapshot.values)})
    rerouted = await _reroute_stale_exit(graph, config)
    if rerouted is not None:
        log.warning(
            "checkpoint routed a stop past the review gate; routed again",
            extra={"from_node": rerouted},
        )
    start: RunInput | None = None if snapshot.values else {"run_id": run_id, "request": request}
    await _drive(
        graph, start, ctx, settings=settings, saver=saver, tenant=request.tenant, run_id=run_id
    )


async def _reopen_review(
    graph: CompiledStateGraph[RunState, RunContext, RunInput, RunState],
    config: RunnableConfig,
    ctx: RunContext,
    review: dict[str, str],
) -> bool:
    """Put the run back at its review's question when an earlier verdict answered it but did
    not finish the run (the signer or the storage failed as an approval delivered it; the run
    then waits for review again), and ``review`` is another answer: a rejection after a failed
    approval, or another reviewer's approval. Without this the checkpoint, already past the
    review, would finish the run with the earlier answer whatever the new verdict says (a
    rejected run delivered).

    LangGraph replays from the checkpoint that asked the question (``review`` runs again and
    asks it again: nothing comes before its ``interrupt()``), on a branch of its own; the
    caller then answers it. The same answer as the earlier one (a retry, or a verdict a
    stopped process left, taken over) needs none of this: finalize runs on. Returns whether
    the question was asked again."""
    snapshot = await graph.aget_state(config)
    answered = snapshot.values.get("review")
    if snapshot.next != ("finalize",) or answered is None or answered == review:
        return False
    history = [step async for step in graph.aget_state_history(config, limit=2)]
    if len(history) < 2 or history[1].next != ("review",):
        return False
    await graph.ainvoke(None, history[1].config, context=ctx, durability=DURABILITY)
    return True


def _driving(
    settings: Settings, db: Database, *, tenant: str, run_id: str
) -> AbstractAsyncContextManager[run_leases.Lease]:
    """This process's lease on the run while it drives it (``agent/run_leases.py``): a run a
    live process drives is refused (the CLI's exit 2, a verdict's 409). A job worker, holding
    the job's lease (``fencing``), takes the run over: the lease it was granted already shuts
    out the worker it took the job from, and the API refuses to queue the resume of a run
    another process drives."""
    held = fencing.current()
    return run_leases.driving(
        db,
        tenant=tenant,
        run_id=run_id,
        ttl=settings.job_lease_seconds,
        force=held is not None and held.kind == "job",
    )


def load_finished(db: Database, *, tenant: str, run_id: str) -> RunResult | None:
    """The run's result if it has finished, else None."""
    with db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        return RunResult.model_validate(row.result) if row and row.result is not None else None


@dataclass(frozen=True)
class ReviewOutcome:
    """How a run a verdict claimed has finished, and with which verdict: the caller's, or
    (``taken_over``) the one a process that stopped had recorded and claimed it for."""

    result: RunResult
    verdict: Verdict
    taken_over: bool

    def not_the_callers(self, asked: Verdict) -> str | None:
        """Why the run did not finish as ``asked`` (None if it did: with the caller's verdict,
        or with the same decision recorded before the process applying it stopped)."""
        if not self.taken_over or self.verdict.decision == asked.decision:
            return None
        done = review_claims.DONE[self.verdict.decision]
        return (
            f"run {self.result.run_id} was already {done} by {self.verdict.actor}: the process "
            f"applying that verdict stopped, and this request finished the run with it (status "
            f"{self.result.status})"
        )


async def finish_review(
    run_id: str,
    *,
    settings: Settings,
    db: Database,
    verdict: Verdict | None,
    by: str,
    tenant: str = "default",
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
) -> ReviewOutcome:
    """Claim the run for ``verdict`` (recorded, with the audit log) and finish it; or take over
    a claim on it a stopped process left (``verdict`` None: only that) and finish it with the
    verdict that claim names (``agent/review_claims.py``).

    Of two callers at once exactly one finishes the run; the other is a
    :class:`ConflictError`, as is anyone while a live claim holds it. The claim is renewed while
    the run finishes and every write is fenced by it. Should finishing fail, the run waits for
    review again; should this process stop (a cancelled task), the claim lapses at once for
    the next verdict or the service's sweep to finish the run with it."""
    ttl = settings.review_lease_seconds
    held = review_claims.claim(db, tenant=tenant, run_id=run_id, verdict=verdict, ttl=ttl, by=by)
    with fencing.holding(held.fence(db)), review_claims.renewing(db, held, ttl):
        if held.taken_over:
            with bound(run_id=run_id):
                log.warning(
                    "finishing the review verdict a stopped process left",
                    extra={"decision": held.verdict.decision, "by": held.verdict.actor},
                )
        try:
            result = await resume_run(
                run_id,
                settings=settings,
                db=db,
                tenant=tenant,
                providers=providers,
                use_memory=use_memory,
                review=held.verdict.answer(),
            )
        except LeaseLostError:
            raise  # another process has the run now: nothing more is written here
        except asyncio.CancelledError:
            with db.session() as session:  # stopping is not failing: the verdict stands
                review_claims.lapse(session, run_id=run_id, owner=held.owner)
            raise
        except BaseException:
            with db.session() as session:  # unfinished: back in the queue, for another verdict
                session.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.tenant == tenant, RunRow.status == "running")
                    .values(status="awaiting_review")
                    .execution_options(synchronize_session=False)
                )
                review_claims.release(session, run_id=run_id, owner=held.owner)
            raise
        with db.session() as session:
            review_claims.release(session, run_id=run_id, owner=held.owner)
    return ReviewOutcome(result, held.verdict, held.taken_over)


async def review_run(
    run_id: str,
    *,
    settings: Settings,
    db: Database,
    decision: Literal["approve", "reject"],
    note: str = "",
    actor: str = "cli",
    tenant: str = "default",
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
) -> RunResult:
    """Record a human's decision on a run waiting for review (audit log too) and finish it
    (:func:`finish_review`).

    On a run whose verdict a stopped process left claimed, once that claim has lapsed, the run
    is finished with the verdict recorded first: the result if that verdict made the same
    decision (a retry, say), else a :class:`ConflictError` saying whose verdict it was, after
    the run has finished with it."""
    asked = Verdict(decision, note, actor)
    outcome = await finish_review(
        run_id,
        settings=settings,
        db=db,
        verdict=asked,
        by=actor,
        tenant=tenant,
        providers=providers,
        use_memory=use_memory,
    )
    problem = outcome.not_the_callers(asked)
    if problem is not None:
        raise ConflictError(problem)
    return outcome.result


@dataclass(frozen=True)
class Interrupted:
    """A run its process stopped driving at the user's request (Ctrl-C), as it was left."""

    run_id: str
    status: str
    attempts: int
    cost_usd: float


def cancel_interrupted(db: Database, *, tenant: str, run_id: str, reason: str) -> Interrupted:
    """End a run the user interrupted (Ctrl-C) ``cancelled`` (docs/agent.md: cancelling is
    final), as a job's cancel ends its run: what its attempts cost kept, its calls still in
    flight ``unknown`` at their reservation (``spend.abandon_calls``). A run that has finished
    meanwhile, or waits for review, is left as it is."""
    with db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is not None and row.status == "running":
            row = crud.cancel_run(session, run_id=run_id, reason=reason)
            if row is not None and row.status == "cancelled":
                spend.abandon_calls(session, run_id=run_id)
        if row is None:
            return Interrupted(run_id, "unknown", 0, 0.0)
        session.flush()
        attempts = len(crud.list_attempts(session, run_id=run_id))
        return Interrupted(run_id, row.status, attempts, spend.run_cost(session, run_id=run_id))


def load_result(db: Database, *, tenant: str, run_id: str) -> RunResult:
    with db.session() as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        if row.result is None:
            raise BadInputError(f"run {run_id} has not finished (status {row.status})")
        return RunResult.model_validate(row.result)
