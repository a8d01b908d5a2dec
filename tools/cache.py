"""The content-addressed generation cache: the same request to the same model version is paid once.

generate looks a candidate up here before any provider call. The key covers everything that
decides the pixels: provider, model and its version, the rendered prompt and negative prompt,
seed, size and params - and the seed the request named, so a request never gets an image made
for another explicit seed (docs/agent.md, "Repeat work is free"). A hit costs nothing and is
recorded on the attempt as a hit, and counted on the entry in the transaction that records
that attempt. Entries of a model whose catalog version changed are invalid
(:func:`invalidate_stale` deletes them), and so are those of a template version no run may use
(rejected in review: ``governance.UNUSABLE_STATUSES``), which lookups skip and delete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.domain import Candidate, ModelSpec, utcnow
from brandloop.registry.models import TemplateRow, TemplateVersionRow
from brandloop.registry.models_agent import CacheEntryRow
from brandloop.templates.governance import UNUSABLE_STATUSES

log = logging.getLogger(__name__)

__all__ = [
    "CacheStats",
    "cache_key",
    "count_hit",
    "invalidate_stale",
    "invalidate_template",
    "lookup",
    "present",
    "purge",
    "stats",
    "store",
]


def cache_key(
    spec: ModelSpec,
    candidate: Candidate,
    *,
    tenant: str = "default",
    request_seed: int | None = None,
) -> str:
    """The sha256 of everything that decides the image a provider returns for ``candidate``,
    scoped to ``tenant`` so one tenant's cache never serves another's.

    ``request_seed`` is the seed the request named, if any: an entry made for one explicit
    seed never serves a request naming another, even where both rendered the same seed
    (``--seed 3 --n 2`` and ``--seed 4`` both render seed 4). An identical request names the
    same seed and still finds its entries. Unseeded requests' keys leave it out.
    """
    material: dict[str, Any] = {
        "tenant": tenant,
        "provider": spec.provider,
        "model": spec.model,
        "version": spec.version,
        "prompt": candidate.prompt,
        "negative": candidate.negative_prompt,
        "seed": candidate.seed,
        "size": [candidate.width, candidate.height],
        "params": candidate.params,
    }
    if request_seed is not None:
        material["request_seed"] = request_seed
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _template_unusable(session: Session, *, tenant: str, template_ref: str) -> bool:
    """Whether no run may use the template version ``template_ref`` (``name@V``) any more: its
    cached images are not served. Templates have no ``retired`` status; a version's metadata
    is free-form notes for reviewers and says nothing about its use."""
    name, _, version = template_ref.partition("@")
    if not version.isdigit():
        return False
    row = session.execute(
        select(TemplateVersionRow.status)
        .join(TemplateRow, TemplateRow.id == TemplateVersionRow.template_id)
        .where(
            TemplateRow.tenant == tenant,
            TemplateRow.name == name,
            TemplateVersionRow.version == int(version),
        )
    ).scalar_one_or_none()
    return row is not None and row in UNUSABLE_STATUSES


def lookup(
    session: Session, *, tenant: str, key: str, spec: ModelSpec, template_ref: str
) -> CacheEntryRow | None:
    """The live entry for ``key``; None (and the entry dropped) if stale. The hit is counted
    by :func:`count_hit`, in the transaction that records the attempt it serves, so a failure
    of that transaction (a crash, a lost connection) leaves no hit nobody used."""
    row = session.get(CacheEntryRow, key)
    if row is None or row.tenant != tenant:
        return None
    if row.model_version != spec.version or _template_unusable(
        session, tenant=tenant, template_ref=row.template_ref
    ):
        session.delete(row)
        session.flush()
        return None
    return row


def count_hit(session: Session, *, key: str) -> None:
    """Count a hit of the entry ``key`` (its ``hits`` and ``last_hit_at``) in ``session``: the
    transaction that records the attempt the hit served. An entry purged since the lookup has
    nothing to count."""
    row = session.get(CacheEntryRow, key)
    if row is None:
        return
    row.hits += 1
    row.last_hit_at = utcnow()
    log.debug("cache hit", extra={"tenant": row.tenant, "model": row.model})


def present(session: Session, *, tenant: str, key: str, spec: ModelSpec) -> CacheEntryRow | None:
    """The live entry for ``key`` as :func:`lookup` would find it, without dropping a stale
    one: for a planner asking whether the cache can still serve a candidate."""
    row = session.get(CacheEntryRow, key)
    if row is None or row.tenant != tenant or row.model_version != spec.version:
        return None
    if _template_unusable(session, tenant=tenant, template_ref=row.template_ref):
        return None
    return row


def store(
    session: Session,
    *,
    tenant: str,
    key: str,
    spec: ModelSpec,
    template_ref: str,
    artifact_sha256: str,
    seed_returned: int | None,
    provider_request_id: str | None,
    cost_usd: float,
) -> CacheEntryRow:
    found = session.get(CacheEntryRow, key)
    if found is not None:
        return found
    row = CacheEntryRow(
        key=key,
        tenant=tenant,
        provider=spec.provider,
        model=spec.id,
        model_version=spec.version,
        template_ref=template_ref,
        artifact_sha256=artifact_sha256,
        seed_returned=seed_returned,
        provider_request_id=provider_request_id,
        cost_usd=cost_usd,
        hits=0,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():  # another run may store the same key at the same time
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = session.get(CacheEntryRow, key)
        return existing if existing is not None else row
    return row


def invalidate_stale(session: Session, *, tenant: str, models: Sequence[ModelSpec]) -> int:
    """Delete entries made by a model version the catalog no longer names; return how many."""
    current = {m.id: m.version for m in models}
    removed = 0
    rows = session.execute(
        select(CacheEntryRow.key, CacheEntryRow.model, CacheEntryRow.model_version).where(
            CacheEntryRow.tenant == tenant
        )
    ).all()
    stale = [key for key, model, version in rows if current.get(model, version) != version]
    for start in range(0, len(stale), 500):
        chunk = stale[start : start + 500]
        session.execute(delete(CacheEntryRow).where(CacheEntryRow.key.in_(chunk)))
        removed += len(chunk)
    if removed:
        log.info("stale cache entries removed", extra={"tenant": tenant, "entries": removed})
    return removed


def invalidate_template(session: Session, *, tenant: str, template_ref: str) -> int:
    """Delete the entries rendered from one template version (one no run may use any more;
    lookups skip and delete them one by one anyway)."""
    result = session.execute(
        delete(CacheEntryRow).where(
            CacheEntryRow.tenant == tenant, CacheEntryRow.template_ref == template_ref
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purge(session: Session, *, tenant: str, model: str | None = None) -> int:
    """Delete every entry of the tenant, or only ``model``'s; return how many."""
    query = delete(CacheEntryRow).where(CacheEntryRow.tenant == tenant)
    if model is not None:
        query = query.where(CacheEntryRow.model == model)
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class CacheStats:
    entries: int
    hits: int
    saved_usd: float
    by_model: dict[str, dict[str, Any]]


def stats(session: Session, *, tenant: str) -> CacheStats:
    """Entries, hits and the money hits saved (each hit saved the entry's original cost)."""
    rows = session.execute(
        select(
            CacheEntryRow.model,
            func.count(),
            func.coalesce(func.sum(CacheEntryRow.hits), 0),
            func.coalesce(func.sum(CacheEntryRow.hits * CacheEntryRow.cost_usd), 0.0),
        )
        .where(CacheEntryRow.tenant == tenant)
        .group_by(CacheEntryRow.model)
        .order_by(CacheEntryRow.model)
    ).all()
    by_model: dict[str, dict[str, Any]] = {
        model: {"entries": int(n), "hits": int(h), "saved_usd": round(float(s), 6)}
        for model, n, h, s in rows
    }
    return CacheStats(
        entries=sum(v["entries"] for v in by_model.values()),
        hits=sum(v["hits"] for v in by_model.values()),
        saved_usd=round(sum(v["saved_usd"] for v in by_model.values()), 6),
        by_model=by_model,
    )
