"""What repairs work: each repair the diagnosis applies is judged one round later (did the
signal it aimed at pass?), stored in ``repair_outcomes``, and read back as fix rates per action
and model - by ``brandloop runs stats``, the eval report, and the planner's stopping rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.agent.state import Repair
from brandloop.domain import Attempt, Decision
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.registry.models_agent import RepairOutcomeRow

#: The signal each repair action aims at (``new_seeds`` says which in its decision's signals).
ACTION_SIGNAL = {
    "strengthen_palette": "palette",
    "upgrade_tier": "sharpness",
    "raise_quality": "sharpness",
    "fix_exposure": "exposure",
    "fix_contrast": "contrast",
    "fix_colourfulness": "colourfulness",
    "new_seeds_variant": "duplicate",
    "safety_rewrite": "moderation",
    "fallback_model": "errors",
}
SIGNALS = frozenset({"palette", "sharpness", "exposure", "contrast", "colourfulness", "format"})
#: A repair that failed this many times on the same signal in a run is not tried again.
MAX_FAILED_REPEATS = 2


def repairs_of(decisions: Sequence[Decision], *, round_: int, model: str) -> list[Repair]:
    """The repairs a round's diagnosis decided, each aimed at one signal, not judged yet."""
    found: list[Repair] = []
    for decision in decisions:
        signal = ACTION_SIGNAL.get(decision.action)
        if signal is None and decision.action == "new_seeds":
            named = [name for name in decision.signals if name in SIGNALS]
            signal = named[0] if len(named) == 1 else None
        if signal is not None:
            found.append(
                Repair(action=decision.action, signal=signal, round=round_, model=model, fixed=None)
            )
    return found


def _fixed(signal: str, batch: Sequence[Attempt]) -> bool | None:
    """Did this round's images pass ``signal``? None when the round cannot tell."""
    if signal == "errors":
        return not any(a.outcome == "error" for a in batch)
    if signal == "moderation":
        return not any(a.outcome in ("refused", "blocked") for a in batch)
    scored = [a.scores for a in batch if a.scores is not None]
    if not scored:
        return None
    if signal == "duplicate":
        return not any({"duplicate", "diversity"} & set(s.failed) for s in scored)
    return not any(signal in s.failed for s in scored)


def judge(repairs: Sequence[Repair], batch: Sequence[Attempt], *, round_: int) -> list[Repair]:
    """The run's repairs with those applied to this round (made in the round before) judged."""
    judged: list[Repair] = []
    for repair in repairs:
        if repair["fixed"] is None and repair["round"] == round_ - 1:
            repair = Repair(**{**repair, "fixed": _fixed(repair["signal"], batch)})
        judged.append(repair)
    return judged


def failed_twice(repairs: Iterable[Repair]) -> set[tuple[str, str]]:
    """(action, signal) pairs that already failed ``MAX_FAILED_REPEATS`` times in this run."""
    counts: dict[tuple[str, str], int] = {}
    for repair in repairs:
        if repair["fixed"] is False:
            key = (repair["action"], repair["signal"])
            counts[key] = counts.get(key, 0) + 1
    return {key for key, n in counts.items() if n >= MAX_FAILED_REPEATS}


def record(
    session: Session,
    *,
    run_id: str,
    tenant: str,
    brand_id: str | None,
    repairs: Iterable[Repair],
) -> None:
    """Store judged repairs (once each: a resumed run may judge the same round again)."""
    for repair in repairs:
        if repair["fixed"] is None:
            continue
        try:
            with session.begin_nested():
                session.add(
                    RepairOutcomeRow(
                        run_id=run_id,
                        tenant=tenant,
                        brand_id=brand_id,
                        round=repair["round"],
                        action=repair["action"],
                        signal=repair["signal"],
                        model=repair["model"],
                        fixed=repair["fixed"],
                    )
                )
                session.flush()
        except IntegrityError:
            continue


@dataclass(frozen=True)
class FixRate:
    """How often one repair fixed its signal: ``fixed`` of ``tried``."""

    action: str
    signal: str
    model: str
    fixed: int
    tried: int

    @property
    def rate(self) -> float:
        return self.fixed / self.tried if self.tried else 0.0

    def smoothed(self, prior: float = 0.5, strength: float = 2.0) -> float:
        """The rate with ``strength`` pseudo-observations at ``prior``: never 0 or 1 from a
        handful of tries."""
        return (self.fixed + prior * strength) / (self.tried + strength)


