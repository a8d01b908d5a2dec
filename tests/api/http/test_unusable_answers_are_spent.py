"""A provider that answers HTTP 200 with a body brandloop cannot use (cut off mid-JSON) did the
work and billed it: the call is ``billing: unknown`` at its whole reservation, counts against
the tenant budget and is listed for reconciliation, so such answers cannot pass the budget run
after run (docs/providers.md, "Every error also says what the call cost"). Through the HTTP API
and the CLI, against the fake OpenAI server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, brand_kit
from tests.databases import db_on_both, settings_on_both
from tests.fakes.provider_server import FakeImagesApp, serve

__all__ = ["db_on_both", "settings_on_both"]

OPENAI_KEY = "sk-test-unusable-0123456789"
# openai/gpt-image-1-mini at 1024x1024, per quality (policies/catalog.yaml): what a call reserves
MINI_PRICES = {"low": 0.005, "medium": 0.011, "high": 0.036}
TENANT_BUDGET = 0.02


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, captured.err
    return captured.out


@pytest.fixture
def malformed_openai(
    monkeypatch: pytest.MonkeyPatch, settings_on_both: Settings, db_on_both: Database
) -> Iterator[FakeImagesApp]:
    """A fake OpenAI server whose every answer is HTTP 200 with a body cut off mid-JSON; the
    CLI acts for tenant A on the database under test."""
    fake = FakeImagesApp(api_key=OPENAI_KEY, image_side=64)
    fake.faults.extend(["malformed"] * 100)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_TENANT", "A")
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


def test_a_200_answer_that_is_not_json_counts_against_the_tenant_budget(
    malformed_openai: FakeImagesApp,
    db_on_both: Database,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, fake = db_on_both, malformed_openai
    _cli(capsys, "campaign", "budget", str(TENANT_BUDGET), "--tenant")
    keys = Keys(db)
    body = {
        "brief": "a steaming cup of coffee, warm morning light",
        "brand": "Acme Coffee",
        "size": "1024x1024",
        "model": "openai/gpt-image-1-mini",
        "budget_usd": 1.0,  # each request alone could spend far more than the tenant may
    }
    app = create_app(
        get_settings(),
        ApiSettings(workers=1, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        admin, creator = keys["A", "admin"], keys["A", "creator"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        jobs = []
        for seed in range(4):  # run after run against the same tenant budget
            answer = client.post(
                "/v1/generations?wait=60", json={**body, "seed": seed}, headers=creator
            )
            assert answer.status_code == 200, answer.text
            jobs.append(answer.json())
        traces = [
            client.get(f"/v1/runs/{job['run_id']}/trace", headers=creator).json() for job in jobs
        ]
        # the budget is used up: a further run fails budget-exhausted without a provider call
        sent_before = len(fake.requests)
        last = client.post("/v1/generations?wait=60", json={**body, "seed": 9}, headers=creator)
        assert last.status_code == 200, last.text
        assert last.json()["error"]["type"] == "budget-exhausted", last.text
        assert "tenant A budget" in last.json()["error"]["detail"]
        assert len(fake.requests) == sent_before, "a call was made past the tenant budget"

    sent = fake.requests
    assert sent, "no call was made: the test would prove nothing"
    served = round(sum(MINI_PRICES[r["body"].get("quality", "medium")] for r in sent), 6)
    assert served <= TENANT_BUDGET + 1e-9, (
        f"the provider answered (and billed) ${served} of calls against a ${TENANT_BUDGET} "
        "tenant budget"
    )
    attempts = [a for trace in traces for a in trace["attempts"]]
    assert len(attempts) == len(sent)
    assert all(a["billing"] == "unknown" for a in attempts), attempts
    assert all("not JSON" in a["error"] for a in attempts), attempts
    assert sum(a["cost_usd"] for a in attempts) == pytest.approx(served)
    with db.session() as session:
        assert spend.committed(session, tenant="A") == pytest.approx(served)
    shown = json.loads(_cli(capsys, "campaign", "budget", str(TENANT_BUDGET), "--tenant", "--json"))
    assert shown["spent_usd"] == pytest.approx(served)
    unknown = json.loads(_cli(capsys, "spend", "unknown", "--json"))
    assert sorted(row["reserved_usd"] for row in unknown) == pytest.approx(
        sorted(a["cost_usd"] for a in attempts)
    )
