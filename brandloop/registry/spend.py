"""The spend ledger: money is reserved before it is spent, under a per-tenant lock.

Who writes what (one table, ``spend_reservations``):

* the API, when it admits a job: :func:`hold_admission` holds the job's whole budget against the
  tenant's daily quota, in the transaction that stores the job (``402`` when it does not fit);
* the agent, before each provider call: :func:`reserve_call` (``agent/budgets.py`` checks the
  request, campaign and tenant budgets first, under the same lock);
* the agent, when the call ends: :func:`settle` with what the provider billed;
* the worker, when a job ends: :func:`close_admission`;
* whoever ends a run ``cancelled``: :func:`abandon_calls` (its calls still ``held`` become
  ``unknown``: no live process will settle them; its calls with no recorded attempt are marked
  ``abandoned_at``, which the readers of cost find through an index);
* an operator, for calls whose outcome was unknown: :func:`reconcile`.

Every check-then-insert runs after :func:`lock_tenant` in the same transaction: PostgreSQL locks
the tenant's ``spend_locks`` row with ``SELECT … FOR UPDATE``; SQLite starts the transaction with
``BEGIN IMMEDIATE`` (the database's write lock). Two reservations of one tenant never interleave.

What a reservation commits: its ``amount_usd`` while ``held`` or ``unknown``, its
``charged_usd`` once ``settled``, nothing once ``released``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    bindparam,
    case,
    exists,
    func,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from brandloop.domain import Billing, utcnow
from brandloop.errors import BadInputError, BudgetExhaustedError, NotFoundError
from brandloop.registry.crud import add_event, audit, traced_attempts
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.registry.models_money import SpendLockRow, SpendReservationRow
from brandloop.registry.models_service import JobRow
from brandloop.registry.types import check_money, money, usd
from brandloop.registry.write_lock import sqlite_write_lock

ReservationState = Literal["held", "settled", "released", "unknown"]
Row = SpendReservationRow
EPSILON = 1e-9
log = logging.getLogger(__name__)

#: what one reservation commits (see the module docstring)
COMMITTED: ColumnElement[float] = case(
    (Row.state.in_(("held", "unknown")), Row.amount_usd),
    (Row.state == "settled", func.coalesce(Row.charged_usd, 0.0)),
    else_=0.0,
)


class QuotaExceededError(BudgetExhaustedError):
    """The tenant's daily quota cannot hold this job's budget on top of what it already holds."""

    problem_type = "quota-exceeded"

    def __init__(self, *, tenant: str, used: float, quota: float, wanted: float) -> None:
        super().__init__(
            f"tenant {tenant!r} has spent or reserved {usd(used, 2)} today of its {usd(quota, 2)} "
            f"daily quota; this request may spend up to {usd(wanted, 2)}"
        )
        self.used, self.quota, self.wanted = used, quota, wanted


def new_id() -> str:
    return f"res_{uuid.uuid4().hex[:20]}"


def day_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def lock_tenant(session: Session, tenant: str) -> None:
    """Serialise this transaction with every other reservation of ``tenant``.

    SQLite: ``BEGIN IMMEDIATE`` unless the connection's transaction has already written (then
    it holds the write lock already). Call it before anything else writes in the session."""
    if sqlite_write_lock(session):
        return
    session.execute(pg_insert(SpendLockRow).values(tenant=tenant).on_conflict_do_nothing())
    session.execute(
        select(SpendLockRow.tenant).where(SpendLockRow.tenant == tenant).with_for_update()
    )


# --------------------------------------------------------------------------- what is committed


def committed(
    session: Session, *, tenant: str, run_id: str | None = None, campaign_id: str | None = None
) -> float:
    """What the tenant's provider calls (of one run, or one campaign) have spent or hold."""
    query = select(func.coalesce(func.sum(COMMITTED), 0.0)).where(
        Row.kind == "call", Row.tenant == tenant
    )
    if run_id is not None:
        query = query.where(Row.run_id == run_id)
    if campaign_id is not None:
        query = query.where(Row.campaign_id == campaign_id)
    return money(session.scalar(query) or 0.0)


@dataclass(frozen=True)
class UnrecordedCall:
    """A provider call of a run none of whose attempts is recorded, at what the ledger commits
    for it (settling a call records its attempts in the same transaction: all or none)."""

    run_id: str
    run_created_at: datetime
    brand: str
    model: str
    usd: float
    #: the run's brand (None: a run stored before brands had ids); ``brand`` is its name then
    brand_id: str | None = None


