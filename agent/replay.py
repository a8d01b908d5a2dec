"""Repeat work is free: an identical request replays what an earlier run accepted, from the
generation cache, at no cost - whatever memory would have added to a freshly composed prompt.

Two requests are identical when tenant, brand, the brand kit's content, brief, the resolved
template version and its content, seed, size, count, pinned model, provider allow-list,
preview allowance, avoided terms and palette shifts agree, and the prompt composer's version
(``COMPOSER_VERSION``) is the one that composed the earlier run: everything that goes into the
rendered prompt. A brand kit edited since the earlier run (``brands add`` of an
existing brand, ``POST /v1/brands``) makes another request, rendered afresh from the current
kit and paid for; what counts is the kit's content, so a kit put back as it was is the kit
the earlier run used. Only seeded requests replay: without a seed, a request asks for new images
each time.

A replayed candidate carries its catalog price like any planned one: the planner replays only
when the cache still holds every accepted image, and should an entry go between planning and
generating (a purge), the call it takes is reserved against the budgets before it is made.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from brandloop.domain import BrandKit, Candidate, GenerationRequest, ModelSpec, TemplateVersion
from brandloop.policies.catalog import image_price
from brandloop.registry.models import AttemptRow, RunRow
from brandloop.tools.composer import COMPOSER_VERSION

REPLAYABLE = ("succeeded", "partial")


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def kit_digest(kit: BrandKit) -> str:
    """The sha256 of a brand kit's content: any edit to the kit changes it."""
    return _digest(kit.model_dump(mode="json"))


def template_digest(template: TemplateVersion) -> str:
    """The sha256 of what a template version renders from (not its status or labels)."""
    return _digest(
        {
            "body": template.body,
            "negative_body": template.negative_body,
            "params": template.params,
        }
    )


def request_key(
    request: GenerationRequest,
    *,
    brand_id: str,
    brand: BrandKit,
    template: TemplateVersion,
) -> str | None:
    """The sha256 naming what makes two requests identical; None for an unseeded request."""
    if request.seed is None:
        return None
    width, height = request.dimensions()
    material = {
        # 2: the kit's and the template's content, avoid and shifts; 3: composer; 4: a
        # template with params, since they reach the calls (older code's runs ignored them, so
        # they are not this request's repeats). Without params the key is as it was.
        "version": 4 if template.params else 3,
        "composer": COMPOSER_VERSION,
        "tenant": request.tenant,
        "brand": brand_id,
        "kit": kit_digest(brand),
        "brief": request.brief,
        "template": template.ref,
        "template_content": template_digest(template),
        "avoid": list(request.avoid),
        "shifts": list(request.shifts),
        "seed": request.seed,
        "size": [width, height],
        "count": request.count,
        "model": request.model,
        "providers": sorted(request.providers) if request.providers else None,
        "allow_preview": request.allow_preview,
    }
    return _digest(material)


def mark(session: Session, *, run_id: str, key: str | None) -> None:
    session.execute(update(RunRow).where(RunRow.id == run_id).values(request_key=key))


def forget_replays(session: Session, *, tenant: str, brand_id: str, texts: Sequence[str]) -> int:
    """Make the brand's runs whose accepted prompts carry any of ``texts`` (a forgotten style
    note's) no request's repeat any more; return how many. A repeat would serve their images
    again and their prompts, the forgotten text in them, would be remembered again (outside
    tester: a forgotten note came back into memory, a new receipt and its image this way); the
    next identical request is planned afresh, without the note."""
    if not texts:
        return 0
    rows = session.execute(
        select(AttemptRow.run_id, AttemptRow.prompt)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.tenant == tenant,
            RunRow.brand_id == brand_id,
            RunRow.request_key.is_not(None),
            AttemptRow.outcome == "accepted",
        )
    )
    runs = {run_id for run_id, prompt in rows if any(text in (prompt or "") for text in texts)}
    if runs:
        session.execute(update(RunRow).where(RunRow.id.in_(runs)).values(request_key=None))
    return len(runs)


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


def replay_candidates(
    rows: list[AttemptRow], *, run_id: str, models: dict[str, ModelSpec]
) -> list[Candidate]:
    """Round-one candidates identical to the accepted ones, so the cache serves each of them.

    Each carries its catalog price (``models`` holds the spec of every row's model): a hit
    costs nothing, and a miss is a provider call, reserved against the budgets like any other.
    """
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
            estimated_cost_usd=image_price(
                models[row.model],
                width=row.width,
                height=row.height,
                quality=(row.params or {}).get("quality"),
            ),
            params=dict(row.params or {}),
        )
        for index, row in enumerate(rows)
    ]
