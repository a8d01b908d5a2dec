"""The FastAPI app: every router under ``/v1``, problem+json errors, the protection layer, metrics
and the job worker pool (started and stopped with the app).

``create_app()`` reads settings from the environment; tests pass their own settings, a provider
factory (to put a fake backend behind the agent), a prompt writer (a fake chat model behind the
thread revisions) or ``workers=0`` to keep jobs queued. ``brandloop serve`` also freezes what
startup made out of the garbage collector's full walks (``freeze_heap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from brandloop.agent.writer import PromptWriter, build_writer
from brandloop.api.auth import KeyCache
from brandloop.api.config import ApiSettings, get_api_settings
from brandloop.api.deps import Service, role_lookup
from brandloop.api.head import HeadAsGet
from brandloop.api.idempotency import Idempotency
from brandloop.api.input_guard import InputGuard
from brandloop.api.jobs.queue import JobQueue
from brandloop.api.jobs.worker import ProvidersFactory, WorkerPool
from brandloop.api.observability import AccessLog, Metrics, setup_tracing
from brandloop.api.openapi import install_openapi
from brandloop.api.problems import install_problem_handlers
from brandloop.api.protection import ServiceMiddleware
from brandloop.api.ratelimit import AddressThrottle, build_buckets
from brandloop.api.routers import (
    artifacts,
    brands,
    campaigns,
    costs,
    generations,
    health,
    jobs,
    keys,
    memory,
    models,
    review,
    runs,
    templates,
    threads,
)
from brandloop.api.studio import mount_studio
from brandloop.api.studio.browser_errors import page_for_a_browser
from brandloop.api.warmup import Warmup
from brandloop.errors import BadInputError
from brandloop.logs import configure_logging
from brandloop.registry.db import Database
from brandloop.settings import (
    Settings,
    WriterSettings,
    configured_credentials,
    get_settings,
    get_writer_settings,
)

log = logging.getLogger("brandloop.api")
# how long shutdown waits for in-flight registry work (a request's, a job's) before closing the pool
SHUTDOWN_WAIT_S = 10.0

DESCRIPTION = """\
brandloop turns creative briefs into approved, on-brand, traceable images.

Authenticate with `Authorization: Bearer <key>` (make one with `brandloop keys create`).
Roles: **viewer** reads, **creator** generates, **approver** reviews templates and runs,
**admin** manages keys and brands. Everything is scoped to the key's tenant; another
tenant's resources answer 404.

Errors are RFC 9457 `application/problem+json` with a stable `type`
(`urn:brandloop:problem:<kind>`). Creating POSTs honour `Idempotency-Key`.

