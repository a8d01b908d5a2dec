"""``brandloop campaign run`` when the brand's runs wait for review: the report says which
assets wait and that consistency is not measured yet (it once said "fewer than two accepted
images", as if the campaign had ended with that). On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
BRANDS = ROOT / "examples" / "brands"
CAMPAIGN = """
name: autumn
brand: {brand}
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.3}}
assets:
  - {{id: hero, brief: "hero cup"}}
  - {{id: post, brief: "a steaming cup on a table"}}
"""


@pytest.fixture
def acme_reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Brand review "always" for Acme Coffee: the agent's default policy plus that line."""
    defaults = (ROOT / "policies" / "agent_defaults.yaml").read_text(encoding="utf-8")
    policy = tmp_path / "agent.yaml"
    policy.write_text(
        defaults + "\nbrand_review:\n  acme-coffee:\n    mode: always\n", encoding="utf-8"
    )
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))


def test_a_campaign_waiting_for_review_says_so_and_measures_nothing_yet(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, acme_reviewed: None
) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN.format(brand=BRANDS / "acme-coffee.yaml"), encoding="utf-8")
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 0, (code, err)
    report = json.loads(out)
    assert {a["status"] for a in report["assets"]} == {"awaiting_review"}, report
    assert report["awaiting_review"] == 2
    assert report["palette_spread"] is None and report["descriptor_spread"] is None

    code, out, err = run_cli(capsys, "campaign", "run", str(path))
    assert code == 0, (code, err)
    assert "consistency not measured yet: 2 asset(s) wait for review" in out, out
    assert "fewer than two accepted images" not in out, out
