"""Which of a brand's remembered records were made under its current kit: the only ones that
judge a new image (similarity) or steer a new run (recalled models, seeds, palette emphasis,
campaign colours). A kit replaced since (``brands add``, ``POST /v1/brands``) renders new
images from the new kit, so the old kit's accepted images and prompts are no reference.

Each record carries the digest of the kit it was made under (``kit`` metadata, written by the
remember node); records are fetched as before (one collection per brand and kind, no Chroma
``where``) and filtered here. A record written before the digest was kept (no ``kit``) counts
only if it was written at or after the brand's last registry change (``brands.updated_at``:
a kit replaced, or a rename), so an install whose kit changed is not held to its old images.
"""

from __future__ import annotations

from dataclasses import dataclass

from brandloop.agent.replay import kit_digest
from brandloop.domain import BrandKit
from brandloop.memory.store import MemoryHit
from brandloop.registry import crud
from brandloop.registry.db import Database


def memory_kit_digest(kit: BrandKit) -> str:
    """:func:`~brandloop.agent.replay.kit_digest` of the kit's content without its name: a
    rename (``brands rename``) keeps the brand's memory, any other edit starts a new kit."""
    return kit_digest(kit.model_copy(update={"name": ""}))


@dataclass(frozen=True)
class KitScope:
    """The brand's current kit as memory sees it: its digest and when the registry last
    changed the brand (epoch seconds; None when unknown, then unmarked records count)."""

    digest: str
    since: float | None

    def admits(self, hit: MemoryHit) -> bool:
        recorded = hit.metadata.get("kit")
        if recorded is not None:
            return recorded == self.digest
        if self.since is None:
            return True
        return float(hit.metadata.get("created_at", 0.0)) >= self.since


def kit_scope(db: Database, *, tenant: str, brand_id: str, kit: BrandKit) -> KitScope:
    """The scope of ``kit`` for the registry brand ``brand_id`` (its last change from the
    registry; None when the brand is not there)."""
    with db.session() as session:
        row = crud.get_brand(session, tenant=tenant, ref=brand_id)
        since = row.updated_at.timestamp() if row is not None else None
    return KitScope(digest=memory_kit_digest(kit), since=since)
