"""Runs: a gallery filtered by brand, status, template, model and date; a run page with its
images, decisions timeline, attempts scored against thresholds, the brand's palette beside each
image's dominant colours, cost and receipts; download, reproduce and resume."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from anyio import from_thread
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from brandloop.agent.budgets import OutsideRunPayer
from brandloop.agent.runner import catalog_models, default_providers
from brandloop.api.deps import PoolDep, ServiceDep, SessionDep, SettingsDep
from brandloop.api.jobs import store
from brandloop.api.jobs.service import resume_job
from brandloop.api.routers.runs import tenant_trace
from brandloop.api.studio.thumbs import image_colours
from brandloop.api.studio.web import (
    PAGE_SIZE,
    Creator,
    Csrf,
    PageNumber,
    StudioError,
    StudioRoute,
    Viewer,
    page_count,
    render,
    see_other,
)
from brandloop.artifacts import ArtifactStore
from brandloop.domain import AcceptedImage, Receipt, RunStatus
from brandloop.registry import crud
from brandloop.registry.deleted_images import gone_images
from brandloop.registry.held_images import held_images
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.reproduce import reproduce_run
from brandloop.settings import Settings
from brandloop.tools.providers.batching import receipt_request
from brandloop.tools.providers.factory import closing as providers_closing
from brandloop.views import cost_so_far

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
STATUSES: tuple[str, ...] = get_args(RunStatus)


def _day(text: str | None, field: str, *, end: bool = False) -> datetime | None:
    """A date filter: empty is no filter; anything but a day (YYYY-MM-DD) is refused, as
    ``GET /v1/runs`` refuses it, never dropped to show every run."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise StudioError(422, f"{field}: {text!r} is not a day (YYYY-MM-DD)") from None
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def filter_options(session: Session, tenant: str) -> dict[str, list[str]]:
    """What the gallery's filters can choose from: the tenant's own brands, templates, models."""
    brands = sorted(b.name for b in crud.list_brands(session, tenant=tenant))
    refs = session.scalars(select(RunRow.template_ref).where(RunRow.tenant == tenant).distinct())
    templates = sorted({r.rsplit("@", 1)[0] for r in refs if r})
    models = sorted(
        session.scalars(
            select(AttemptRow.model)
            .join(RunRow, RunRow.id == AttemptRow.run_id)
            .where(RunRow.tenant == tenant)
            .distinct()
        )
    )
    return {"brands": brands, "templates": templates, "models": models, "statuses": list(STATUSES)}


def covers(session: Session, rows: list[RunRow]) -> dict[str, str]:
    """run id -> the image its card shows: the first delivered image not deleted (the first,
    shown as deleted, when all were), or else (a run waiting for review, or one that accepted
    nothing) its best attempt's image; one query for all."""
    found = {
        r.id: str(next((i for i in images if not i.get("deleted")), images[0])["sha256"])
        for r in rows
        if (images := (r.result or {}).get("images") or [])
    }
    missing = [r.id for r in rows if r.id not in found]
    if missing:
        attempts = session.execute(
            select(AttemptRow.run_id, AttemptRow.artifact_sha256)
            .where(AttemptRow.run_id.in_(missing), AttemptRow.artifact_sha256.is_not(None))
            .order_by(AttemptRow.outcome != "accepted", AttemptRow.composite.desc())
        )
        for run_id, sha in attempts:
            found.setdefault(run_id, str(sha))
    return found


