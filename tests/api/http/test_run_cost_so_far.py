"""A run not finished shows what it has cost so far, on SQLite and PostgreSQL: ``brandloop runs
list|show`` (table and ``--json``) and the API's run views (``GET /v1/runs``, ``/v1/runs/{id}``,
``/v1/runs/{id}/trace``) say what ``GET /v1/costs`` and the spend ledger count for it - its
billed calls, and a call in flight at its whole reservation - not the $0 its row holds until
it ends.

The lead saw ``runs list`` print $0.000 for a running run whose paid calls the cost report
already counted. The provider is scripted per call (the outside world): it refuses a call
(billed), waits until the test lets it go, or its process dies mid-call.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.registry.types import usd
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, PRICE, ScriptedProvider, _wait
from tests.api.http.test_cancel_held_calls import DyingProvider, _cli, tenant_a
from tests.api.http.test_costs_while_running import _committed, _report
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both", "tenant_a"]


def _cli_costs(capsys: pytest.CaptureFixture[str], run_id: str) -> dict[str, Any]:
    """What the CLI says the run cost: ``runs list`` and ``runs show``, as JSON and as tables."""
    runs = json.loads(_cli(capsys, "runs", "list", "--json"))
    (listed,) = [r for r in runs if r["run_id"] == run_id]
    shown = json.loads(_cli(capsys, "runs", "show", run_id, "--json"))["run"]
    table = _cli(capsys, "runs", "list", "--wide")
    (row,) = [line for line in table.splitlines() if run_id in line]
    shown_text = _cli(capsys, "runs", "show", run_id)
    (summary,) = [line for line in shown_text.splitlines() if " accepted of " in line]
    return {
        "list": listed["cost_usd"],
        "show": shown["cost_usd"],
        "status": (listed["status"], shown["status"]),
        "table": row,
        "summary": summary,
    }


def _api_costs(client: TestClient, headers: dict[str, str], run_id: str) -> list[float]:
    one = client.get(f"/v1/runs/{run_id}", headers=headers).json()
    runs = client.get("/v1/runs", headers=headers).json()
    (listed,) = [r for r in runs if r["run_id"] == run_id]
    trace = client.get(f"/v1/runs/{run_id}/trace", headers=headers).json()
    return [one["cost_usd"], listed["cost_usd"], trace["run"]["cost_usd"]]


def _says(cli: dict[str, Any], spent: float) -> None:
    assert [cli["list"], cli["show"]] == pytest.approx([spent, spent]), cli
    assert f" {usd(spent)} " in cli["table"], cli
    assert f" {usd(spent)}. " in cli["summary"], cli


def test_a_running_run_shows_its_paid_calls_and_its_call_in_flight(
    tenant_a: Settings, db_on_both: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, db = tenant_a, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        run_id = job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")  # one call billed, one in flight

        spent = _committed(db, "A", run_id)  # the billed refusal, and the call at its hold
        assert spent > PRICE
        cli = _cli_costs(capsys, run_id)
        assert cli["status"] == ("running", "running")
        _says(cli, spent)
        assert _api_costs(client, viewer, run_id) == pytest.approx([spent] * 3)
        assert _report(client, viewer)["total_usd"] == pytest.approx(spent)

        provider.release.set()
        assert wait_job(client, job.json()["id"], admin)["state"] == "succeeded"
        final = _committed(db, "A", run_id)
        cli = _cli_costs(capsys, run_id)
        assert cli["status"] == ("succeeded", "succeeded")
        _says(cli, final)
        assert _api_costs(client, viewer, run_id) == pytest.approx([final] * 3)


def test_a_run_whose_process_died_mid_call_shows_what_it_may_have_paid(
    tenant_a: Settings, db_on_both: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """The process running the call dies before the provider answers: the run is left
    ``running`` with one billed call and one ``held`` (it may have been billed), no attempt."""
    settings, db = tenant_a, db_on_both
    keys = Keys(db)
    provider = DyingProvider("refuse", "die")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        run_id = job.json()["run_id"]
        _wait(provider.died.is_set, "the second call")
        _wait(lambda: _committed(db, "A", run_id) > PRICE, "the call left in flight")

        spent = _committed(db, "A", run_id)
        cli = _cli_costs(capsys, run_id)
        assert cli["status"] == ("running", "running")
        _says(cli, spent)
        assert _api_costs(client, viewer, run_id) == pytest.approx([spent] * 3)
        assert _report(client, viewer)["total_usd"] == pytest.approx(spent)
