"""Drift monitoring in the registry: per (template version, model), scores in, events out.

:func:`observe` re-runs the detector (:mod:`brandloop.templates.cusum`, with the policy the
caller loads, normally ``policies/drift.yaml``) over every scored attempt of one
(template version, model) in order, records an event for each alarm not yet recorded (events
are keyed by the attempt where the alarm fired, so observing twice records nothing twice) and
keeps the current baseline and statistic in ``drift_baselines`` for ``brandloop drift list``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.domain import utcnow
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.registry.models_templates import DriftBaselineRow, DriftEventRow
from brandloop.templates.cusum import DriftPolicy, scan


def _stream(session: Session, *, tenant: str, template_ref: str, model: str) -> list[AttemptRow]:
    query = (
        select(AttemptRow)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.tenant == tenant,
            AttemptRow.template_ref == template_ref,
            AttemptRow.model == model,
            AttemptRow.composite.is_not(None),
            AttemptRow.cache_hit.is_(False),
        )
        .order_by(AttemptRow.created_at, AttemptRow.id)
    )
    return list(session.scalars(query))


def observe(
    session: Session,
    *,
    tenant: str,
    template_ref: str,
    model: str,
    policy: DriftPolicy,
) -> list[DriftEventRow]:
    """Update the monitor for one (template version, model); returns the new events."""
    attempts = _stream(session, tenant=tenant, template_ref=template_ref, model=model)
    result = scan([float(a.composite or 0.0) for a in attempts], policy)
    known = set(
        session.scalars(
            select(DriftEventRow.last_attempt_id).where(
                DriftEventRow.tenant == tenant,
                DriftEventRow.template_ref == template_ref,
                DriftEventRow.model == model,
            )
        )
    )
    new: list[DriftEventRow] = []
    for alarm in result.alarms:
        last = attempts[alarm.index].id
        if last in known:
            continue
        row = DriftEventRow(
            tenant=tenant,
            template_ref=template_ref,
            model=model,
            detected_at=utcnow(),
            method=policy.method,
            statistic=alarm.statistic,
            threshold=policy.h,
            baseline_mean=alarm.baseline_mean,
            baseline_std=alarm.baseline_std,
            recent_mean=alarm.recent_mean,
            recent_n=alarm.recent_n,
            last_attempt_id=last,
            detail={
                "k": policy.k,
                "h": policy.h,
                "baseline_size": policy.baseline_size,
                "first_attempt_id": attempts[alarm.start_index].id,
            },
        )
        session.add(row)
        new.append(row)
    baseline = session.get(DriftBaselineRow, (tenant, template_ref, model))
    if baseline is None:
        baseline = DriftBaselineRow(tenant=tenant, template_ref=template_ref, model=model)
        session.add(baseline)
    baseline.baseline_n = result.baseline_n
    baseline.baseline_mean = result.baseline_mean
    baseline.baseline_std = result.baseline_std
    baseline.monitored_n = result.monitored_n
    baseline.statistic = result.statistic
    baseline.updated_at = utcnow()
    session.flush()
    return new


def observe_run(
    session: Session, *, tenant: str, run_id: str, policy: DriftPolicy
) -> list[DriftEventRow]:
    """Update the monitor for every (template version, model) a run scored."""
    pairs = session.execute(
        select(AttemptRow.template_ref, AttemptRow.model)
        .where(AttemptRow.run_id == run_id, AttemptRow.composite.is_not(None))
        .distinct()
    ).all()
    events: list[DriftEventRow] = []
    for template_ref, model in sorted(pairs):
        events += observe(
            session, tenant=tenant, template_ref=template_ref, model=model, policy=policy
        )
    return events


def observe_all(session: Session, *, tenant: str, policy: DriftPolicy) -> list[DriftEventRow]:
    """Update the monitor for every (template version, model) the tenant has scores for."""
    pairs = session.execute(
        select(AttemptRow.template_ref, AttemptRow.model)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(RunRow.tenant == tenant, AttemptRow.composite.is_not(None))
        .distinct()
    ).all()
    events: list[DriftEventRow] = []
    for template_ref, model in sorted(pairs):
        events += observe(
            session, tenant=tenant, template_ref=template_ref, model=model, policy=policy
        )
    return events


def list_events(
    session: Session, *, tenant: str, template: str | None = None
) -> list[DriftEventRow]:
    query = select(DriftEventRow).where(DriftEventRow.tenant == tenant)
    if template is not None:
        if "@" in template:
            query = query.where(DriftEventRow.template_ref == template)
        else:
            # startswith escapes: "_" and "%" in a name are LIKE wildcards (a_b matched axb)
            query = query.where(
                DriftEventRow.template_ref.startswith(f"{template}@", autoescape=True)
            )
    return list(session.scalars(query.order_by(DriftEventRow.detected_at, DriftEventRow.id)))


def list_baselines(session: Session, *, tenant: str) -> list[DriftBaselineRow]:
    return list(
        session.scalars(
            select(DriftBaselineRow)
            .where(DriftBaselineRow.tenant == tenant)
            .order_by(DriftBaselineRow.template_ref, DriftBaselineRow.model)
        )
    )


def event_dict(row: DriftEventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "template": row.template_ref,
        "model": row.model,
        "detected_at": row.detected_at.isoformat(),
        "method": row.method,
        "statistic": row.statistic,
        "threshold": row.threshold,
        "baseline_mean": row.baseline_mean,
        "baseline_std": row.baseline_std,
        "recent_mean": row.recent_mean,
        "recent_n": row.recent_n,
        "last_attempt_id": row.last_attempt_id,
        "detail": row.detail,
    }
