"""Tables with long but legal names (a template name of up to 120 characters, a principal of
120, a brand of 80) still fit an 80-column terminal: the long name is cut with an ellipsis and
every other column keeps its text (README: "Tables fit an 80-column terminal; ``--wide`` shows
every column, ``--json`` everything")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rich.cells import cell_len

from brandloop.api.cli import main
from brandloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert (exc.value.code or 0) == 0, captured.err
    return captured.out


def assert_fits(text: str, *whole: str) -> None:
    too_long = [line for line in text.splitlines() if cell_len(line) > 80]
    assert not too_long, "\n".join(too_long)
    for token in whole:
        assert token in text, f"{token!r} is not shown whole:\n{text}"


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("COLUMNS", "80")
    return settings


@pytest.mark.parametrize("length", [70, 100, 120])
def test_templates_list_cuts_a_long_name_and_keeps_the_labels(
    capsys: pytest.CaptureFixture[str], narrow: Settings, tmp_path: Path, length: int
) -> None:
    name = "t" * length
    template = tmp_path / "t.yaml"
    template.write_text(yaml.safe_dump({"body": "{{ brief }}", "description": "a long one"}))
    run_cli(capsys, "templates", "create", name, "--file", str(template), "--as", "ana")
    text = run_cli(capsys, "templates", "list")
    assert_fits(text, "brand-hero", "@1 approved", "production->@1", "@1 draft", "a long one")
    assert "t" * 20 + "…" in text and name not in text
    assert name in run_cli(capsys, "templates", "list", "--wide")
    assert name in {t["name"] for t in json.loads(run_cli(capsys, "templates", "list", "--json"))}


def test_keys_list_cuts_a_long_principal_and_keeps_the_key_id(
    capsys: pytest.CaptureFixture[str], narrow: Settings
) -> None:
    principal = "p" * 120
    create = ["keys", "create", "--tenant", "acme", "--role", "approver", "--json"]
    made = json.loads(run_cli(capsys, *create, "--principal", principal, "--name", "ci key"))
    text = run_cli(capsys, "keys", "list", "--tenant", "acme")
    assert_fits(text, made["id"], "approver", "ci key")
    assert principal in run_cli(capsys, "keys", "list", "--tenant", "acme", "--wide")


def test_brands_list_cuts_a_long_brand_name_and_keeps_the_palette(
    capsys: pytest.CaptureFixture[str], narrow: Settings, tmp_path: Path
) -> None:
    kit = yaml.safe_load((ROOT / "examples" / "brands" / "acme-coffee.yaml").read_text())
    kit["name"] = "Acme " + "c" * 75
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(kit), encoding="utf-8")
    run_cli(capsys, "brands", "add", str(path))
    text = run_cli(capsys, "brands", "list")
    assert_fits(text, "Acme cccccccccc", "c…", "#0f766e", "warm, cozy, artisanal")
