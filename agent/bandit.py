"""The planner's bandit: which model and quality setting (for this template version) to spend
the next candidate on.

An arm is a model at one of its quality settings (a model without settings is one arm): the
same model is a different buy at "low" and at "high" - another price, another chance of a soft
image - and which one buys acceptances cheapest differs from backend to backend, so the bandit
learns it from the brand's outcomes instead of always asking for the vendor's default.

Each (template version, arm) has a Beta posterior over "an attempt on it is accepted",
built from the brand's past outcomes in the registry on top of a prior from the catalog's
``quality_baseline`` (worth ``prior_strength`` attempts). Thompson sampling ranks arms by the
sampled acceptance rate per dollar, so the agent buys acceptances, not images. At most
``exploration_share`` of the candidates (in expectation, by stochastic rounding) may go to an
arm other than the greedy one: the one with the best posterior mean per dollar.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from brandloop.domain import ModelSpec
from brandloop.registry import crud
from brandloop.registry.models import OutcomeCountRow

SUCCESS = frozenset({"accepted"})
FAILURE = frozenset({"rejected", "blocked", "refused", "error"})
_MIN_PRICE = 1e-4


@dataclass(frozen=True)
class ArmStats:
    """What the registry knows about one arm for one brand."""

    model: str
    successes: int = 0
    failures: int = 0
    mean_latency_s: float | None = None
    quality: str = ""  # "": attempts that named no setting (the model's default)
    #: what the tenant's other brands saw on this arm, shrunk to at most ``pool_strength``
    #: attempts in all: part of the brand's prior, not its own record
    pooled_successes: float = 0.0
    pooled_failures: float = 0.0


@dataclass(frozen=True)
class Arm:
    """A model at one quality setting (None: the model has no settings to choose from)."""

    model: ModelSpec
    quality: str | None = None

    @property
    def key(self) -> str:
        return arm_key(self.model.id, self.quality)


@dataclass(frozen=True)
class ArmChoice:
    model: ModelSpec
    posterior_mean: float
    sampled: float
    explored: bool
    quality: str | None = None

    @property
    def key(self) -> str:
        return arm_key(self.model.id, self.quality)


def arm_key(model: str, quality: str | None) -> str:
    """``model`` for its default (or only) setting as recorded, ``model@quality`` otherwise."""
    return f"{model}@{quality}" if quality else model


def arms(
    models: Sequence[ModelSpec], *, min_boost: int = 0, every_quality: bool = True
) -> list[Arm]:
    """The arms of ``models``: each quality setting of a model (only its default when
    ``every_quality`` is off), and after ``min_boost`` soft rounds only the settings at least
    that many steps above the default (none left: the model's highest)."""
    found: list[Arm] = []
    for spec in models:
        if not spec.qualities:
            found.append(Arm(spec))
            continue
        base = (
            spec.qualities.index(spec.default_quality)
            if spec.default_quality in spec.qualities
            else 0
        )
        if min_boost > 0:
            start = min(base + min_boost, len(spec.qualities) - 1)
            settings = spec.qualities[start:]
        elif every_quality:
            settings = list(spec.qualities)
        else:
            settings = [spec.qualities[base]]
        found.extend(Arm(spec, q) for q in settings)
    return found


def _tally(rows: Sequence[OutcomeCountRow]) -> dict[str, tuple[int, int]]:
    found: dict[str, list[int]] = {}
    for r in rows:
        entry = found.setdefault(arm_key(r.model, r.quality), [0, 0])
        if r.outcome in SUCCESS:
            entry[0] += r.attempts
        elif r.outcome in FAILURE:
            entry[1] += r.attempts
    return {key: (s, f) for key, (s, f) in found.items()}


def arm_stats(
    session: Session,
    *,
    brand_id: str,
    template_ref: str,
    tenant: str | None = None,
    pool_strength: float = 0.0,
) -> dict[str, ArmStats]:
    """Per arm (``arm_key``): accepted vs. failed attempts and mean latency of this brand's
    runs, read from the counts kept as attempts are recorded (flat however long the brand's
    history).

    With a ``tenant`` and a ``pool_strength``, each arm also carries what the tenant's other
    brands observed on it (same template version), scaled down to at most ``pool_strength``
    attempts: a model that is soft or badly exposed is so for every brand, so a brand need not
    pay again to learn it, while its own outcomes soon outweigh the pool (palette misses can be
    the brand's own). Another tenant's outcomes are never read.
    """
    rows = [
        (arm_key(r.model, r.quality), r.outcome, r.attempts, r.latency_ms_total / r.attempts)
        for r in crud.outcome_counts(session, brand_id=brand_id, template_ref=template_ref)
    ]
    pooled: dict[str, tuple[float, float]] = {}
    if tenant is not None and pool_strength > 0:
        others = crud.tenant_outcome_counts(
            session, tenant=tenant, template_ref=template_ref, except_brand_id=brand_id
        )
        for key, (s, f) in _tally(others).items():
            scale = min(1.0, pool_strength / (s + f)) if s + f else 0.0
            pooled[key] = (s * scale, f * scale)
    counts: dict[str, list[float]] = {}
    for key, outcome, n, latency in rows:
        entry = counts.setdefault(key, [0, 0, 0.0, 0])
        if outcome in SUCCESS:
            entry[0] += n
        elif outcome in FAILURE:
            entry[1] += n
        if latency:
            entry[2] += float(latency) * n
            entry[3] += n
    for key in pooled:
        counts.setdefault(key, [0, 0, 0.0, 0])
    return {
        key: ArmStats(
            model=key.split("@", 1)[0],
            quality=key.split("@", 1)[1] if "@" in key else "",
            successes=int(s),
            failures=int(f),
            mean_latency_s=(lat / n / 1000.0) if n else None,
            pooled_successes=pooled.get(key, (0.0, 0.0))[0],
            pooled_failures=pooled.get(key, (0.0, 0.0))[1],
        )
        for key, (s, f, lat, n) in counts.items()
    }


def model_latencies(stats: dict[str, ArmStats]) -> dict[str, float | None]:
    """Mean latency per model over all its arms."""
    total: dict[str, list[float]] = {}
    for arm in stats.values():
        if arm.mean_latency_s is None:
            continue
        n = arm.successes + arm.failures or 1
        entry = total.setdefault(arm.model, [0.0, 0])
        entry[0] += arm.mean_latency_s * n
        entry[1] += n
    return {model: s / n for model, (s, n) in total.items()}


def posterior(
    spec: ModelSpec | Arm, stats: ArmStats | dict[str, ArmStats] | None, prior_strength: float
) -> tuple[float, float]:
    """Beta(alpha, beta) for the arm: the catalog baseline and the tenant's pooled outcomes
    (``ArmStats.pooled_*``) as a prior, plus what the brand observed.
    Given all the brand's stats, an arm at the model's default setting also counts the
    attempts recorded without a setting (before the planner chose settings)."""
    arm = spec if isinstance(spec, Arm) else Arm(spec)
    model = arm.model
    alpha = 1.0 + prior_strength * model.quality_baseline
    beta = 1.0 + prior_strength * (1.0 - model.quality_baseline)
    if isinstance(stats, dict):
        found = [stats.get(arm.key)]
        if arm.quality is not None and arm.quality == model.default_quality:
            found.append(stats.get(model.id))
    else:
        found = [stats]
    for observed in found:
        if observed is not None:
            alpha += observed.successes + observed.pooled_successes
            beta += observed.failures + observed.pooled_failures
    return alpha, beta


def _per_dollar(p: float, price: float) -> float:
    return p / max(price, _MIN_PRICE)


def choose(
    options: Sequence[ModelSpec | Arm],
    stats: dict[str, ArmStats],
    *,
    count: int,
    rng: random.Random,
    exploration_share: float,
    prior_strength: float,
    prices: dict[str, float] | None = None,
) -> list[ArmChoice]:
    """One arm per candidate, ``count`` of them, from ``options`` (which must not be empty):
    arms, or models (each one arm at its default setting).

    ``prices`` are the per-image prices by ``Arm.key`` at the request's size and setting; the
    catalog price otherwise.
    """
    if not options:
        raise ValueError("no model to choose from")
    found = [o if isinstance(o, Arm) else Arm(o) for o in options]
    price = {a.key: (prices or {}).get(a.key, a.model.price_per_image_usd) for a in found}
    params = {a.key: posterior(a, stats, prior_strength) for a in found}
    means = {key: a / (a + b) for key, (a, b) in params.items()}
    greedy = max(found, key=lambda a: (_per_dollar(means[a.key], price[a.key]), -price[a.key]))
    allowance = exploration_share * count
    explore_budget = int(allowance) + (1 if rng.random() < allowance - int(allowance) else 0)
    choices: list[ArmChoice] = []
    for _ in range(count):
        samples = {a.key: rng.betavariate(*params[a.key]) for a in found}
        pick = max(found, key=lambda a: _per_dollar(samples[a.key], price[a.key]))
        explored = pick.key != greedy.key
        if explored and explore_budget <= 0:
            pick, explored = greedy, False
        elif explored:
            explore_budget -= 1
        choices.append(
            ArmChoice(
                model=pick.model,
                quality=pick.quality,
                posterior_mean=means[pick.key],
                sampled=samples[pick.key],
                explored=explored,
            )
        )
    return choices
