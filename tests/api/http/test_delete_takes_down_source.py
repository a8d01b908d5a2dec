"""Deleting a delivered image is a takedown of its pixels: the raw image it was signed from
(its receipt's ``source_sha256``) is no longer the tenant's to download, the generation cache
no longer replays it as a newly signed copy, and ``runs reproduce`` says the source is gone
rather than re-render and compare it. Another kept image made from the same raw bytes keeps
them (and their cache entry), and so does another tenant that made the same bytes (on both
databases)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from brandloop.registry.db import Database
from brandloop.registry.models_agent import CacheEntryRow
from tests.api.http.conftest import Keys, both_databases, brand_kit
from tests.api.test_cli import run_cli

settings = pytest.fixture(name="settings")(both_databases)

GEN = {
    "brief": "a latte with heart foam art",
    "brand": "Acme Coffee",
    "size": "256x256",
    "count": 2,
    "seed": 11,
    "providers": ["procedural"],
}


def generate(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = client.post("/v1/generations?wait=120", json=GEN, headers=headers).json()
    assert job["state"] == "succeeded", job
    return job


def sources(client: TestClient, headers: dict[str, str], run_id: str) -> dict[str, str]:
    """Each delivered image's sha256 -> the raw image it was signed from."""
    receipts = client.get(f"/v1/runs/{run_id}/receipts", headers=headers).json()
    return {r["sha256"]: r["source_sha256"] for r in receipts}


def cached(db: Database, tenant: str) -> set[str]:
    with db.session() as session:
        query = select(CacheEntryRow.artifact_sha256).where(CacheEntryRow.tenant == tenant)
        return set(session.scalars(query))


def test_a_deleted_image_is_neither_downloadable_raw_nor_replayed_from_the_cache(
    client: TestClient, keys: Keys, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, theirs = keys["default", "admin"], keys["B", "admin"]  # default: the CLI's tenant
    for headers in (mine, theirs):
        assert client.post("/v1/brands", json=brand_kit(), headers=headers).status_code == 201
    first = generate(client, mine)
    other = generate(client, theirs)
    made = sources(client, mine, first["run_id"])
    signed, kept = made  # the first image is taken down, the second stays
    raw = made[signed]
    assert raw in set(sources(client, theirs, other["run_id"]).values()), "same bytes in B"
    assert raw in cached(db, "default")

    assert client.delete(f"/v1/artifacts/{signed}", headers=mine).status_code == 204

    assert client.get(f"/v1/artifacts/{raw}", headers=mine).status_code == 404
    assert raw not in cached(db, "default")
    assert made[kept] in cached(db, "default"), "the kept image's cache entry stays"
    assert client.get(f"/v1/artifacts/{made[kept]}", headers=mine).status_code == 200
    assert client.get(f"/v1/artifacts/{raw}", headers=theirs).status_code == 200, "B's own"
    assert raw in cached(db, "B")

    code, out, err = run_cli(capsys, "runs", "reproduce", first["run_id"], "--json")
    assert code == 0, err
    rows = {i["sha256"]: i for i in json.loads(out)["images"]}
    assert rows[signed]["verdict"] == "failed" and rows[signed]["cost_usd"] == 0
    assert rows[signed]["reproduced_sha256"] is None
    assert "the image was deleted, and the raw image it was made from" in rows[signed]["error"]
    assert rows[kept]["verdict"] == "byte-identical"

    again = generate(client, mine)  # rendered afresh, not replayed
    replayed = [
        (r["source_sha256"], r["cache_hit"])
        for r in client.get(f"/v1/runs/{again['run_id']}/receipts", headers=mine).json()
    ]
    assert (raw, True) not in replayed, replayed
    assert (made[kept], True) in replayed, "the image still kept is served from the cache"


def test_the_raw_source_stays_while_another_kept_image_was_made_from_it(
    client: TestClient, keys: Keys, db: Database
) -> None:
    admin = keys["A", "admin"]
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    first = generate(client, admin)
    repeat = generate(client, admin)  # replayed from the cache: new signed copies, one source
    made = sources(client, admin, first["run_id"])
    again = {raw: sha for sha, raw in sources(client, admin, repeat["run_id"]).items()}
    signed = next(iter(made))
    raw = made[signed]
    assert again.keys() == set(made.values())

    assert client.delete(f"/v1/artifacts/{signed}", headers=admin).status_code == 204
    assert client.get(f"/v1/artifacts/{raw}", headers=admin).status_code == 200
    assert raw in cached(db, "A"), "the repeat's image still replays it"

    assert client.delete(f"/v1/artifacts/{again[raw]}", headers=admin).status_code == 204
    assert client.get(f"/v1/artifacts/{raw}", headers=admin).status_code == 404
    assert raw not in cached(db, "A")


def test_reproducing_a_run_whose_every_image_was_deleted_says_the_source_is_gone(
    client: TestClient, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = keys["default", "admin"]
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    job = generate(client, admin)
    for image in job["result"]["images"]:
        assert client.delete(f"/v1/artifacts/{image['sha256']}", headers=admin).status_code == 204

    code, out, err = run_cli(capsys, "runs", "reproduce", job["run_id"])
    assert code == 2, (out, err)
    assert f"nothing of run {job['run_id']} to reproduce: its 2 image(s) were deleted" in err
    assert "Traceback" not in err
    costs = client.get("/v1/costs", headers=admin).json()
    assert costs["reproduction_calls"] == 0, "nothing was paid for"
