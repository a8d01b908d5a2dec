"""What a reader sees of a run: one typed model per concept, built from the registry here and
serialised as they are by both the CLI's ``--json`` and the HTTP API, so the two cannot drift.

``RunView`` (a run's row), ``AttemptView`` (one provider attempt, scores flattened to values),
``TraceEvent`` (one entry of the run's trace) and ``RunTrace`` (all of it, with the receipt of
every accepted image); ``BrandView`` (a brand and its kit) and ``ModelView`` (a catalog model and
whether this deployment can use it). The one difference between the surfaces is where an image
is: the CLI gives the file's path on this machine, the API its ``/v1/artifacts/<sha256>`` URL.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import Connection, Row, func, select
from sqlalchemy.orm import Session

from brandloop.domain import (
    AcceptedImage,
    AttemptOutcome,
    Billing,
    BrandKit,
    GenerationRequest,
    ModelSpec,
    ModerationVerdict,
    Receipt,
    RunStatus,
    StopCause,
)
from brandloop.providers import PREVIEW_PROVIDER
from brandloop.registry import crud, spend
from brandloop.registry.models import AttemptRow, BrandRow, RunEventRow, RunRow

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RunView(BaseModel):
    """A run as the registry holds it: request, status, cost and the accepted images."""

    run_id: str
    status: RunStatus
    brand: str
    brief: str
    reason: str
    template: str = Field(description="template name@version the run used")
    campaign_id: str | None
    thread_id: str | None
    cost_usd: float = Field(
        description="what the run has cost; while it has not finished, so far: its attempts "
        "and each call in flight at what the spend ledger holds for it (as GET /v1/costs)"
    )
    attempts: int = Field(
        description="the attempts the run made; while it has not finished, those recorded so far"
    )
    accepted: int
    request: GenerationRequest
    images: list[AcceptedImage] = Field(
        description="CLI: path is the file on this machine; API: path is the artifact's URL"
    )
    stop_cause: StopCause | None = Field(
        description="why the run stopped short, as its result says (generate --json, a job's "
        "result); null when it did not, or has not finished"
    )
    created_at: datetime
    finished_at: datetime | None


class AttemptView(BaseModel):
    """One executed candidate: what was asked, what came back, how it scored, what it cost."""

    id: str
    iteration: int
    model: str
    model_version: str | None = Field(description="the catalog's version of the model, if known")
    template: str
    prompt: str
    negative_prompt: str
    seed_requested: int
    seed_returned: int | None
    size: str = Field(examples=["1024x640"])
    params: dict[str, JsonValue]
    outcome: AttemptOutcome
    artifact_sha256: str | None
    idempotency_key: str
    provider_request_id: str | None
    tries: int = Field(description="provider calls this attempt took (retries + 1)")
    revised_prompt: str | None = Field(description="the prompt as the backend rewrote it")
    cost_usd: float
    billing: Billing | None = Field(
        description="billed, not_billed, or unknown (the call may have been billed: it counts as "
        "spent until reconciled); null when no paid call was made (a cache hit)"
    )
    latency_ms: float
    composite: float | None
    scores: dict[str, float] = Field(description="each quality signal's value, 0..1")
    moderation: ModerationVerdict | None
    error: str | None
    cache_hit: bool
    preview: bool = Field(
        default=False,
        description="made by the procedural preview renderer, not a generative model",
    )


class TraceEvent(BaseModel):
    """One entry of a run's trace: a decision, a provider call, a verdict..."""

    seq: int
    node: str
    kind: str
    payload: dict[str, JsonValue]
    at: datetime


class RunTrace(BaseModel):
    """Everything the registry knows about one run."""

    run: RunView
    attempts: list[AttemptView]
    events: list[TraceEvent]
    receipts: list[Receipt] = Field(description="the receipt of each accepted image, in order")


#: the fields of a run's view that are its row's columns as they are
_RUN_AS_STORED = (
    "status",
    "brief",
    "reason",
    "campaign_id",
    "thread_id",
    "created_at",
    "finished_at",
)


class BrandView(BaseModel):
    """A brand: its id, its name and its kit (the same model as the YAML files)."""

    id: str
    name: str
    kit: BrandKit
    created_at: datetime
    updated_at: datetime


class ModelView(ModelSpec):
    """A catalog model, and whether the providers this deployment configures can run it."""

    usable: bool
    unusable_reason: str | None = Field(default=None, examples=["openai not configured"])


