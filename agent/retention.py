"""Retention: what a finished run keeps of its checkpoints, and which old images may go.

A run is checkpointed after every node, so its checkpoints grow with its rounds; once the run
has finished (succeeded, partial, refused, failed or cancelled) nothing resumes it again, and
its trace, attempts and result are in the registry. It keeps its newest
``BRANDLOOP_CHECKPOINT_KEEP`` checkpoints (default 0, so the checkpoint store holds only runs in flight and stays bounded; a
positive N keeps the final state and N-1 before it, for inspection). A run waiting for review
keeps every checkpoint: its review resumes it.

``collect_garbage`` (``brandloop gc``) also deletes a tenant's images that nothing needs any
more once they are older than its retention age: candidates that were never accepted, with the
cache entries that point at them. It never deletes an accepted image, the raw image a receipt
names (``source_sha256``), an image of a run that is still running or waiting for review, nor
one a reviewer rated, nor one that a newer attempt or cache hit used after the cut-off.

It also sweeps the artifact store for *stray* files: an image whose process was killed inside
the transaction that would have recorded it (file on disk, row rolled back), or the temp file
of a write cut short. A file goes only when no row names its sha256 (any tenant's copy or the
raw image a receipt names, an attempt, a cache entry, a rating, a pairwise judgement) and it is
older than ``BRANDLOOP_STRAY_GRACE_SECONDS`` by the wall clock, so a call being settled right
now keeps its file; the check is made again under the sha256's lock just before it goes. With
them go this host's cached thumbnails whose image file is gone: an image deleted through
another replica leaves its thumbnails in this one's data dir.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from brandloop.agent.checkpoints import checkpointer_for
from brandloop.artifacts import ArtifactStore
from brandloop.domain import utcnow
from brandloop.errors import BadInputError
from brandloop.registry.artifact_owners import lock_for_removal, release_artifact
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow, AttemptRow, RunRow
from brandloop.registry.models_agent import CacheEntryRow
from brandloop.registry.models_service import ApiKeyRow
from brandloop.registry.models_studio import ImageRatingRow, PairwiseJudgementRow
from brandloop.settings import MAX_RETENTION_DAYS, Settings

__all__ = [
    "FINISHED",
    "GarbageReport",
    "collect_garbage",
    "prune_checkpoints",
    "prune_finished_runs",
    "runs_with_prunable_checkpoints",
]

log = logging.getLogger("brandloop.retention")

#: Run statuses nothing resumes: their checkpoints are only history.
FINISHED = ("succeeded", "partial", "refused", "failed", "cancelled")

# The checkpoints to keep of one run: the newest ``keep`` of each namespace (checkpoint ids
# sort by time). Each statement deletes what is not kept, for one thread.
_KEPT = """WITH kept AS (
    SELECT checkpoint_ns, checkpoint_id FROM (
        SELECT checkpoint_ns, checkpoint_id, row_number() OVER (
            PARTITION BY checkpoint_ns ORDER BY checkpoint_id DESC
        ) AS age
        FROM checkpoints WHERE thread_id = {t}
    ) ranked WHERE age <= {n}
)
DELETE FROM {table} WHERE thread_id = {t} AND NOT EXISTS (
    SELECT 1 FROM kept
    WHERE kept.checkpoint_ns = {table}.checkpoint_ns AND kept.checkpoint_id = {table}.checkpoint_id
)"""
_SQLITE_PRUNE = tuple(_KEPT.format(t="?", n="?", table=t) for t in ("writes", "checkpoints"))
_POSTGRES_PRUNE = (
    *(_KEPT.format(t="%s", n="%s", table=t) for t in ("checkpoint_writes", "checkpoints")),
    # channel values live apart on PostgreSQL, one row per version: keep those a kept
    # checkpoint still names
    """DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS (
        SELECT 1 FROM checkpoints c
        WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns
        AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version
    )""",
)


async def prune_checkpoints(
    saver: BaseCheckpointSaver[str], run_ids: Iterable[str], *, keep: int
) -> int:
    """Keep the newest ``keep`` checkpoints of each of ``run_ids`` (every one of them finished:
    the caller checks) and delete the rest with their pending writes. Returns how many of
    ``run_ids`` were given (each is pruned whether or not it had anything to delete: the
    runner prunes its run as it ends; gc passes only :func:`runs_with_prunable_checkpoints`)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    pruned = 0
    for run_id in run_ids:
        if keep <= 0:
            await saver.adelete_thread(run_id)
        elif isinstance(saver, AsyncSqliteSaver):
            async with saver.lock:
                for statement in _SQLITE_PRUNE:
                    await saver.conn.execute(statement, (run_id, keep, run_id))
                await saver.conn.commit()
        else:
            await _prune_postgres(saver, run_id, keep)
        pruned += 1
    return pruned


