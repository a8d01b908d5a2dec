"""Re-keying: move brand memory from the old slug-named collections into exact-identity ones.

Before exact identity, a tenant's brand memory lived in one collection named from slugs of
the tenant and brand (``bl-acme-co--acme-coffee``), so ``acme_co``, ``acme-co`` and
``Acme-Co`` shared it. Each record is moved, with its vector, to the collection of its kind
for its exact owner:

- a record made by a run (accepted prompts, image descriptors) belongs to that run's tenant
  and brand, which the registry knows exactly;
- any other record (style notes) belongs to the collection's one possible owner, when exactly
  one registered (tenant, brand) maps to that collection's name. When several do, the record
  was shared by tenants that should never have shared it: it is counted as unattributed and
  left where it is, never copied to any of them.

Re-keying is idempotent (records keep their ids; a second pass rewrites the same records).
Legacy collections are deleted only when asked and only when all of their records moved.

The same pass gives every exact-identity brand collection written before campaign collections
its campaigns' collections (:func:`split_campaigns`): until then a campaign's recall of that
brand filters the brand's collection by ``campaign_id`` (right, but a scan).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from brandloop.memory.store import (
    KINDS,
    BrandMemory,
    MemoryKind,
    MetadataValue,
    unsplit_owner,
)

__all__ = [
    "LEGACY_PREFIX",
    "Owner",
    "RekeyReport",
    "legacy_collection_name",
    "rekey_legacy",
    "split_campaigns",
]

#: (tenant id, brand id), exact
Owner = tuple[str, str]
LEGACY_PREFIX = "bl-"
_LEGACY_MAX = 63
_LEGACY_HASH = 10
_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_BATCH = 500


def _slug(value: str) -> str:
    return _SLUG_RUN.sub("-", value.lower()).strip("-")


def legacy_collection_name(tenant: str, brand_name: str) -> str:
    """The name the slug-keyed store gave ``tenant``'s memory of ``brand_name``."""
    tenant_slug, brand_slug = _slug(tenant), _slug(brand_name)
    name = f"{LEGACY_PREFIX}{tenant_slug}--{brand_slug}"
    if len(name) <= _LEGACY_MAX:
        return name
    digest = hashlib.sha256(f"{tenant_slug}\0{brand_slug}".encode()).hexdigest()[:_LEGACY_HASH]
    return f"{name[: _LEGACY_MAX - _LEGACY_HASH - 1].rstrip('-')}-{digest}"


@dataclass
class RekeyReport:
    """What a re-keying pass did, per legacy collection and in total."""

    collections: int = 0
    moved: int = 0
    unattributed: int = 0
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    #: brands whose campaign records were copied to campaign collections, and how many records
    campaign_brands: int = 0
    campaign_records: int = 0


@dataclass
class _Batch:
    ids: list[str] = field(default_factory=list)
    embeddings: list[Sequence[float]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    metadatas: list[Mapping[str, MetadataValue]] = field(default_factory=list)


def rekey_legacy(
    memory: BrandMemory,
    *,
    brands: Sequence[tuple[str, str, str]],
    run_owners: Callable[[Sequence[str]], Mapping[str, Owner]],
    drop_legacy: bool = False,
    on_collection: Callable[[str, int], None] | None = None,
) -> RekeyReport:
    """Move every legacy collection's records into ``memory``'s exact-identity collections.

    Args:
        memory: where records go; its Chroma client holds the legacy collections.
        brands: every registered brand as (tenant id, brand id, brand name).
        run_owners: the exact owner of each of the given run ids the registry knows.
        drop_legacy: delete each legacy collection all of whose records moved.
        on_collection: told (name, records) as each legacy collection is started.
    """
    candidates: dict[str, list[Owner]] = {}
    for tenant, brand_id, name in brands:
        candidates.setdefault(legacy_collection_name(tenant, name), []).append((tenant, brand_id))
    client = memory.client
    report = RekeyReport()
    for name in sorted(c.name for c in client.list_collections()):
        if not name.startswith(LEGACY_PREFIX):
            continue
        legacy = client.get_collection(name)
        total = legacy.count()
        if on_collection is not None:
            on_collection(name, total)
        report.collections += 1
        owners = candidates.get(name, [])
        left = 0
        for offset in range(0, total, _BATCH):
            found = legacy.get(
                limit=_BATCH, offset=offset, include=["embeddings", "documents", "metadatas"]
            )
            moved, unattributed = _move(memory, found, owners, run_owners)
            report.moved += moved
            left += unattributed
        report.unattributed += left
        if drop_legacy and not left:
            client.delete_collection(name)
            report.dropped.append(name)
        else:
            report.kept.append(name)
    return report


def _move(
    memory: BrandMemory,
    found: Any,
    owners: Sequence[Owner],
    run_owners: Callable[[Sequence[str]], Mapping[str, Owner]],
) -> tuple[int, int]:
    """Write one page of a legacy collection to its owners; (moved, unattributed)."""
    metadatas: list[Mapping[str, Any]] = [m or {} for m in found["metadatas"] or []]
    run_ids = sorted({str(m["run_id"]) for m in metadatas if m.get("run_id")})
    by_run = run_owners(run_ids) if run_ids else {}
    batches: dict[tuple[str, str, MemoryKind], _Batch] = {}
    unattributed = 0
    rows = zip(
        found["ids"],
        found["embeddings"] if found["embeddings"] is not None else [],
        found["documents"] or [],
        metadatas,
        strict=True,
    )
    for record_id, embedding, document, metadata in rows:
        kind = metadata.get("kind")
        run_id = metadata.get("run_id")
        owner = by_run.get(str(run_id)) if run_id else None
        if owner is None and len(owners) == 1:
            owner = owners[0]
        if owner is None or kind not in KINDS:
            unattributed += 1
            continue
        batch = batches.setdefault((*owner, cast(MemoryKind, kind)), _Batch())
        batch.ids.append(record_id)
        batch.embeddings.append([float(x) for x in embedding])
        batch.documents.append(document or "")
        batch.metadatas.append(metadata)
    for (tenant, brand, kind), batch in batches.items():
        memory.put_records(
            tenant=tenant,
            brand=brand,
            kind=kind,
            ids=batch.ids,
            embeddings=batch.embeddings,
            documents=batch.documents,
            metadatas=batch.metadatas,
        )
    return sum(len(b.ids) for b in batches.values()), unattributed


def split_campaigns(
    memory: BrandMemory, *, on_brand: Callable[[str, str], None] | None = None
) -> tuple[int, int]:
    """Copy the campaign records of every brand collection not yet split to their campaigns'
    collections (:meth:`BrandMemory.split_campaigns`); return (brands, records copied).

    The brands are found from the collections themselves (their owner metadata), so brands
    no longer in the registry are split too. Idempotent: a split brand is skipped.
    """
    owners = {
        owner
        for collection in memory.client.list_collections()
        if (owner := unsplit_owner(collection)) is not None
    }
    copied = 0
    for tenant, brand in sorted(owners):
        if on_brand is not None:
            on_brand(tenant, brand)
        copied += memory.split_campaigns(tenant=tenant, brand=brand)
    return len(owners), copied
