"""`brandloop campaign run`: per-asset results, one campaign budget, a consistency figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.agent.campaign import load_campaign
from brandloop.agent.consistency import consistency
from brandloop.api.cli import main
from brandloop.errors import BadInputError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest
from brandloop.settings import Settings
from brandloop.tools.providers.procedural import ProceduralProvider

ROOT = Path(__file__).resolve().parents[2]

CAMPAIGN = """
name: test-fall
brand: {brand}
budget_usd: {budget}
seed: {seed}
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.3}}
assets:
  - {{id: hero, brief: "a steaming coffee cup on a wooden table, autumn leaves", formats: ["160x96"]}}
  - {{id: square, brief: "a coffee cup with a cinnamon pastry"}}
  - {{id: story, brief: "latte art in a coffee cup, warm light", count: 2}}
"""


def _write(tmp_path: Path, budget: float, seed: int) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(
        CAMPAIGN.format(brand=ROOT / "examples/brands/acme-coffee.yaml", budget=budget, seed=seed)
    )
    return path


def test_campaign_run_reports_each_asset_and_the_spread(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "run", str(_write(tmp_path, 2.0, seed)), "--json", "--campaign-id", "c1"])
    assert exc.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert report["campaign_id"] == "c1"
    assert [(a["asset"], a["size"]) for a in report["assets"]] == [
        ("hero", "160x96"),
        ("square", "128x128"),
        ("story", "128x128"),
    ]
    assert report["wanted"] == 4 and report["accepted"] == sum(
        a["accepted"] for a in report["assets"]
    )
    assert report["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in report["assets"]))
    assert 0 <= report["palette_spread"] <= 1 and report["descriptor_spread"] >= 0


def test_a_campaign_of_one_image_reports_its_spread_as_not_measured(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(
        f"name: one\nbrand: {ROOT / 'examples/brands/acme-coffee.yaml'}\nseed: {seed}\n"
        'assets: [{id: cup, brief: "a steaming coffee cup", formats: ["128x128"]}]\n'
    )
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "run", str(path), "--json", "--campaign-id", "one-json"])
    assert exc.value.code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert report["accepted"] == 1
    assert report["palette_spread"] is None and report["descriptor_spread"] is None
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "run", str(path), "--campaign-id", "one-text"])
    assert exc.value.code in (0, None)
    text = " ".join(capsys.readouterr().out.split())
    assert "consistency not measured (fewer than two accepted images)" in text, text
    assert "palette spread" not in text


def test_the_campaign_budget_is_shared(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    with pytest.raises(SystemExit):
        main(["campaign", "run", str(_write(tmp_path, 0.05, seed)), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["cost_usd"] <= 0.05 + 1e-9
    assert any("campaign" in a["reason"] and "budget" in a["reason"] for a in report["assets"])


def test_the_shipped_example_is_valid_and_bad_files_are_bad_input(tmp_path: Path) -> None:
    spec = load_campaign(ROOT / "examples/campaigns/acme-autumn.yaml")
    assert len(spec.assets) == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x1\nbrand: b\nassets: [{id: a, brief: b, formats: [10x10]}]\n")
    with pytest.raises(BadInputError, match="impossible"):
        load_campaign(bad)
    with pytest.raises(BadInputError, match="no campaign file"):
        load_campaign(tmp_path / "missing.yaml")


async def test_identical_images_have_no_spread_and_different_ones_do() -> None:
    kit = load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")
    provider = ProceduralProvider()

    async def image(prompt: str) -> bytes:
        result = await provider.generate(
            ImageRequest(model="studio", prompt=prompt, seed=1, width=96, height=96)
        )
        return result.images[0].data

    teal = await image("strict palette: teal #0f766e, cream #fef3c7")
    orange = await image("orange #ff8800 and red #dd2200")
    assert consistency([teal, teal], kit).palette_spread == 0
    assert consistency([teal, orange], kit).palette_spread > 0.3
    single = consistency([teal], kit)  # a spread needs two images: not measured, not 0
    assert single.images == 1 and single.palette_spread is None and single.descriptor_spread is None
    assert consistency([], kit).palette_spread is None


def test_budget_command_sets_campaign_and_tenant_limits(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "budget", "2.5", "--campaign-id", "fall", "--json"])
    assert exc.value.code in (0, None)
    assert json.loads(capsys.readouterr().out) == {
        "scope": "campaign",
        "id": "fall",
        "limit_usd": 2.5,
        "spent_usd": 0.0,
    }
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "budget", "1", "--tenant", "--campaign-id", "x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["campaign", "budget", "-1", "--tenant"])
    assert exc.value.code == 2
