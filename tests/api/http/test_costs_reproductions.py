"""``GET /v1/costs`` counts what reproductions paid: their provider calls go through the spend
ledger under a spend id of their own, not a run, and the report (which summed runs) once left
them out while the budgets and the daily quota counted them. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from brandloop.api.routers.costs import UNKNOWN_RUN_BRAND
from brandloop.registry.db import Database
from tests.api.http.conftest import Keys
from tests.api.test_cli import run_cli
from tests.api.test_reproduce_budget import _generate, _spent


def test_the_cost_report_counts_reproductions_under_the_reproduced_runs_brand(
    capsys: pytest.CaptureFixture[str],
    make_client: Callable[..., TestClient],
    keys: Keys,
    db: Database,
    tmp_path: Path,
    seed: int,
) -> None:
    run = _generate(capsys, tmp_path, seed)
    code, out, err = run_cli(capsys, "runs", "reproduce", run["run_id"], "--json")
    assert code == 0, err
    paid = json.loads(out)["cost_usd"]
    assert paid > 0
    ledger = _spent(capsys, 1000, "--tenant")

    client = make_client(workers=0)
    viewer = keys["default", "viewer"]
    report = client.get("/v1/costs", params={"period": "day"}, headers=viewer).json()
    assert report["total_usd"] == pytest.approx(run["cost_usd"] + paid)
    assert report["total_usd"] == pytest.approx(ledger)  # the report agrees with the ledger
    assert report["reproductions_usd"] == pytest.approx(paid)
    assert report["reproduction_calls"] == len(run["images"])
    assert report["runs"] == 1
    assert report["by_brand"] == {"Acme Coffee": pytest.approx(run["cost_usd"] + paid)}
    assert sum(report["by_model"].values()) == pytest.approx(report["total_usd"])
    assert sum(report["by_day"].values()) == pytest.approx(report["total_usd"])
    # another tenant sees none of it
    other = client.get("/v1/costs", params={"period": "day"}, headers=keys["B", "viewer"])
    assert other.json()["total_usd"] == 0 and other.json()["reproduction_calls"] == 0

    # calls reserved before the ledger named the run they reproduce still count
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE spend_reservations SET source_run_id = NULL"))
    before = client.get("/v1/costs", params={"period": "day"}, headers=viewer).json()
    assert before["total_usd"] == pytest.approx(report["total_usd"])
    assert before["by_brand"] == {
        "Acme Coffee": pytest.approx(run["cost_usd"]),
        UNKNOWN_RUN_BRAND: pytest.approx(paid),
    }
