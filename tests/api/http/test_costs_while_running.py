"""``GET /v1/costs`` and ``brandloop_cost_usd`` count what a run paid while it runs, on SQLite
and PostgreSQL.

An outside tester saw a running run's paid calls missing from ``total_usd``, ``by_day``,
``by_brand`` and the metric (they summed ``runs.cost_usd``, written when a run ends) while
``by_model`` (its attempts) had them: the report disagreed with itself and with the spend
ledger the budgets read. The provider is scripted per call (the outside world): it refuses a
call (billed), crashes, or waits until the test lets it go.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, PRICE, ScriptedProvider, _wait
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _report(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/costs", params={"period": "day"}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _agrees(report: dict[str, Any], spent: float) -> None:
    """The report says ``spent`` in its total and in each of its breakdowns."""
    assert report["total_usd"] == pytest.approx(spent), report
    for part in ("by_day", "by_brand", "by_model"):
        assert sum(report[part].values()) == pytest.approx(spent, abs=1e-5), (part, report)


def _metric(client: TestClient, headers: dict[str, str]) -> float:
    text = client.get("/metrics", headers=headers).text
    found = re.search(r"^brandloop_cost_usd_total (\S+)$", text, re.M)
    assert found is not None, text
    return float(found[1])


def _committed(db: Database, tenant: str, run_id: str | None = None) -> float:
    with db.session() as session:
        return spend.committed(session, tenant=tenant, run_id=run_id)


def test_a_running_runs_paid_calls_count_in_every_total(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        run_id = job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")  # one call billed, one in flight

        # what the ledger holds for it: the billed refusal, and the call in flight at its
        # reservation (it may be billed); the run says so too (tests/api/http/
        # test_run_cost_so_far.py)
        spent = _committed(db, "A", run_id)
        assert spent > PRICE
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        assert run["status"] == "running" and run["cost_usd"] == pytest.approx(spent), run
        report = _report(client, viewer)
        _agrees(report, spent)
        assert report["by_brand"] == {"Acme Coffee": pytest.approx(spent)}
        assert report["runs"] == 1 and report["attempts"] == 1  # the in-flight one: not yet
        assert _metric(client, admin) == pytest.approx(spent)

        provider.release.set()
        final = wait_job(client, job.json()["id"], admin)
        assert final["state"] == "succeeded", final
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        # a finished run counts what it cost, as before, and that is what the ledger says
        assert run["cost_usd"] == pytest.approx(_committed(db, "A", run_id))
        done = _report(client, viewer)
        _agrees(done, run["cost_usd"])
        assert done["attempts"] == run["attempts"]
        assert _metric(client, admin) == pytest.approx(run["cost_usd"])


def test_a_run_whose_process_stopped_mid_call_counts_what_it_may_have_paid(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The backend's client breaks mid-call: the job fails, the run is left ``running`` (to
    resume) with one billed call and one that may have been billed."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "crash")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        final = wait_job(client, job.json()["id"], admin)
        assert final["state"] == "failed", final
        run = client.get(f"/v1/runs/{final['run_id']}", headers=viewer).json()
        assert run["status"] == "running" and run["finished_at"] is None, run
        spent = _committed(db, "A")
        assert spent > PRICE
        _agrees(_report(client, viewer), spent)
        assert _metric(client, admin) == pytest.approx(spent)


def test_two_lookalike_tenants_reports_never_include_each_others_spend(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """``acme_co`` and ``acme-co`` each have a run with a call in flight at once (one image and
    two); their reports, read at the same time, each say their own spend only."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    tenants = {"acme_co": 1, "acme-co": 2}  # images each asks for
    provider = ScriptedProvider(*["hang"] * 8)
    with client_with(settings, db, provider, workers=2) as client:
        admins = {t: keys.of(t, "ops", "admin") for t in tenants}
        jobs = {}
        for tenant, count in tenants.items():
            assert client.post("/v1/brands", json=brand_kit(), headers=admins[tenant]).is_success
            body = {**BODY, "budget_usd": 0.5, "count": count}
            job = client.post("/v1/generations", json=body, headers=admins[tenant])
            assert job.status_code == 202, job.text
            jobs[tenant] = job.json()["id"]
        # every image's call in flight (each holds PRICE until the test lets it go): reading
        # while the two-image run has reserved only its first call would see equal spends
        _wait(
            lambda: all(_committed(db, t) >= count * PRICE - 1e-9 for t, count in tenants.items()),
            "every call in flight",
        )
        spent = {t: _committed(db, t) for t in tenants}
        assert spent["acme_co"] != spent["acme-co"], spent

        def read(tenant: str) -> tuple[str, dict[str, Any]]:
            return tenant, _report(client, admins[tenant])

        with ThreadPoolExecutor(4) as pool:
            reports = list(pool.map(read, [*tenants, *tenants]))
        for tenant, report in reports:
            assert report["tenant"] == tenant
            _agrees(report, spent[tenant])
        assert _metric(client, keys["ops", "admin"]) == pytest.approx(sum(spent.values()))

        provider.release.set()
        for tenant, job_id in jobs.items():
            final = wait_job(client, job_id, admins[tenant])
            assert final["state"] == "succeeded", final
            _agrees(_report(client, admins[tenant]), final["cost_usd"])
