"""Start or resume a run: check the request, build the run's context, drive the graph.

This is the one entry point the CLI, the API and the eval harness call.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent.checkpoints import sqlite_checkpointer
from agent.context import EventSink, ImageModerator, RunContext
from agent.graph import compile_graph
from agent.nodes.moderate import allow_all
from agent.state import RunInput
from agent.templates import resolve_template
from brandloop.artifacts import ArtifactStore
from brandloop.domain import GenerationRequest, ModelSpec, RunResult
from brandloop.errors import BadInputError, NotFoundError
from brandloop.registry import crud
from brandloop.registry.db import session_scope
from brandloop.settings import Settings
from memory.store import BrandMemory
from policies.agent import load_agent_policy
from policies.catalog import configured_providers, load_catalog, plannable
from policies.scoring import load_scoring_policy
from tools.providers.base import ImageProvider
from tools.providers.procedural import ProceduralProvider


@dataclass
class RunTiming:
    wall_s: float
    provider_s: float

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.provider_s


def default_providers(settings: Settings) -> dict[str, ImageProvider]:
    return {"procedural": ProceduralProvider()}


def catalog_models(settings: Settings) -> list[ModelSpec]:
    """The registry's catalog (with the shipped YAML merged in)."""
    with session_scope(settings.resolved_database_url) as session:
        crud.sync_catalog(session, specs=load_catalog())
        return crud.list_models(session)


def model_ladder(
    settings: Settings, models: list[ModelSpec], requested: str | None
) -> list[ModelSpec]:
    """The models a run may use, cheapest tier first; just one when the request names it."""
    usable = plannable(models, settings)
    if requested is None:
        if not usable:
            raise BadInputError("no model is usable: check the catalog and provider settings")
        return usable
    spec = next((m for m in models if m.id == requested), None)
    if spec is None:
        known = ", ".join(m.id for m in models)
        raise BadInputError(f"unknown model {requested!r}; known models: {known}")
    if spec.status == "retired":
        raise BadInputError(f"model {requested!r} is retired")
    if spec.provider not in configured_providers(settings):
        raise BadInputError(
            f"model {requested!r} needs provider {spec.provider!r}, which is not configured"
        )
    return [spec]


def check_request(settings: Settings, request: GenerationRequest) -> None:
    """Refuse, before anything is stored, a request that names things that do not exist."""
    with session_scope(settings.resolved_database_url) as session:
        if crud.get_brand(session, tenant=request.tenant, ref=request.brand) is None:
            raise NotFoundError(
                f"unknown brand {request.brand!r}; add it with `brandloop brands add`"
            )
        resolve_template(session, tenant=request.tenant, ref=request.template, request_id="check")
    if request.budget_usd is not None and request.budget_usd <= 0:
        raise BadInputError("budget must be greater than zero")


_memory_cache: dict[str, BrandMemory] = {}


def open_memory(settings: Settings) -> BrandMemory:
    key = f"{settings.chroma_host}:{settings.chroma_port}:{settings.resolved_chroma_path.resolve()}"
    if key not in _memory_cache:
        from memory.embeddings import MiniLMEmbeddingFunction
        from memory.store import make_chroma_client

        _memory_cache[key] = BrandMemory(make_chroma_client(settings), MiniLMEmbeddingFunction())
    return _memory_cache[key]


def build_context(
    settings: Settings,
    request: GenerationRequest,
    *,
    providers: dict[str, ImageProvider] | None = None,
    on_event: EventSink | None = None,
    use_memory: bool = True,
    image_moderator: ImageModerator | None = None,
) -> RunContext:
    models = model_ladder(settings, catalog_models(settings), request.model)
    return RunContext(
        database_url=settings.resolved_database_url,
        tenant=request.tenant,
        providers=providers or default_providers(settings),
        models=models,
        artifacts=ArtifactStore(settings.artifacts_dir),
        scoring=load_scoring_policy(),
        policy=load_agent_policy(),
        budget_usd=request.budget_usd
        if request.budget_usd is not None
        else settings.default_budget_usd,
        image_moderator=image_moderator or allow_all,
        memory=open_memory(settings) if use_memory else None,
        on_event=on_event,
    )


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:16]


async def run_generation(
    request: GenerationRequest,
    *,
    settings: Settings,
    run_id: str | None = None,
    on_event: EventSink | None = None,
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
    timing: Callable[[RunTiming], Any] | None = None,
) -> RunResult:
    """Run the loop for one request to the end and return its result."""
    started = time.perf_counter()
    check_request(settings, request)
    ctx = build_context(
        settings, request, providers=providers, on_event=on_event, use_memory=use_memory
    )
    run_id = run_id or new_run_id()
    with session_scope(settings.resolved_database_url) as session:
        brand = crud.get_brand(session, tenant=request.tenant, ref=request.brand)
        assert brand is not None
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
    async with sqlite_checkpointer(settings.checkpoints_path) as saver:
        graph = compile_graph(saver)
        await graph.ainvoke(
            {"run_id": run_id, "request": request},
            {"configurable": {"thread_id": run_id}, "recursion_limit": 100},
            context=ctx,
        )
    if timing is not None:
        timing(
            RunTiming(wall_s=time.perf_counter() - started, provider_s=ctx.provider_busy_seconds())
        )
    return load_result(settings, tenant=request.tenant, run_id=run_id)


async def resume_run(
    run_id: str,
    *,
    settings: Settings,
    tenant: str = "default",
    on_event: EventSink | None = None,
    providers: dict[str, ImageProvider] | None = None,
    use_memory: bool = True,
) -> RunResult:
    """Continue a run from its last checkpoint; attempts already paid for are not paid again."""
    with session_scope(settings.resolved_database_url) as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        if row.result is not None:
            return RunResult.model_validate(row.result)
        request = GenerationRequest.model_validate(row.request)
    ctx = build_context(
        settings, request, providers=providers, on_event=on_event, use_memory=use_memory
    )
    config: RunnableConfig = {"configurable": {"thread_id": run_id}, "recursion_limit": 100}
    async with sqlite_checkpointer(settings.checkpoints_path) as saver:
        graph = compile_graph(saver)
        snapshot = await graph.aget_state(config)
        start: RunInput | None = None if snapshot.values else {"run_id": run_id, "request": request}
        await graph.ainvoke(start, config, context=ctx)
    return load_result(settings, tenant=tenant, run_id=run_id)


def load_result(settings: Settings, *, tenant: str, run_id: str) -> RunResult:
    with session_scope(settings.resolved_database_url) as session:
        row = crud.get_run(session, tenant=tenant, run_id=run_id)
        if row is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        if row.result is None:
            raise BadInputError(f"run {run_id} has not finished (status {row.status})")
        return RunResult.model_validate(row.result)