# The runs (LangGraph threads) with a namespace holding more than ``keep`` checkpoints: those
# the retention would delete something of. (A thread's pending writes and, on PostgreSQL, its
# channel values belong to its checkpoints: none is left over once those are within ``keep``.)
_PRUNABLE = (
    "SELECT thread_id FROM checkpoints GROUP BY thread_id, checkpoint_ns HAVING count(*) > {n}"
)


async def runs_with_prunable_checkpoints(saver: BaseCheckpointSaver[str], *, keep: int) -> set[str]:
    """The thread ids (run ids) with more than ``keep`` checkpoints in one of their namespaces,
    finished or not (the caller checks)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    keep = max(keep, 0)
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.lock, saver.conn.execute(_PRUNABLE.format(n="?"), (keep,)) as cursor:
            return {str(row[0]) for row in await cursor.fetchall()}
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection

    if not isinstance(saver, AsyncPostgresSaver):
        raise TypeError(f"cannot read the checkpoints of a {type(saver).__name__}")
    connection = saver.conn
    async with saver.lock:
        if isinstance(connection, AsyncConnection):
            rows = await _fetch_postgres(connection, keep)
        else:  # a pool
            async with connection.connection() as conn:
                rows = await _fetch_postgres(conn, keep)
    return {str(row["thread_id"] if isinstance(row, dict) else row[0]) for row in rows}


async def _fetch_postgres(conn: Any, keep: int) -> list[Any]:
    cursor = await conn.execute(_PRUNABLE.format(n="%s"), (keep,))
    rows: list[Any] = await cursor.fetchall()
    return rows


async def _prune_postgres(saver: BaseCheckpointSaver[str], run_id: str, keep: int) -> None:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection

    if not isinstance(saver, AsyncPostgresSaver):
        raise TypeError(f"cannot prune checkpoints of a {type(saver).__name__}")
    connection = saver.conn
    async with saver.lock:
        if isinstance(connection, AsyncConnection):
            await _run_postgres(connection, run_id, keep)
        else:  # a pool
            async with connection.connection() as conn:
                await _run_postgres(conn, run_id, keep)


async def _run_postgres(conn: Any, run_id: str, keep: int) -> None:
    async with conn.transaction():
        for statement in _POSTGRES_PRUNE[:2]:
            await conn.execute(statement, (run_id, keep, run_id))
        await conn.execute(_POSTGRES_PRUNE[2], (run_id,))


def finished_runs(
    session: Session, run_ids: Sequence[str] | None = None, *, tenant: str | None = None
) -> list[str]:
    """The runs among ``run_ids`` (default: all) that have finished; only ``tenant``'s when
    given."""
    finished = select(RunRow.id).where(RunRow.status.in_(FINISHED))
    if tenant is not None:
        finished = finished.where(RunRow.tenant == tenant)
    if run_ids is None:
        return list(session.scalars(finished))
    ids = list(run_ids)
    found: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        found.extend(session.scalars(finished.where(RunRow.id.in_(ids[start : start + _CHUNK]))))
    return found


#: Run ids per ``IN (...)`` list.
_CHUNK = 500


async def prune_finished_runs(
    settings: Settings,
    db: Database,
    run_ids: Sequence[str] | None = None,
    *,
    keep: int | None = None,
    dry_run: bool = False,
    tenant: str | None = None,
) -> int:
    """Apply the checkpoint retention to finished runs (``run_ids``, or every one; only
    ``tenant``'s when given).

    Returns the runs that had checkpoints past the retention, now deleted (or, with
    ``dry_run``, that would be: nothing is deleted then). A run already within it - every
    finished run by default, pruned the moment it ended - is not counted."""
    keep = settings.checkpoint_keep if keep is None else keep
    postgres = settings.resolved_database_url.startswith("postgresql")
    if not postgres and not settings.checkpoints_path.exists():
        return 0  # no run was ever checkpointed here: nothing to prune (and no file to make)
    async with checkpointer_for(settings.resolved_database_url, settings.checkpoints_path) as saver:
        prunable = await runs_with_prunable_checkpoints(saver, keep=keep)
        if run_ids is not None:
            prunable &= set(run_ids)
        if not prunable:
            return 0
        with db.session() as session:
            done = finished_runs(session, sorted(prunable), tenant=tenant)
        if dry_run:
            return len(done)
        return await prune_checkpoints(saver, done, keep=keep)


# --------------------------------------------------------------------------- images


@dataclass
class GarbageReport:
    """What ``collect_garbage`` deleted - or, on a dry run, would delete: a dry run's numbers
    are those of a real run at the same moment, and a real run right after another reports 0.

    ``checkpoints_pruned``: finished runs whose checkpoints past ``BRANDLOOP_CHECKPOINT_KEEP``
    went (not runs merely looked at); ``artifacts``/``bytes``: a tenant's copies of images and
    their recorded sizes; ``files``: files removed from disk (a file shared with a copy that
    stays is kept); ``cache_entries``: generation-cache entries that pointed at them;
    ``kept_in_use``: old candidates kept because something still needs them; ``strays``/
    ``stray_bytes``: files no row names, older than ``stray_grace_seconds`` (None: not swept,
    as a gc of one tenant does not: a stray file is no tenant's); ``orphan_thumbnails``/
    ``orphan_thumbnail_bytes``: this host's cached thumbnails whose image file is gone (swept
    with the strays)."""

    dry_run: bool
    checkpoints_pruned: int = 0
    tenants: dict[str, float] = field(default_factory=dict)
    artifacts: int = 0
    bytes: int = 0
    files: int = 0
    cache_entries: int = 0
    kept_in_use: int = 0
    strays: int = 0
    stray_bytes: int = 0
    stray_grace_seconds: float | None = None
    orphan_thumbnails: int = 0
    orphan_thumbnail_bytes: int = 0


def _receipts(session: Session, tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's accepted images, by sha256, with their receipts. (A candidate's row holds
    JSON ``null``, which SQL's ``IS NULL`` does not see: the test is done here.)"""
    rows = session.execute(
        select(ArtifactRow.sha256, ArtifactRow.receipt).where(ArtifactRow.tenant == tenant)
    )
    return {sha: receipt for sha, receipt in rows if receipt}


def _protected(
    session: Session,
    tenant: str,
    cutoff: datetime,
    receipts: dict[str, dict[str, Any]],
    *,
    only: str | None = None,
) -> set[str]:
    """Images a tenant still needs: accepted ones, the raw images their receipts name, those
    of unfinished runs (a pending review shows every candidate), those a reviewer rated (the
    golden cases are made of them), and those used after the cut-off by an attempt or a cache
    hit (``only``: just this one, if so)."""
    needed = set(receipts)
    needed.update(
        source for r in receipts.values() if isinstance(source := r.get("source_sha256"), str)
    )
    in_use = (
        select(AttemptRow.artifact_sha256)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.tenant == tenant,
            AttemptRow.artifact_sha256.is_not(None),
            (RunRow.status.not_in(FINISHED)) | (AttemptRow.created_at >= cutoff),
        )
    )
    recent_hits = select(CacheEntryRow.artifact_sha256).where(
        CacheEntryRow.tenant == tenant,
        func.coalesce(CacheEntryRow.last_hit_at, CacheEntryRow.created_at) >= cutoff,
    )
    rated = select(ImageRatingRow.sha256).where(ImageRatingRow.tenant == tenant)
    if only is not None:
        in_use = in_use.where(AttemptRow.artifact_sha256 == only)
        recent_hits = recent_hits.where(CacheEntryRow.artifact_sha256 == only)
        rated = rated.where(ImageRatingRow.sha256 == only)
    needed.update(sha for sha in session.scalars(in_use) if sha)
    needed.update(session.scalars(recent_hits))
    needed.update(session.scalars(rated))
    return needed


