"""A job cancelled after the process running it died mid-call, on SQLite and PostgreSQL: the
call it left ``held`` (nobody will finish it) becomes ``unknown``, counts in the run's and the
job's cost and in ``GET /v1/costs`` at its whole reservation, ``brandloop spend unknown`` lists
it, and ``brandloop spend reconcile`` settles it with every figure following.

The process dies inside the provider call (the outside world): the scripted provider raises
what no code of ours handles, so the worker writes nothing after it - the job and its run are
left ``running``, the call's reservation ``held``, no attempt recorded - as after a SIGKILL.
The cancel is then taken by the next start of the worker pool, as ``POST /v1/jobs/{id}/cancel``
to a process that does not run the job leaves it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from brandloop import event_loop
from brandloop.agent.retention import prune_finished_runs
from brandloop.api.cli import main
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow
from brandloop.settings import Settings, get_settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, PRICE, ScriptedProvider, _wait
from tests.api.http.test_cancelled_run_record import _events
from tests.api.http.test_costs_while_running import _agrees, _committed, _metric, _report
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


class ProcessDied(BaseException):
    """The process dies while the call is in flight: not an error any of our code handles."""


class DyingProvider(ScriptedProvider):
    """:class:`ScriptedProvider` with one more step, "die": the process running the call dies
    (``died`` is set) before the provider answers."""

    def __init__(self, *script: str) -> None:
        super().__init__(*script)
        self.died = threading.Event()

    async def generate(self, request: ImageRequest) -> ImageResult:
        if self.script and self.script[0] == "die":
            self.script.pop(0)
            self.calls += 1
            self.died.set()
            raise ProcessDied
        return await super().generate(request)


@pytest.fixture
def tenant_a(
    monkeypatch: pytest.MonkeyPatch, settings_on_both: Settings, db_on_both: Database
) -> Iterator[Settings]:
    """The CLI acts for tenant A (``BRANDLOOP_TENANT``), on the database under test."""
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, captured.err
    return captured.out


def _calls(db: Database, run_id: str) -> list[SpendReservationRow]:
    with db.session() as session:
        rows = session.query(SpendReservationRow).filter_by(kind="call", run_id=run_id)
        return sorted(rows, key=lambda row: row.created_at)


def _figures(client: TestClient, headers: dict[str, str], job_id: str, run_id: str) -> list[float]:
    """The run's cost, the job's, and the cost report's total."""
    run = client.get(f"/v1/runs/{run_id}", headers=headers).json()
    job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
    return [run["cost_usd"], job["cost_usd"], _report(client, headers)["total_usd"]]


