"""Request, campaign and tenant budgets, and the reservation each provider call makes in them.

A budget is a limit: the request's own (``budget_usd``), a campaign's or a tenant's (rows of the
``budgets`` table). What counts against it is the spend ledger (``brandloop/registry/spend.py``):
every call's reservation, held, settled or unknown - so runs running at the same time see what
the others hold, not only what they finished paying for.

:func:`reserve_call` is the only way a run gets to call a provider: under the tenant's lock it
checks every budget that applies and holds the call's estimated cost, or refuses. Calls made
outside a run (reproducing one) go through it too, by :class:`OutsideRunPayer`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.domain import Billing, ModelSpec, utcnow
from brandloop.errors import BudgetExhaustedError
from brandloop.policies.catalog import image_price
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.registry.models_agent import BudgetRow
from brandloop.registry.types import check_money, money, usd

BudgetScope = Literal["tenant", "campaign"]
#: reserved: make the call. billed: it was made and billed already (reuse what the registry
#: holds). unknown: it may have been made and billed (never pay it again). refused: no budget.
Verdict = Literal["reserved", "billed", "unknown", "refused"]


@dataclass(frozen=True)
class Headroom:
    """The tightest outside limit on a run: what is left and which budget it is."""

    remaining_usd: float
    label: str


@dataclass(frozen=True)
class CallReservation:
    verdict: Verdict
    reason: str = ""


def set_budget(
    session: Session,
    *,
    tenant: str,
    scope: BudgetScope,
    scope_id: str,
    limit_usd: float,
    quota_usd: float | None = None,
) -> BudgetRow:
    """Set the limit (``brandloop campaign budget``): raise or lower it, to the micro-dollar.

    Under the tenant's lock, with a campaign's hold on the daily quota
    (:func:`spend.resize_campaign_hold`): an API campaign holds its whole budget there, so a
    raise the tenant's ``quota_usd`` cannot cover is refused (``QuotaExceededError``) and the
    limit stays as it was - the campaign never spends past what the quota admitted."""
    limit_usd = money(check_money(limit_usd, "a budget"))
    spend.lock_tenant(session, tenant)
    if scope == "campaign":
        spend.resize_campaign_hold(
            session, tenant=tenant, campaign_id=scope_id, amount_usd=limit_usd, quota_usd=quota_usd
        )
    row = session.scalar(
        select(BudgetRow).where(
            BudgetRow.tenant == tenant, BudgetRow.scope == scope, BudgetRow.scope_id == scope_id
        )
    )
    if row is None:
        row = BudgetRow(tenant=tenant, scope=scope, scope_id=scope_id, limit_usd=limit_usd)
        session.add(row)
    row.limit_usd, row.updated_at = limit_usd, utcnow()
    session.flush()
    return row


def tighten_budget(
    session: Session, *, tenant: str, scope: BudgetScope, scope_id: str, limit_usd: float
) -> float:
    """Lower the limit to ``limit_usd`` unless one as tight is set already; the limit that
    applies now. A campaign file's budget may tighten a campaign's limit, never loosen one that
    ``brandloop campaign budget`` (or an earlier run) set: raising it takes that command.
    Under the tenant's lock, so two runs of one campaign cannot both read "none set"."""
    limit_usd = money(check_money(limit_usd, "a budget"))
    spend.lock_tenant(session, tenant)
    current = _limit(session, tenant=tenant, scope=scope, scope_id=scope_id)
    if current is not None and current <= limit_usd:
        return current
    return set_budget(
        session, tenant=tenant, scope=scope, scope_id=scope_id, limit_usd=limit_usd
    ).limit_usd


def limit_of(session: Session, *, tenant: str, scope: BudgetScope, scope_id: str) -> float | None:
    """The limit set for the tenant or the campaign, or None."""
    return _limit(session, tenant=tenant, scope=scope, scope_id=scope_id)


