"""A job whose run's image was deleted before the job stored its copy of the run's result (a
delete between the run's end and the job's, or a review verdict settling later) stores it
marked deleted, as the run's own: the job is settled holding its row, and reads what the
delete left (on both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from brandloop.api.jobs import store
from brandloop.api.jobs.worker import settle_reviewed
from brandloop.domain import AcceptedImage, RunResult
from brandloop.registry.db import Database
from brandloop.registry.models import ArtifactRow
from brandloop.registry.models_service import JobRow

GONE, KEPT = "c" * 64, "d" * 64
WHEN = datetime(2027, 2, 21, 8, 15, tzinfo=UTC)


def _image(sha: str) -> AcceptedImage:
    return AcceptedImage(
        path=f"/data/{sha}.png", sha256=sha, model="procedural/preview", seed=1,
        template="hero@1", prompt="a cup", scores={}, composite=0.9, cost_usd=0.0,
        width=64, height=64,
    )  # fmt: skip


def test_a_review_verdict_settles_the_job_with_a_deleted_image_marked(db: Database) -> None:
    with db.session() as session:
        job = store.create_job(session, tenant="acme", kind="generation", request={})
        job.state, run_id = "awaiting_review", job.run_id
        for sha, deleted_at in ((GONE, WHEN), (KEPT, None)):
            session.add(
                ArtifactRow(
                    tenant="acme", sha256=sha, path=f"/data/{sha}.png", width=64, height=64,
                    size_bytes=10, run_id=run_id, receipt={"sha256": sha}, deleted_at=deleted_at,
                )
            )  # fmt: skip
        session.commit()
        job_id = job.id
    result = RunResult(
        run_id=run_id, status="succeeded", brand="Acme", brief="a cup",
        images=[_image(GONE), _image(KEPT)],
    )  # fmt: skip

    with db.session() as session:
        settle_reviewed(session, tenant="acme", run_id=run_id, result=result)
        session.commit()

    with db.session() as session:
        stored = session.get(JobRow, job_id)
        assert stored is not None and stored.result is not None
        gone, kept = stored.result["images"]
    assert (gone.get("deleted"), gone["path"]) == (True, None), gone
    assert gone["deleted_at"] == WHEN.isoformat()
    assert (kept["deleted"], kept["path"]) == (False, f"/data/{KEPT}.png")
