"""The stopping rule: before a round is bought, is it still worth buying?

P(accept) for the next round is the bandit's posterior mean for the best arm (per dollar),
times the lowest fix rate among the repairs now applied (this brand's record in
``repair_outcomes``, smoothed towards ``REPAIR_PRIOR``; the lowest, not the product, because
one defect often fails several signals at once), halved for each time that repair already
failed on that signal in this run and multiplied by ``OTHER_REPAIR_FAILED`` for each time
another repair did (a soft image that new seeds did not fix makes a tier climb less likely to
fix it too). A fallback after provider errors is left out: an errored call is not billed. The
expected cost per accepted image is the arm's price
over that chance. When it passes the cap - ``stop_cost_multiple`` times what an accepted image
has cost the brand lately (at cold start: times the best price over catalog quality baseline
among the models) - the run stops with ``stop_unpromising`` and the numbers as its reason.

What an accepted image has cost the brand is its latest finished paid runs' spend over the
images they accepted, failed runs included. A median over the successful runs alone (the first
version) only sees the lucky ones: where a cheap setting is accepted one time in five, its
successes cost one image each, the median says so, and the cap then forbids the dearer models
that would have done better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.agent.repairs import FixRate, rate_for
from brandloop.agent.state import Repair
from brandloop.registry.models import RunRow
from brandloop.registry.types import usd

#: What a repair nobody has judged yet is assumed to fix, worth two observations.
REPAIR_PRIOR = 0.7
#: How many of the brand's latest finished paid runs make its running cost per accepted image.
COST_WINDOW = 50
#: What each earlier failure of another repair on the same signal in this run multiplies a
#: repair's chance by (the same repair failing again halves it).
OTHER_REPAIR_FAILED = 0.7
#: Signals whose failures cost nothing: a provider error is not billed, so the fallback it
#: causes says nothing of what an accepted image will cost; the next arm's own posterior does.
#: (Counting it stopped runs as unpromising after two self-hosted backends were down, before
#: the third provider was tried; an outage of every provider ends with exit 5 instead.)
UNBILLED_SIGNALS = frozenset({"errors"})


def cost_per_accepted_image(session: Session, *, tenant: str, brand_id: str) -> float | None:
    """What an accepted image cost the brand lately: the spend of its latest finished paid runs,
    failed ones included, over the images they accepted; None before one was accepted."""
    rows = session.execute(
        select(RunRow.cost_usd, RunRow.accepted_count)
        .where(RunRow.tenant == tenant, RunRow.brand_id == brand_id)
        .where(RunRow.cost_usd > 0)  # a run served from the cache says nothing about prices
        .where(RunRow.finished_at.is_not(None))
        .order_by(RunRow.created_at.desc())
        .limit(COST_WINDOW)
    ).all()
    accepted = sum(count for _, count in rows)
    return sum(cost for cost, _ in rows) / accepted if accepted else None


@dataclass(frozen=True)
class Outlook:
    """The next round as the stopping rule sees it."""

    model: str
    p_accept: float
    price: float
    cap: float
    cap_source: str
    factors: dict[str, float]

    @property
    def expected_cost(self) -> float:
        return self.price / max(self.p_accept, 1e-6)

    @property
    def unpromising(self) -> bool:
        return self.expected_cost > self.cap

    def explain(self) -> str:
        parts = ", ".join(f"{name} ×{value:.2f}" for name, value in self.factors.items())
        return (
            f"P(accept) for the next round on {self.model} is {self.p_accept:.2f}"
            + (f" (posterior mean adjusted by {parts})" if parts else "")
            + f": expected {usd(self.expected_cost)} per accepted image, above the cap of "
            f"{usd(self.cap)} ({self.cap_source})"
        )


def outlook(
    *,
    model: str,
    posterior_mean: float,
    price: float,
    pending: Sequence[Repair],
    history: Sequence[Repair],
    rates: Sequence[FixRate],
    cap: float,
    cap_source: str,
) -> Outlook:
    """P(accept) and expected cost of the next round on ``model``.

    ``pending``: the repairs decided for this round (not judged yet); ``history``: every repair
    of the run so far, judged ones included.
    """
    factors: dict[str, float] = {}
    for repair in pending:
        if repair["signal"] in UNBILLED_SIGNALS:
            continue
        rate = rate_for(rates, action=repair["action"], signal=repair["signal"]).smoothed(
            REPAIR_PRIOR
        )
        failures = sum(
            1
            for r in history
            if r["fixed"] is False
            and r["action"] == repair["action"]
            and r["signal"] == repair["signal"]
        )
        # round-13 refinement: the same signal still failing after a *different* repair is
        # evidence too, weaker than the same repair failing again
        others = sum(
            1
            for r in history
            if r["fixed"] is False
            and r["action"] != repair["action"]
            and r["signal"] == repair["signal"]
        )
        factor = rate * OTHER_REPAIR_FAILED**others * 0.5**failures
        factors[f"{repair['action']} on {repair['signal']}"] = factor
    weakest = min(factors.items(), key=lambda item: item[1]) if factors else None
    p = posterior_mean * (weakest[1] if weakest else 1.0)
    return Outlook(
        model=model,
        p_accept=p,
        price=price,
        cap=cap,
        cap_source=cap_source,
        factors=dict([weakest]) if weakest else {},
    )