def _limit(session: Session, *, tenant: str, scope: BudgetScope, scope_id: str) -> float | None:
    return session.scalar(
        select(BudgetRow.limit_usd).where(
            BudgetRow.tenant == tenant, BudgetRow.scope == scope, BudgetRow.scope_id == scope_id
        )
    )


def spent(session: Session, *, tenant: str, campaign_id: str | None = None) -> float:
    """What the tenant's (or the campaign's) calls spent or hold: reservations count."""
    return spend.committed(session, tenant=tenant, campaign_id=campaign_id)


def headroom(session: Session, *, tenant: str, campaign_id: str | None) -> Headroom | None:
    """The smallest remaining tenant or campaign budget, or None when neither is set."""
    found: list[Headroom] = []
    tenant_limit = _limit(session, tenant=tenant, scope="tenant", scope_id=tenant)
    if tenant_limit is not None:
        found.append(
            Headroom(tenant_limit - spent(session, tenant=tenant), f"tenant {tenant} budget")
        )
    if campaign_id is not None:
        campaign_limit = _limit(session, tenant=tenant, scope="campaign", scope_id=campaign_id)
        if campaign_limit is not None:
            found.append(
                Headroom(
                    campaign_limit - spent(session, tenant=tenant, campaign_id=campaign_id),
                    f"campaign {campaign_id} budget",
                )
            )
    return min(found, key=lambda h: h.remaining_usd) if found else None


def reserve_call(
    session: Session,
    *,
    tenant: str,
    run_id: str,
    campaign_id: str | None,
    request_budget_usd: float,
    call_key: str,
    amount_usd: float,
    provider: str,
    model: str,
    attempt_ids: list[str],
    fence: int | None,
    replay_safe: bool,
    source_run_id: str | None = None,
) -> CallReservation:
    """Hold ``amount_usd`` for one provider call against every budget that applies, or say why
    not. A call key seen before is never reserved (nor paid) twice: a settled call is
    ``billed``; one still held by a run that stopped mid-call, or unknown, is ``unknown`` -
    unless the provider itself recognises a repeated key (``replay_safe``), when the call may
    be made again under the same reservation."""
    spend.lock_tenant(session, tenant)
    existing = spend.by_call_key(session, call_key)
    if existing is not None and existing.state == "settled":
        return CallReservation("billed")
    if existing is not None and existing.state in ("held", "unknown"):
        if replay_safe:
            existing.state, existing.billing, existing.fence = "held", None, fence
            return CallReservation("reserved")
        if existing.state == "held":  # its run stopped while the call was in flight
            existing.state, existing.billing = "unknown", "unknown"
            existing.note = "the run stopped while this call was in flight"
        return CallReservation("unknown")
    refusal = _over_budget(
        session,
        tenant=tenant,
        run_id=run_id,
        campaign_id=campaign_id,
        request_budget_usd=request_budget_usd,
        amount_usd=amount_usd,
    )
    if refusal:
        return CallReservation("refused", refusal)
    if existing is not None:  # released: it was never billed, so it may be tried again
        spend.rehold(session, existing, amount_usd=amount_usd, fence=fence)
        return CallReservation("reserved")
    spend.reserve_call(
        session,
        tenant=tenant,
        run_id=run_id,
        campaign_id=campaign_id,
        call_key=call_key,
        amount_usd=amount_usd,
        provider=provider,
        model=model,
        attempt_ids=attempt_ids,
        fence=fence,
        source_run_id=source_run_id,
    )
    return CallReservation("reserved")


