"""A call is priced at the size and quality it is sent at (docs/agent.md, "Prices are per image
at the size the model is asked for"; docs/http-api.md, Money): a size the model does not list
is made - and billed - at the nearest one it does, so the plan, the reservation and the budget
check use that size's price, and a call that does not fit the budget is not made. Through the
CLI and the HTTP API, against the fake OpenAI-compatible server, on SQLite and PostgreSQL.

Acme Coffee's own format, 1200x628, is not in openai/gpt-image-1's list: it is sent as
1536x1024, which costs $0.063 at medium (policies/catalog.yaml), not the 1024x1024 $0.042.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.cli import main
from brandloop.api.config import ApiSettings
from brandloop.policies.agent import AGENT_POLICY_PATH
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.fakes.provider_server import FakeImagesApp, serve

ROOT = Path(__file__).resolve().parents[3]
ACME = ROOT / "examples" / "brands" / "acme-coffee.yaml"
OPENAI_KEY = "tk-local-abcdef123456"
BRIEF = "a steaming coffee cup on a wooden table"
#: openai/gpt-image-1 at 1536x1024, the size 1200x628 is sent at (policies/catalog.yaml)
SENT_PRICES = {"low": 0.016, "medium": 0.063, "high": 0.25}


@pytest.fixture
def fake_openai(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> Iterator[FakeImagesApp]:
    """The fake OpenAI server configured for this process; explore_quality off unless a test
    sets BRANDLOOP_AGENT_POLICY again, so each model is planned at its default quality."""
    policy = yaml.safe_load(AGENT_POLICY_PATH.read_text())
    policy["explore_quality"] = False
    policy_path = tmp_path / "agent-policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    fake = FakeImagesApp(api_key=OPENAI_KEY, image_side=64)
    with serve(fake) as base_url:
        monkeypatch.setenv("BRANDLOOP_OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("BRANDLOOP_OPENAI_BASE_URL", base_url)
        monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy_path))
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


def _generate(
    capsys: pytest.CaptureFixture[str], *extra: str, seed: int = 1
) -> tuple[int, str, str]:
    argv = ["generate", BRIEF, "--brand", str(ACME), "--seed", str(seed), "--size", "1200x628"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--model", "openai/gpt-image-1", "--json", *extra])
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def _sent(fake: FakeImagesApp) -> list[tuple[str, str]]:
    return [(r["body"]["size"], r["body"].get("quality", "medium")) for r in fake.requests]


def test_cli_a_call_whose_sent_size_costs_past_the_budget_is_not_made(
    fake_openai: FakeImagesApp, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _generate(capsys, "--budget", "0.05")
    assert code == 4, (out, err)
    assert fake_openai.requests == [], f"a call was made: {_sent(fake_openai)}"
    doc = json.loads(out)
    assert doc["cost_usd"] == 0
    (stop,) = [d for d in doc["decisions"] if d["action"] == "stop_budget"]
    assert "$0.063" in stop["reason"], stop


def test_cli_the_plan_shows_and_reserves_the_price_of_the_size_sent(
    fake_openai: FakeImagesApp, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, err = _generate(capsys, "--budget", "0.07")
    doc = json.loads(out)
    assert _sent(fake_openai) == [("1536x1024", "medium")], (out, err)
    plans = [d["reason"] for d in doc["decisions"] if d["node"] == "plan"]
    assert any("$0.063" in reason for reason in plans), plans
    assert not any("$0.042" in reason for reason in plans), plans


def test_cli_every_quality_is_planned_at_its_own_price_for_the_size_sent(
    fake_openai: FakeImagesApp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With quality settings as bandit arms, only "low" fits $0.05 at 1536x1024. (Seed 6 is a
    draw that, with every setting at one flat price, the bandit spent on "medium".)"""
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(AGENT_POLICY_PATH))
    _, out, err = _generate(capsys, "--budget", "0.05", seed=6)
    sent = _sent(fake_openai)
    assert sent, ("low fits the budget: a call is made", out, err)
    assert sum(SENT_PRICES[quality] for _, quality in sent) <= 0.05 + 1e-9, sent
    plans = [d["reason"] for d in json.loads(out)["decisions"] if d["node"] == "plan"]
    assert "openai/gpt-image-1@low ($0.016" in plans[0], plans


def test_http_a_call_whose_sent_size_costs_past_the_budget_is_not_made(
    fake_openai: FakeImagesApp, db: Database
) -> None:
    keys = Keys(db)
    body = {
        "brief": BRIEF,
        "brand": "Acme Coffee",
        "size": "1200x628",
        "seed": 1,
        "model": "openai/gpt-image-1",
        "budget_usd": 0.05,
    }
    app = create_app(
        get_settings(),
        ApiSettings(workers=1, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        answer = client.post("/v1/generations", json=body, headers=creator)
        assert answer.status_code == 202, answer.text
        job = wait_job(client, answer.json()["id"], creator, timeout=120)
    assert fake_openai.requests == [], f"a call was made: {_sent(fake_openai)}"
    assert job["state"] == "failed" and job["cost_usd"] == 0, job
    assert job["result"]["stop_cause"] == "budget", job["result"]
    assert job["error"]["type"] == "budget-exhausted", job["error"]
    assert "$0.063" in job["result"]["reason"], job["result"]


def test_cli_reproduce_sends_the_request_the_image_was_made_with(
    fake_openai: FakeImagesApp,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``runs reproduce`` sends what the original call sent - 1536x1024, the quality as its own
    field - not the receipt's asked size (1200x628, which the API refuses) with the quality
    among params (dropped: the model's default quality, another price and another image)."""
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(AGENT_POLICY_PATH))  # quality arms
    fake_openai.render = True  # images good enough to be accepted
    fake_openai.image_side = None
    code, out, err = _generate(capsys, "--budget", "1", seed=6)
    assert code == 0, (out, err)
    made = [r["body"] for r in fake_openai.requests]
    assert {b["size"] for b in made} == {"1536x1024"}, made
    run_id = json.loads(out)["run_id"]
    with pytest.raises(SystemExit) as exc:
        main(["runs", "reproduce", run_id, "--json"])
    captured = capsys.readouterr()
    assert exc.value.code in (0, None), captured.err
    again = [r["body"] for r in fake_openai.requests[len(made) :]]
    assert again, "nothing was sent again"
    for body in again:
        assert body in made, (body, made)
    verdicts = [i["verdict"] for i in json.loads(captured.out)["images"]]
    assert "failed" not in verdicts, captured.out
