"""Registry tables owned by the agent area: the generation cache, budgets, review decisions and
the claims of the verdicts being applied."""

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

__all__ = [
    "Base",
    "BudgetRow",
    "CacheEntryRow",
    "RepairOutcomeRow",
    "ReviewClaimRow",
    "ReviewDecisionRow",
    "RunLeaseRow",
]


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


#: the ``owner`` of a review claim that was given up (its run finished, or waits for review again)
CLAIM_RELEASED = "released"


class ReviewClaimRow(Base):
    """Which verdict (a ``review_decisions`` row) is being applied to a run, by which process,
    until when: a lease, like a job's (``job_leases``).

    A verdict claims its run (``awaiting_review`` -> ``running``) and takes this row in one
    transaction; the process finishing the run renews ``expires_at`` while it works and gives
    the row up (``owner`` ``released``) when the run has finished. A row not given up whose
    ``expires_at`` has passed was left by a process that died: the next verdict on the run, or
    a worker pool's sweep, takes it over and finishes the run with the verdict it names
    (``agent/review_claims.py``). ``fence`` grows on every grant; the claimant's writes check
    it (``brandloop/registry/fencing.py``), so one that stalled past its lease writes nothing.
    The row stays after the run has finished, so the token never starts again at 1.
    """

    __tablename__ = "review_claims"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    decision_id: Mapped[int] = mapped_column(Count)
    owner: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    takeovers: Mapped[int] = mapped_column(Count, default=0)
    fence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RunLeaseRow(Base):
    """Which process drives a run's graph now, until when: a lease its holder renews while it
    runs the run (``agent/run_leases.py``), so a resume of a run a live process still runs is
    refused, and one whose process died goes on. ``owner`` is ``released`` once the holder
    has stopped driving the run; ``host``, ``pid`` and ``started`` (the process's start time,
    so a reused pid is not taken for it) tell, on the same host, a dead holder at once."""

    __tablename__ = "run_leases"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(128))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)


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
