"""Who owns which image: a tenant's copy of a content-addressed file, kept and released.

Files are named by their sha256 and shared on disk; ownership is a row per (tenant, sha256).
Two tenants that make the same bytes (the preview renderer is deterministic) each own a copy:
both read it, and either deletes its own without touching the other's. Releasing an accepted
image's copy keeps its row, marked deleted (``deleted_at``): its receipt is provenance and
outlives the bytes, and its run's result, and its jobs', mark the image deleted
(``registry.deleted_images``). Keeping and releasing
the same sha256 are serialised (a PostgreSQL advisory lock on the sha256; SQLite's single
writer, taken by each path's first statement, a write), so a release never removes a file that
a concurrent keep has just claimed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from brandloop.artifacts import MEDIA_TYPES, ArtifactStore, image_format, sha256_hex
from brandloop.domain import utcnow
from brandloop.errors import ConflictError
from brandloop.registry.deleted_images import mark_in_results
from brandloop.registry.models import ArtifactRow, AttemptRow, RunRow
from brandloop.registry.models_agent import (
    CLAIM_RELEASED,
    CacheEntryRow,
    ReviewClaimRow,
    ReviewDecisionRow,
)
from brandloop.registry.write_lock import sqlite_write_lock

__all__ = ["discard_unowned", "keep_artifact", "lock_for_removal", "release_artifact"]

#: run statuses that may still sign and deliver an image they hold
_UNFINISHED = ("running", "awaiting_review")


def _lock(session: Session, sha256: str) -> None:
    """On PostgreSQL, hold the sha256's advisory lock until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(int(sha256[:15], 16))))


def lock_for_removal(session: Session, sha256: str) -> None:
    """Serialise with keeps and releases of ``sha256`` until the transaction ends, before
    removing a file no row owns: a keep racing with it either has committed its row (seen
    after this) or writes the file again after (SQLite: its write lock; PostgreSQL: the
    sha256's advisory lock)."""
    if not sqlite_write_lock(session):
        _lock(session, sha256)


def keep_artifact(
    session: Session,
    store: ArtifactStore,
    data: bytes,
    *,
    tenant: str,
    width: int,
    height: int,
    run_id: str | None,
    attempt_id: str | None,
    receipt: dict[str, Any] | None = None,
    phash: str | None = None,
    edits: list[str] | None = None,
) -> tuple[str, Path]:
    """Own ``data`` for ``tenant``: record the tenant's copy and make sure the file is there.

    Returns its sha256 and path. Keeping bytes the tenant already owns changes nothing (the
    first record stays); two keeps racing for the same copy record it once. ``phash`` (an
    accepted image's perceptual hash) and ``edits`` (what post-processing did to a model's
    output) serve Content Credentials (``docs/provenance.md``).
    """
    sha256 = sha256_hex(data)
    path = store.path_of(data, sha256)
    _lock(session, sha256)
    values = {
        "tenant": tenant,
        "sha256": sha256,
        "path": str(path),
        "media_type": MEDIA_TYPES[image_format(data) or "png"],
        "width": width,
        "height": height,
        "size_bytes": len(data),
        "run_id": run_id,
        "attempt_id": attempt_id,
        "receipt": receipt,
        "phash": phash,
        "edits": edits,
        "created_at": utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(ArtifactRow).values(values).on_conflict_do_nothing())
    session.execute(  # bytes the tenant had deleted are its own again (its first record stays)
        update(ArtifactRow)
        .where(
            ArtifactRow.tenant == tenant,
            ArtifactRow.sha256 == sha256,
            ArtifactRow.deleted_at.is_not(None),
        )
        .values(deleted_at=None)
    )
    store.write(data)  # under the lock: a concurrent release cannot remove it before we commit
    return sha256, path


def _owners(session: Session, sha256: str) -> int:
    """How many tenants own a copy of ``sha256`` they have not deleted."""
    query = select(func.count()).select_from(ArtifactRow)
    return session.scalar(query.where(_live(sha256))) or 0


def _live(sha256: str) -> Any:
    return (ArtifactRow.sha256 == sha256) & ArtifactRow.deleted_at.is_(None)


