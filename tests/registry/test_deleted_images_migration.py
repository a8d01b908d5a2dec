"""Migration 0980 on images deleted before it, on SQLite and PostgreSQL: the copy of the run's
result its job keeps marks each deleted image as the run's does (``deleted``, no path) with
when (``deleted_at``, from the artifact's row, added to the run's too); a live image, and
another tenant's job, stay as they were."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from brandloop.registry.models import ArtifactRow, RunRow
from brandloop.registry.models_service import JobRow
from tests.registry.test_thread_brand_migration import upgrade

GONE, KEPT = "a" * 64, "b" * 64
WHEN = datetime(2027, 2, 20, 10, 30, tzinfo=UTC)


def _image(sha: str, **marks: Any) -> dict[str, Any]:
    return {
        "path": f"/data/artifacts/{sha}.png",
        "sha256": sha,
        "model": "procedural/preview",
        "seed": 1,
        "template": "hero@1",
        "prompt": "a cup",
        "scores": {},
        "composite": 0.9,
        "cost_usd": 0.0,
        "width": 64,
        "height": 64,
        **marks,
    }


def _result(*images: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": "run_1", "status": "succeeded", "brand": "Acme", "images": list(images)}


def _artifact(tenant: str, sha: str, deleted_at: datetime | None) -> ArtifactRow:
    return ArtifactRow(
        tenant=tenant,
        sha256=sha,
        path=f"/data/artifacts/{sha}.png",
        width=64,
        height=64,
        size_bytes=10,
        run_id="run_1",
        receipt={"sha256": sha},
        deleted_at=deleted_at,
    )


def _job(job_id: str, tenant: str, result: dict[str, Any]) -> JobRow:
    return JobRow(
        id=job_id, tenant=tenant, kind="generation", state="succeeded", request={},
        run_id="run_1", result=result,
    )  # fmt: skip


def test_images_deleted_before_it_are_marked_in_their_jobs_results(empty_url: str) -> None:
    upgrade(empty_url, "0970")
    engine = sa.create_engine(empty_url)
    as_0960_left_it = _result(_image(GONE, path=None, deleted=True), _image(KEPT))
    with Session(engine) as session:
        session.add(
            RunRow(
                id="run_1", tenant="acme", brand_name="Acme", brief="a cup", request={},
                status="succeeded", result=as_0960_left_it,
            )
        )  # fmt: skip
        session.add_all([_artifact("acme", GONE, WHEN), _artifact("acme", KEPT, None)])
        session.add(_job("job_1", "acme", _result(_image(GONE), _image(KEPT))))
        session.add(_job("job_x", "bloom", _result(_image(GONE))))  # not acme's: untouched
        session.commit()
    engine.dispose()

    upgrade(empty_url, "0980")

    engine = sa.create_engine(empty_url)
    with Session(engine) as session:
        run = session.get(RunRow, "run_1")
        job = session.get(JobRow, "job_1")
        other = session.get(JobRow, "job_x")
        assert run is not None and job is not None and other is not None
        for result in (run.result, job.result):
            assert result is not None
            gone, kept = result["images"]
            assert gone == _image(GONE, path=None, deleted=True, deleted_at=WHEN.isoformat())
            assert kept == _image(KEPT)
        assert other.result == _result(_image(GONE))
    engine.dispose()
