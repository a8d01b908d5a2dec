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
from brandloop.registry.models_money import SpendReservationRow as Spend

#: a reproduction's calls, in the ledger under a spend id of their own, made before the ledger
#: named the run they reproduce: counted, under this brand
UNKNOWN_RUN_BRAND = "(reproduction of an unrecorded run)"

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
    reproductions_usd: float
    reproduction_calls: int


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
    calls_in_period = [Spend.tenant == principal.tenant, Spend.created_at >= lo]
    if last < date.max:  # the day after 9999-12-31 is no date: no upper bound then
        hi = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        in_period.append(RunRow.created_at < hi)
        calls_in_period.append(Spend.created_at < hi)
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
    # calls made outside any run (reproductions) are paid through the same ledger and count
    # against the same budgets and quota: the report counts them too, on the day they were
    # made, under their model and the reproduced run's brand
    reproduced = 0.0
    calls = session.execute(
        select(
            Spend.created_at,
            Spend.model,
            Spend.state,
            Spend.amount_usd,
            Spend.charged_usd,
            RunRow.brand_name,
        )
        .outerjoin(RunRow, RunRow.id == Spend.source_run_id)
        .where(
            *calls_in_period,
            Spend.kind == "call",
            Spend.run_id.startswith("rep_", autoescape=True),
        )
    )
    count = 0
    for created, model, state, amount, charged, brand in calls:
        cost = {"held": amount, "unknown": amount, "settled": charged or 0.0}.get(state, 0.0)
        count += 1
        if not cost:
            continue
        day = created.date().isoformat()
        by_day[day] = round(by_day.get(day, 0.0) + cost, 6)
        name = brand or UNKNOWN_RUN_BRAND
        by_brand[name] = round(by_brand.get(name, 0.0) + cost, 6)
        by_model[model] = round(by_model.get(model, 0.0) + cost, 6)
        reproduced += cost
    return CostReport(
        tenant=principal.tenant,
        start=first,
        end=last,
        total_usd=round(sum(r[2] for r in runs) + reproduced, 6),
        runs=len(runs),
        attempts=attempts,
        by_day=dict(sorted(by_day.items())),
        by_brand=by_brand,
        by_model=by_model,
        reproductions_usd=round(reproduced, 6),
        reproduction_calls=count,
    )
