"""Repeat work is free: an identical request replays what an earlier run accepted, from the
generation cache, at no cost - whatever memory would have added to a freshly composed prompt.

Two requests are identical when tenant, brand, brief, the resolved template version, seed,
size, count, pinned model and provider allow-list agree. Only seeded requests replay: without
a seed, a request asks for new images each time.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brandloop.domain import Candidate, GenerationRequest
from brandloop.registry.models import AttemptRow, RunRow

REPLAYABLE = ("succeeded", "partial")


def request_key(request: GenerationRequest, *, brand_id: str, template_ref: str) -> str | None:
    """The sha256 naming what makes two requests identical; None for an unseeded request."""
    if request.seed is None:
        return None
    width, height = request.dimensions()
    material = {
        "tenant": request.tenant,
        "brand": brand_id,
        "brief": request.brief,
        "template": template_ref,
        "seed": request.seed,
        "size": [width, height],
        "count": request.count,
        "model": request.model,
        "providers": sorted(request.providers) if request.providers else None,
        "allow_preview": request.allow_preview,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def mark(session: Session, *, run_id: str, key: str | None) -> None:
    session.execute(update(RunRow).where(RunRow.id == run_id).values(request_key=key))


def earlier_accepted(
    session: Session, *, tenant: str, key: str, run_id: str
) -> tuple[str, list[AttemptRow]] | None:
    """The latest other run of the same request that accepted images, and those attempts."""
    earlier = session.scalar(
        select(RunRow)
        .where(
            RunRow.tenant == tenant,
            RunRow.request_key == key,
            RunRow.id != run_id,
            RunRow.status.in_(REPLAYABLE),
            RunRow.accepted_count > 0,
        )
        .order_by(RunRow.created_at.desc())
        .limit(1)
    )
    if earlier is None:
        return None
    rows = list(
        session.scalars(
            select(AttemptRow)
            .where(AttemptRow.run_id == earlier.id, AttemptRow.outcome == "accepted")
            .order_by(AttemptRow.created_at, AttemptRow.id)
        )
    )
    return (earlier.id, rows) if rows else None


def replay_candidates(rows: list[AttemptRow], *, run_id: str) -> list[Candidate]:
    """Round-one candidates identical to the accepted ones, so the cache serves each of them."""
    return [
        Candidate(
            id=f"{run_id}-i1-c{index}",
            template=row.template_ref,
            prompt=row.prompt,
            negative_prompt=row.negative_prompt,
            model=row.model,
            seed=row.seed_requested,
            width=row.width,
            height=row.height,
            iteration=1,
            estimated_cost_usd=0.0,
            params=dict(row.params or {}),
        )
        for index, row in enumerate(rows)
    ]
