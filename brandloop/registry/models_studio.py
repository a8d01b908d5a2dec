"""Registry tables owned by the studio (the web app at ``/``): sign-in sessions and one-time
links, and what reviewers record about runs and images (assignments, rubric ratings, pairwise
judgements).

Every row carries its tenant; the studio reads them only through the signed-in tenant.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Count, Timestamp

__all__ = [
    "Base",
    "ImageRatingRow",
    "PairwiseJudgementRow",
    "ReviewAssignmentRow",
    "StudioLinkRow",
    "StudioSessionRow",
]


class StudioSessionRow(Base):
    """A signed-in browser: only the sha256 of the cookie's token is kept."""

    __tablename__ = "studio_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    principal: Mapped[str] = mapped_column(String(120))
    key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class StudioLinkRow(Base):
    """A one-time sign-in link (``brandloop studio link``): the sha256 of its token."""

    __tablename__ = "studio_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    principal: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    used_at: Mapped[datetime | None] = mapped_column(Timestamp, nullable=True)


class ReviewAssignmentRow(Base):
    """A run waiting for review, assigned to one reviewer."""

    __tablename__ = "review_assignments"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    assignee: Mapped[str] = mapped_column(String(120))
    assigned_by: Mapped[str] = mapped_column(String(120))
    assigned_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class ImageRatingRow(Base):
    """One reviewer's rubric for one image: on-brand 1-5, usable yes/no, a free note."""

    __tablename__ = "image_ratings"
    __table_args__ = (UniqueConstraint("tenant", "sha256", "principal"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(120))
    on_brand: Mapped[int] = mapped_column(Integer)
    usable: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


#: one judgement per (tenant, axis, reviewer, pair of images)
PAIR_KEY = ("tenant", "axis", "principal", "pair_low", "pair_high")


class PairwiseJudgementRow(Base):
    """Which of two images (two template versions, or two models) a reviewer found better."""

    __tablename__ = "pairwise_judgements"

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    brand: Mapped[str] = mapped_column(String(80))
    axis: Mapped[str] = mapped_column(String(16))
    left_sha256: Mapped[str] = mapped_column(String(64))
    right_sha256: Mapped[str] = mapped_column(String(64))
    left_ref: Mapped[str] = mapped_column(String(160))
    right_ref: Mapped[str] = mapped_column(String(160))
    winner: Mapped[str] = mapped_column(String(8))
    principal: Mapped[str] = mapped_column(String(120))
    #: the pair's sha256s in order, whichever side each was shown on: one judgement per
    #: reviewer and pair (a later one replaces it), so a repeat is not counted twice
    pair_low: Mapped[str] = mapped_column(String(64))
    pair_high: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    __table_args__ = (Index("uq_pairwise_reviewer_pair", *PAIR_KEY, unique=True),)
