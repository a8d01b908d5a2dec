"""A job is bound to its brand's id when it is accepted (docs/http-api.md, Campaigns and
Endpoints): renamed while the job is queued - and another brand given the old name - the job
runs under its own brand, by its new name, with its own kit. Outside tester: a plain
generation queued through such a swap ran under the other brand; a campaign's asset starting
during it was refused "removed" though nothing was, or recorded under one brand and made with
the other's kit. A brand truly removed meanwhile refuses the job, saying so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.models import BrandRow
from brandloop.registry.models_service import JobRow
from tests.api.http.conftest import Keys, brand_kit, wait_job

ACME_TEAL, BLOOM_BLUSH = "#0f766e", "#f9a8d4"  # each kit's primary colour, in every prompt


def _brands(client: TestClient, admin: dict[str, str]) -> tuple[str, str]:
    ids = []
    for kit in ("acme-coffee", "bloom-skincare"):
        made = client.post("/v1/brands", json=brand_kit(kit), headers=admin)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids[0], ids[1]


def _swap(client: TestClient, admin: dict[str, str], *, acme: str, bloom: str) -> None:
    """Acme Coffee becomes Acme Roast; then Bloom Skincare takes the name Acme Coffee."""
    for ref, name in ((acme, "Acme Roast"), (bloom, "Acme Coffee")):
        renamed = client.post(f"/v1/brands/{ref}/rename", json={"name": name}, headers=admin)
        assert renamed.status_code == 200, renamed.text


def _made_under(db: Database, job: dict[str, Any]) -> tuple[str | None, str, list[str]]:
    """The brand id and name the job's run is recorded under, and the prompts it sent."""
    with db.session() as session:
        run = crud.get_run(session, tenant="A", run_id=job["run_id"])
        assert run is not None
        prompts = [a.prompt for a in crud.list_attempts(session, run_id=run.id)]
        return run.brand_id, run.brand_name, prompts


def test_queued_work_runs_under_its_brand_through_a_rename_swap(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    idle = make_client(workers=0)  # nothing runs: the jobs stay queued through the renames
    acme, bloom = _brands(idle, admin)
    generation = idle.post(
        "/v1/generations",
        json={"brief": "a coffee cup on an oak table", "brand": "Acme Coffee", "size": "64x64"},
        headers=creator,
    )
    assert generation.status_code == 202, generation.text
    campaign = idle.post(
        "/v1/campaigns",
        json={
            "name": "swap",
            "brand": "Acme Coffee",
            "budget_usd": 2.0,
            "assets": [{"brief": "a latte with foam art", "formats": ["64x64"], "count": 1}],
        },
        headers=creator,
    )
    assert campaign.status_code == 202, campaign.text
    job_ids = [generation.json()["id"], campaign.json()["assets"][0]["job"]["id"]]
    with db.session() as session:  # bound to the brand's id as they were accepted
        assert [session.get(JobRow, j).request["brand_id"] for j in job_ids] == [acme, acme]
    _swap(idle, admin, acme=acme, bloom=bloom)

    runner = make_client()  # a replica that runs the queued jobs
    for job_id in job_ids:
        job = wait_job(runner, job_id, creator)
        # it ran (an unseeded run may stop short of an image: the stopping rule fails it)
        assert job["result"] is not None, job["error"]
        assert job["result"]["brand"] == "Acme Roast"
        brand_id, brand_name, prompts = _made_under(db, job)
        assert (brand_id, brand_name) == (acme, "Acme Roast")
        assert prompts and all(ACME_TEAL in p and BLOOM_BLUSH not in p for p in prompts)


def test_a_job_whose_brand_was_removed_while_queued_is_refused_saying_so(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    """Removed, with another brand under its old name: refused as removed, never run under
    the namesake; its run is recorded refused, under no brand."""
    admin, creator = keys["A", "admin"], keys["A", "creator"]
    idle = make_client(workers=0)
    acme, bloom = _brands(idle, admin)
    queued = idle.post(
        "/v1/generations",
        json={"brief": "a coffee cup on an oak table", "brand": "Acme Coffee", "size": "64x64"},
        headers=creator,
    )
    assert queued.status_code == 202, queued.text
    with db.session() as session:
        session.delete(session.get(BrandRow, acme))
        crud.rename_brand(session, tenant="A", ref=bloom, name="Acme Coffee")
        session.commit()

    job = wait_job(make_client(), queued.json()["id"], creator)
    assert job["state"] == "failed"
    assert job["error"]["status"] == 404, job["error"]
    assert f"'Acme Coffee' ({acme}) was removed" in job["error"]["detail"]
    with db.session() as session:
        run = crud.get_run(session, tenant="A", run_id=job["run_id"])
        assert run is not None and (run.status, run.brand_id) == ("refused", None)
        assert crud.list_attempts(session, run_id=run.id) == []
