"""Costs: what the tenant spent, per day, brand and model, over a period."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from brandloop.api.deps import SessionDep, Viewer
from brandloop.api.params import QueryDate
from brandloop.api.problems import PROBLEM_RESPONSES
from brandloop.registry.costs import UNKNOWN_RUN_BRAND, brand_names, spend_lines
from brandloop.registry.models import RunRow
from brandloop.registry.types import money

__all__ = ["UNKNOWN_RUN_BRAND", "CostReport", "cost_report", "router"]

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
    hi = None
    if last < date.max:  # the day after 9999-12-31 is no date: no upper bound then
        hi = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        in_period.append(RunRow.created_at < hi)
    runs = list(
        session.execute(
            select(RunRow.brand_id, RunRow.brand_name, RunRow.created_at).where(*in_period)
        )
    )
    # a run counts on the day it was created, under its brand as named now, even at $0
    names = brand_names(session, tenant=principal.tenant)
    by_day = {created.date().isoformat(): 0.0 for _, _, created in runs}
    by_brand = {names.of(brand_id, brand): 0.0 for brand_id, brand, _ in runs}
    by_model: dict[str, float] = {}
    total = reproduced = 0.0
    attempts = reproduction_calls = 0
    # every figure adds up the same lines (brandloop/registry/costs.py): recorded attempts,
    # calls of unfinished runs not recorded yet (in flight, or when their process stopped), such
    # calls of cancelled runs (left in flight by a process that died) and reproductions, so
    # total_usd == sum(by_day) == sum(by_brand) == sum(by_model) at all times
    for line in spend_lines(session, tenant=principal.tenant, since=lo, until=hi):
        if line.source == "attempts":
            attempts += line.count
        elif line.source == "reproduction":
            reproduction_calls += line.count
            reproduced += line.usd
            if not line.usd:
                continue
        day = line.day.isoformat()
        by_day[day] = by_day.get(day, 0.0) + line.usd
        by_brand[line.brand] = by_brand.get(line.brand, 0.0) + line.usd
        by_model[line.model] = by_model.get(line.model, 0.0) + line.usd
        total += line.usd
    return CostReport(
        tenant=principal.tenant,
        start=first,
        end=last,
        total_usd=money(total),
        runs=len(runs),
        attempts=attempts,
        by_day={day: money(usd) for day, usd in sorted(by_day.items())},
        by_brand={brand: money(usd) for brand, usd in by_brand.items()},
        by_model={model: money(usd) for model, usd in by_model.items()},
        reproductions_usd=money(reproduced),
        reproduction_calls=reproduction_calls,
    )
