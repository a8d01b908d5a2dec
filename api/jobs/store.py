"""Data access for jobs, threads, campaigns and idempotency records (keyword-only, over a session)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.agent.budgets import limit_of
from brandloop.domain import utcnow
from brandloop.registry.models import BrandRow
from brandloop.registry.models_service import (
    CampaignRow,
    IdempotencyRow,
    JobRow,
    ThreadMessageRow,
    ThreadRow,
)
from brandloop.registry.write_lock import sqlite_write_lock

JOB_STATES = ("queued", "running", "awaiting_review", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def create_job(
    session: Session,
    *,
    tenant: str,
    kind: str,
    request: dict[str, Any],
    campaign_id: str | None = None,
    thread_id: str | None = None,
    requested_by: str | None = None,
    run_id: str | None = None,
) -> JobRow:
    """A queued job; ``requested_by`` is the principal asking (run review compares it);
    ``run_id`` is the id its run gets (the one its request was checked with), new if None."""
    job_id = new_id("job")
    row = JobRow(
        id=job_id,
        tenant=tenant,
        kind=kind,
        state="queued",
        request=request,
        run_id=run_id or "run_" + uuid.uuid4().hex[:16],
        campaign_id=campaign_id,
        thread_id=thread_id,
        requested_by=requested_by,
        cancel_requested=False,
        cost_usd=0.0,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def get_job(session: Session, *, tenant: str, job_id: str) -> JobRow | None:
    row = session.get(JobRow, job_id)
    return row if row is not None and row.tenant == tenant else None


def list_jobs(
    session: Session,
    *,
    tenant: str,
    state: str | None = None,
    campaign_id: str | None = None,
    thread_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    newest_first: bool = False,
) -> list[JobRow]:
    """The tenant's jobs, oldest first (a campaign's assets in order), or ``newest_first`` as
    ``GET /v1/jobs`` lists them."""
    query = select(JobRow).where(JobRow.tenant == tenant)
    if state is not None:
        query = query.where(JobRow.state == state)
    if campaign_id is not None:
        query = query.where(JobRow.campaign_id == campaign_id)
    if thread_id is not None:
        query = query.where(JobRow.thread_id == thread_id)
    order = (
        (JobRow.created_at.desc(), JobRow.id.desc())
        if newest_first
        else (JobRow.created_at, JobRow.id)
    )
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))


def job_for_run(session: Session, *, tenant: str, run_id: str) -> JobRow | None:
    return session.scalar(select(JobRow).where(JobRow.tenant == tenant, JobRow.run_id == run_id))


def unstarted_job(
    reader: Session | Connection, *, tenant: str, run_id: str
) -> tuple[str, str] | None:
    """``(job id, state)`` of the tenant's job that handed out run id ``run_id`` and has not
    finished: a job hands out its run's id as it is queued, before a worker writes the run."""
    job = reader.execute(
        select(JobRow.id, JobRow.state)
        .where(JobRow.run_id == run_id, JobRow.tenant == tenant)
        .order_by(JobRow.created_at.desc())
        .limit(1)
    ).first()
    if job is None or job.state not in ("queued", "running"):
        return None
    return str(job.id), str(job.state)


def claim_job(session: Session, *, job_id: str) -> bool:
    """Move a queued job to running; False if someone else has it or it is finished."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == "queued")
        .values(state="running", started_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def cancel_queued(session: Session, *, job_id: str) -> bool:
    """Cancel a job no worker has claimed; False if one has (or it is no longer queued)."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == "queued")
        .values(state="cancelled", finished_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def request_cancel(session: Session, *, job_id: str) -> bool:
    """Ask the worker running the job to stop it; False unless it is running."""
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == "running")
        .values(cancel_requested=True)
    )
    return bool(getattr(result, "rowcount", 0))


def unfinished_jobs(session: Session) -> list[JobRow]:
    query = select(JobRow).where(JobRow.state.in_(("queued", "running")))
    return list(session.scalars(query.order_by(JobRow.created_at, JobRow.id)))


def count_jobs_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state))
    counts = dict.fromkeys(JOB_STATES, 0)
    counts.update({state: int(n) for state, n in rows})
    return counts


# --------------------------------------------------------------------------- idempotency


def get_idempotency(session: Session, *, tenant: str, key: str) -> IdempotencyRow | None:
    return session.get(IdempotencyRow, (tenant, key))