def _garbage(
    session: Session, *, tenant: str, cutoff: datetime
) -> tuple[list[tuple[str, int, int]], int]:
    """The tenant's images that may go (sha256, bytes, cache entries naming it), and how many
    old ones were kept because something still needs them."""
    receipts = _receipts(session, tenant)
    needed = _protected(session, tenant, cutoff, receipts)
    old = session.execute(
        select(ArtifactRow.sha256, ArtifactRow.size_bytes).where(
            ArtifactRow.tenant == tenant,
            ArtifactRow.created_at < cutoff,
            ArtifactRow.deleted_at.is_(None),  # a deleted copy has no bytes left to free
        )
    ).all()
    entries = dict(
        session.execute(
            select(CacheEntryRow.artifact_sha256, func.count())
            .where(CacheEntryRow.tenant == tenant)
            .group_by(CacheEntryRow.artifact_sha256)
        ).all()
    )
    candidates = [(sha, size) for sha, size in old if sha not in receipts]
    doomed = [(sha, size, entries.get(sha, 0)) for sha, size in candidates if sha not in needed]
    return doomed, len(candidates) - len(doomed)


def _used_since(session: Session, *, tenant: str, sha256: str, cutoff: datetime) -> bool:
    """Whether an attempt or a cache hit used the image after ``cutoff`` (or a run that has
    not finished holds it): checked again just before it goes."""
    return sha256 in _protected(session, tenant, cutoff, {}, only=sha256)


