"""The drift detector: does a stream of quality scores fall significantly below its baseline?

A pure function of the scores and a :class:`DriftPolicy` (one-sided lower CUSUM on standardised
scores, with a per-segment baseline); :mod:`brandloop.templates.drift` feeds it the registry's
composite scores per (template version, model) and records the alarms. The shipped parameters
live in ``policies/drift.yaml`` (``brandloop.policies.drift.load_drift_policy``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DriftPolicy(BaseModel):
    """CUSUM parameters: baseline length, reference value k and decision interval h (in σ)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["cusum"] = "cusum"
    baseline_size: int = Field(default=50, ge=5, le=10_000)
    k: float = Field(default=0.75, ge=0)
    h: float = Field(default=10.0, gt=0)
    min_std: float = Field(default=0.02, gt=0)


@dataclass(frozen=True)
class Alarm:
    """One detected drop: where it fired and what it compared."""

    index: int
    statistic: float
    baseline_mean: float
    baseline_std: float
    recent_mean: float
    recent_n: int
    start_index: int


@dataclass
class DriftScan:
    """The detector's verdict over a whole stream, and where it stands at the end."""

    alarms: list[Alarm] = field(default_factory=list)
    baseline_n: int = 0
    baseline_mean: float | None = None
    baseline_std: float | None = None
    monitored_n: int = 0
    statistic: float = 0.0


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / max(1, len(values) - 1)
    return mean, math.sqrt(var)


def scan(scores: Sequence[float], policy: DriftPolicy) -> DriftScan:
    """Run the CUSUM over ``scores`` (oldest first); alarms reset the baseline."""
    result = DriftScan()
    baseline: list[float] = []
    mean = std = 0.0
    s = 0.0
    run_start = 0
    for i, x in enumerate(scores):
        if len(baseline) < policy.baseline_size:
            baseline.append(x)
            if len(baseline) == policy.baseline_size:
                mean, raw_std = _mean_std(baseline)
                std = max(raw_std, policy.min_std)
                s, run_start, result.monitored_n = 0.0, i + 1, 0
            continue
        result.monitored_n += 1
        s = max(0.0, s + (mean - x) / std - policy.k)
        if s == 0.0:
            run_start = i + 1
        if s > policy.h:
            recent = scores[run_start : i + 1]
            result.alarms.append(
                Alarm(
                    index=i,
                    statistic=round(s, 4),
                    baseline_mean=round(mean, 4),
                    baseline_std=round(std, 4),
                    recent_mean=round(sum(recent) / len(recent), 4),
                    recent_n=len(recent),
                    start_index=run_start,
                )
            )
            baseline, s, result.monitored_n = [], 0.0, 0
    result.baseline_n = len(baseline)
    complete = len(baseline) >= policy.baseline_size
    result.baseline_mean = round(mean, 4) if complete else None
    result.baseline_std = round(std, 4) if complete else None
    result.statistic = round(s, 4)
    return result
