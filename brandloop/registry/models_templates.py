"""Registry tables owned by the templates area: review history and image-quality drift.

The core template tables (``templates``, ``template_versions``, ``template_labels``) live in
``models.py``; these add the review trail of each version and the drift monitor's state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brandloop.domain import utcnow
from brandloop.registry.models import Base
from brandloop.registry.types import Count, Timestamp

__all__ = ["Base", "DriftBaselineRow", "DriftEventRow", "TemplateReviewRow"]


class TemplateReviewRow(Base):
    """One step of a version's review: submitted, commented, approved or rejected, by whom."""

    __tablename__ = "template_reviews"

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    version: Mapped[int] = mapped_column(Count)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class DriftBaselineRow(Base):
    """The monitor's current view of one (template version, model): baseline and statistic."""

    __tablename__ = "drift_baselines"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    template_ref: Mapped[str] = mapped_column(String(160), primary_key=True)
    model: Mapped[str] = mapped_column(String(120), primary_key=True)
    baseline_n: Mapped[int] = mapped_column(Count, default=0)
    baseline_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    baseline_std: Mapped[float | None] = mapped_column(Float, nullable=True)
    monitored_n: Mapped[int] = mapped_column(Count, default=0)
    statistic: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class DriftEventRow(Base):
    """A detected drop in quality: recent scores fell significantly below the baseline."""

    __tablename__ = "drift_events"
    __table_args__ = (UniqueConstraint("tenant", "template_ref", "model", "last_attempt_id"),)

    id: Mapped[int] = mapped_column(Count, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    template_ref: Mapped[str] = mapped_column(String(160), index=True)
    model: Mapped[str] = mapped_column(String(120))
    detected_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    method: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    baseline_mean: Mapped[float] = mapped_column(Float)
    baseline_std: Mapped[float] = mapped_column(Float)
    recent_mean: Mapped[float] = mapped_column(Float)
    recent_n: Mapped[int] = mapped_column(Count)
    last_attempt_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
