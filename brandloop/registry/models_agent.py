"""Registry tables owned by the agent area: the generation cache, budgets and review decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Count, Money, Timestamp

__all__ = ["Base", "BudgetRow", "CacheEntryRow", "RepairOutcomeRow", "ReviewDecisionRow"]


class CacheEntryRow(Base):
    """One cached generation: the content-addressed key of a request and the image it made."""

    __tablename__ = "cache_entries"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    template_ref: Mapped[str] = mapped_column(String(160), index=True)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    seed_returned: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    provider_request_id: Mapped[str | None] = mapped_column(String(160), nullable=True)
    cost_usd: Mapped[float] = mapped_column(Money, default=0.0)
    hits: Mapped[int] = mapped_column(Count, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_hit_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class BudgetRow(Base):
    """A spending limit for a whole tenant or one campaign, on top of each request's own."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("tenant", "scope", "scope_id"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(120))
    limit_usd: Mapped[float] = mapped_column(Money)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ReviewDecisionRow(Base):
    """A human's approve/reject of a run that waited for review."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class RepairOutcomeRow(Base):
    """Whether a repair the diagnosis applied fixed the signal it was aimed at, one round later.

    ``brandloop runs stats`` and the eval report show the fix rate per action and model; the
    planner's stopping rule uses it to estimate the next round's chance.
    """

    __tablename__ = "repair_outcomes"
    __table_args__ = (UniqueConstraint("run_id", "round", "action", "signal"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    brand_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    round: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(48))
    signal: Mapped[str] = mapped_column(String(48))
    model: Mapped[str] = mapped_column(String(120))
    fixed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
