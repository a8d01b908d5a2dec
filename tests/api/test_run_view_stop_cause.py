"""A run's view says why it stopped short, on SQLite and PostgreSQL: ``brandloop runs show RUN
--json`` (its ``run``), ``runs list --json``, ``GET /v1/runs/{id}``, ``GET /v1/runs`` and the
trace carry the ``stop_cause`` that ``generate --json`` and a job's result give (docs/agent.md:
``null`` only when the run did not stop short). Before session 24 only ``generate --json`` and
the job's result had it: the run's view, on both surfaces, had no such field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.auth import create_key
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli


@pytest.fixture
def http(settings: Settings, db: Database) -> Iterator[TestClient]:
    with db.session() as session:
        _, key = create_key(session, tenant="default", role="viewer")
    app = create_app(settings, ApiSettings(workers=0), use_memory=False, database=db)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client


def _generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, brief: str, budget: str) -> Any:
    code, out, err = run_cli(
        capsys, "generate", brief, "--brand", str(BRANDS / "acme-coffee.yaml"), "--seed", "5",
        "--size", "128x128", "--budget", budget, "--no-memory", "--out", str(tmp_path / "out"),
        "--json",
    )  # fmt: skip
    assert out, (code, err)
    return json.loads(out)


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_every_view_of_a_run_says_why_it_stopped_short(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, http: TestClient
) -> None:
    folder = settings.data_dir / "policies"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "acme-coffee.yaml").write_text("conflicts: refuse\n", encoding="utf-8")
    refused = _generate(capsys, tmp_path, "a coffee cup on a fuchsia tablecloth", "0.2")
    starved = _generate(capsys, tmp_path, "a steaming coffee cup on a wooden table", "0.001")
    done = _generate(capsys, tmp_path, "a steaming coffee cup on a wooden table", "0.3")
    expected = {refused["run_id"]: "refused", starved["run_id"]: "budget"}
    assert refused["stop_cause"] == "refused" and starved["stop_cause"] == "budget"
    if done["stop_cause"] is None:  # it accepted what it asked for: a run that did not stop
        expected[done["run_id"]] = None

    listed = {r["run_id"]: r for r in _cli_json(capsys, "runs", "list")}
    api_listed = {r["run_id"]: r for r in http.get("/v1/runs").json()}
    for run_id, cause in expected.items():
        shown = _cli_json(capsys, "runs", "show", run_id)["run"]
        assert shown["stop_cause"] == cause, shown
        assert listed[run_id]["stop_cause"] == cause, listed[run_id]
        got = http.get(f"/v1/runs/{run_id}")
        assert got.status_code == 200 and got.json()["stop_cause"] == cause, got.text
        assert api_listed[run_id]["stop_cause"] == cause
        trace = http.get(f"/v1/runs/{run_id}/trace").json()
        assert trace["run"]["stop_cause"] == cause