def _file_would_go(
    db: Database, store: ArtifactStore, sha256: str, released: dict[str, int]
) -> bool:
    """Dry run: whether releasing this copy of ``sha256`` would delete its file - it is there,
    and every copy (any tenant's) is released by this gc by then."""
    released[sha256] = released.get(sha256, 0) + 1
    with db.session() as session:
        copies = session.scalar(
            select(func.count())
            .select_from(ArtifactRow)
            .where(ArtifactRow.sha256 == sha256, ArtifactRow.deleted_at.is_(None))
        )
    return store.exists(sha256) and released[sha256] >= (copies or 0)


#: a stored image's name: its sha256 and the suffix of its format (``ArtifactStore.path_for``)
_STORED = re.compile(r"(?P<sha>[0-9a-f]{64})\.(?:png|jpg|webp)")
_DERIVED = re.compile(r"(?P<sha>[0-9a-f]{64})\.[a-z0-9]+")
#: every column that names an image file by its sha256
_NAMING = (
    ArtifactRow.sha256,
    AttemptRow.artifact_sha256,
    CacheEntryRow.artifact_sha256,
    ImageRatingRow.sha256,
    PairwiseJudgementRow.left_sha256,
    PairwiseJudgementRow.right_sha256,
)


def _named(session: Session, *, only: str | None = None) -> set[str]:
    """The sha256s some row names (``only``: that one, if any does): any tenant's copy, the
    raw image a receipt names, an attempt (a pending review's too), a cache entry, a rating,
    a pairwise judgement."""
    found: set[str] = set()
    for column in _NAMING:
        query = select(column).distinct()
        if column is ArtifactRow.sha256:  # a copy its tenant deleted names no file
            query = query.where(ArtifactRow.deleted_at.is_(None))
        if only is not None:
            query = query.where(column == only)
        found.update(sha for sha in session.scalars(query) if sha)
    for receipt in session.scalars(select(ArtifactRow.receipt)):
        if receipt and isinstance(source := receipt.get("source_sha256"), str):
            found.add(source)
    return found if only is None else found & {only}