def fix_rates(session: Session, *, tenant: str, brand_id: str | None = None) -> list[FixRate]:
    """Per (action, signal, model): repairs judged and how many fixed their signal."""
    query = (
        select(
            RepairOutcomeRow.action,
            RepairOutcomeRow.signal,
            RepairOutcomeRow.model,
            func.sum(case((RepairOutcomeRow.fixed.is_(True), 1), else_=0)),
            func.count(),
        )
        .where(RepairOutcomeRow.tenant == tenant)
        .group_by(RepairOutcomeRow.action, RepairOutcomeRow.signal, RepairOutcomeRow.model)
        .order_by(RepairOutcomeRow.action, RepairOutcomeRow.signal, RepairOutcomeRow.model)
    )
    if brand_id is not None:
        query = query.where(RepairOutcomeRow.brand_id == brand_id)
    return [
        FixRate(action=a, signal=s, model=m, fixed=int(f or 0), tried=int(n))
        for a, s, m, f, n in session.execute(query).all()
    ]


def rate_for(rates: Sequence[FixRate], *, action: str, signal: str) -> FixRate:
    """All models pooled: the fix rate of one repair for one signal."""
    fixed = sum(r.fixed for r in rates if r.action == action and r.signal == signal)
    tried = sum(r.tried for r in rates if r.action == action and r.signal == signal)
    return FixRate(action=action, signal=signal, model="*", fixed=fixed, tried=tried)


def signal_pass_rates(
    session: Session, *, brand_id: str, model: str, signal: str, limit: int = 400
) -> dict[str | None, tuple[int, int]]:
    """Per quality setting of ``model``: (images that passed ``signal``, images scored), over
    the brand's most recent attempts."""
    rows = session.execute(
        select(AttemptRow.params, AttemptRow.scores)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(RunRow.brand_id == brand_id, AttemptRow.model == model)
        .where(AttemptRow.scores.is_not(None))
        .order_by(AttemptRow.created_at.desc())
        .limit(limit)
    ).all()
    found: dict[str | None, tuple[int, int]] = {}
    for params, scores in rows:
        quality = (params or {}).get("quality")
        sig = ((scores or {}).get("signals") or {}).get(signal)
        if not isinstance(sig, dict):
            continue
        passed, seen = found.get(quality, (0, 0))
        found[quality] = (passed + int(bool(sig.get("passed"))), seen + 1)
    return found


def quality_pays(
    rates: dict[str | None, tuple[int, int]],
    *,
    current: str | None,
    higher: str,
    price_current: float,
    price_higher: float,
) -> tuple[bool, float, float]:
    """Is the next quality setting worth more passes per dollar than a new seed on the
    current one? Returns the answer and both estimates (passes per dollar).

    The current setting's pass rate is its record with a uniform prior; the higher setting's
    is its own record on a prior halfway between the current rate and 1 (a higher setting
    probably helps, by an amount nobody told us), worth two images.
    """
    passed, seen = rates.get(current, (0, 0))
    p_now = (passed + 1) / (seen + 2)
    prior = p_now + 0.5 * (1 - p_now)
    up_passed, up_seen = rates.get(higher, (0, 0))
    p_up = (up_passed + 2 * prior) / (up_seen + 2)
    now, up = p_now / max(price_current, 1e-6), p_up / max(price_higher, 1e-6)
    return up > now, now, up


class FixRateRow(BaseModel):
    """One line of ``brandloop runs stats``: a repair (or a pool of them) and how it fared."""

    action: str
    signal: str
    model: str
    tried: int
    fixed: int
    fix_rate: float | None = Field(description="fixed / tried; null when never tried")


class RepairStats(BaseModel):
    """Fix rates of the diagnosis' repairs: per action, per model, and per both."""

    brand: str | None
    by_action: list[FixRateRow]
    by_model: list[FixRateRow]
    rows: list[FixRateRow]


def _row(action: str, signal: str, model: str, fixed: int, tried: int) -> FixRateRow:
    return FixRateRow(
        action=action,
        signal=signal,
        model=model,
        tried=tried,
        fixed=fixed,
        fix_rate=round(fixed / tried, 4) if tried else None,
    )


def repair_stats(rates: Sequence[FixRate], *, brand: str | None) -> RepairStats:
    """Pool ``fix_rates`` per (action, signal) and per model for people to read."""
    by_action: dict[tuple[str, str], list[int]] = {}
    by_model: dict[str, list[int]] = {}
    for r in rates:
        a = by_action.setdefault((r.action, r.signal), [0, 0])
        a[0], a[1] = a[0] + r.fixed, a[1] + r.tried
        m = by_model.setdefault(r.model, [0, 0])
        m[0], m[1] = m[0] + r.fixed, m[1] + r.tried
    return RepairStats(
        brand=brand,
        by_action=[_row(a, s, "*", f, t) for (a, s), (f, t) in sorted(by_action.items())],
        by_model=[_row("*", "*", m, f, t) for m, (f, t) in sorted(by_model.items())],
        rows=[_row(r.action, r.signal, r.model, r.fixed, r.tried) for r in rates],
    )
