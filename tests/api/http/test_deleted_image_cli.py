"""The CLI's views of a run with an image its tenant deleted over HTTP: ``runs show`` says when,
and delivering the finished run again (``runs resume RUN --out DIR``) writes the images still
kept and a ``receipt.json`` listing the deleted one as deleted, with its receipt - never a
crash on the file that is gone (on both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, both_databases, brand_kit
from tests.api.test_cli import run_cli

settings = pytest.fixture(name="settings")(both_databases)

GEN = {
    "brief": "a cold brew in a tall glass",
    "brand": "Acme Coffee",
    "size": "256x256",
    "seed": 9,
    "count": 2,
    "providers": ["procedural"],
}


def test_the_cli_shows_and_delivers_a_run_with_a_deleted_image(
    client: TestClient, keys: Keys, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    admin = keys["default", "admin"]  # the CLI's tenant
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    job = client.post("/v1/generations?wait=120", json=GEN, headers=admin).json()
    assert job["state"] == "succeeded", job
    run_id = job["run_id"]
    gone, kept = (i["sha256"] for i in job["result"]["images"])
    assert client.delete(f"/v1/artifacts/{gone}", headers=admin).status_code == 204
    folder = tmp_path / "again"
    code, out, err = run_cli(capsys, "runs", "resume", run_id, "--out", str(folder), "--json")
    assert code == 0, err
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"02-{kept[:12]}.png", "receipt.json"], files
    document = json.loads((folder / "receipt.json").read_text())
    images = document["run"]["images"]
    assert [(i["sha256"], i["deleted"], i["path"]) for i in images] == [
        (gone, True, None),
        (kept, False, str(folder / f"02-{kept[:12]}.png")),
    ]
    assert [r["sha256"] for r in document["receipts"]] == [gone, kept]

    when = client.get(f"/v1/runs/{run_id}", headers=admin).json()["images"][0]["deleted_at"]
    assert when

    code, out, err = run_cli(capsys, "runs", "show", run_id)
    assert code == 0, err
    line = next(x for x in out.splitlines() if x.startswith(gone[:12]))
    assert line.startswith(f"{gone[:12]}  its bytes were deleted; its receipt stays (deleted ")
    assert f"{when[:10]} {when[11:16]} UTC" in line, line
