"""Registry tables owned by the scale-out work: the lease that lets exactly one worker run a job.

A broker may deliver a job twice (a visibility timeout, a worker lost mid-job); the lease row
decides who runs it. It expires unless its holder renews it, so a dead worker's job is taken
over by another once ``BRANDLOOP_JOB_LEASE_SECONDS`` pass.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Count, Timestamp

__all__ = ["Base", "JobLeaseRow"]


class JobLeaseRow(Base):
    """Who runs a job now, until when; ``takeovers`` counts holders after the first.

    ``fence`` is the fencing token: it grows on every grant, and every write a job makes
    checks that its holder's token is still the current one (``brandloop/registry/fencing.py``).
    """

    __tablename__ = "job_leases"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    acquired_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    takeovers: Mapped[int] = mapped_column(Count, default=0)
    fence: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