Text never holds a NUL character (U+0000) or a lone surrogate: such a body is a 422, such a
path or query a 400.
"""


def create_app(
    settings: Settings | None = None,
    api_settings: ApiSettings | None = None,
    *,
    providers_factory: ProvidersFactory | None = None,
    queue: JobQueue | None = None,
    use_memory: bool = True,
    configure_logs: bool = False,
    tracer: Any | None = None,
    database: Database | None = None,
    writer: PromptWriter | None = None,
    freeze_heap: bool = False,
    warmup: Warmup | None = None,
) -> FastAPI:
    """The service's app. ``warmup`` (``brandloop serve`` passes one) starts loading the models
    when the app starts; ``/readyz`` answers 503 until they are loaded."""
    settings = settings or get_settings()
    api_settings = api_settings or get_api_settings()
    if configure_logs:
        configure_logging(json_logs=api_settings.log_json, background=True)
    # the app's one database; an outdated PostgreSQL schema stops the app here, before serving
    db = database or Database.from_settings(settings)
    try:
        db.ensure_schema()
    except BaseException:
        if database is None:
            db.dispose()
        raise
    tracer = tracer or setup_tracing(api_settings.otel_exporter)
    if queue is None and settings.queue == "celery":  # workers run in `brandloop worker`
        from brandloop.api.jobs.celery_queue import CeleryQueue

        queue = CeleryQueue(settings)
    writer = writer if writer is not None else build_writer()
    pool = WorkerPool(
        settings,
        db,
        concurrency=0 if settings.queue == "celery" else api_settings.workers,
        queue=queue,
        providers_factory=providers_factory,
        use_memory=use_memory,
        tracer=tracer,
        writer=writer,
    )
    buckets = build_buckets(settings, api_settings)  # in Redis when it is configured
    service = Service(
        settings=settings,
        db=db,
        api=api_settings,
        pool=pool,
        keys=KeyCache(api_settings.key_cache_seconds, api_settings.key_cache_entries),
        metrics=Metrics(db),
        writer=writer,
        auth_throttle=AddressThrottle(buckets),
        warmup=warmup,
    )
    idempotency = Idempotency(
        db,
        ttl_s=api_settings.idempotency_ttl_seconds,
        wait_s=api_settings.idempotency_wait_seconds,
        pending_s=api_settings.idempotency_pending_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if warmup is not None:
            warmup.start()  # in a thread of its own: requests are answered meanwhile
        await pool.start()
        if freeze_heap:
            _freeze_heap()
        stop_purging = asyncio.Event()
        purging = asyncio.create_task(_purge_idempotency(idempotency, stop_purging))
        try:
            yield
        finally:
            if freeze_heap:
                gc.unfreeze()
            stop_purging.set()
            await purging
            await pool.stop()
            await asyncio.to_thread(service.reader.close)
            await buckets.aclose()
            if access_log is not None:
                access_log.flush()
            if database is None:  # the app built it, so the app closes it
                # once the threads still reading or writing (a request's, a job's) are done
                if not await asyncio.to_thread(db.wait_idle, SHUTDOWN_WAIT_S):
                    log.warning("closing the registry with work still in flight")
                db.dispose()

    app = FastAPI(
        title="brandloop",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": t}
            for t in (
                "generations",
                "jobs",
                "threads",
                "campaigns",
                "brands",
                "templates",
                "runs",
                "artifacts",
                "models",
                "memory",
                "review",
                "costs",
                "keys",
                "health",
            )
        ],
    )
    app.state.service = service
    install_problem_handlers(app)

    # the hottest reads first: routes are matched in order
    modules = (
        runs,
        jobs,
        artifacts,
        generations,
        threads,
        campaigns,
        brands,
        templates,
        models,
        memory,
        review,
        costs,
        keys,
    )
    for module in modules:
        app.include_router(module.router, prefix="/v1")
    app.include_router(health.router)
    routers = [("/v1", m.router) for m in modules] + [("", health.router)]
    install_openapi(app, routers)
    mount_studio(app)  # the web app at /, outside the OpenAPI schema

    if api_settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api_settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
        )
    access_log = AccessLog() if api_settings.access_log and configure_logs else None
    middleware_options: dict[str, Any] = {
        "max_body_bytes": api_settings.max_body_bytes,
        "buckets": buckets,
        "auth_throttle": service.auth_throttle,
        "idempotency": idempotency,
        "role_for": role_lookup(routers),
        "principal_for": service.principal_for,
        "known_principal": service.known_principal,
        "metrics": service.metrics,
        "tracer": tracer,
        "access_log": access_log,
    }
    # what no body or studio form may hold (api/input_guard.py, the studio's check_csrf)
    credentials = tuple(configured_credentials(settings, api_settings, *_writer_settings()))
    app.state.credentials = credentials
    # inside the service layer: ids, headers, limits come first
    app.add_middleware(
        InputGuard,
        credentials=credentials,
        stored_keys=service.stored_keys,
        browser_page=page_for_a_browser,  # the studio's error page for a browser's bad path
    )
    app.add_middleware(ServiceMiddleware, **middleware_options)
    app.add_middleware(HeadAsGet)  # outermost: a HEAD is its GET in every layer
    return app


def _writer_settings() -> list[WriterSettings]:
    """The LLM writer's settings, whose key a body may not hold; none when malformed (a run
    names that when it builds the writer)."""
    try:
        return [get_writer_settings()]
    except BadInputError:
        return []


async def _purge_idempotency(
    idempotency: Idempotency, stop: asyncio.Event, every_s: float = 600.0
) -> None:
    """Stored answers past their time to live are dropped every ten minutes, until ``stop``. A
    purge under way is finished, not abandoned: its thread holds a database connection, which
    must be back in the pool before the app disposes of the engine."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(idempotency.purge)
        except Exception:
            log.exception("purging idempotency records failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def _freeze_heap() -> None:
    """Keep what startup made out of the garbage collector's full walks.

    A serving process imports the whole agent (LangGraph, langchain-core, Chroma, ONNX
    runtime, pydantic models): millions of objects that live as long as the process. Each
    full (generation 2) collection walked all of them, a pause of 150-480 ms on the 2-core
    machine under load, with every request in flight stalled behind it: that was the tail of
    ``GET /v1/runs/{id}`` (p99 160-440 ms where the bare floor's was 30-80 ms). Frozen, a full
    collection walks only what was made since (about 5 ms)."""
    gc.collect()
    gc.freeze()


def app_factory() -> FastAPI:
    """What ``brandloop serve`` hands uvicorn."""
    return create_app(configure_logs=True, freeze_heap=True)
