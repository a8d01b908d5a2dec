"""Images whose bytes their tenant deleted, as every stored copy of a run's result shows them.

Deleting an image (``DELETE /v1/artifacts/{sha256}``, :func:`release_artifact
<brandloop.registry.artifact_owners.release_artifact>`) keeps an accepted image's row and
receipt and marks the image in each stored copy of its run's result: the run's own
(``GET /v1/runs/{id}``) and its jobs' (``GET /v1/jobs/{id}``, a thread's messages, a campaign's
assets) - ``deleted: true``, ``deleted_at``, no ``path``. A job that settles after the delete
marks its copy as it writes it (:func:`marked_result`); both hold the job's row (on SQLite the
database's write lock), so neither writes over the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.registry.models import ArtifactRow, AuditRow, RunRow
from brandloop.registry.models_service import JobRow
from brandloop.registry.write_lock import sqlite_write_lock

__all__ = [
    "deleted_copies",
    "gone_images",
    "lock_job",
    "mark_in_results",
    "marked_images",
    "marked_result",
]

#: the audit action of ``DELETE /v1/artifacts/{sha256}`` (api/routers/artifacts.py)
DELETED_ACTION = "artifact.deleted"


def marked_images(
    images: Iterable[dict[str, Any]], deleted: dict[str, datetime | None]
) -> list[dict[str, Any]]:
    """``images`` (a result's, as stored) with each one in ``deleted`` (sha256 -> when) marked
    deleted, its path gone; the others as they are."""
    return [
        {
            **image,
            "path": None,
            "deleted": True,
            "deleted_at": _iso(deleted[image["sha256"]]) or image.get("deleted_at"),
        }
        if image.get("sha256") in deleted
        else image
        for image in images
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def deleted_copies(session: Session, *, tenant: str, shas: Iterable[str]) -> dict[str, datetime]:
    """sha256 -> when ``tenant`` deleted its copy, for those of ``shas`` whose row it keeps
    marked deleted (an accepted image's: its receipt stays)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    rows = session.execute(
        select(ArtifactRow.sha256, ArtifactRow.deleted_at).where(
            ArtifactRow.tenant == tenant,
            ArtifactRow.sha256.in_(wanted),
            ArtifactRow.deleted_at.is_not(None),
        )
    )
    return {sha: at for sha, at in rows if at is not None}


def gone_images(
    session: Session, *, tenant: str, shas: Iterable[str]
) -> dict[str, datetime | None]:
    """sha256 -> when it went, for those of ``shas`` ``tenant`` no longer holds: an accepted
    image's deleted copy (its row says when), or a candidate's whose row went with its bytes
    (``DELETE /v1/artifacts``'s audit entry says when; None when nothing does, e.g. ``brandloop
    gc`` removed it). Pages show these as deleted instead of an image that answers 404."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    live = set(
        session.scalars(
            select(ArtifactRow.sha256).where(
                ArtifactRow.tenant == tenant,
                ArtifactRow.sha256.in_(wanted),
                ArtifactRow.deleted_at.is_(None),
            )
        )
    )
    gone: dict[str, datetime | None] = {sha: None for sha in wanted if sha not in live}
    if not gone:
        return {}
    gone.update(deleted_copies(session, tenant=tenant, shas=gone))
    unknown = [sha for sha, at in gone.items() if at is None]
    if unknown:
        audited = session.execute(
            select(AuditRow.subject_id, AuditRow.at).where(
                AuditRow.tenant == tenant,
                AuditRow.action == DELETED_ACTION,
                AuditRow.subject_id.in_(unknown),
            )
        )
        for sha, at in audited:
            known = gone[sha]
            if known is None or (at is not None and at > known):  # the latest delete
                gone[sha] = at
    return gone


def lock_job(session: Session, job_id: str) -> JobRow | None:
    """The job, its row held until the transaction ends (SQLite: the write lock), so that its
    result is written after, or marked by, a concurrent delete of one of its images."""
    if sqlite_write_lock(session):
        return session.get(JobRow, job_id, populate_existing=True)
    return session.scalar(
        select(JobRow)
        .where(JobRow.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def marked_result(session: Session, *, tenant: str, result: dict[str, Any]) -> dict[str, Any]:
    """A run's result as a job stores it: an image the tenant has deleted meanwhile marked
    deleted. Call it holding the job's row (:func:`lock_job`)."""
    images = result.get("images") or []
    deleted = deleted_copies(session, tenant=tenant, shas=(i["sha256"] for i in images))
    if not deleted:
        return result
    return {**result, "images": marked_images(images, dict(deleted))}


def mark_in_results(session: Session, *, tenant: str, run_id: str, sha256: str) -> None:
    """Mark ``sha256`` deleted in the stored results of ``tenant``'s run ``run_id`` and of its
    jobs (rows held: two deletes of one run's images, or a job settling, never lose a mark)."""
    at = deleted_copies(session, tenant=tenant, shas=[sha256]).get(sha256)
    if at is None:
        return
    run = session.scalar(
        select(RunRow)
        .where(RunRow.id == run_id, RunRow.tenant == tenant)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if run is not None and run.result and _holds(run.result, sha256):
        run.result = {**run.result, "images": marked_images(run.result["images"], {sha256: at})}
    jobs = session.scalars(
        select(JobRow)
        .where(JobRow.run_id == run_id, JobRow.tenant == tenant)
        .order_by(JobRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    for job in jobs:
        if job.result and _holds(job.result, sha256):
            job.result = {**job.result, "images": marked_images(job.result["images"], {sha256: at})}


def _holds(result: dict[str, Any], sha256: str) -> bool:
    return any(image.get("sha256") == sha256 for image in result.get("images") or [])
