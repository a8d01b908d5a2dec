"""``DELETE /v1/artifacts/{sha256}`` deletes the tenant's copy of the bytes and nothing of the
provenance: the run's receipts, ``runs reproduce`` (which says the image's raw source went with
it) and ``brandloop verify`` of a downloaded copy still find the run, and the run view marks
the image deleted instead of linking to a 404."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, both_databases, brand_kit
from tests.api.test_cli import run_cli

settings = pytest.fixture(name="settings")(both_databases)

GEN = {
    "brief": "a cold brew in a tall glass",
    "brand": "Acme Coffee",
    "size": "256x256",
    "seed": 7,
    "providers": ["procedural"],
}


def test_deleting_an_images_bytes_keeps_its_receipt_and_the_run_says_so(
    client: TestClient, keys: Keys, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    admin = keys["default", "admin"]  # the CLI's tenant
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    job = client.post("/v1/generations?wait=120", json=GEN, headers=admin).json()
    assert job["state"] == "succeeded", job
    run_id, sha = job["run_id"], job["result"]["images"][0]["sha256"]
    receipts = client.get(f"/v1/runs/{run_id}/receipts", headers=admin).json()
    assert [r["sha256"] for r in receipts] == [sha]
    copy = tmp_path / "downloaded.png"
    copy.write_bytes(client.get(f"/v1/artifacts/{sha}", headers=admin).content)

    assert client.delete(f"/v1/artifacts/{sha}", headers=admin).status_code == 204

    gone = assert_problem(client.get(f"/v1/artifacts/{sha}", headers=admin), 404, "not-found")
    assert sha in gone["detail"]
    assert_problem(client.delete(f"/v1/artifacts/{sha}", headers=admin), 404, "not-found")
    assert client.get(f"/v1/runs/{run_id}/receipts", headers=admin).json() == receipts
    run: dict[str, Any] = client.get(f"/v1/runs/{run_id}", headers=admin).json()
    assert run["status"] == "succeeded"
    image = run["images"][0]
    assert image["sha256"] == sha and image["deleted"] is True and image["path"] is None
    listed = client.get("/v1/runs", headers=admin).json()
    assert [i["deleted"] for i in listed[0]["images"]] == [True]
    trace = client.get(f"/v1/runs/{run_id}/trace", headers=admin).json()
    assert trace["receipts"] == receipts and trace["run"]["images"][0]["path"] is None

    code, out, err = run_cli(capsys, "verify", str(copy))
    assert code == 0, err
    assert f"run {run_id}, template " in out and "receipt matches the registry" in out, out
    assert "not in this registry" not in out

    code, out, err = run_cli(capsys, "runs", "show", run_id, "--json")
    assert code == 0, err
    assert json.loads(out)["run"]["images"][0]["deleted"] is True
    code, out, err = run_cli(capsys, "runs", "show", run_id)
    assert code == 0, err
    assert f"{sha[:12]}  its bytes were deleted; its receipt stays" in out

    code, out, err = run_cli(capsys, "runs", "reproduce", run_id, "--json")
    assert code == 2, out  # it finds the run, and says its image went with its raw source
    assert f"nothing of run {run_id} to reproduce: its 1 image(s) were deleted" in err
