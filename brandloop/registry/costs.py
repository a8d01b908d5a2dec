"""What was spent, line by line: the one source ``GET /v1/costs``, the studio's costs page and
the ``brandloop_cost_usd`` metric add up, so their totals and breakdowns always agree.

What counts, and from where:

* a run's **attempts**: each is recorded with its cost as its provider call returns, in the
  transaction that settles the call's reservation (billed: its share of the charge; unknown:
  its share of the reservation). A finished run's ``cost_usd`` is the sum of its attempts'
  (nothing else a run does is priced: the LLM writer and the moderation calls are not), so a
  finished run counts what it always did;
* a call of a run that has **not finished** (running, waiting for review, or stopped when its
  process died) whose attempts are not recorded yet: the call is in flight, or was when the
  process stopped, so it may have been paid. It counts at what the spend ledger commits for it
  (its whole reservation while ``held`` or ``unknown``, the charge once ``settled``) until its
  attempts say what it cost. So does such a call of a **cancelled** run (ended while the call
  was in flight and no live process would finish it: ``unknown`` until an operator reconciles
  it), and that run's ``cost_usd`` counts it too (``spend.run_cost``);
* a call made **outside any run** (a reproduction, ``run_id`` ``rep_...`` in the ledger): at
  what the ledger commits, on the day it was made, under the reproduced run's brand.

A run's lines count on the day the run was created, under its brand as it is named now (a
renamed brand keeps its id, so its spend before and after the rename is one brand's); a run whose
brand is gone, or stored before brands had ids, under the name it ran with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from brandloop.registry.models import AttemptRow, BrandRow, RunRow
from brandloop.registry.models_money import SpendReservationRow as Spend
from brandloop.registry.spend import COMMITTED, unrecorded_calls
from brandloop.registry.types import money

__all__ = [
    "UNKNOWN_RUN_BRAND",
    "BrandNames",
    "Source",
    "SpendLine",
    "brand_names",
    "spend_lines",
    "total_usd",
]

#: a reproduction's calls, in the ledger under a spend id of their own, made before the ledger
#: named the run they reproduce: counted, under this brand
UNKNOWN_RUN_BRAND = "(reproduction of an unrecorded run)"


#: recorded attempts, a call of an unfinished or cancelled run whose attempts are not recorded,
#: or a call outside any run
Source = Literal["attempts", "in_flight", "reproduction"]


@dataclass(frozen=True)
class SpendLine:
    """Money spent (or held as maybe spent) on one day, for one brand, on one model."""

    day: date
    brand: str
    model: str
    usd: float
    source: Source
    count: int = 1


@dataclass(frozen=True)
class BrandNames:
    """The tenant's brands as named now, by id: a run names its brand by the id it ran with."""

    by_id: dict[str, str]

    def of(self, brand_id: str | None, stored: str | None) -> str:
        """The run's brand as named now; ``stored`` (the name it ran with) when its brand is
        gone or the run has no brand id; :data:`UNKNOWN_RUN_BRAND` when there is no run."""
        if brand_id is not None and brand_id in self.by_id:
            return self.by_id[brand_id]
        return UNKNOWN_RUN_BRAND if stored is None else stored


def brand_names(session: Session, *, tenant: str) -> BrandNames:
    """The tenant's brands by id, as named now (one read of the tenant's brands)."""
    rows = session.execute(select(BrandRow.id, BrandRow.name).where(BrandRow.tenant == tenant))
    return BrandNames({str(brand_id): str(name) for brand_id, name in rows})


def spend_lines(
    session: Session,
    *,
    tenant: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[SpendLine]:
    """Every line of spend of ``tenant`` whose run (for a reproduction: whose call) was created
    in ``[since, until)``."""
    runs = [RunRow.tenant == tenant, *_window(RunRow.created_at, since, until)]
    calls = [Spend.tenant == tenant, *_window(Spend.created_at, since, until)]
    names = brand_names(session, tenant=tenant)
    yield from _attempts(session, runs, names)
    yield from _in_flight(session, tenant, since, until, names)
    yield from _reproductions(session, calls, names)


def total_usd(session: Session) -> float:
    """What every line of :func:`spend_lines` of every tenant adds up to, over all time (the
    database adds up the attempts and the reproductions: a scrape of ``/metrics`` reads a row
    only per call that counts beside them, in flight in a run not finished or left in flight by
    a cancelled run, through indexes that hold just those: ``spend.unrecorded_calls``)."""
    attempts = session.scalar(select(func.coalesce(func.sum(AttemptRow.cost_usd), 0.0)))
    reproduced = session.scalar(
        select(func.coalesce(func.sum(COMMITTED), 0.0)).where(
            Spend.kind == "call", Spend.run_id.startswith("rep_", autoescape=True)
        )
    )
    in_flight = sum(line.usd for line in _in_flight(session, None, None, None, BrandNames({})))
    return money(float(attempts or 0.0) + float(reproduced or 0.0) + in_flight)


def _window(
    column: InstrumentedAttribute[datetime], since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return clauses


def _attempts(
    session: Session, runs: Sequence[ColumnElement[bool]], names: BrandNames
) -> Iterator[SpendLine]:
    rows = session.execute(
        select(
            RunRow.created_at,
            RunRow.brand_id,
            RunRow.brand_name,
            AttemptRow.model,
            func.count(),
            func.coalesce(func.sum(AttemptRow.cost_usd), 0.0),
        )
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(*runs)
        .group_by(
            RunRow.id, RunRow.created_at, RunRow.brand_id, RunRow.brand_name, AttemptRow.model
        )
    )
    for created, brand_id, brand, model, count, usd in rows:
        yield SpendLine(
            created.date(), names.of(brand_id, brand), model, float(usd), "attempts", int(count)
        )


def _in_flight(
    session: Session,
    tenant: str | None,
    since: datetime | None,
    until: datetime | None,
    names: BrandNames,
) -> Iterator[SpendLine]:
    """Calls of unfinished or cancelled runs none of whose attempts is recorded (the database
    reads those calls and no others: ``spend.unrecorded_calls``)."""
    for call in unrecorded_calls(session, tenant=tenant, since=since, until=until):
        brand = names.of(call.brand_id, call.brand)
        yield SpendLine(call.run_created_at.date(), brand, call.model, call.usd, "in_flight")


def _reproductions(
    session: Session, calls: Sequence[ColumnElement[bool]], names: BrandNames
) -> Iterator[SpendLine]:
    rows = session.execute(
        select(Spend.created_at, Spend.model, COMMITTED, RunRow.brand_id, RunRow.brand_name)
        .outerjoin(RunRow, RunRow.id == Spend.source_run_id)
        .where(*calls, Spend.kind == "call", Spend.run_id.startswith("rep_", autoescape=True))
    )
    for created, model, usd, brand_id, brand in rows:
        yield SpendLine(
            created.date(),
            names.of(brand_id, brand or None),
            model,
            float(usd or 0.0),
            "reproduction",
        )
