"""`brandloop campaign run`: per-asset results, one campaign budget, a consistency figure."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from brandloop.agent.budgets import limit_of, tighten_budget
from brandloop.agent.campaign import load_campaign
from brandloop.agent.consistency import consistency
from brandloop.api.cli import main
from brandloop.errors import BadInputError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.providers import ImageRequest
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
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
    if report["accepted"] >= 2:
        assert 0 <= report["palette_spread"] <= 1 and report["descriptor_spread"] >= 0
    else:  # some seeds accept fewer than two images: a spread needs two, "not measured"
        assert report["palette_spread"] is None and report["descriptor_spread"] is None


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


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def _campaign_limit(campaign_id: str) -> float | None:
    db = Database.from_settings(get_settings())
    try:
        with db.session() as session:
            return limit_of(session, tenant="default", scope="campaign", scope_id=campaign_id)
    finally:
        db.dispose()


def test_a_files_budget_never_loosens_a_limit_set_with_campaign_budget(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    assert _cli(capsys, "campaign", "budget", "0.05", "--campaign-id", "capped")[0] == 0
    code, out, _ = _cli(
        capsys, "campaign", "run", str(_write(tmp_path, 2.0, seed)), "--campaign-id", "capped",
        "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["budget_usd"] == 0.05
    assert report["cost_usd"] <= 0.05 + 1e-9
    assert _campaign_limit("capped") == 0.05
    code, out, _ = _cli(
        capsys, "campaign", "run", str(_write(tmp_path, 2.0, seed)), "--campaign-id", "capped"
    )
    assert "tighter than the file's $2.00" in out
    # what the first run left of $0.05 may pay for nothing more: then nothing was accepted and
    # the budget stopped it, exit 4 (docs/agent.md, Campaigns)
    accepted = int(re.search(r"^(\d+)/\d+ accepted", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert code == (0 if accepted else 4), out
    # a tighter file tightens it; raising it again takes `campaign budget`
    assert _cli(capsys, "campaign", "budget", "5", "--campaign-id", "roomy")[0] == 0
    code, out, _ = _cli(
        capsys, "campaign", "run", str(_write(tmp_path, 0.03, seed)), "--campaign-id", "roomy",
        "--json",
    )  # fmt: skip
    assert json.loads(out)["budget_usd"] == 0.03 and json.loads(out)["cost_usd"] <= 0.03 + 1e-9
    assert _campaign_limit("roomy") == 0.03


def test_runs_of_one_campaign_started_at_once_end_with_the_tightest_limit(
    settings: Settings,
) -> None:
    limits = [0.4, 0.07, 0.9, 0.05, 0.3, 0.6, 0.08, 0.2]
    db = Database.from_settings(settings)

    def tighten(limit: float) -> float:
        with db.session() as session:
            return tighten_budget(
                session, tenant="default", scope="campaign", scope_id="race", limit_usd=limit
            )

    try:
        with ThreadPoolExecutor(len(limits)) as pool:
            applied = list(pool.map(tighten, limits))
    finally:
        db.dispose()
    assert all(a <= limit for a, limit in zip(applied, limits, strict=True))
    assert _campaign_limit("race") == 0.05


def test_duplicate_asset_ids_are_refused_before_the_first_asset_runs(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    path = _write(tmp_path, 2.0, seed)
    path.write_text(path.read_text().replace("id: story", "id: hero"))
    code, out, err = _cli(capsys, "campaign", "run", str(path), "--json", "--campaign-id", "dup")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "asset id 'hero' is used twice (assets 1 and 3)" in err
    assert _cli(capsys, "runs", "list", "--json")[1].strip() in ("[]", "")
    path.write_text(
        path.read_text().replace('formats: ["160x96"]', 'formats: ["160x96", "160x96"]')
    )
    path.write_text(path.read_text().replace('id: hero, brief: "latte', 'id: story, brief: "latte'))
    code, _, err = _cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 2 and "asset hero: a format is listed twice" in err


def test_budget_json_states_money_to_the_micro_dollar(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    db = Database.from_settings(settings)
    try:
        for index, amount in enumerate((0.01, 0.02, 0.03)):  # 0.060000000000000005 as doubles
            with db.session() as session:
                spend.lock_tenant(session, "default")
                spend.reserve_call(
                    session,
                    tenant="default",
                    run_id="run_elsewhere",
                    campaign_id="noisy",
                    call_key=f"k{index}",
                    amount_usd=amount,
                    provider="procedural",
                    model="procedural/studio",
                    attempt_ids=[],
                )
                spend.settle(session, call_key=f"k{index}", billing="billed", charged_usd=amount)
    finally:
        db.dispose()
    for argv in (["--tenant"], ["--campaign-id", "noisy"]):
        code, out, _ = _cli(capsys, "campaign", "budget", "0.1000000001", *argv, "--json")
        assert code == 0
        assert '"spent_usd": 0.06\n' in out and '"limit_usd": 0.1,' in out, out