def claim_idempotency(
    session: Session, *, tenant: str, key: str, method_path: str, request_sha256: str
) -> bool:
    """Insert the key as ``pending``; False if the (tenant, key) pair exists already (the
    caller's transaction is then unusable: roll it back)."""
    session.add(
        IdempotencyRow(
            tenant=tenant,
            key=key,
            method_path=method_path,
            request_sha256=request_sha256,
            state="pending",
            created_at=utcnow(),
        )
    )
    try:
        session.flush()
    except IntegrityError:
        return False
    return True


def take_over_idempotency(
    session: Session,
    *,
    tenant: str,
    key: str,
    older_than: datetime,
    state: str,
    method_path: str,
    request_sha256: str,
) -> bool:
    """Restart a record left ``state`` since before ``older_than`` (expired, or pending from a
    request that died) as pending now; False if someone else changed it first."""
    result = session.execute(
        update(IdempotencyRow)
        .where(
            IdempotencyRow.tenant == tenant,
            IdempotencyRow.key == key,
            IdempotencyRow.state == state,
            IdempotencyRow.created_at < older_than,
        )
        .values(
            state="pending",
            method_path=method_path,
            request_sha256=request_sha256,
            status_code=None,
            body=None,
            headers=None,
            created_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def complete_idempotency(
    session: Session,
    *,
    tenant: str,
    key: str,
    status_code: int,
    body: str,
    headers: list[list[str]],
) -> None:
    session.execute(
        update(IdempotencyRow)
        .where(
            IdempotencyRow.tenant == tenant,
            IdempotencyRow.key == key,
            IdempotencyRow.state == "pending",
        )
        .values(state="done", status_code=status_code, body=body, headers=headers)
    )


def forget_idempotency(session: Session, *, tenant: str, key: str) -> None:
    """The request failed: drop its pending record so a retry runs it afresh."""
    session.execute(
        delete(IdempotencyRow).where(
            IdempotencyRow.tenant == tenant,
            IdempotencyRow.key == key,
            IdempotencyRow.state == "pending",
        )
    )


def purge_idempotency(session: Session, *, before: datetime) -> int:
    result = session.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# --------------------------------------------------------------------------- threads


def create_thread(session: Session, *, tenant: str, brand: BrandRow, title: str) -> ThreadRow:
    """A thread about ``brand``: kept by its id (and its name as of now, for the record)."""
    row = ThreadRow(
        id=new_id("thr"),
        tenant=tenant,
        brand=brand.name,
        brand_id=brand.id,
        title=title,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def thread_brand(session: Session, *, thread: ThreadRow | CampaignRow) -> BrandRow | None:
    """The thread's (or campaign's) brand, by its id, whatever it is called now; None for one
    whose brand is not known (from before migration 0950, or 1000 for a campaign, whose name no
    brand had). Never a brand found by its name: a new brand under an old name is another."""
    if thread.brand_id is None:
        return None
    return session.scalar(
        select(BrandRow).where(BrandRow.tenant == thread.tenant, BrandRow.id == thread.brand_id)
    )


def brand_names(session: Session, *, tenant: str, ids: Iterable[str | None]) -> dict[str, str]:
    """brand id -> its current name, for the ``ids`` of the tenant's brands."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(BrandRow.id, BrandRow.name).where(
        BrandRow.tenant == tenant, BrandRow.id.in_(wanted)
    )
    return {str(row.id): str(row.name) for row in session.execute(query)}


def delete_thread_if_empty(session: Session, *, thread_id: str) -> None:
    """Forget a thread that holds no message (its first message was refused)."""
    if last_seq(session, thread_id=thread_id) == 0:
        row = session.get(ThreadRow, thread_id)
        if row is not None:
            session.delete(row)


def get_thread(session: Session, *, tenant: str, thread_id: str) -> ThreadRow | None:
    return session.scalar(
        select(ThreadRow).where(ThreadRow.tenant == tenant, ThreadRow.id == thread_id)
    )


def list_threads(
    session: Session, *, tenant: str, limit: int = 50, offset: int = 0
) -> list[ThreadRow]:
    """Newest first (the id breaks ties, so pages neither repeat nor skip a thread)."""
    query = select(ThreadRow).where(ThreadRow.tenant == tenant)
    query = query.order_by(ThreadRow.created_at.desc(), ThreadRow.id.desc())
    return list(session.scalars(query.offset(offset).limit(limit)))


def count_threads(session: Session, *, tenant: str) -> int:
    """How many threads the tenant has (the studio's thread list pages by it)."""
    query = select(func.count()).select_from(ThreadRow).where(ThreadRow.tenant == tenant)
    return int(session.scalar(query) or 0)


def threads_before(session: Session, thread: ThreadRow) -> int:
    """How many of its tenant's threads :func:`list_threads` lists before ``thread`` (newer,
    or as new with a greater id): the offset at which it is listed."""
    newer = (ThreadRow.created_at > thread.created_at) | (
        (ThreadRow.created_at == thread.created_at) & (ThreadRow.id > thread.id)
    )
    query = select(func.count()).select_from(ThreadRow)
    return int(session.scalar(query.where(ThreadRow.tenant == thread.tenant, newer)) or 0)


def thread_messages(session: Session, *, thread_id: str) -> list[ThreadMessageRow]:
    query = select(ThreadMessageRow).where(ThreadMessageRow.thread_id == thread_id)
    return list(session.scalars(query.order_by(ThreadMessageRow.seq)))


def last_seq(session: Session, *, thread_id: str) -> int:
    """The sequence number of the thread's latest message (0 before the first)."""
    seq = session.scalar(
        select(func.coalesce(func.max(ThreadMessageRow.seq), 0)).where(
            ThreadMessageRow.thread_id == thread_id
        )
    )
    return int(seq or 0)


def lock_thread(session: Session, *, thread_id: str) -> None:
    """Serialise this transaction with every other one that adds a message to the thread, on
    any replica, until it ends: PostgreSQL locks the thread's row (``FOR NO KEY UPDATE``: the
    foreign keys of rows that name the thread are not held up by it); SQLite takes the
    database's write lock (``BEGIN IMMEDIATE``, unless this transaction has written and holds
    it already). What the transaction reads after this is what the thread holds, until it
    commits."""
    if sqlite_write_lock(session):
        return
    session.execute(
        select(ThreadRow.id).where(ThreadRow.id == thread_id).with_for_update(key_share=True)
    )


def add_message(
    session: Session,
    *,
    thread_id: str,
    role: str,
    content: str,
    brief: str = "",
    job_id: str | None = None,
    edit: dict[str, Any] | None = None,
    inherited: list[str] | None = None,
) -> ThreadMessageRow:
    row = ThreadMessageRow(
        id=new_id("msg"),
        thread_id=thread_id,
        seq=last_seq(session, thread_id=thread_id) + 1,
        role=role,
        content=content,
        brief=brief,
        job_id=job_id,
        edit=edit,
        inherited=inherited,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


# --------------------------------------------------------------------------- campaigns


def create_campaign(
    session: Session,
    *,
    tenant: str,
    name: str,
    brand: BrandRow,
    budget_usd: float,
    assets: list[dict[str, Any]],
) -> CampaignRow:
    """A campaign about ``brand``: kept by its id (and its name as of now, for the record)."""
    row = CampaignRow(
        id=new_id("cmp"),
        tenant=tenant,
        name=name,
        brand=brand.name,
        brand_id=brand.id,
        budget_usd=budget_usd,
        assets=assets,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get_campaign(session: Session, *, tenant: str, campaign_id: str) -> CampaignRow | None:
    return session.scalar(
        select(CampaignRow).where(CampaignRow.tenant == tenant, CampaignRow.id == campaign_id)
    )


def campaign_limit(session: Session, campaign: CampaignRow) -> float:
    """The campaign's budget as its runs are held to it: the limit in the budgets table (set
    as it was created, changed by ``brandloop campaign budget``), else what it was created
    with. Its view and its assets' shares once used the created budget after the CLI had
    lowered the limit."""
    limit = limit_of(session, tenant=campaign.tenant, scope="campaign", scope_id=campaign.id)
    return campaign.budget_usd if limit is None else float(limit)


def list_campaigns(
    session: Session, *, tenant: str, limit: int = 50, offset: int = 0
) -> list[CampaignRow]:
    """Newest first (the id breaks ties, so pages neither repeat nor skip a campaign)."""
    query = select(CampaignRow).where(CampaignRow.tenant == tenant)
    query = query.order_by(CampaignRow.created_at.desc(), CampaignRow.id.desc())
    return list(session.scalars(query.offset(offset).limit(limit)))


def count_campaigns(session: Session, *, tenant: str) -> int:
    """How many campaigns the tenant has (the studio's campaign list pages by it)."""
    query = select(func.count()).select_from(CampaignRow).where(CampaignRow.tenant == tenant)
    return int(session.scalar(query) or 0)
