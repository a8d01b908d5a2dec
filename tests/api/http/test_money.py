"""Money under concurrency, through the HTTP API and the CLI, on SQLite and PostgreSQL.

* concurrent runs against a tenant budget never spend past it: every provider call reserves
  its estimated cost under the tenant's lock before it is made;
* the daily quota counts what queued and running jobs hold: of five $90 jobs against a $100
  quota, one is queued and four are refused with 402 before queueing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.api.app import create_app
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow
from brandloop.registry.models_service import JobRow
from brandloop.settings import Settings, get_settings
from tests.api.http.clients import client_with, post_at_once
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both
from tests.fakes.provider_server import FakeImagesApp, serve

__all__ = ["db_on_both", "settings_on_both"]

PRICES = {"draft": 0.01, "studio": 0.04}


class BillingProvider:
    """The procedural renderer behind a bill: what a paid backend would charge, call by call.
    Slow enough that concurrent runs overlap their calls."""

    name = "procedural"

    def __init__(self, latency_s: float = 0.15) -> None:
        self.inner = steady_procedural()
        self.latency_s = latency_s
        self.bills: list[float] = []
        self._lock = threading.Lock()

    async def generate(self, request: ImageRequest) -> ImageResult:
        await asyncio.sleep(self.latency_s)
        result = await self.inner.generate(request)
        with self._lock:
            self.bills.append(PRICES[request.model] * request.count)
        return result

    def billed(self) -> float:
        with self._lock:
            return round(sum(self.bills), 6)


def _client(settings: Settings, db: Database, provider: BillingProvider, **api: Any) -> TestClient:
    return client_with(settings, db, provider, **{"workers": 4, **api})


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, captured.err
    return captured.out


@pytest.fixture
def tenant_a(
    monkeypatch: pytest.MonkeyPatch, settings_on_both: Settings, db_on_both: Database
) -> Iterator[Settings]:
    """The CLI acts for tenant A (``BRANDLOOP_TENANT``), on the database under test."""
    monkeypatch.setenv("BRANDLOOP_TENANT", "A")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("runs", [4, 32])
def test_concurrent_runs_never_spend_past_the_tenant_budget(
    tenant_a: Settings, db_on_both: Database, capsys: pytest.CaptureFixture[str], runs: int
) -> None:
    settings, db = tenant_a, db_on_both
    keys = Keys(db)
    _cli(capsys, "campaign", "budget", "0.05", "--tenant")
    provider = BillingProvider()
    body = {
        "brief": "a steaming cup of coffee, warm morning light",
        "brand": "Acme Coffee",
        "count": 2,
        "size": "64x64",
        "budget_usd": 1.0,  # each request alone could spend far more than the tenant may
    }
    with _client(settings, db, provider, workers=runs) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]

        def post(index: int) -> str:
            answer = client.post("/v1/generations", json={**body, "seed": index}, headers=creator)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        with ThreadPoolExecutor(max_workers=min(runs, 16)) as pool:
            job_ids = list(pool.map(post, range(runs)))
        finished = [wait_job(client, job_id, creator, timeout=240) for job_id in job_ids]

    billed = provider.billed()
    assert billed <= 0.05 + 1e-9, f"{runs} runs billed ${billed} against a $0.05 tenant budget"
    assert billed >= 0.04 - 1e-9, "the budget was barely used: the test would prove nothing"
    assert sum(job["cost_usd"] for job in finished) == pytest.approx(billed)
    with db.session() as session:
        assert spend.committed(session, tenant="A") == pytest.approx(billed)
        held = session.scalar(
            select(func.count()).where(
                SpendReservationRow.kind == "call", SpendReservationRow.state == "held"
            )
        )
        assert held == 0, "every reservation was settled or released when its call ended"
    shown = json.loads(_cli(capsys, "campaign", "budget", "0.05", "--tenant", "--json"))
    assert shown["spent_usd"] == pytest.approx(billed)
    stopped = [j for j in finished if "budget" in (j["result"] or {}).get("reason", "")]
    assert stopped, "some run was stopped by the tenant budget"


def test_five_90_dollar_jobs_against_a_100_dollar_quota(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Sent at once to two API replicas (two apps, one database), so only the database's lock
    can keep the quota."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = BillingProvider()
    body = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64", "budget_usd": 90}
    with (
        _client(settings, db, provider, workers=0, daily_quota_usd=100) as client,
        _client(settings, db, provider, workers=0, daily_quota_usd=100) as replica,
    ):
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        answers = post_at_once([client, replica], 5, "/v1/generations", body, creator)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202, 402, 402, 402, 402], [a.text for a in answers]
        for answer in answers:
            if answer.status_code == 402:
                problem = assert_problem(answer, 402, "quota-exceeded")
                assert "daily quota" in problem["detail"]
        # refused before queueing: only the accepted job exists, and it is queued
        listed = client.get("/v1/jobs", headers=creator).json()
        assert [j["state"] for j in listed] == ["queued"]
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(JobRow)) == 1
            assert spend.quota_used(session, tenant="A") == pytest.approx(90)
        # another tenant has its own quota
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["B", "admin"]).is_success
        other = client.post("/v1/generations", json=body, headers=keys["B", "creator"])
        assert other.status_code == 202, other.text
        # a campaign is held whole against the same quota
        campaign = {"brand": "Acme Coffee", "budget_usd": 20.0, "assets": [{"brief": "x"}]}
        assert_problem(
            client.post("/v1/campaigns", json=campaign, headers=creator), 402, "quota-exceeded"
        )
    assert provider.bills == []


def test_a_finished_job_holds_only_what_it_spent(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """While a job runs it holds its whole budget; once it ends the quota counts its cost."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = BillingProvider(latency_s=0.0)
    body = {
        "brief": "a steaming cup",
        "brand": "Acme Coffee",
        "size": "64x64",
        "budget_usd": 0.06,
        "model": "procedural/draft",
    }
    with _client(settings, db, provider, workers=1, daily_quota_usd=0.1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        first = client.post("/v1/generations?wait=60", json=body, headers=creator)
        assert first.status_code == 200, first.text
        spent = first.json()["cost_usd"]
        assert 0 < spent <= 0.06
        with db.session() as session:
            assert spend.quota_used(session, tenant="A") == pytest.approx(spent)
        second = client.post("/v1/generations", json=body, headers=creator)
        assert second.status_code == 202, second.text
        assert_problem(
            client.post("/v1/generations", json=body, headers=creator), 402, "quota-exceeded"
        )
        wait_job(client, second.json()["id"], creator)


OPENAI_KEY = "sk-test-money-0123456789"
# openai/gpt-image-1-mini at 1024x1024, per quality setting (policies/catalog.yaml): what each
# call reserves. The planner may ask for any setting (quality settings are bandit arms).
MINI_PRICES = {"low": 0.005, "medium": 0.011, "high": 0.036}


@pytest.mark.server
@pytest.mark.slow
def test_calls_billed_after_the_client_gave_up_count_and_the_budget_holds(
    tenant_a: Settings,
    db_on_both: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fake OpenAI server sleeps past the client's read timeout on every call, then makes the
    image and bills it. Four runs at once through the HTTP API against a $0.05 tenant budget:
    every lost call is recorded as ``billing: unknown`` at its whole reservation, counts as
    spent, is never sent again, and what the provider billed never passes the budget; the
    operator lists the calls and reconciles them to the provider's ledger through the CLI."""
    db = db_on_both
    fake = FakeImagesApp(api_key=OPENAI_KEY, latency_s=0.01, timeout_s=1.0, image_side=64)
    fake.faults.extend(["timeout"] * 50)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("BRANDLOOP_PROVIDER_TIMEOUT_S", "0.3")
        get_settings.cache_clear()
        settings = get_settings()
        keys = Keys(db)
        _cli(capsys, "campaign", "budget", "0.05", "--tenant")
        body = {
            "brief": "a steaming cup of coffee, warm morning light",
            "brand": "Acme Coffee",
            "size": "1024x1024",
            "model": "openai/gpt-image-1-mini",
            "budget_usd": 1.0,  # each request alone could spend far more than the tenant may
        }
        app = create_app(
            settings,
            ApiSettings(workers=4, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
            use_memory=False,
            database=db,
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            admin, creator = keys["A", "admin"], keys["A", "creator"]
            assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
            start = threading.Barrier(4)

            def post(seed: int) -> Any:
                start.wait()
                return client.post("/v1/generations", json={**body, "seed": seed}, headers=creator)

            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = list(pool.map(post, range(4)))
            assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
            jobs = [wait_job(client, a.json()["id"], creator, timeout=240) for a in answers]
            traces = [
                client.get(f"/v1/runs/{job['run_id']}/trace", headers=creator).json()
                for job in jobs
            ]
        # every call the client gave up on is billed by the server a second later
        sent = len(fake.requests)
        deadline = time.monotonic() + 30
        while sum(fake.ledger.values()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)

    assert sent >= 1
    assert max(fake.ledger.values()) == 1, f"a call was sent twice: {fake.ledger}"
    price_of = {  # what the provider charges for each call it billed, by the setting it was sent
        r["headers"]["idempotency-key"]: MINI_PRICES[r["body"].get("quality", "medium")]
        for r in fake.requests
    }
    billed = round(sum(price_of[key] * n for key, n in fake.ledger.items()), 6)
    assert billed <= 0.05 + 1e-9, f"the provider billed ${billed} against a $0.05 tenant budget"
    attempts = [a for trace in traces for a in trace["attempts"]]
    lost = [a for a in attempts if a["model"] == "openai/gpt-image-1-mini"]
    assert sorted(a["idempotency_key"] for a in lost) == sorted(fake.ledger)
    assert all(a["billing"] == "unknown" for a in lost), lost
    assert all(a["cost_usd"] == pytest.approx(price_of[a["idempotency_key"]]) for a in lost), lost
    assert sum(job["cost_usd"] for job in jobs) == pytest.approx(
        sum(a["cost_usd"] for a in attempts)
    )
    with db.session() as session:
        committed = spend.committed(session, tenant="A")
    # the possibly billed calls are spent in the ledger, and the tenant budget held them all
    assert committed <= 0.05 + 1e-9
    assert committed >= billed - 1e-9
    unknown = json.loads(_cli(capsys, "spend", "unknown", "--json"))
    assert len(unknown) == len(lost)
    reserved = sorted(row["reserved_usd"] for row in unknown)
    assert reserved == pytest.approx(sorted(a["cost_usd"] for a in lost))
    # the operator reads the provider's usage (here: its ledger) and settles each call
    for row in unknown:
        charged = str(row["reserved_usd"])
        _cli(capsys, "spend", "reconcile", row["id"], "--charged", charged, "--as", "ops")
    assert json.loads(_cli(capsys, "spend", "unknown", "--json")) == []
    with db.session() as session:
        assert spend.committed(session, tenant="A") == pytest.approx(committed)
    shown = json.loads(_cli(capsys, "campaign", "budget", "0.05", "--tenant", "--json"))
    assert shown["spent_usd"] == pytest.approx(committed)