@pytest.mark.parametrize("invoiced", [0.0, 0.004], ids=["not-billed", "billed"])
def test_a_call_left_in_flight_by_a_dead_process_counts_once_cancelled_until_reconciled(
    tenant_a: Settings,
    db_on_both: Database,
    capsys: pytest.CaptureFixture[str],
    invoiced: float,
) -> None:
    settings, db = tenant_a, db_on_both
    keys = Keys(db)
    provider = DyingProvider("refuse", "die")
    admin, creator, viewer = keys["A", "admin"], keys["A", "creator"], keys["A", "viewer"]
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=creator)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        _wait(provider.died.is_set, "the second call")  # one call billed, one left in flight
        refused, lost = _calls(db, run_id)
        assert (refused.state, lost.state) == ("settled", "held")
        assert client.get(f"/v1/runs/{run_id}", headers=viewer).json()["status"] == "running"

        cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=creator)
        assert cancelled.status_code == 200, cancelled.text
    # the next start of the pool ends the job whose cancel was asked
    with client_with(settings, db, provider, workers=1) as client:
        final = wait_job(client, job_id, creator)
        assert final["state"] == "cancelled", final
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        assert run["status"] == "cancelled" and run["finished_at"] is not None, run
        # it may have been billed: the run, the job and the report count its whole reservation,
        # as the ledger and the budgets do
        spent = _committed(db, "A", run_id)
        assert spent == pytest.approx(PRICE + lost.amount_usd) and lost.amount_usd > 0
        assert _figures(client, viewer, job_id, run_id) == pytest.approx([spent] * 3)
        _agrees(_report(client, viewer), spent)
        assert _metric(client, admin) == pytest.approx(spent)
        trace = client.get(f"/v1/runs/{run_id}/trace", headers=viewer).json()
        assert [a["billing"] for a in trace["attempts"]] == ["billed"]
        ((state, billing),) = [(r.state, r.billing) for r in _calls(db, run_id) if r.id == lost.id]
        assert (state, billing) == ("unknown", "unknown")
        # the job's event stream ends each attempt it started, the lost call's at its whole
        # reservation: a client totalling the stream's costs finds what the job costs
        with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=viewer) as stream:
            events = _events("".join(stream.iter_text()))
        started = [e["payload"]["attempt"] for name, e in events if name == "attempt_started"]
        ended = {
            e["payload"]["attempt"]: e["payload"] for n, e in events if n == "attempt_finished"
        }
        assert sorted(ended) == sorted(started) and len(started) == 2, events
        assert sum(p["cost_usd"] for p in ended.values()) == pytest.approx(spent)
        (abandoned,) = [p for p in ended.values() if p["billing"] == "unknown"]
        assert abandoned["outcome"] == "error" and "cancelled" in abandoned["error"]
        assert abandoned["cost_usd"] == pytest.approx(lost.amount_usd)

        # the operator finds it, and settles it from the provider's invoice
        listed = json.loads(_cli(capsys, "spend", "unknown", "--json"))
        assert [(r["id"], r["run_id"]) for r in listed] == [(lost.id, run_id)]
        assert listed[0]["reserved_usd"] == pytest.approx(lost.amount_usd)
        _cli(capsys, "spend", "reconcile", lost.id, "--charged", str(invoiced), "--as", "ops")
        assert json.loads(_cli(capsys, "spend", "unknown", "--json")) == []
        paid = PRICE + invoiced
        assert _committed(db, "A") == pytest.approx(paid)
        assert _figures(client, viewer, job_id, run_id) == pytest.approx([paid] * 3)
        _agrees(_report(client, viewer), paid)
        assert _metric(client, admin) == pytest.approx(paid)
        with db.session() as session:
            assert spend.quota_used(session, tenant="A") == pytest.approx(paid)
    assert provider.calls == 2


def test_a_call_a_live_worker_settled_when_cancelled_counts_once_reconciled(
    tenant_a: Settings, db_on_both: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker is alive: cancelled mid-call, it records the call ``unknown`` with its
    attempt itself; ending the run counts the call through that attempt only, before and after
    it is reconciled."""
    settings, db = tenant_a, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=creator)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=creator).status_code == 200
        assert wait_job(client, job_id, creator)["state"] == "cancelled"
        provider.release.set()
        # the cancelled run keeps only its newest checkpoints, as a run that ends on its own
        # does (none by default): nothing is left for gc
        deadline = time.monotonic() + 30
        while event_loop.run(prune_finished_runs(settings, db, [run_id], dry_run=True)):
            assert time.monotonic() < deadline, "the cancelled run's checkpoints are all kept"
            time.sleep(0.1)
        _, lost = _calls(db, run_id)
        spent = PRICE + lost.amount_usd
        assert _figures(client, viewer, job_id, run_id) == pytest.approx([spent] * 3)
        (listed,) = json.loads(_cli(capsys, "spend", "unknown", "--json"))
        assert listed["id"] == lost.id
        _cli(capsys, "spend", "reconcile", lost.id, "--charged", "0.004", "--as", "ops")
        assert _figures(client, viewer, job_id, run_id) == pytest.approx([PRICE + 0.004] * 3)
        _agrees(_report(client, viewer), PRICE + 0.004)