@router.get("/runs")
def gallery(
    request: Request,
    user: Viewer,
    session: SessionDep,
    brand: Annotated[str, Query(max_length=80)] = "",
    status: Annotated[str, Query(max_length=24)] = "",
    template: Annotated[str, Query(max_length=160)] = "",
    model: Annotated[str, Query(max_length=120)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page: PageNumber = 1,
) -> Response:
    # a filter GET /v1/runs refuses is refused here too, never an empty gallery: a status that
    # is not one is a 422 page naming it, a brand the tenant does not have a 404
    if status and status not in STATUSES:
        raise StudioError(422, f"Status: {status!r} is not a run status ({', '.join(STATUSES)})")
    if brand and not crud.brand_ids(session, tenant=user.tenant, ref=brand):
        raise StudioError(404, f"Brand: unknown brand {brand!r}")
    where = crud.RunFilter(
        brand=brand or None,
        status=status or None,
        template=template or None,
        model=model or None,
        since=_day(since, "From (since)"),
        until=_day(until, "To (until)", end=True),
    )
    total = crud.count_runs(session, tenant=user.tenant, where=where)
    rows = crud.list_runs(
        session, tenant=user.tenant, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, where=where
    )
    shown = covers(session, rows)
    chosen = {
        "brand": brand, "status": status, "template": template, "model": model,
        "since": since, "until": until,
    }  # fmt: skip
    query = urlencode({k: v for k, v in chosen.items() if v})
    context = {
        "title": "Runs",
        # a run not finished holds $0 in its row: its card shows what it has cost so far (one
        # indexed read for such a run, none for a finished one), as GET /v1/runs does
        "runs": [
            {"row": r, "cover": shown.get(r.id), "cost_usd": cost_so_far(session, r)} for r in rows
        ],
        "gone": gone_images(session, tenant=user.tenant, shas=shown.values()),
        "total": total,
        "page": page,
        "pages": page_count(total),
        "chosen": chosen,
        "query": query,
        "options": filter_options(session, user.tenant),
    }
    template_name = "runs_grid.html" if request.headers.get("hx-request") else "runs.html"
    return render(request, template_name, context)


def palette_of(session: Session, tenant: str, brand: str) -> list[dict[str, str]]:
    row = crud.get_brand(session, tenant=tenant, ref=brand)
    if row is None:
        return []
    return [c.model_dump() for c in crud.brand_kit(row).palette]


def signal_rows(session: Session, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """attempt id -> each signal's value, threshold and verdict, as the scorer stored them
    (the API's ``AttemptView`` carries the values only)."""
    return {
        row.id: [
            {"name": name, **data}
            for name, data in sorted(((row.scores or {}).get("signals") or {}).items())
        ]
        for row in crud.list_attempts(session, run_id=run_id)
    }


def image_views(
    settings: Settings, images: list[AcceptedImage], receipts: list[Receipt]
) -> list[dict[str, Any]]:
    """Accepted images as the pages show them: with dominant colours and receipt."""
    by_sha = {r.sha256: r.model_dump(mode="json") for r in receipts}
    store_ = ArtifactStore(settings.artifacts_dir)
    views = []
    for image in images:
        sha = image.sha256
        path = store_.path_for(sha)
        receipt = by_sha.get(sha)
        views.append(
            {
                **image.model_dump(mode="json"),
                # a deleted copy's bytes may be another tenant's: never read for this one
                "colours": image_colours(path, sha) if path.is_file() and not image.deleted else [],
                "receipt": receipt,
                "receipt_json": json.dumps(receipt, indent=2) if receipt else "",
            }
        )
    return views


#: what a run waiting for review says on a page (the run's own reason names the CLI command)
WAITING_FOR_REVIEW = "Waiting for a reviewer's verdict: nothing is delivered until it is approved."


def accepted_so_far(session: Session, run_id: str) -> list[str]:
    """The images the acceptance rule accepted in the run so far (shown while it runs, and
    while it waits for review, marked as such); nothing is delivered until it finishes. The
    count the API's thread reply gives for a turn waiting for review (``held_images``)."""
    return held_images(session, run_id=run_id)


def run_context(
    session: Session, settings: Settings, *, tenant: str, run_id: str
) -> dict[str, Any]:
    """Everything the run page shows, from the API's own trace (``RunTrace``)."""
    trace = tenant_trace(session, tenant=tenant, run_id=run_id)
    waiting = trace.run.status == "awaiting_review"
    signals = signal_rows(session, run_id)
    attempts = [{**a.model_dump(), "signals": signals.get(a.id, [])} for a in trace.attempts]
    job = store.job_for_run(session, tenant=tenant, run_id=run_id)
    held = accepted_so_far(session, run_id) if waiting else []
    shown = held + [a.artifact_sha256 for a in trace.attempts if a.artifact_sha256]
    row = session.get(RunRow, run_id)
    brand_id = row.brand_id if row is not None else None
    # the brand as named now (a rename keeps its id), so its gallery link answers
    brand = store.brand_names(session, tenant=tenant, ids=[brand_id]).get(
        brand_id or "", trace.run.brand
    )
    return {
        "title": f"Run {run_id}",
        "run": trace.run,
        "brand": brand,
        "images": image_views(settings, trace.run.images, trace.receipts),
        "attempts": attempts,
        "events": [e.model_dump() for e in trace.events],
        "palette": palette_of(session, tenant, brand),
        "job": job,
        "waiting": held,
        # images the pages would show that the tenant deleted (or gc removed): said in words
        "gone": gone_images(session, tenant=tenant, shas=shown),
        "reason": WAITING_FOR_REVIEW if waiting else trace.run.reason,
        "resumable": trace.run.status == "running"
        and (job is None or job.state not in ("queued", "running")),
    }


@router.get("/runs/{run_id}")
def run_page(
    request: Request, run_id: str, user: Viewer, session: SessionDep, settings: SettingsDep
) -> Response:
    return render(
        request, "run.html", run_context(session, settings, tenant=user.tenant, run_id=run_id)
    )


@router.get("/runs/{run_id}/download")
def download(run_id: str, user: Viewer, session: SessionDep, settings: SettingsDep) -> Response:
    """The accepted PNGs (each with its receipt inside) and ``receipts.json``, as one zip; an
    image the tenant deleted has only its receipt there (the file on disk, if any, is another
    tenant's copy)."""
    trace = tenant_trace(session, tenant=user.tenant, run_id=run_id)
    receipts = [r.model_dump(mode="json") for r in trace.receipts]
    store_ = ArtifactStore(settings.artifacts_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, image in enumerate(trace.run.images, start=1):
            sha = image.sha256
            if not image.deleted and store_.exists(sha):  # a deleted copy's bytes: not its
                archive.writestr(f"{run_id}/{index:02d}-{sha[:12]}.png", store_.get(sha))
        archive.writestr(f"{run_id}/receipts.json", json.dumps(receipts, indent=2))
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{run_id}.zip"'},
    )


def _run_context_committed(
    session: Session, settings: Settings, tenant: str, run_id: str
) -> dict[str, Any]:
    context = run_context(session, settings, tenant=tenant, run_id=run_id)
    session.commit()
    return context


@router.post("/runs/{run_id}/reproduce")
async def reproduce(
    request: Request,
    run_id: str,
    user: Creator,
    session: SessionDep,
    settings: SettingsDep,
    pool: PoolDep,
    _: Csrf,
) -> Response:
    # an async route: the reproduction runs the agent on the loop; the registry is read in
    # the threadpool
    context = await run_in_threadpool(
        _run_context_committed, session, settings, user.tenant, run_id
    )
    owned = pool.providers_factory is None
    providers = default_providers(settings) if owned else pool.providers_factory(settings)  # type: ignore[misc]
    models = await asyncio.to_thread(catalog_models, pool.db, settings)
    async with providers_closing(providers, owned=owned):
        result = await reproduce_run(
            settings,
            pool.db,
            tenant=user.tenant,
            run_id=run_id,
            providers=providers,
            models=models,
            payer=OutsideRunPayer(pool.db, tenant=user.tenant),
            request_for=receipt_request,
        )
    return render(request, "run.html", {**context, "reproduction": result})


@router.post("/runs/{run_id}/resume")
def resume(
    run_id: str, user: Creator, session: SessionDep, pool: PoolDep, service: ServiceDep, _: Csrf
) -> Response:
    job = resume_job(
        session,
        tenant=user.tenant,
        run_id=run_id,
        quota_usd=service.api.daily_quota_usd,
        default_budget_usd=service.settings.default_budget_usd,
    )
    session.commit()
    from_thread.run(pool.enqueue, job.id)
    return see_other(f"/runs/{run_id}")