def _store_files(store: ArtifactStore) -> Iterator[tuple[Path, str | None]]:
    """The files of the store's layout (``root/ab/cd/abcd….png``): each with its sha256, or
    None for the temp file of a write cut short. Anything else there is left alone."""
    for path in store.root.glob("??/??/*"):
        found = _STORED.fullmatch(path.name)
        sha = found["sha"] if found else None
        if sha is not None and (sha[:2], sha[2:4]) != (path.parent.parent.name, path.parent.name):
            continue
        if (sha is not None or path.name.startswith(".tmp-")) and path.is_file():
            yield path, sha


def _unlink_if_older(path: Path, cutoff: float) -> int | None:
    """Remove ``path`` if it is still there and older than ``cutoff``; its size if it went."""
    try:
        stat = path.stat()
        if stat.st_mtime >= cutoff:
            return None
        path.unlink()
    except FileNotFoundError:
        return None
    return stat.st_size


def _sweep_strays(
    db: Database,
    store: ArtifactStore,
    *,
    grace_s: float,
    dry_run: bool,
    tick: Callable[[int], None],
) -> tuple[int, int]:
    """Remove the store's files no row names that are older than ``grace_s`` (by their
    modification time and the wall clock); returns how many and their bytes. Each image goes
    under its sha256's lock, after looking for a row once more: a keep racing with it has
    committed its row by then, or writes the file again after."""
    cutoff = time.time() - grace_s
    old: list[tuple[Path, str | None, int]] = []
    for path, sha in _store_files(store):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if stat.st_mtime < cutoff:
            old.append((path, sha, stat.st_size))
    if not old:
        return 0, 0
    with db.session() as session:
        named = _named(session)
    count = size = 0
    for path, sha, bytes_ in old:
        if sha is not None and sha in named:
            continue
        tick(1)
        if not dry_run:
            if sha is None:  # a temp file: only the write that made it knew its name
                gone = _unlink_if_older(path, cutoff)
            else:
                with db.session() as session:
                    lock_for_removal(session, sha)
                    gone = None if _named(session, only=sha) else _unlink_if_older(path, cutoff)
            if gone is None:
                continue
            bytes_ = gone
        count += 1
        size += bytes_
    return count, size


def _derived_files(store: ArtifactStore) -> Iterator[tuple[Path, str | None]]:
    """The files made from images (``derived_root/<variant>/ab/<sha256>.<suffix>``: the
    studio's thumbnails) with the sha256 they were made from, or None for the temp file of a
    write cut short. Anything else there is left alone."""
    if store.derived_root is None or not store.derived_root.is_dir():
        return
    for path in store.derived_root.glob("*/??/*"):
        found = _DERIVED.fullmatch(path.name)
        sha = found["sha"] if found else None
        if sha is not None and sha[:2] != path.parent.name:
            continue
        if (sha is not None or path.name.startswith(".tmp-")) and path.is_file():
            yield path, sha


def _sweep_orphan_thumbnails(
    store: ArtifactStore, *, grace_s: float, dry_run: bool, tick: Callable[[int], None]
) -> tuple[int, int]:
    """Remove this host's thumbnails whose image file is gone (deleted through another replica,
    whose data dir holds its own thumbnails, or by hand), and temp files of a thumbnail write
    cut short older than ``grace_s``; returns how many and their bytes. A thumbnail of an image
    that is stored again later is made again when asked for."""
    cutoff = time.time() - grace_s
    count = size = 0
    for path, sha in _derived_files(store):
        if sha is not None and store.exists(sha):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if sha is None and stat.st_mtime >= cutoff:
            continue  # a thumbnail being written right now
        tick(1)
        if not dry_run:
            try:
                path.unlink()
            except FileNotFoundError:
                continue
        count += 1
        size += stat.st_size
    return count, size


