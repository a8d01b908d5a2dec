"""The registry's schema: one place for every table brandloop keeps.

Migrations in ``brandloop/registry/migrations`` create exactly these tables; a test compares the
two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.types import Count, Money, Timestamp


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class BrandRow(Base):
    """A tenant's brand. ``name`` is spelt as first stored; ``name_key`` is which brand the name
    is (``brandloop.domain.brand_key``), unique per tenant. It is NULL only for brands that
    shared a key with another brand of their tenant when migration 0900 added it (names
    compared exactly before): looking such a name up is refused until one is renamed."""

    __tablename__ = "brands"
    __table_args__ = (
        UniqueConstraint("tenant", "name"),
        Index("ux_brands_tenant_name_key", "tenant", "name_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    kit: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TemplateRow(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("tenant", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TemplateVersionRow(Base):
    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    version: Mapped[int] = mapped_column(Count)
    body: Mapped[str] = mapped_column(Text)
    negative_body: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_hints: Mapped[list[Any]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class TemplateLabelRow(Base):
    """A movable pointer from a label to one version, or a weighted split across versions."""

    __tablename__ = "template_labels"

    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ModelRow(Base):
    """A model catalog entry as the registry knows it (the shipped YAML merged in)."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    price_per_image_usd: Mapped[float] = mapped_column(Money)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class RunRow(Base):
    __tablename__ = "runs"
    #: the tenant's newest runs (lists, the daily spend) without sorting its whole history; the
    #: runs not finished (their calls in flight count in the cost report) without reading all
    __table_args__ = (
        Index("ix_runs_tenant_created_at", "tenant", "created_at"),
        Index(
            "ix_runs_unfinished",
            "tenant",
            sqlite_where=text("finished_at IS NULL"),
            postgresql_where=text("finished_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    brand_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    brand_name: Mapped[str] = mapped_column(String(80), default="")
    brief: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(24), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    template_ref: Mapped[str] = mapped_column(String(160), default="")
    campaign_id: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    thread_id: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    request_key: Mapped[str | None] = mapped_column(
        String(64), nullable=True, index=True, doc="sha256 of what makes two requests identical"
    )
    cost_usd: Mapped[float] = mapped_column(Money, default=0.0)
    attempt_count: Mapped[int] = mapped_column(Count, default=0)
    accepted_count: Mapped[int] = mapped_column(Count, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class RunEventRow(Base):
    """One entry of a run's trace: a node's decision or progress event, in order."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column(Count)
    node: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AttemptRow(Base):
    __tablename__ = "attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    iteration: Mapped[int] = mapped_column(Count)
    model: Mapped[str] = mapped_column(String(120), index=True)
    template_ref: Mapped[str] = mapped_column(String(160), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    seed_requested: Mapped[int] = mapped_column(BigInteger)
    seed_returned: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    width: Mapped[int] = mapped_column(Count)
    height: Mapped[int] = mapped_column(Count)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    provider_request_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    tries: Mapped[int] = mapped_column(Count, default=1, server_default="1")
    revised_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost_usd: Mapped[float] = mapped_column(Money, default=0.0)
    billing: Mapped[str | None] = mapped_column(String(16), nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    composite: Mapped[float | None] = mapped_column(Float, nullable=True)
    moderation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class OutcomeCountRow(Base):
    """How many of a brand's attempts with one template, model and quality setting ended with
    each outcome, and their summed latency: the planner's statistics (one bandit arm per model
    and quality setting), kept as attempts are recorded (``crud.upsert_attempt``), so reading
    them costs the same however long the history."""

    __tablename__ = "outcome_counts"

    brand_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_ref: Mapped[str] = mapped_column(String(160), primary_key=True)
    model: Mapped[str] = mapped_column(String(120), primary_key=True)
    # the quality setting asked for ("" when the attempt named none: the model's default)
    quality: Mapped[str] = mapped_column(String(16), primary_key=True, default="")
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_total: Mapped[float] = mapped_column(Float, default=0.0)


class ArtifactRow(Base):
    """A tenant's copy of an image file. Files are named by their sha256 and shared on disk;
    each tenant that made the same bytes owns its own row, so it can read them, and delete
    its copy, without touching another tenant's (``registry.artifact_owners``). Deleting the
    copy sets ``deleted_at`` and keeps the row: an accepted image's receipt is its provenance
    (``verify``, ``runs reproduce`` and ``/receipts`` read it after the bytes have gone)."""

    __tablename__ = "artifacts"
    __table_args__ = (Index("ix_artifacts_tenant_phash", "tenant", "phash"),)

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    path: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(32), default="image/png")
    width: Mapped[int] = mapped_column(Count)
    height: Mapped[int] = mapped_column(Count)
    size_bytes: Mapped[int] = mapped_column(Count)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    attempt_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    phash: Mapped[str | None] = mapped_column(
        String(16), nullable=True, doc="64-bit perceptual hash, hex, of accepted (signed) images"
    )
    edits: Mapped[list[Any] | None] = mapped_column(
        JSON, nullable=True, doc="C2PA actions brandloop applied to the model's output"
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(
        Timestamp,
        nullable=True,
        doc="when the tenant deleted its copy of the bytes; the row, and the receipt, stay",
    )


class AuditRow(Base):
    """Append-only: the migration installs triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_subject", "tenant", "subject_id"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