def brand_view(row: BrandRow) -> BrandView:
    return BrandView(
        id=row.id,
        name=row.name,
        kit=crud.brand_kit(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def run_view(bind: Session | Connection, row: RunRow | Row[Any]) -> RunView:
    """The run as the API and the CLI show it, from its mapped row or a plain row of the same
    columns (``crud.read_run``); its cost is :func:`cost_so_far`."""
    return RunView(
        **{name: getattr(row, name) for name in _RUN_AS_STORED},
        run_id=row.id,
        brand=row.brand_name,
        template=row.template_ref,
        attempts=row.attempt_count if row.finished_at is not None else _attempts(bind, row.id),
        accepted=row.accepted_count,
        request=GenerationRequest.model_validate(row.request),
        images=[AcceptedImage.model_validate(i) for i in (row.result or {}).get("images", [])],
        stop_cause=(row.result or {}).get("stop_cause"),
        cost_usd=cost_so_far(bind, row),
    )


def _attempts(bind: Session | Connection, run_id: str) -> int:
    """The attempts a run not finished has recorded so far (its row counts them once it ends:
    a run a process left ``running`` listed its attempt rows beside a count of 0)."""
    query = select(func.count()).select_from(AttemptRow).where(AttemptRow.run_id == run_id)
    return int(bind.execute(query).scalar_one())


def cost_so_far(bind: Session | Connection, row: RunRow | Row[Any]) -> float:
    """What the run has cost. Once it has finished, its ``cost_usd`` (kept by whoever ends it,
    and by reconciling its calls); before that (running, waiting for review, or left running by
    a process that stopped) its row holds $0 or what it had spent when it stopped for review,
    so it is read as ``GET /v1/costs`` counts it: its attempts, plus its calls in flight at what
    the ledger holds for them (``spend.run_cost``: one statement, through indexes). A finished
    run costs no read."""
    if row.finished_at is not None:
        return float(row.cost_usd)
    return spend.run_cost(bind, run_id=row.id)


#: the fields of an attempt's view that are its row's columns as they are
_AS_STORED = tuple(
    AttemptView.model_fields.keys()
    - {"model_version", "template", "size", "latency_ms", "scores", "moderation", "preview"}
)


def attempt_view(row: AttemptRow, *, model_version: str | None) -> AttemptView:
    signals = (row.scores or {}).get("signals", {})
    return AttemptView(
        **{name: getattr(row, name) for name in _AS_STORED},
        model_version=model_version,
        template=row.template_ref,
        size=f"{row.width}x{row.height}",
        latency_ms=round(row.latency_ms, 1),
        scores={name: signal["value"] for name, signal in signals.items()},
        moderation=ModerationVerdict.model_validate(row.moderation) if row.moderation else None,
        preview=row.model.partition("/")[0] == PREVIEW_PROVIDER,
    )


def trace_event(row: RunEventRow) -> TraceEvent:
    return TraceEvent(seq=row.seq, node=row.node, kind=row.kind, payload=row.payload, at=row.at)


def find_run(session: Session, *, tenant: str, ref: str) -> RunRow | None:
    """A run by its id, or by the sha256 of one of its images (hex in either case, as tools
    print it); another tenant's is absent."""
    run_id = ref
    if SHA256.fullmatch(ref.lower()):
        artifact = crud.get_artifact(session, tenant=tenant, sha256=ref.lower(), with_deleted=True)
        if artifact is None or artifact.run_id is None:
            return None
        run_id = artifact.run_id
    return crud.get_run(session, tenant=tenant, run_id=run_id)


def run_receipts(session: Session, *, run: RunRow) -> list[Receipt]:
    """The receipt of each accepted image of ``run``, in the order of its result (an image
    whose bytes were deleted keeps its receipt)."""
    receipts = []
    for image in (run.result or {}).get("images", []):
        artifact = crud.get_artifact(
            session, tenant=run.tenant, sha256=image["sha256"], with_deleted=True
        )
        if artifact is not None and artifact.receipt is not None:
            receipts.append(Receipt.model_validate(artifact.receipt))
    return receipts


def run_trace(session: Session, *, run: RunRow) -> RunTrace:
    versions = {m.id: m.version for m in crud.list_models(session)}
    return RunTrace(
        run=run_view(session, run),
        attempts=[
            attempt_view(a, model_version=versions.get(a.model))
            for a in crud.list_attempts(session, run_id=run.id)
        ],
        events=[trace_event(e) for e in crud.list_events(session, run_id=run.id)],
        receipts=run_receipts(session, run=run),
    )
