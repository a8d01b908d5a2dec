"""Registry tables owned by the money work: the spend ledger and the per-tenant lock row.

Every cent a provider call may cost is reserved in ``spend_reservations`` before the call is
made, and the job a tenant submits holds its whole budget there against the daily quota while
it is queued or running. See ``brandloop/registry/spend.py`` for the rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Money, Timestamp

__all__ = ["Base", "SpendLockRow", "SpendReservationRow"]


class SpendReservationRow(Base):
    """One reservation: a provider call's estimated cost (``kind='call'``) or a job's or a
    campaign's whole budget held against the tenant's daily quota (``kind='admission'``).

    ``state`` moves held -> settled | released | unknown; unknown -> settled | released when an
    operator reconciles it. What a reservation commits: ``amount_usd`` while held or unknown,
    ``charged_usd`` once settled, nothing once released.
    """

    __tablename__ = "spend_reservations"
    __table_args__ = (
        Index("ix_spend_reservations_tenant_created", "tenant", "created_at"),
        Index("ix_spend_reservations_tenant_kind_state", "tenant", "kind", "state"),
        #: the calls left in flight by a cancelled run (``spend.unrecorded_calls``): the cost
        #: report and the cost metric read these, not every call of every cancelled run
        Index(
            "ix_spend_reservations_abandoned",
            "tenant",
            sqlite_where=text("abandoned_at IS NOT NULL"),
            postgresql_where=text("abandoned_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    hold_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    call_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    provider: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(120), default="")
    amount_usd: Mapped[float] = mapped_column(Money)
    charged_usd: Mapped[float | None] = mapped_column(Money, nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    billing: Mapped[str | None] = mapped_column(String(16), nullable=True)
    fence: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    attempt_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: a call made outside any run (``run_id`` is then the reproduction's ``rep_...`` spend
    #: id): the run it reproduces, so the cost report puts it under that run's brand
    source_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)
    #: a call of a cancelled run with no recorded attempt (in flight when the run was
    #: cancelled, ``spend.abandon_calls``): when the run was cancelled. It counts at what it
    #: commits in the run's cost and the cost report, reconciled or not
    abandoned_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class SpendLockRow(Base):
    """The row a PostgreSQL transaction locks (``SELECT … FOR UPDATE``) to reserve for a
    tenant; SQLite serialises writers with ``BEGIN IMMEDIATE`` instead."""

    __tablename__ = "spend_locks"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