def unrecorded_calls(
    session: Session,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[UnrecordedCall]:
    """The calls (of ``tenant``'s runs created in ``[since, until)``; default: every run) that
    commit money and have no recorded attempt: what a run's cost and the cost report add to its
    attempts. Those of a run not finished (its call is in flight, or was when its process
    stopped) and those a cancelled run left in flight (``unknown``: nobody will finish them,
    until reconciled); a finished run's calls all have their attempts. A call with attempts
    counts through them only, never twice.

    The database picks them and reads no others: the calls of the runs not finished (an index
    holds those runs, however long the history) and the calls cancelled runs left in flight
    (marked ``abandoned_at`` by :func:`abandon_calls`; an index holds those), never every call
    of every cancelled run."""
    query = _unrecorded(session, tenant=tenant, since=since, until=until)
    return [
        UnrecordedCall(run_id, created, brand, model, float(usd), brand_id)
        for run_id, created, brand, model, usd, brand_id in session.execute(query)
    ]


def _unrecorded(
    bind: Session | Connection,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    run_id: str | None = None,
) -> CompoundSelect[str, datetime, str, str, float, str | None]:
    """:func:`unrecorded_calls` as one statement; ``run_id``: of that run only."""
    columns = (
        RunRow.id,
        RunRow.created_at,
        RunRow.brand_name,
        Row.model,
        COMMITTED.label("usd"),
        RunRow.brand_id,
    )
    # what the call commits, when it is a call of the run's own tenant: an expression rather
    # than a comparison of the two tenants, which SQLite's planner took as a reason to read
    # every call of the tenant (a released call commits nothing: no test of its state needed)
    counted = [
        Row.kind == "call",
        case((RunRow.tenant == Row.tenant, COMMITTED), else_=0.0) != 0,
        ~_attempt_recorded(bind),
    ]
    if since is not None:
        counted.append(RunRow.created_at >= since)
    if until is not None:
        counted.append(RunRow.created_at < until)
    # only abandon_calls (and migration 0940, for earlier cancellations) marks a call, and only
    # as its run ends cancelled, which is final; a cancelled run has finished_at, so the calls
    # left by cancelled runs and those of the runs not finished never overlap
    if run_id is not None:
        unfinished: ColumnElement[bool] = Row.run_id == run_id
        abandoned: ColumnElement[bool] = (Row.run_id == run_id) & Row.abandoned_at.is_not(None)
    else:
        # each list read first, through its partial index, whatever the history holds; the
        # tenant narrows the lists (the runs' window is tested on the few rows they hold)
        runs = select(RunRow.id).where(RunRow.finished_at.is_(None)).correlate(None)
        marked = aliased(Row)
        calls = select(marked.id).where(marked.abandoned_at.is_not(None)).correlate(None)
        if tenant is not None:
            runs = runs.where(RunRow.tenant == tenant)
            calls = calls.where(marked.tenant == tenant)
        unfinished, abandoned = Row.run_id.in_(runs), Row.id.in_(calls)
    in_flight = (
        select(*columns)
        .select_from(Row)
        .join(RunRow, RunRow.id == Row.run_id)
        .where(unfinished, RunRow.finished_at.is_(None), *counted)
    )
    left_by_cancelled = (
        select(*columns)
        .select_from(Row)
        .join(RunRow, RunRow.id == Row.run_id)
        .where(abandoned, RunRow.finished_at.is_not(None), *counted)
    )
    return union_all(in_flight, left_by_cancelled)


def _attempt_recorded(bind: Session | Connection) -> ColumnElement[bool]:
    """Whether one of the call's attempts (``attempt_ids``, a JSON list) is recorded."""
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    if dialect == "postgresql":
        ids = (
            func.json_array_elements_text(Row.attempt_ids)
            .table_valued("value", name="call_attempt")
            .render_derived()
        )
    else:
        ids = func.json_each(Row.attempt_ids).table_valued("value", name="call_attempt")
    return exists(
        select(AttemptRow.id)
        .select_from(ids)
        .join(AttemptRow, AttemptRow.id == ids.c.value)
        .where(AttemptRow.run_id == Row.run_id)
    )


def run_cost(bind: Session | Connection, *, run_id: str) -> float:
    """What a run cost: its attempts, plus its calls with no recorded attempt while it is not
    finished or once it is cancelled (:func:`unrecorded_calls`). One statement, read through
    indexes (the run's attempts, its calls), so a view of a run not finished can show what it
    has cost so far; a session is flushed first."""
    if isinstance(bind, Session):
        bind.flush()
    attempts = (
        select(func.coalesce(func.sum(AttemptRow.cost_usd), 0.0))
        .where(AttemptRow.run_id == run_id)
        .scalar_subquery()
    )
    calls = _unrecorded(bind, run_id=run_id).subquery()
    unrecorded = select(func.coalesce(func.sum(calls.c.usd), 0.0)).scalar_subquery()
    return round(float(bind.scalar(select(attempts + unrecorded)) or 0.0), 6)


def quota_used(session: Session, *, tenant: str, now: datetime | None = None) -> float:
    """What counts against the tenant's daily quota now: every job or campaign still holding its
    budget (queued, running), what jobs admitted today spent, and calls made today outside any
    job (the CLI). A job's spend counts on the UTC day it was admitted."""
    values = {"tenant": tenant, "start": day_start(now)}
    holds = session.scalar(_QUOTA_HOLDS, values)
    loose = session.scalar(_QUOTA_LOOSE, values)
    return money(float(holds or 0.0) + float(loose or 0.0))


# quota_used's statements, built once (every submission reads them under the tenant's lock)
_QUOTA_HOLDS = select(
    func.coalesce(
        func.sum(
            case(
                (Row.state == "held", Row.amount_usd),
                else_=func.coalesce(Row.charged_usd, 0.0),
            )
        ),
        0.0,
    )
).where(
    Row.tenant == bindparam("tenant"),
    Row.kind == "admission",
    (Row.state == "held") | (Row.created_at >= bindparam("start")),
)
_QUOTA_LOOSE = select(func.coalesce(func.sum(COMMITTED), 0.0)).where(
    Row.tenant == bindparam("tenant"),
    Row.kind == "call",
    Row.hold_id.is_(None),
    Row.created_at >= bindparam("start"),
)


# --------------------------------------------------------------------------- admission


def hold_admission(
    session: Session,
    *,
    tenant: str,
    amount_usd: float,
    quota_usd: float,
    run_id: str | None = None,
    job_id: str | None = None,
    campaign_id: str | None = None,
    now: datetime | None = None,
) -> SpendReservationRow:
    """Hold a job's (or a campaign's) whole budget against the daily quota, or raise
    :class:`QuotaExceededError`. Locks the tenant; the caller commits with the job row."""
    if amount_usd < 0:
        raise BadInputError("a budget cannot be negative")
    lock_tenant(session, tenant)
    used = quota_used(session, tenant=tenant, now=now)
    if used + amount_usd > quota_usd + EPSILON:
        raise QuotaExceededError(tenant=tenant, used=used, quota=quota_usd, wanted=amount_usd)
    row = Row(
        id=new_id(),
        kind="admission",
        tenant=tenant,
        run_id=run_id,
        job_id=job_id,
        campaign_id=campaign_id,
        provider="",
        model="",
        amount_usd=round(amount_usd, 6),
        state="held",
        note="",
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def resize_campaign_hold(
    session: Session,
    *,
    tenant: str,
    campaign_id: str,
    amount_usd: float,
    quota_usd: float | None,
    now: datetime | None = None,
) -> None:
    """A campaign's limit changed: the hold its admission keeps against the daily quota (an API
    campaign holds its whole budget until its last asset ends) becomes the new limit, so the
    quota counts what the campaign may now spend. A raise is admitted like a job, under the
    tenant's lock, or :class:`QuotaExceededError` and nothing changes (``quota_usd`` None: the
    caller knows no quota, and a raise is refused); a cut holds less, never less than the
    campaign's calls have committed. A campaign with no open hold (run by the CLI, or ended)
    has nothing held."""
    lock_tenant(session, tenant)
    row = session.scalar(
        select(Row).where(
            Row.kind == "admission",
            Row.state == "held",
            Row.campaign_id == campaign_id,
            Row.run_id.is_(None),
        )
    )
    if row is None:
        return
    wanted = max(round(amount_usd, 6), _calls_under(session, row.id))
    more = wanted - float(row.amount_usd or 0.0)
    if more > EPSILON:
        if quota_usd is None:
            raise BadInputError(
                f"campaign {campaign_id} holds its budget against the daily quota: raise it "
                "with `brandloop campaign budget`, which checks the quota"
            )
        used = quota_used(session, tenant=tenant, now=now)
        if used + more > quota_usd + EPSILON:
            raise QuotaExceededError(tenant=tenant, used=used, quota=quota_usd, wanted=more)
    row.amount_usd = wanted
    session.flush()


def admission_for(
    session: Session, *, run_id: str | None, campaign_id: str | None
) -> SpendReservationRow | None:
    """The hold still open for a run (a job) or for its campaign."""
    scopes = []
    if run_id is not None:
        scopes.append(Row.run_id == run_id)
    if campaign_id is not None:
        scopes.append(Row.campaign_id == campaign_id)
    if not scopes:
        return None
    clause = scopes[0] if len(scopes) == 1 else scopes[0] | scopes[1]
    return session.scalar(
        select(Row).where(Row.kind == "admission", Row.state == "held", clause).limit(1)
    )


def close_admission(
    session: Session, *, run_id: str | None = None, campaign_id: str | None = None
) -> None:
    """A job (or the last job of a campaign) ended: its hold becomes what its calls committed."""
    row = admission_for(session, run_id=run_id, campaign_id=campaign_id)
    if row is None:
        return
    row.charged_usd = _calls_under(session, row.id)
    row.state, row.settled_at = "settled", utcnow()


def _calls_under(session: Session, hold_id: str) -> float:
    total = session.scalar(
        select(func.coalesce(func.sum(COMMITTED), 0.0)).where(
            Row.kind == "call", Row.hold_id == hold_id
        )
    )
    return money(total or 0.0)


# --------------------------------------------------------------------------- provider calls


def by_call_key(session: Session, call_key: str) -> SpendReservationRow | None:
    return session.scalar(select(Row).where(Row.call_key == call_key))


def reserve_call(
    session: Session,
    *,
    tenant: str,
    run_id: str,
    campaign_id: str | None,
    call_key: str,
    amount_usd: float,
    provider: str,
    model: str,
    attempt_ids: Sequence[str],
    fence: int | None = None,
    source_run_id: str | None = None,
) -> SpendReservationRow:
    """Insert a held reservation for one provider call (the caller locked the tenant and
    checked the budgets). ``call_key`` is unique: one call is never reserved twice.
    ``source_run_id`` names the run a call outside any run reproduces."""
    hold = admission_for(session, run_id=run_id, campaign_id=campaign_id)
    row = Row(
        id=new_id(),
        kind="call",
        tenant=tenant,
        run_id=run_id,
        campaign_id=campaign_id,
        hold_id=hold.id if hold is not None else None,
        call_key=call_key,
        provider=provider,
        model=model,
        amount_usd=round(amount_usd, 6),
        state="held",
        fence=fence,
        attempt_ids=list(attempt_ids),
        source_run_id=source_run_id,
        note="",
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def rehold(
    session: Session, row: SpendReservationRow, *, amount_usd: float, fence: int | None
) -> None:
    """Take a released (never billed) reservation again for a new try of the same call."""
    row.state, row.billing, row.charged_usd, row.settled_at = "held", None, None, None
    row.amount_usd, row.fence = round(amount_usd, 6), fence


def settle(
    session: Session,
    *,
    call_key: str,
    billing: Billing,
    charged_usd: float,
    note: str = "",
) -> SpendReservationRow | None:
    """Record how the call ended: billed (settled to the charge), not billed (released),
    unknown (kept at its full amount until :func:`reconcile`).

    A call already ``settled`` or ``released`` keeps that settlement: the first final
    settlement wins, whether an operator's :func:`reconcile` or the run's own (a process whose
    lease lapsed may still come back with its answer), so a settlement is final."""
    row = by_call_key(session, call_key)
    if row is None:
        return None
    if not _settle_row(session, row, billing=billing, charged_usd=charged_usd, note=note):
        log.warning(
            "call %s was settled already (%s, %s): %s not recorded over it",
            call_key,
            row.state,
            usd(row.charged_usd or 0.0),
            billing,
        )
    return row


#: the states a settlement may move a call from; ``settled`` and ``released`` are final
OPEN_STATES: tuple[ReservationState, ...] = ("held", "unknown")


def _settle_row(
    session: Session, row: SpendReservationRow, *, billing: Billing, charged_usd: float, note: str
) -> bool:
    """Settle ``row`` unless it is settled already; whether it was. The row is locked and read
    again first (``SELECT … FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so of two
    settlements at the same moment on either database the second sees the first's and changes
    nothing (a check on what was read before would let it overwrite the first)."""
    session.flush()
    sqlite_write_lock(session)
    session.refresh(row, with_for_update=True)
    if row.state not in OPEN_STATES:
        return False
    row.billing = billing
    if billing == "billed":
        row.state, row.charged_usd, row.settled_at = "settled", round(charged_usd, 6), utcnow()
    elif billing == "not_billed":
        row.state, row.charged_usd, row.settled_at = "released", 0.0, utcnow()
    else:
        row.state, row.charged_usd = "unknown", None
    if note:
        row.note = f"{row.note}; {note}"[:2000] if row.note else note[:2000]
    _refresh_closed_hold(session, row)
    return True


def _refresh_closed_hold(session: Session, row: SpendReservationRow) -> None:
    if row.hold_id is None:
        return
    hold = session.get(Row, row.hold_id)
    if hold is not None and hold.state == "settled":
        session.flush()
        hold.charged_usd = _calls_under(session, hold.id)


# --------------------------------------------------------------------------- reconciliation


def unknown_calls(session: Session, *, tenant: str) -> list[SpendReservationRow]:
    """Calls whose outcome is unknown (or still held though their run has finished, as a run
    cancelled before :func:`abandon_calls` existed left them): to reconcile."""
    finished = select(RunRow.id).where(RunRow.tenant == tenant, RunRow.finished_at.is_not(None))
    query = select(Row).where(
        Row.tenant == tenant,
        Row.kind == "call",
        (Row.state == "unknown") | ((Row.state == "held") & Row.run_id.in_(finished)),
    )
    return list(session.scalars(query.order_by(Row.created_at)))


def abandon_calls(session: Session, *, run_id: str) -> None:
    """A run ended ``cancelled``: each of its calls still ``held`` (in flight when its process
    stopped; no live process will settle it, and a cancelled run is never resumed) becomes
    ``unknown`` - it may have been billed. It keeps its whole reservation, counts in the run's
    and its job's cost (:func:`run_cost`) and the cost report until :func:`reconcile` settles
    it (then at what it commits), and :func:`unknown_calls` lists it. Each call of the run with
    no recorded attempt is marked ``abandoned_at``: the readers of cost read those calls of a
    cancelled run, not all of them. A call a live worker settled (unknown, with its attempts)
    is left as it is."""
    held = session.scalars(
        select(Row).where(Row.kind == "call", Row.run_id == run_id, Row.state == "held")
    )
    for row in held:
        row.state, row.billing = "unknown", "unknown"
        note = "the run was cancelled while this call was in flight"
        row.note = f"{row.note}; {note}"[:2000] if row.note else note
    _mark_abandoned(session, run_id)
    _trace_abandoned(session, run_id)
    _recost_run(session, run_id)


#: what an abandoned call's attempts end with in the trace (a live worker's cancel says the same)
ABANDONED_ERROR = "cancelled: the run was cancelled while this call was in flight"


def _trace_abandoned(session: Session, run_id: str) -> None:
    """Each attempt the trace says started and no event finished, whose call was abandoned,
    gets its ``attempt_finished`` now: ``error``, billing ``unknown``, at its share of the
    call's reservation - what it counts at in the run's cost - so a client that totals costs
    from the job's event stream finds the money the job's ``cost_usd`` shows (a job cancelled
    while its process was dead had two attempts started and none finished)."""
    started = traced_attempts(session, run_id=run_id, kind="attempt_started")
    finished = traced_attempts(session, run_id=run_id, kind="attempt_finished")
    calls = session.scalars(
        select(Row)
        .where(Row.kind == "call", Row.run_id == run_id, Row.abandoned_at.is_not(None))
        .order_by(Row.created_at, Row.id)
    )
    for call in calls:
        attempts = [str(a) for a in call.attempt_ids or []]
        for attempt in attempts:
            if attempt not in started or attempt in finished:
                continue
            add_event(
                session,
                run_id=run_id,
                node="generate",
                kind="attempt_finished",
                payload={
                    "attempt": attempt,
                    "outcome": "error",
                    "cost_usd": round(float(call.amount_usd) / len(attempts), 6),
                    "error": ABANDONED_ERROR,
                    "cache_hit": False,
                    "billing": "unknown",
                },
            )


def _mark_abandoned(session: Session, run_id: str) -> None:
    """Mark ``abandoned_at`` each call of the cancelled run ``run_id`` with no recorded attempt
    (and no mark yet): the calls its cost and the cost report count beside its attempts."""
    session.flush()
    run = session.get(RunRow, run_id)
    if run is None or run.status != "cancelled" or run.finished_at is None:
        return
    session.execute(
        update(Row)
        .where(
            Row.kind == "call",
            Row.run_id == run_id,
            Row.abandoned_at.is_(None),
            ~_attempt_recorded(session),
        )
        .values(abandoned_at=run.finished_at)
        .execution_options(synchronize_session=False)
    )


#: a charge more than this many times the call's reservation is taken only when asked
#: (``over_reservation``): a settlement cannot be undone, and 40 for 0.04 is a typo's shape
OVER_RESERVATION_FACTOR = 10


def reconcile(
    session: Session,
    *,
    tenant: str,
    reservation_id: str,
    charged_usd: float,
    actor: str,
    over_reservation: bool = False,
) -> SpendReservationRow:
    """Settle an unknown call to what the provider's invoice says (0: it was not billed).

    The call's attempts, their run's cost and the job's cost follow (a call with no attempts -
    its run was cancelled while it was in flight - counts in them at what it now commits).
    A charge past :data:`OVER_RESERVATION_FACTOR` times the reservation is refused unless
    ``over_reservation``: once settled it is final."""
    check_money(charged_usd, "a charge")
    # to the micro-dollar the ledger keeps, before anything is decided on it: a charge that
    # rounds to $0 was not billed (released), never "billed" at $0.000000
    charged_usd = round(charged_usd, 6)
    lock_tenant(session, tenant)  # two reconciles of one call: the second sees the first's
    row = session.scalar(
        select(Row).where(Row.id == reservation_id, Row.tenant == tenant, Row.kind == "call")
    )
    if row is None:
        raise NotFoundError(f"no call reservation {reservation_id!r}")
    _check_reconcilable(session, row)
    reserved = float(row.amount_usd or 0.0)
    if charged_usd > OVER_RESERVATION_FACTOR * reserved and not over_reservation:
        raise BadInputError(
            f"a charge of ${charged_usd:,.3f} is more than {OVER_RESERVATION_FACTOR} times the "
            f"call's reservation (${reserved:,.3f}) and cannot be undone once settled; check "
            "the provider's invoice, and pass --over-reservation to record it"
        )
    billing: Billing = "billed" if charged_usd > 0 else "not_billed"
    note = f"reconciled by {actor}"
    if not _settle_row(session, row, billing=billing, charged_usd=charged_usd, note=note):
        # the run's own settlement landed first (its lease had lapsed): it is final
        raise BadInputError(f"reservation {reservation_id} is {row.state}, not unknown")
    attempt_ids = [str(a) for a in row.attempt_ids]
    if attempt_ids:
        share = round(charged_usd / len(attempt_ids), 6)
        session.execute(
            update(AttemptRow)
            .where(AttemptRow.id.in_(attempt_ids))
            .values(cost_usd=share, billing=billing)
        )
    if row.run_id is not None:
        # a call a cancelled run left in flight that nothing marked (its run cancelled without
        # abandon_calls, after migration 0940 marked the earlier ones): marked now, so it
        # counts at what it commits from here on
        _mark_abandoned(session, row.run_id)
        _recost_run(session, row.run_id)
    audit(
        session,
        tenant=tenant,
        actor=actor,
        action="spend.reconciled",
        subject_type="reservation",
        subject_id=row.id,
        detail={"charged_usd": charged_usd, "reserved_usd": row.amount_usd},
    )
    return row


def _check_reconcilable(session: Session, row: SpendReservationRow) -> None:
    """Refuse a call already settled (a settlement is final: of two reconciles, the second)
    and a call ``held`` by a run that has not finished: that call may still be in flight, and
    its run settles it (or, stopped, marks it ``unknown`` when resumed or cancelled). A held
    call of a finished run is what :func:`unknown_calls` lists: nobody will settle it."""
    if row.state not in OPEN_STATES:
        raise BadInputError(f"reservation {row.id} is {row.state}, not unknown")
    if row.state == "unknown":
        return
    run = session.get(RunRow, row.run_id) if row.run_id is not None else None
    if run is None or run.finished_at is None:
        raise BadInputError(
            f"reservation {row.id} is held by run {row.run_id}, which has not finished: its "
            "call may still be in flight (resume or cancel the run, then reconcile what it "
            "leaves unknown)"
        )


def _recost_run(session: Session, run_id: str) -> None:
    total = run_cost(session, run_id=run_id)
    run = session.get(RunRow, run_id)
    if run is not None:
        run.cost_usd = total
        if run.result is not None:
            run.result = {**run.result, "cost_usd": total}
    session.execute(update(JobRow).where(JobRow.run_id == run_id).values(cost_usd=total))