def release_artifact(session: Session, store: ArtifactStore, *, tenant: str, sha256: str) -> bool:
    """Delete ``tenant``'s copy of the bytes, and its generation-cache entries that would serve
    it again; the file goes only when no other tenant owns one. An accepted image's raw
    source (the bytes its receipt's ``source_sha256`` names, which the cache replays) goes
    with it unless the tenant still needs it (:func:`_release_source`). An accepted image's row stays,
    marked deleted, with its receipt (provenance: ``verify``, ``runs reproduce``, a run's
    receipts), and the run that accepted it, and that run's jobs, mark it ``deleted`` in their
    results (their views say so rather than link to bytes that are gone); a candidate's row
    goes.

    Returns False when the tenant owned no such copy, or had deleted it (nothing changes then).
    An image an approval is delivering (a run holds it for review, and an approve verdict's
    claim on that run is not given up: ``registry/held_images.py``) is a
    :class:`ConflictError`, and the caller rolls back: the approval needs the file. A held
    image of a run still waiting for review is released as any other.
    """
    _lock(session, sha256)
    released = session.execute(  # a write first: SQLite's writer lock, as a keep takes it
        update(ArtifactRow)
        .where(ArtifactRow.tenant == tenant, _live(sha256))
        .values(deleted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not released.rowcount:  # type: ignore[attr-defined]
        return False
    delivering = _approval_delivering(session, tenant=tenant, sha256=sha256)
    if delivering is not None:  # the caller's transaction rolls the release back
        raise ConflictError(
            f"image {sha256} is being delivered by the approval of run {delivering}: delete it "
            "once the run has finished (its delivered copy is another image, with a sha256 "
            "of its own)"
        )
    mine = (ArtifactRow.tenant == tenant) & (ArtifactRow.sha256 == sha256)
    run_id, receipt = session.execute(
        select(ArtifactRow.run_id, ArtifactRow.receipt).where(mine)
    ).one()
    if not receipt:  # a candidate (JSON null is not SQL NULL): no provenance to keep
        session.execute(delete(ArtifactRow).where(mine))
    elif run_id is not None:
        mark_in_results(session, tenant=tenant, run_id=run_id, sha256=sha256)
    _forget_cached(session, tenant=tenant, sha256=sha256)
    if not _owners(session, sha256):
        store.remove(sha256)
    source = receipt.get("source_sha256") if receipt else None
    if isinstance(source, str) and source != sha256:
        _release_source(session, store, tenant=tenant, source=source, signed=sha256)
    return True


def _forget_cached(session: Session, *, tenant: str, sha256: str) -> None:
    """Delete ``tenant``'s generation-cache entries that would serve ``sha256`` again."""
    session.execute(
        delete(CacheEntryRow).where(
            CacheEntryRow.tenant == tenant, CacheEntryRow.artifact_sha256 == sha256
        )
    )


def _release_source(
    session: Session, store: ArtifactStore, *, tenant: str, source: str, signed: str
) -> None:
    """Deleting a delivered image is a takedown of its pixels: the cache entries that would
    replay its raw ``source`` go (else the same request is "served from the cache at $0" as a
    newly signed copy of the deleted picture), and so does the tenant's copy of the raw
    bytes (else ``GET /v1/artifacts/{source}`` still serves the picture without its
    credentials). Both stay while another kept image of the tenant was made from that source;
    the raw copy also stays while a run of the tenant that has not finished holds it (a run
    waiting for review delivers from it). Another tenant's copy of the same bytes is its
    own, and stays."""
    if _made_from(session, tenant=tenant, source=source, besides=signed):
        return
    _forget_cached(session, tenant=tenant, sha256=source)
    if not _held_by_unfinished_run(session, tenant=tenant, source=source):
        release_artifact(session, store, tenant=tenant, sha256=source)


def _attempts_of(tenant: str, source: str) -> Any:
    """The ids of ``tenant``'s attempts whose image is ``source`` (a cache hit's too)."""
    return (
        select(AttemptRow.id)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(RunRow.tenant == tenant, AttemptRow.artifact_sha256 == source)
    )


def _made_from(session: Session, *, tenant: str, source: str, besides: str) -> bool:
    """Whether a kept (not deleted) delivered image of ``tenant`` other than ``besides`` was
    made from the raw ``source``: its row names an attempt whose image is ``source``."""
    other = session.scalar(
        select(ArtifactRow.sha256)
        .where(
            ArtifactRow.tenant == tenant,
            ArtifactRow.deleted_at.is_(None),
            ArtifactRow.sha256.not_in((besides, source)),
            ArtifactRow.attempt_id.in_(_attempts_of(tenant, source)),
        )
        .limit(1)
    )
    return other is not None


def _held_by_unfinished_run(session: Session, *, tenant: str, source: str) -> bool:
    """Whether a run of ``tenant`` still running or waiting for review has an attempt on
    ``source``: it may yet sign and deliver it, and needs the file to."""
    held = session.scalar(
        select(RunRow.id)
        .join(AttemptRow, AttemptRow.run_id == RunRow.id)
        .where(
            RunRow.tenant == tenant,
            RunRow.status.in_(_UNFINISHED),
            AttemptRow.artifact_sha256 == source,
        )
        .limit(1)
    )
    return held is not None


def discard_unowned(session: Session, store: ArtifactStore, *, sha256: str) -> bool:
    """Remove ``sha256``'s file if no tenant owns a copy of it: for a keep whose transaction
    failed after it wrote the file (the row went with the transaction; ``brandloop gc`` only
    sees files through their rows). Serialised with keeps and releases of the same sha256, so
    a file a concurrent keep has just claimed stays. Returns whether the file was removed."""
    lock_for_removal(session, sha256)
    if _owners(session, sha256) or not store.exists(sha256):
        return False
    store.remove(sha256)
    return True


def _approval_delivering(session: Session, *, tenant: str, sha256: str) -> str | None:
    """The run of ``tenant`` an approval is delivering ``sha256`` for right now (it holds the
    image, and an approve verdict's claim on it has not been given up, lapsed or not: whoever
    takes a lapsed one over delivers it), or None. The caller holds the sha256's lock."""
    return session.scalar(
        select(RunRow.id)
        .join(AttemptRow, AttemptRow.run_id == RunRow.id)
        .join(ReviewClaimRow, ReviewClaimRow.run_id == RunRow.id)
        .join(ReviewDecisionRow, ReviewDecisionRow.id == ReviewClaimRow.decision_id)
        .where(
            RunRow.tenant == tenant,
            AttemptRow.artifact_sha256 == sha256,
            AttemptRow.outcome == "accepted",
            ReviewClaimRow.tenant == tenant,
            ReviewClaimRow.owner != CLAIM_RELEASED,
            ReviewDecisionRow.decision == "approve",
        )
        .limit(1)
    )
