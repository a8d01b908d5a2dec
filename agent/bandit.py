"""The planner's bandit: which model (for this template version) to spend the next candidate on.

Each (template version, model) arm has a Beta posterior over "an attempt on it is accepted",
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


@dataclass(frozen=True)
class ArmChoice:
    model: ModelSpec
    posterior_mean: float
    sampled: float
    explored: bool


def arm_stats(session: Session, *, brand_id: str, template_ref: str) -> dict[str, ArmStats]:
    """Per model: accepted vs. failed attempts and mean latency of this brand's runs, read from
    the counts kept as attempts are recorded (flat however long the brand's history)."""
    rows = [
        (r.model, r.outcome, r.attempts, r.latency_ms_total / r.attempts)
        for r in crud.outcome_counts(session, brand_id=brand_id, template_ref=template_ref)
    ]
    counts: dict[str, list[float]] = {}
    for model, outcome, n, latency in rows:
        entry = counts.setdefault(model, [0, 0, 0.0, 0])
        if outcome in SUCCESS:
            entry[0] += n
        elif outcome in FAILURE:
            entry[1] += n
        if latency:
            entry[2] += float(latency) * n
            entry[3] += n
    return {
        model: ArmStats(
            model=model,
            successes=int(s),
            failures=int(f),
            mean_latency_s=(lat / n / 1000.0) if n else None,
        )
        for model, (s, f, lat, n) in counts.items()
    }


def posterior(
    spec: ModelSpec, stats: ArmStats | None, prior_strength: float
) -> tuple[float, float]:
    """Beta(alpha, beta) for the arm: the catalog baseline as a prior, plus what was observed."""
    alpha = 1.0 + prior_strength * spec.quality_baseline
    beta = 1.0 + prior_strength * (1.0 - spec.quality_baseline)
    if stats is not None:
        alpha += stats.successes
        beta += stats.failures
    return alpha, beta


def _per_dollar(p: float, price: float) -> float:
    return p / max(price, _MIN_PRICE)


def choose(
    models: Sequence[ModelSpec],
    stats: dict[str, ArmStats],
    *,
    count: int,
    rng: random.Random,
    exploration_share: float,
    prior_strength: float,
    prices: dict[str, float] | None = None,
) -> list[ArmChoice]:
    """One arm per candidate, ``count`` of them, from ``models`` (which must not be empty).

    ``prices`` are the per-image prices at the request's size; the catalog price otherwise.
    """
    if not models:
        raise ValueError("no model to choose from")
    price = {m.id: (prices or {}).get(m.id, m.price_per_image_usd) for m in models}
    params = {m.id: posterior(m, stats.get(m.id), prior_strength) for m in models}
    means = {mid: a / (a + b) for mid, (a, b) in params.items()}
    greedy = max(models, key=lambda m: (_per_dollar(means[m.id], price[m.id]), -price[m.id]))
    allowance = exploration_share * count
    explore_budget = int(allowance) + (1 if rng.random() < allowance - int(allowance) else 0)
    choices: list[ArmChoice] = []
    for _ in range(count):
        samples = {m.id: rng.betavariate(*params[m.id]) for m in models}
        pick = max(models, key=lambda m: _per_dollar(samples[m.id], price[m.id]))
        explored = pick.id != greedy.id
        if explored and explore_budget <= 0:
            pick, explored = greedy, False
        elif explored:
            explore_budget -= 1
        choices.append(
            ArmChoice(
                model=pick,
                posterior_mean=means[pick.id],
                sampled=samples[pick.id],
                explored=explored,
            )
        )
    return choices
