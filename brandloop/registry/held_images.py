"""The images a run waiting for review holds: its accepted attempts' files, which an approval
signs and delivers, and a rejection does not need.

An admin may delete a held image while the run waits (``DELETE /v1/artifacts/{sha256}``: an
image may have to go at once). An approval of that run is then refused, naming the image, and
the run still waits for a rejection: an approval is of every image the reviewer saw, so none
is delivered in part. Once an approval has claimed the run (``agent/review_claims.py``) the
held images stay until it has delivered them: a delete meanwhile is refused
(``artifact_owners.release_artifact``).

Both checks take each image's lock first (``artifact_owners.lock_for_removal``: the sha256's
advisory lock on PostgreSQL, the write lock on SQLite), so an approval and a delete of the same
image are serialised: whichever commits first decides, and the other is refused.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.registry.artifact_owners import lock_for_removal
from brandloop.registry.deleted_images import DELETED_ACTION
from brandloop.registry.models import ArtifactRow, AttemptRow, AuditRow

__all__ = ["deleted_held_images", "deleted_since_made", "held_images"]


def held_images(session: Session, *, run_id: str) -> list[str]:
    """The sha256 of each image the run holds for review, in the order it accepted them."""
    rows = session.scalars(
        select(AttemptRow.artifact_sha256)
        .where(
            AttemptRow.run_id == run_id,
            AttemptRow.outcome == "accepted",
            AttemptRow.artifact_sha256.is_not(None),
        )
        .order_by(AttemptRow.created_at, AttemptRow.id)
    )
    return list(dict.fromkeys(str(sha) for sha in rows))


def deleted_held_images(session: Session, *, tenant: str, run_id: str) -> list[str]:
    """The run's held images the tenant has deleted since the run made them: it owns no copy
    of them any more, or it deleted one (``DELETE /v1/artifacts``, in the audit log) after the
    run made it - another run making the same bytes again since does not undo that delete.
    Each is checked under its lock until the transaction ends: a delete not committed yet is
    waited for."""
    held = held_images(session, run_id=run_id)
    for sha256 in sorted(held):  # one order for every caller: no deadlock between two
        lock_for_removal(session, sha256)
    if not held:
        return []
    live = set(
        session.scalars(
            select(ArtifactRow.sha256).where(
                ArtifactRow.tenant == tenant,
                ArtifactRow.sha256.in_(held),
                ArtifactRow.deleted_at.is_(None),
            )
        )
    )
    deleted_since = deleted_since_made(session, tenant=tenant, run_id=run_id, held=held)
    return [sha256 for sha256 in held if sha256 not in live or sha256 in deleted_since]


def deleted_since_made(
    session: Session, *, tenant: str, run_id: str, held: list[str] | None = None
) -> dict[str, datetime]:
    """sha256 -> when, for the run's held images the tenant deleted (``DELETE
    /v1/artifacts``, in the audit log) after the run made them, whether or not another run has
    made the same bytes again since (no lock taken: what a page shows)."""
    held = held_images(session, run_id=run_id) if held is None else held
    if not held:
        return {}
    made: dict[str, datetime] = {}  # when the run first made each (typed as stored)
    for sha, at in session.execute(
        select(AttemptRow.artifact_sha256, AttemptRow.created_at).where(
            AttemptRow.run_id == run_id, AttemptRow.artifact_sha256.in_(held)
        )
    ):
        if sha is not None and (sha not in made or at < made[sha]):
            made[sha] = at
    found: dict[str, datetime] = {}
    for sha, at in session.execute(
        select(AuditRow.subject_id, AuditRow.at).where(
            AuditRow.tenant == tenant,
            AuditRow.action == DELETED_ACTION,
            AuditRow.subject_id.in_(held),
        )
    ):
        if made.get(sha) is not None and at >= made[sha] and (sha not in found or at > found[sha]):
            found[sha] = at
    return found