def _over_budget(
    session: Session,
    *,
    tenant: str,
    run_id: str,
    campaign_id: str | None,
    request_budget_usd: float,
    amount_usd: float,
) -> str:
    """Why ``amount_usd`` more does not fit (the tightest budget first), or ``""``."""
    limits: list[tuple[float, str]] = [
        (request_budget_usd - spend.committed(session, tenant=tenant, run_id=run_id), "request")
    ]
    if campaign_id is not None:
        campaign_limit = _limit(session, tenant=tenant, scope="campaign", scope_id=campaign_id)
        if campaign_limit is not None:
            left = campaign_limit - spend.committed(session, tenant=tenant, campaign_id=campaign_id)
            limits.append((left, f"campaign {campaign_id}"))
    tenant_limit = _limit(session, tenant=tenant, scope="tenant", scope_id=tenant)
    if tenant_limit is not None:
        limits.append((tenant_limit - spend.committed(session, tenant=tenant), f"tenant {tenant}"))
    left, label = min(limits)
    if amount_usd > left + spend.EPSILON:
        return (
            f"remaining {label} budget {usd(max(left, 0.0))} cannot pay for this call "
            f"({usd(amount_usd)} reserved before paying)"
        )
    return ""


class OutsideRunPayer:
    """Pays for provider calls made outside any run (``brandloop runs reproduce``, the studio's
    reproduce) as a run's calls are paid for: the whole estimate must fit the tightest of the
    tenant's and the campaign's remaining budgets before the first call (else
    :class:`BudgetExhaustedError`, nothing spent); each call then reserves its estimate under
    the tenant's lock (:func:`reserve_call`) and is settled to what the provider billed, so it
    counts against those budgets and the daily quota like a generation's spend. The ledger
    names the calls by a spend id of their own (``rep_...``), not the reproduced run's."""

    def __init__(self, db: Database, *, tenant: str) -> None:
        self.db, self.tenant = db, tenant
        self.spend_id = f"rep_{uuid.uuid4().hex[:20]}"
        self._campaign_id: str | None = None
        self._source_run_id: str | None = None
        self._budget_usd = 0.0
        self._reserved: dict[str, float] = {}

    def price(self, spec: ModelSpec, *, width: int, height: int, quality: str | None) -> float:
        """One image's catalog price, as the planner reserves it for a generation."""
        return image_price(spec, width=width, height=height, quality=quality)

    def admit(
        self, total_usd: float, *, campaign_id: str | None, source_run_id: str, what: str
    ) -> None:
        """Refuse up front when ``total_usd`` (every call's estimate) does not fit."""
        with self.db.session() as session:
            room = headroom(session, tenant=self.tenant, campaign_id=campaign_id)
        if room is not None and total_usd > room.remaining_usd + spend.EPSILON:
            raise BudgetExhaustedError(
                f"remaining {room.label} {usd(max(room.remaining_usd, 0.0))} cannot pay for "
                f"{what} ({usd(total_usd)} at catalog prices); nothing was spent"
            )
        self._campaign_id, self._budget_usd = campaign_id, total_usd
        self._source_run_id = source_run_id

    def reserve(self, *, key: str, amount_usd: float, provider: str, model: str) -> str:
        """Hold one call's estimate; ``""`` when it holds, else why not (do not call)."""
        call_key = f"{self.spend_id}-{key}"
        with self.db.session() as session:
            held = reserve_call(
                session,
                tenant=self.tenant,
                run_id=self.spend_id,
                campaign_id=self._campaign_id,
                request_budget_usd=self._budget_usd,
                call_key=call_key,
                amount_usd=amount_usd,
                provider=provider,
                model=model,
                attempt_ids=[],
                fence=None,
                replay_safe=False,
                source_run_id=self._source_run_id,
            )
        if held.verdict != "reserved":
            return held.reason or f"the call was {held.verdict} already"
        self._reserved[call_key] = amount_usd
        return ""

    def settle(self, *, key: str, billing: Billing, charged_usd: float | None) -> float:
        """Record how the call ended; what it counts as spent (a billed call without a known
        charge, or an unknown outcome, counts its whole reservation)."""
        call_key = f"{self.spend_id}-{key}"
        reserved = self._reserved.get(call_key, 0.0)
        cost = {
            "billed": reserved if charged_usd is None else charged_usd,
            "unknown": reserved,
        }.get(billing, 0.0)
        with self.db.session() as session:
            spend.settle(session, call_key=call_key, billing=billing, charged_usd=cost)
        return money(cost)
