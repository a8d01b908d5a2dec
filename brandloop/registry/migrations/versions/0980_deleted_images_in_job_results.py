"""an image deleted before this revision is marked deleted in its jobs' results too

Revision 0960 kept a deleted image's row and marked it ``deleted`` in its run's result, but not
in the copy of that result its job keeps: ``GET /v1/jobs/{id}``, a thread's messages, a
campaign's assets (and the studio's chat and campaign pages) still linked the image's URL,
now a 404. Deleting an image marks every copy now, with when (``deleted_at``,
``brandloop.registry.deleted_images``); this revision marks the copies of images deleted
before it, and adds ``deleted_at`` to the run's own. Nothing else in a result changes; the
downgrade leaves the marks (older code reads them as it read the run's).

Revision ID: 0980
Revises: 0970
Create Date: 2027-02-24
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0980"
down_revision: str | Sequence[str] | None = "0970"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

_artifacts = sa.table(
    "artifacts",
    sa.column("tenant"),
    sa.column("sha256"),
    sa.column("run_id"),
    sa.column("deleted_at", sa.DateTime(timezone=True)),
)
_runs = sa.table("runs", sa.column("id"), sa.column("tenant"), sa.column("result", sa.JSON))
_jobs = sa.table(
    "jobs", sa.column("id"), sa.column("tenant"), sa.column("run_id"), sa.column("result", sa.JSON)
)


def _iso(moment: datetime) -> str:
    """As the registry reads a moment back: UTC, with its zone (SQLite keeps UTC without)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat()


def _marked(result: Any, deleted: dict[str, str]) -> Any:
    """``result`` with each image of ``deleted`` marked, or None when nothing changes."""
    if not isinstance(result, dict) or not isinstance(result.get("images"), list):
        return None
    changed = False
    images = []
    for image in result["images"]:
        at = deleted.get(str(image.get("sha256"))) if isinstance(image, dict) else None
        if at is None or (image.get("deleted") and image.get("deleted_at")):
            images.append(image)
            continue
        images.append({**image, "path": None, "deleted": True, "deleted_at": at})
        changed = True
    return {**result, "images": images} if changed else None


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            _artifacts.c.tenant, _artifacts.c.run_id, _artifacts.c.sha256, _artifacts.c.deleted_at
        ).where(_artifacts.c.deleted_at.is_not(None), _artifacts.c.run_id.is_not(None))
    ).all()
    by_run: dict[tuple[str, str], dict[str, str]] = {}
    for tenant, run_id, sha256, deleted_at in rows:
        by_run.setdefault((tenant, run_id), {})[sha256] = _iso(deleted_at)
    for (tenant, run_id), deleted in by_run.items():
        for table, key in ((_runs, _runs.c.id), (_jobs, _jobs.c.run_id)):
            found = conn.execute(
                sa.select(table.c.id, table.c.result).where(key == run_id, table.c.tenant == tenant)
            ).all()
            for row_id, result in found:
                marked = _marked(result, deleted)
                if marked is not None:
                    conn.execute(
                        sa.update(table).where(table.c.id == row_id).values(result=marked)
                    )


def downgrade() -> None:
    """The marks stay: revision 0960's code shows a run's marked images as deleted too."""
