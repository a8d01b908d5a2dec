"""A brand whose review mode is ``always`` gets a human's verdict before anything is delivered,
also when its run stops short at plan (the stopping rule: the next round is not worth its
price) with one of two images accepted: ``brandloop generate`` exits 0 with the run waiting,
writes nothing into ``--out``, and ``brandloop review approve`` delivers the one image as a
``partial`` run (docs/agent.md, human review). A campaign asset of that brand waits too.
Through ``brandloop`` itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings, get_settings
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")

#: review always for Acme Coffee; a stopping rule so strict that round two is never worth it
POLICY = "brand_review: {acme-coffee: {mode: always}}\nstop_cost_multiple: 0.0001\n"


@pytest.fixture
def reviewed_brand(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    policy = tmp_path / "agent.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    monkeypatch.setenv(
        "BRANDLOOP_PROVIDER_PLUGINS", "tests.fakes.one_accepted:one_accepted_provider"
    )
    get_settings.cache_clear()
    return get_settings()


def _actions(doc: dict[str, object]) -> list[str]:
    decisions = doc["decisions"]
    assert isinstance(decisions, list)
    return [f"{d['node']}:{d['action']}" for d in decisions]


def test_a_run_stopped_at_plan_waits_for_review_and_delivers_nothing_until_approved(
    capsys: pytest.CaptureFixture[str], reviewed_brand: Settings, tmp_path: Path, seed: int
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "generate", "a steaming coffee cup", "--brand", ACME, "--n", "2",
        "--size", "256x256", "--seed", str(seed), "--no-memory", "--out", str(out_dir), "--json",
    )  # fmt: skip
    assert code == 0, (err, out)
    doc = json.loads(out)
    actions = _actions(doc)
    assert "plan:stop_unpromising" in actions, actions  # the stop was decided at plan
    assert doc["status"] == "awaiting_review", (doc["status"], actions)
    assert actions[-1] == "review:request_review", actions
    assert doc["images"] == [] and doc.get("receipt_path") is None, doc
    # what waits for the verdict is in the JSON too, as the text lists it (an outside
    # tester's report: a script reading --json could not see it)
    [candidate] = doc["candidates"]
    assert candidate["sha256"] and candidate["model"] and candidate["cost_usd"] > 0, candidate
    assert not out_dir.exists() or not any(out_dir.iterdir()), list(out_dir.iterdir())
    code, out, err = run_cli(capsys, "runs", "list", "--json")
    [listed] = json.loads(out)
    assert listed["status"] == "awaiting_review" and listed["accepted"] == 1, listed
    assert listed["images"] == [], listed

    code, out, err = run_cli(capsys, "review", "approve", doc["run_id"], "--json")
    assert code == 0, err
    approved = json.loads(out)
    assert approved["status"] == "partial", approved  # delivered short, as it stopped
    assert len(approved["images"]) == 1 and Path(approved["images"][0]["path"]).is_file()
    assert _actions(approved)[-1] == "review:approved", _actions(approved)


CAMPAIGN = """
name: reviewed
brand: Acme Coffee
seed: {seed}
defaults: {{formats: ["256x256"], count: 2}}
assets:
  - {{id: hero, brief: "a steaming coffee cup"}}
"""


def test_a_campaign_asset_stopped_at_plan_waits_for_review(
    capsys: pytest.CaptureFixture[str], reviewed_brand: Settings, tmp_path: Path, seed: int
) -> None:
    assert run_cli(capsys, "brands", "add", ACME)[0] == 0
    spec = tmp_path / "campaign.yaml"
    spec.write_text(CAMPAIGN.format(seed=seed % 2**31))
    code, out, err = run_cli(capsys, "campaign", "run", str(spec), "--no-memory", "--json")
    assert code == 0, err
    [asset] = json.loads(out)["assets"]
    assert asset["status"] == "awaiting_review", asset
    assert asset["accepted"] == 0 and asset["images"] == [], asset
    code, out, err = run_cli(capsys, "runs", "show", asset["run_id"], "--json")
    trace = json.loads(out)
    assert trace["run"]["status"] == "awaiting_review", trace["run"]
    assert trace["receipts"] == [], trace["receipts"]
