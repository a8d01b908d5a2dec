"""Per-version outcomes of a template, so a canary can be promoted or rolled back on evidence.

Counts come from the ``attempts`` table (each attempt records the template version it was
rendered from): attempts, accepted images, acceptance rate, mean composite and per-signal
scores, cost and cost per accepted image, and the runs that used the version.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.registry.models import AttemptRow, RunRow
from brandloop.templates.governance import (
    _template,
    labels,
    usable_weights,
    version_statuses,
    versions,
)


class VersionStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    status: str
    labels: dict[str, float]
    runs: int
    attempts: int
    scored: int
    accepted: int
    acceptance_rate: float | None
    mean_composite: float | None
    mean_scores: dict[str, float]
    cost_usd: float
    cost_per_accepted_usd: float | None


def _shown_share(share: float) -> float:
    """``share`` to four decimals, but never 0 for a version with traffic nor 1 for one
    without all of it: ``1=1,2=1000000`` gives 9.99999e-07 and 0.999999, not 0.0 and 1.0."""
    for shown in (round(share, 4), float(f"{share:.6g}")):
        if 0 < shown < 1 or shown == share:
            return shown
    return share


def template_stats(session: Session, *, tenant: str, name: str) -> list[VersionStats]:
    """One row per version of ``name`` (versions never used show zero counts)."""
    template = _template(session, tenant, name)
    label_shares: dict[int, dict[str, float]] = defaultdict(dict)
    statuses = version_statuses(session, template=template)
    for label in labels(session, template=template):
        # the shares runs get: a rejected version (named by a label older code left) gets none
        traffic = usable_weights(label.weights, statuses)
        total = sum(traffic.values()) or 1.0
        for key, weight in traffic.items():
            label_shares[int(key)][label.label] = _shown_share(weight / total)
    rows = session.execute(
        select(AttemptRow)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.tenant == tenant, AttemptRow.template_ref.startswith(f"{name}@", autoescape=True)
        )
    ).scalars()
    grouped: dict[int, list[AttemptRow]] = defaultdict(list)
    for row in rows:
        suffix = row.template_ref.rsplit("@", 1)[-1]
        if row.template_ref.rsplit("@", 1)[0] == name and suffix.isdigit():
            grouped[int(suffix)].append(row)
    out: list[VersionStats] = []
    for version in versions(session, template=template):
        attempts = grouped.get(version.version, [])
        scored = [a for a in attempts if a.composite is not None]
        accepted = [a for a in attempts if a.outcome == "accepted"]
        signals: dict[str, list[float]] = defaultdict(list)
        for a in scored:
            for signal, data in (a.scores or {}).get("signals", {}).items():
                signals[signal].append(float(data["value"]))
        cost = round(sum(a.cost_usd for a in attempts), 6)
        out.append(
            VersionStats(
                version=version.version,
                status=version.status,
                labels=label_shares.get(version.version, {}),
                runs=len({a.run_id for a in attempts}),
                attempts=len(attempts),
                scored=len(scored),
                accepted=len(accepted),
                acceptance_rate=round(len(accepted) / len(attempts), 4) if attempts else None,
                mean_composite=round(sum(a.composite or 0.0 for a in scored) / len(scored), 4)
                if scored
                else None,
                mean_scores={k: round(sum(v) / len(v), 4) for k, v in sorted(signals.items())},
                cost_usd=cost,
                cost_per_accepted_usd=round(cost / len(accepted), 6) if accepted else None,
            )
        )
    return out


def stats_document(session: Session, *, tenant: str, name: str) -> dict[str, Any]:
    return {
        "template": name,
        "versions": [s.model_dump() for s in template_stats(session, tenant=tenant, name=name)],
    }
