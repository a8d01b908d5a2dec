"""A ``brandloop campaign run`` file is checked whole, as ``POST /v1/campaigns`` checks its
body, before the first asset runs: a bad asset anywhere in the file (a blank or invisible brief,
a NUL, a count past 8, no formats, a format that is neither a size nor a ratio) is one line
naming the file and the field, exit 2, with nothing run, paid or stored; a body the API takes
(an aspect-ratio format) runs. Other files the CLI stores text from (brand kits, templates)
refuse a NUL the same way, and a brief, note or comment of invisible characters only is blank
on every command, as it is over HTTP. Through ``brandloop`` itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import data_snapshot, run_cli

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "examples" / "brands" / "acme-coffee.yaml"
TEMPLATE = ROOT / "examples" / "templates" / "product-still.yaml"
#: characters that show nothing: zero-width space, word joiner, byte order mark, soft hyphen,
#: Mongolian vowel separator
INVISIBLE = "\u200b\u2060\ufeff\u00ad\u180e"

CAMPAIGN = """\
name: checks
brand: Acme Coffee
budget_usd: 0.5
assets:
  - id: a
    brief: "a cup of cocoa on a table"
    formats: ["128x128"]
  - id: b
{second}
"""


@pytest.mark.parametrize(
    ("second", "said"),
    [
        ('    brief: "   "', "assets[1].brief: brief is empty"),
        ('    brief: "\\u200b\\u2060\\ufeff\\u00ad\\u180e"', "assets[1].brief: brief is empty"),
        ('    brief: "a cup of tea\\0"', "assets[1].brief: text may not hold a NUL character"),
        ('    brief: "a mug"\n    count: 9', "assets[1].count: Input should be less than or"),
        ('    brief: "a mug"\n    count: true', "assets[1].count: Input should be a valid integer"),
        ('    brief: "a mug"\n    formats: []', "assets[1].formats: List should have at least 1"),
        ('    brief: "a mug"\n    formats: ["0:1"]', "assets[1].formats[0]: aspect ratio '0:1'"),
        (
            '    brief: "a mug"\n    formats: ["0128x128"]',
            "assets[1].formats[0]: format '0128x128' is neither WIDTHxHEIGHT",
        ),
        (
            "    brief: a mug\n    formats: ["
            + ", ".join(f'"{64 + i}x64"' for i in range(9))
            + "]",
            "assets[1].formats: List should have at most 8 items",
        ),
        # strict as the API's body: no string for a number (budget_usd: "0.2" once ran)
        ('    brief: "a mug"\n    budget_usd: "0.2"', "assets[1].budget_usd: Input should be a"),
        ('    brief: "a mug"\n    count: "2"', "assets[1].count: Input should be a valid integer"),
        ('    brief: "a mug"\n    budget_usd: true', "assets[1].budget_usd: Input should be a"),
    ],
    ids=[
        "blank",
        "invisible",
        "nul",
        "count-9",
        "count-true",
        "no-formats",
        "ratio-0",
        "zero-led",
        "9-formats",
        "budget-text",
        "count-text",
        "budget-true",
    ],
)
def test_a_bad_later_asset_is_refused_before_the_first_runs(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    second: str,
    said: str,
) -> None:
    assert run_cli(capsys, "brands", "add", str(ACME))[0] == 0
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN.format(second=second), encoding="utf-8")
    before = data_snapshot(settings.data_dir)

    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")

    assert code == 2, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"brandloop: error: campaign {path}: {said}"), err
    # nothing ran, was paid or stored: no run of asset a, no campaign budget
    assert data_snapshot(settings.data_dir) == before
    code, out, _ = run_cli(capsys, "runs", "list", "--json")
    assert code == 0 and json.loads(out) == []


def test_a_campaign_file_takes_aspect_ratio_formats_as_the_api_does(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "ratio.yaml"
    path.write_text(
        f"name: ratio\nbrand: {ACME}\nbudget_usd: 0.5\nseed: {seed % 1_000_000}\n"
        "assets:\n"
        '  - {id: square, brief: "a steaming coffee cup on a wooden table", '
        'formats: ["1:1", "16:9"], count: 1}\n',
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 0, (code, err)
    report = json.loads(out)
    assert [a["size"] for a in report["assets"]] == ["1:1", "16:9"]
    shown = []
    for asset in report["assets"]:
        code, out, err = run_cli(capsys, "runs", "show", asset["run_id"], "--json")
        assert code == 0, err
        run = json.loads(out)
        shown.append(run.get("run", run)["request"]["aspect_ratio"])
    assert shown == ["1:1", "16:9"]


def test_a_nul_in_a_brand_kit_or_a_template_file_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    kit = tmp_path / "kit.yaml"
    kit.write_text(
        ACME.read_text(encoding="utf-8").replace(
            "description: ", 'description: "calm\\0warm" #', 1
        ),
        encoding="utf-8",
    )
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "brands", "add", str(kit))
    assert code == 2 and out == "", (code, out, err)
    assert err == (
        f"brandloop: error: brand kit {kit}: description: text may not hold a NUL character "
        "or a lone surrogate\n"
    ), err
    assert data_snapshot(settings.data_dir) == before

    template = tmp_path / "t.yaml"
    template.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("message: first", 'message: "first\\0" #', 1),
        encoding="utf-8",
    )
    code, out, err = run_cli(
        capsys, "templates", "create", "product-still", "--file", str(template), "--as", "ana"
    )
    assert code == 2 and out == "", (code, out, err)
    assert err == (
        f"brandloop: error: {template}: message: text may not hold a NUL character or a lone "
        "surrogate\n"
    ), err
    code, out, _ = run_cli(capsys, "templates", "list", "--json")
    assert code == 0 and "product-still" not in out


def test_invisible_text_is_blank_on_the_cli_as_over_http(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    assert run_cli(capsys, "brands", "add", str(ACME))[0] == 0
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "generate", INVISIBLE, "--brand", "Acme Coffee", "--json")
    assert (code, out) == (2, ""), (code, out, err)
    assert err.count("\n") == 1 and "brief is empty" in err, err
    assert data_snapshot(settings.data_dir) == before

    code, out, err = run_cli(
        capsys, "templates", "create", "product-still", "--file", str(TEMPLATE), "--as", "ana"
    )
    assert code == 0, err
    code, out, err = run_cli(capsys, "templates", "submit", "product-still", "1", "--as", "ana")
    assert code == 0, err
    code, out, err = run_cli(
        capsys,
        "templates",
        "reject",
        "product-still",
        "1",
        "--as",
        "bo",
        "--note",
        INVISIBLE,
    )
    assert (code, out) == (2, ""), (code, out, err)
    assert "a rejection needs a --note saying why" in err, err


def test_a_campaign_file_naming_a_changed_kit_is_refused_and_the_stored_kit_kept(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """`brand:` a kit file whose kit differs from the stored brand's: refused as `generate
    --brand FILE` refuses it, nothing replaced (an outside tester's campaign file silently
    repainted Acme Coffee's primary colour); the same file as stored runs."""
    assert run_cli(capsys, "brands", "add", str(ACME))[0] == 0
    changed = tmp_path / "acme-changed.yaml"
    changed.write_text(ACME.read_text().replace("#0f766e", "#ff0000"))
    path = tmp_path / "kit.yaml"
    path.write_text(
        "name: kitchange\nbrand: acme-changed.yaml\nassets:\n  - id: a\n    brief: a cup\n"
        '    formats: ["128x128"]\n'
    )
    before = data_snapshot(settings.data_dir)
    for flags in ((), ("--json",)):
        code, out, err = run_cli(capsys, "campaign", "run", str(path), *flags)
        assert code == 2 and out == "" and err.count("\n") == 1, (code, out, err)
        assert "differs from the stored kit of brand 'Acme Coffee'" in err, err
    assert data_snapshot(settings.data_dir) == before
    code, out, _ = run_cli(capsys, "brands", "list", "--json")
    assert "#ff0000" not in out and "#0f766e" in out


def test_a_refused_campaign_leaves_no_progress_bar_behind(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """Without --json the file's checks ran under the progress bar, which stayed on stderr
    above the error: two lines where the README promises one."""
    assert run_cli(capsys, "brands", "add", str(ACME))[0] == 0
    path = tmp_path / "tmpl.yaml"
    path.write_text(
        "name: tmpl\nbrand: Acme Coffee\ntemplate: no-such-template\nassets:\n"
        "  - id: a\n    brief: a cup\n"
    )
    code, _, err = run_cli(capsys, "campaign", "run", str(path))
    assert code == 2 and err.count("\n") == 1, (code, err)
    assert err.startswith("brandloop: error:") and "no-such-template" in err, err


@pytest.mark.parametrize("name", ["a" * 81, "Spring", "ünïcode", "-lead"])
def test_a_campaign_name_is_refused_in_plain_words(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, name: str
) -> None:
    """It answered with the raw pattern ``^[a-z0-9][a-z0-9_.-]{0,79}$`` (an outside tester)."""
    assert run_cli(capsys, "brands", "add", str(ACME))[0] == 0
    path = tmp_path / "c.yaml"
    path.write_text(f"name: {json.dumps(name)}\nbrand: Acme Coffee\nassets:\n"
                    "  - id: a\n    brief: a cup\n", encoding="utf-8")  # fmt: skip
    code, _, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 2 and err.count("\n") == 1, err
    assert "name: a campaign name is 1-80 lower-case letters" in err and "^[" not in err, err


@pytest.mark.parametrize(
    ("field", "said"),
    [
        ('budget_usd: "1.5"', "budget_usd: Input should be a valid number"),
        ("budget_usd: true", "budget_usd: Input should be a valid number"),
        ('seed: "7"', "seed: Input should be a valid integer"),
        ('defaults:\n  budget_usd: "0.2"', "defaults.budget_usd: Input should be a valid number"),
        ('defaults:\n  count: "2"', "defaults.count: Input should be a valid integer"),
    ],
    ids=["budget-text", "budget-true", "seed-text", "default-budget-text", "default-count-text"],
)
def test_a_campaign_file_takes_no_text_for_a_number_as_the_api_does(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, field: str, said: str
) -> None:
    """``budget_usd: "1.5"`` once ran, while ``POST /v1/campaigns`` refuses a string budget
    with a 422 and the file itself refused ``count: "2"`` (outside tester)."""
    path = tmp_path / "c.yaml"
    path.write_text(
        f'name: strict\nbrand: Acme Coffee\n{field}\nassets:\n  - id: a\n    brief: "a mug"\n',
        encoding="utf-8",
    )
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "campaign", "run", str(path), "--json")
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1, err
    assert err.startswith(f"brandloop: error: campaign {path}: {said}"), err
    assert data_snapshot(settings.data_dir) == before


def test_a_campaign_path_that_is_a_folder_or_empty_is_named_so(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A folder is "cannot read campaign file X: Is a directory", as ``templates create --file``
    says of one, not "no campaign file"; an empty path is named as empty, not as ``.``
    (outside tester)."""
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    before = data_snapshot(settings.data_dir)
    code, out, err = run_cli(capsys, "campaign", "run", str(folder))
    assert (code, out) == (2, ""), err
    assert err == f"brandloop: error: cannot read campaign file {folder}: Is a directory\n"
    code, out, err = run_cli(capsys, "campaign", "run", "")
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and "'file'" in err and "path is empty" in err, err
    assert "campaign file ." not in err
    code, out, err = run_cli(capsys, "campaign", "run", str(tmp_path / "missing.yaml"))
    assert code == 2 and f"no campaign file {tmp_path / 'missing.yaml'}" in err, err
    assert data_snapshot(settings.data_dir) == before
