"""Registry tables owned by the HTTP service: principals and their API keys, durable jobs,
idempotency records, chat threads and their messages, and campaigns.

Every row carries its tenant; the API reads them only through the tenant of the calling key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Count, Money, Timestamp

__all__ = [
    "ApiKeyRow",
    "Base",
    "CampaignRow",
    "IdempotencyRow",
    "JobRow",
    "PrincipalRow",
    "ThreadMessageRow",
    "ThreadRow",
]


class PrincipalRow(Base):
    """A named person (or service) of a tenant. Keys belong to a principal, and review rules
    compare principals, so a second key never makes a second reviewer. ``name`` is exact:
    ``ana`` and ``Ana`` are two principals."""

    __tablename__ = "principals"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ApiKeyRow(Base):
    """An API key of one principal: only the sha256 of the secret is kept; the secret is
    shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "principal"],
            ["principals.tenant", "principals.name"],
            name="fk_api_keys_principal",
        ),
        Index("ix_api_keys_tenant_principal", "tenant", "principal"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    principal: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120), default="")
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class JobRow(Base):
    """A unit of work the worker pool runs: one agent run (a generation, a thread message or
    one asset of a campaign). ``state`` moves queued -> running -> succeeded|failed|cancelled."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_tenant_created_at", "tenant", "created_at"),
        Index("ix_jobs_run_id_tenant", "run_id", "tenant"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    thread_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    #: the principal whose key asked for the job; None for jobs made before principals existed
    requested_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[float] = mapped_column(Money, default=0.0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class IdempotencyRow(Base):
    """A creating POST with an ``Idempotency-Key``: inserted ``pending`` before the request runs
    (the primary key makes a concurrent duplicate fail to insert), then ``done`` with the first
    answer, which retries get back."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method_path: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    headers: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)


class ThreadRow(Base):
    """A chat thread: a conversation about one brand whose follow-ups edit earlier output.

    The brand is ``brand_id`` (it survives a rename, and a new brand taking the old name is
    another brand); ``brand`` is its name as the thread was started. ``brand_id`` is NULL only
    for a thread from before migration 0950 whose brand could not be told from its name."""

    __tablename__ = "threads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    brand: Mapped[str] = mapped_column(String(80))
    brand_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ThreadMessageRow(Base):
    __tablename__ = "thread_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("threads.id"), index=True)
    seq: Mapped[int] = mapped_column(Count)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    brief: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    edit: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, nullable=True, doc="the revision this message made (brandloop.agent.revision)"
    )
    inherited: Mapped[list[str] | None] = mapped_column(
        JSON,
        nullable=True,
        doc="the shape fields (count, size, aspect_ratio, budget_usd) a follow-up took from the "
        "turn it was made on, not its body (api/jobs/turns.py); NULL before migration 1020",
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class CampaignRow(Base):
    """A set of assets for one brand under a shared budget; each asset runs as a job.

    The brand is ``brand_id`` (it survives a rename; a new brand taking the old name is
    another brand); ``brand`` is its name as the campaign was created. ``brand_id`` is NULL
    only for a campaign from before migration 1000 whose brand could not be told from its name."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    brand: Mapped[str] = mapped_column(String(80))
    brand_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    budget_usd: Mapped[float] = mapped_column(Money)
    assets: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
