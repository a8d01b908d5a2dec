"""Campaign- and tenant-level budgets, on top of each request's own.

A budget is a limit in the ``budgets`` table; what was spent is the sum of the attempts the
registry holds for the tenant (or for the campaign's runs), so every run of a campaign sees
what the others spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brandloop.domain import utcnow
from brandloop.errors import BadInputError
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.registry.models_agent import BudgetRow

BudgetScope = Literal["tenant", "campaign"]


@dataclass(frozen=True)
class Headroom:
    """The tightest outside limit on a run: what is left and which budget it is."""

    remaining_usd: float
    label: str


def set_budget(
    session: Session, *, tenant: str, scope: BudgetScope, scope_id: str, limit_usd: float
) -> BudgetRow:
    if limit_usd < 0:
        raise BadInputError("a budget cannot be negative")
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


def _limit(session: Session, *, tenant: str, scope: BudgetScope, scope_id: str) -> float | None:
    return session.scalar(
        select(BudgetRow.limit_usd).where(
            BudgetRow.tenant == tenant, BudgetRow.scope == scope, BudgetRow.scope_id == scope_id
        )
    )


def spent(session: Session, *, tenant: str, campaign_id: str | None = None) -> float:
    query = (
        select(func.coalesce(func.sum(AttemptRow.cost_usd), 0.0))
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(RunRow.tenant == tenant)
    )
    if campaign_id is not None:
        query = query.where(RunRow.campaign_id == campaign_id)
    return float(session.scalar(query) or 0.0)


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
