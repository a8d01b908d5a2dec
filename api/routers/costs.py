"""Costs: what the tenant spent, per day, brand and model, over a period."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from brandloop.api.deps import SessionDep, Viewer
from brandloop.api.params import QueryDate
from brandloop.api.problems import PROBLEM_RESPONSES
from brandloop.registry.models import AttemptRow, RunRow

router = APIRouter(prefix="/costs", tags=["costs"], responses=PROBLEM_RESPONSES)


class CostReport(BaseModel):
    tenant: str
    start: date
    end: date
    total_usd: float
    runs: int
    attempts: int
    by_day: dict[str, float]
    by_brand: dict[str, float]
    by_model: dict[str, float]


@router.get("", response_model=CostReport, summary="Spend per tenant and period")
def cost_report(
    principal: Viewer,
    session: SessionDep,
    period: Literal["day", "week", "month", "custom"] = "month",
    start: Annotated[
        QueryDate | None,
        Query(description="first day (custom period; default: 29 days before the end)"),
    ] = None,
    end: Annotated[
        QueryDate | None,
        Query(description="last day, inclusive (custom period; default: today)"),
    ] = None,
) -> CostReport:
    today = datetime.now(UTC).date()
    if period == "custom":
        # any two days make a period: the end defaults to today, the start to 29 days before
        # the end (a month, as period=month); a start after the end is a period with nothing
        last = end or today
        first = start or max(date.min + timedelta(days=29), last) - timedelta(days=29)
    else:
        first, last = today - timedelta(days={"day": 0, "week": 6, "month": 29}[period]), today
    lo = datetime.combine(first, time.min, tzinfo=UTC)
    in_period = [RunRow.tenant == principal.tenant, RunRow.created_at >= lo]
    if last < date.max:  # the day after 9999-12-31 is no date: no upper bound then
        hi = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        in_period.append(RunRow.created_at < hi)
    runs = list(
        session.execute(
            select(RunRow.id, RunRow.brand_name, RunRow.cost_usd, RunRow.created_at).where(
                *in_period
            )
        )
    )
    by_day: dict[str, float] = {}
    by_brand: dict[str, float] = {}
    for _, brand, cost, created in runs:
        day = created.date().isoformat()
        by_day[day] = round(by_day.get(day, 0.0) + cost, 6)
        by_brand[brand] = round(by_brand.get(brand, 0.0) + cost, 6)
    by_model: dict[str, float] = {}
    attempts = 0
    if runs:
        rows = session.execute(
            select(
                AttemptRow.model, func.count(), func.coalesce(func.sum(AttemptRow.cost_usd), 0.0)
            )
            .join(RunRow, RunRow.id == AttemptRow.run_id)
            .where(*in_period)
            .group_by(AttemptRow.model)
        )
        for model, count, cost in rows:
            attempts += int(count)
            by_model[model] = round(float(cost), 6)
    return CostReport(
        tenant=principal.tenant,
        start=first,
        end=last,
        total_usd=round(sum(r[2] for r in runs), 6),
        runs=len(runs),
        attempts=attempts,
        by_day=dict(sorted(by_day.items())),
        by_brand=by_brand,
        by_model=by_model,
    )