def tenants_of(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(ArtifactRow.tenant).distinct())))


def _known_tenant(session: Session, tenant: str) -> bool:
    """Whether ``tenant`` has anything here: a run, an image or a key (a typo has none)."""
    return any(
        session.scalar(select(column).where(column == tenant).limit(1)) is not None
        for column in (RunRow.tenant, ArtifactRow.tenant, ApiKeyRow.tenant)
    )


def retention_days(settings: Settings, tenant: str) -> float | None:
    """The tenant's image retention age in days (its own, else ``*``); None: keep forever."""
    ages = settings.artifact_retention_days
    return ages.get(tenant, ages.get("*"))


async def collect_garbage(
    settings: Settings,
    db: Database,
    *,
    tenant: str | None = None,
    older_than_days: float | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> GarbageReport:
    """Prune every finished run's checkpoints (``tenant``'s only, when given), then delete each tenant's unneeded images past
    its age (``older_than_days``, else ``BRANDLOOP_ARTIFACT_RETENTION_DAYS``), then (for every
    tenant, not just one) the store's files no row names, older than
    ``BRANDLOOP_STRAY_GRACE_SECONDS`` by the wall clock (``now`` moves only the ages)."""
    if older_than_days is not None and not 0 < older_than_days <= MAX_RETENTION_DAYS:
        raise BadInputError(
            f"a retention age must be more than 0 days and at most {MAX_RETENTION_DAYS}"
        )
    if tenant is not None:
        with db.session() as session:
            if not _known_tenant(session, tenant):
                raise BadInputError(
                    f"tenant {tenant!r} has no runs, images or keys here: nothing to collect "
                    "(check the name)"
                )
    report = GarbageReport(dry_run=dry_run)
    report.checkpoints_pruned = await prune_finished_runs(
        settings, db, dry_run=dry_run, tenant=tenant
    )
    store = ArtifactStore(settings.artifacts_dir, settings.thumbs_dir)
    # on a dry run, per sha256: the copies this gc would have released so far (a file goes
    # with its last copy, perhaps another tenant's further down)
    released: dict[str, int] = {}
    tick = progress or (lambda _n: None)
    moment = now or utcnow()
    with db.session() as session:
        names = [tenant] if tenant is not None else tenants_of(session)
    for name in names:
        days = older_than_days if older_than_days is not None else retention_days(settings, name)
        if days is None:
            continue
        report.tenants[name] = days
        with db.session() as session:
            cutoff = moment - timedelta(days=days)
            doomed, kept = _garbage(session, tenant=name, cutoff=cutoff)
        report.kept_in_use += kept
        for sha, size, entries in doomed:
            tick(1)
            if dry_run:
                report.files += _file_would_go(db, store, sha, released)
            else:
                # one image at a time, under its ownership lock: a tenant storing the same
                # bytes meanwhile keeps the file (registry.artifact_owners)
                had_file = store.exists(sha)
                with db.session() as session:
                    if _used_since(session, tenant=name, sha256=sha, cutoff=cutoff):
                        report.kept_in_use += 1  # used while we looked: it stays
                        continue
                    if not release_artifact(session, store, tenant=name, sha256=sha):
                        continue  # released meanwhile (another gc): not ours to count
                report.files += had_file and not store.exists(sha)
            report.artifacts += 1
            report.bytes += size
            report.cache_entries += entries
    if tenant is None:
        report.stray_grace_seconds = settings.stray_grace_seconds
        report.strays, report.stray_bytes = _sweep_strays(
            db, store, grace_s=settings.stray_grace_seconds, dry_run=dry_run, tick=tick
        )
        report.orphan_thumbnails, report.orphan_thumbnail_bytes = _sweep_orphan_thumbnails(
            store, grace_s=settings.stray_grace_seconds, dry_run=dry_run, tick=tick
        )
    log.info(
        "garbage collected",
        extra={
            "artifacts": report.artifacts,
            "bytes": report.bytes,
            "strays": report.strays,
            "dry_run": dry_run,
        },
    )
    return report
