"""Health: ``/healthz`` (the process answers), ``/readyz`` (database, Chroma, workers, and the
models ``brandloop serve`` loads at start: ``warming: <what>`` until they are loaded) and
``/metrics`` (Prometheus). The first two need no key and show no tenant data; ``/metrics``
counts every tenant's jobs and spend, so it needs the metrics token or an admin key."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from brandloop.agent.runner import open_memory
from brandloop.api.deps import MetricsReader, ServiceDep
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from brandloop.registry.db import Database
from brandloop.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_database(db: Database) -> None:
    with db.session() as session:
        session.execute(text("SELECT 1"))


def _check_memory(settings: Settings) -> None:
    open_memory(settings).count(tenant="readyz", brand="probe")


class ReadyReport(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] = Field(examples=[{"database": "ok", "chroma": "ok", "workers": "ok"}])


@router.get(
    "/readyz",
    summary="Database, Chroma and the worker pool are usable",
    response_model=ReadyReport,
    responses={503: {"description": "`not-ready`: a problem whose `checks` name what failed"}},
)
async def readyz(service: ServiceDep) -> Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.to_thread(_check_database, service.db)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        await asyncio.to_thread(_check_memory, service.settings)
        checks["chroma"] = "ok"
    except Exception as exc:
        checks["chroma"] = f"failed: {type(exc).__name__}"
    checks["workers"] = "ok" if service.pool.alive() else "failed: not running"
    if service.warmup is not None:
        checks["models"] = service.warmup.check()
    if all(v == "ok" for v in checks.values()):
        return JSONResponse(ReadyReport(status="ready", checks=checks).model_dump())
    body = problem_body(
        503, "not-ready", "; ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
    )
    body["checks"] = checks
    return JSONResponse(body, status_code=503, media_type=PROBLEM_MEDIA_TYPE)


@router.get(
    "/metrics",
    summary="Prometheus metrics (the metrics token or an admin key)",
    description="Send `Authorization: Bearer <BRANDLOOP_API_METRICS_TOKEN>` (a scraper) or an "
    "admin key. The figures cover every tenant.",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "the Prometheus text exposition format",
        },
        401: {"description": "no token or key, or a wrong one"},
        403: {"description": "a key below admin"},
    },
    dependencies=[MetricsReader],
)
async def metrics(service: ServiceDep) -> Response:
    data = await asyncio.to_thread(generate_latest, service.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
