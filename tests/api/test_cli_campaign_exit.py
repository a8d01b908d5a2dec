"""How ``brandloop campaign run`` exits, and how the campaign commands print money.

A campaign that accepted nothing because a budget (or the round cap) stopped it exits 4, as a
``generate`` run does; a partial campaign (some assets accepted, others stopped) exits 0, as a
partial run does, and its report says which assets fell short and why. Amounts under a cent
print exactly (a $0.005 limit is never shown as $0.01). Through ``brandloop`` itself, on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
BRANDS = ROOT / "examples" / "brands"
AUTUMN = ROOT / "examples" / "campaigns" / "acme-autumn.yaml"


def test_a_campaign_the_budget_stops_with_nothing_accepted_exits_4(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))[0] == 0
    code, out, err = run_cli(capsys, "campaign", "budget", "0.005", "--campaign-id", "c-zero")
    assert code == 0, err
    assert "limit $0.005," in out and "$0.01" not in out, out

    code, out, err = run_cli(
        capsys, "campaign", "run", str(AUTUMN), "--campaign-id", "c-zero", "--json"
    )
    assert code == 4, (code, err)
    report = json.loads(out)  # the report is still printed in full
    assert report["accepted"] == 0 and report["wanted"] == 5 and report["budget_usd"] == 0.005
    assert {a["status"] for a in report["assets"]} == {"failed"}
    assert {a["stop_cause"] for a in report["assets"]} == {"budget"}

    code, out, err = run_cli(capsys, "campaign", "run", str(AUTUMN), "--campaign-id", "c-zero")
    assert code == 4, (code, err)
    assert "0/5 accepted, $0.000 of $0.005;" in out, out
    assert "the campaign's limit $0.005 (set with" in out and "file's $1.50" in out, out

    # a run of the same campaign says the same
    code, _, _ = run_cli(
        capsys, "generate", "a steaming cup", "--brand", "Acme Coffee", "--campaign", "c-zero"
    )
    assert code == 4
    # nothing was spent on the way
    code, out, _ = run_cli(
        capsys, "campaign", "budget", "0.005", "--campaign-id", "c-zero", "--json"
    )
    assert code == 0 and json.loads(out)["spent_usd"] == 0.0


PARTIAL = """
name: partial
brand: {brand}
seed: {seed}
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.3}}
assets:
  - {{id: hero, brief: "a steaming coffee cup on a wooden table"}}
  - {{id: tiny, brief: "a coffee cup on a counter", budget_usd: 0.001}}
"""


def test_a_partial_campaign_exits_0_and_says_which_asset_the_budget_stopped(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(PARTIAL.format(brand=BRANDS / "acme-coffee.yaml", seed=seed % 1_000_000))
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 0, (code, err)
    report = json.loads(out)
    hero, tiny = report["assets"]
    assert hero["accepted"] >= 1 and hero["stop_cause"] is None
    assert tiny["status"] == "failed" and tiny["accepted"] == 0
    assert tiny["stop_cause"] == "budget" and "$0.001" in tiny["reason"], tiny


def test_money_under_a_cent_prints_exactly(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    for amount, shown in (("0.005", "$0.005"), ("0.0125", "$0.0125"), ("2", "$2.00")):
        code, out, err = run_cli(capsys, "campaign", "budget", amount, "--campaign-id", "c1")
        assert code == 0, err
        assert out.strip() == f"campaign c1: limit {shown}, spent so far $0.000", out


NOTHING = """
name: nothing
brand: {brand}
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.3}}
assets:
  - {{id: refused, brief: "cheap coffee deal"}}
{more}"""


@pytest.mark.parametrize(
    ("more", "expected"),
    [
        ("", 3),  # every asset refused by policy
        ('  - {id: tiny, brief: "a coffee cup", budget_usd: 0.001}\n', 4),  # one stopped by budget
    ],
    ids=["refused", "refused-and-budget"],
)
def test_a_campaign_with_nothing_accepted_exits_as_its_assets_stopped(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    more: str,
    expected: int,
) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(NOTHING.format(brand=BRANDS / "acme-coffee.yaml", more=more))
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == expected, (code, out, err)
    report = json.loads(out)
    assert report["accepted"] == 0 and report["assets"][0]["status"] == "refused"


def test_a_limit_of_minus_zero_is_zero(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    """`campaign budget -- -0.0` printed `limit $-0.00` (an outside tester); -0.0 is 0."""
    code, out, err = run_cli(capsys, "campaign", "budget", "--campaign-id", "x1", "--", "-0.0")
    assert code == 0, err
    assert "-0" not in out and "$0.00" in out, out
