"""What the CLI reports: preview images flagged everywhere, a long brief that runs, colour names.

Each test goes through ``brandloop`` itself (``main``) on the embedded defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.api.cli import main
from brandloop.settings import Settings
from brandloop.tools.providers.colours import COLOUR_WORDS, extract_colours

ROOT = Path(__file__).resolve().parents[2]
BRANDS = ROOT / "examples" / "brands"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


# -- preview images are flagged in the campaign report and in runs show's text -------------

CAMPAIGN = """
name: preview-check
brand: {brand}
seed: {seed}
defaults: {{formats: ["128x128"], count: 1, budget_usd: 0.3}}
assets:
  - {{id: hero, brief: "a steaming coffee cup on a wooden table"}}
"""


def _campaign(tmp_path: Path, seed: int) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN.format(brand=BRANDS / "acme-coffee.yaml", seed=seed % 1_000_000))
    return path


def test_campaign_json_carries_each_image_with_its_preview_flag(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    code, out, err = run_cli(capsys, "campaign", "run", str(_campaign(tmp_path, seed)), "--json")
    assert code == 0, err
    report = json.loads(out)
    (asset,) = report["assets"]
    assert asset["accepted"] == len(asset["images"]) >= 1
    for image in asset["images"]:
        # the procedural renderer is the only provider here: every image is a preview
        assert image["preview"] is True
        assert {"path", "sha256", "model", "seed", "prompt", "scores", "cost_usd"} <= set(image)
        assert image["model"].startswith("procedural/") and Path(image["path"]).is_file()


def test_the_campaign_table_marks_previews(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    code, out, err = run_cli(capsys, "campaign", "run", str(_campaign(tmp_path, seed)), "--wide")
    assert code == 0, err
    header = next(line for line in out.splitlines() if "asset" in line and "status" in line)
    assert "preview" in header
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("hero"))
    assert "preview" in row


def _cells(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]


def test_runs_show_text_marks_previews(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    code, out, err = run_cli(
        capsys,
        "generate",
        "a steaming coffee cup on a wooden table",
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--size",
        "128x128",
        "--seed",
        str(seed),
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    assert code == 0, err
    run = json.loads(out)
    assert run["images"] and all(image["preview"] for image in run["images"])
    code, out, err = run_cli(capsys, "runs", "show", run["run_id"], "--wide")
    assert code == 0, err
    lineage = out[out.index("\nimage ") :]
    assert lineage.count("preview    yes") == len(run["images"])  # each image's receipt
    models = [
        cell
        for row in _cells(out)
        if "accepted" in row
        for cell in row
        if cell.startswith("procedural/")
    ]
    assert models and all(m.endswith("preview") for m in models)  # the Attempts table


# -- a brief within the 4,000-character limit runs ------------------------------------------

LONG_BRIEF = (
    "A climber in a navy jacket rests on a snowy ridge at first light, crisp air, long shadows. "
    * 60
)[:3950]


def test_a_brief_within_the_limit_is_not_refused_for_the_prompt_around_it(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys,
        "generate",
        LONG_BRIEF,
        "--brand",
        str(BRANDS / "nordlys-outdoor.yaml"),
        "--seed",
        "3",
        "--size",
        "128x128",
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    doc = json.loads(out)
    assert code == 0, (doc["status"], doc["reason"], err)
    assert doc["status"] in {"succeeded", "partial"}
    actions = [d["action"] for d in doc["decisions"]]
    assert "refuse_prompt" not in actions
    fitted = next(d for d in doc["decisions"] if d["action"] == "fit_prompt")
    assert "the brief was cut" in fitted["reason"]
    for image in doc["images"]:
        assert len(image["prompt"]) <= 4000
        assert "Nordlys Outdoor" in image["prompt"]  # the brand's clauses are kept
        assert image["prompt"].count("climber") >= 30  # most of the brief is kept


def test_a_brief_over_the_limit_is_still_bad_input(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys,
        "generate",
        "x" * 4001,
        "--brand",
        str(BRANDS / "nordlys-outdoor.yaml"),
        "--out",
        str(tmp_path / "out"),
    )
    assert code != 0 and "4000" in err.replace(",", "").replace(" ", "")


# -- colour names: the CSS/X11 names are colours, for preflight as for the renderer ---------


@pytest.mark.parametrize("colour", ["fuchsia", "magenta", "#ff00ff", "Fuchsia"])
def test_a_forbidden_colour_by_any_common_name_is_refused_before_spending(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, colour: str
) -> None:
    policy = settings.data_dir / "policies" / "acme-coffee.yaml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text("conflicts: refuse\n")
    code, out, err = run_cli(
        capsys,
        "generate",
        f"a coffee cup on a {colour} table",
        "--brand",
        str(BRANDS / "acme-coffee.yaml"),
        "--seed",
        "1",
        "--size",
        "128x128",
        "--out",
        str(tmp_path / "out"),
        "--json",
    )
    doc = json.loads(out)
    assert code == 3, (doc["status"], doc["reason"], err)
    assert doc["status"] == "refused" and doc["cost_usd"] == 0
    assert "forbids" in doc["reason"] and colour.lower() in doc["reason"]


def test_the_vocabulary_has_the_css_names_and_not_the_nouns() -> None:
    assert len(COLOUR_WORDS) >= 200
    text = "fuchsia, dark slate grey, darkslategrey, aquamarine, cornflower blue, mauve"
    assert [label for _, label in extract_colours(text)] == [
        "fuchsia",
        "dark slate grey",
        "aquamarine",
        "cornflower blue",
        "mauve",
    ]  # darkslategrey is the same colour as dark slate grey: reported once
    # words that are first a thing in a brief name no colour
    assert extract_colours("a tomato and a plum on linen, snow, wheat, a cinnamon roll") == []
    # the hand-picked values stay what they were
    assert COLOUR_WORDS["red"] == (220, 30, 40) and COLOUR_WORDS["navy blue"] == (0, 0, 128)
