"""CLI tables in an 80-column terminal (or a CI log): no line runs past column 80 and no
identifier, state or number is wrapped into fragments ("sta / nda / rd"); ``--wide`` shows
every column, each row on one line; ``--json`` keeps everything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len

from brandloop.api.cli import main
from brandloop.policies.catalog import load_catalog
from brandloop.settings import Settings
from tests.evals.conftest import ON_BRAND_CASES, write_suite

ROOT = Path(__file__).resolve().parents[2]
BRIEF = (ROOT / "examples" / "briefs" / "morning-ritual.txt").read_text().strip()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    assert (exc.value.code or 0) == 0, captured.err
    return captured.out


def assert_fits(text: str, *whole: str, width: int = 80) -> None:
    """Every line within ``width`` cells, and each of ``whole`` on one line, unbroken."""
    too_long = [line for line in text.splitlines() if cell_len(line) > width]
    assert not too_long, "\n".join(too_long)
    for token in whole:
        assert token in text, f"{token!r} is not shown whole:\n{text}"


def table_block(text: str, title: str) -> str:
    """The table titled ``title``: from its title line to its bottom border."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line)
    end = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith("└"))
    return "\n".join(lines[start : end + 1])


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("COLUMNS", "80")
    return settings


@pytest.fixture
def one_run(capsys: pytest.CaptureFixture[str], narrow: Settings, tmp_path: Path) -> dict:
    out = run_cli(
        capsys,
        "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--n", "2", "--size", "256x256", "--seed", "11", "--no-memory",
        "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    return json.loads(out)


def test_models_list_fits_80_columns_and_wide_shows_the_rest(
    capsys: pytest.CaptureFixture[str], narrow: Settings
) -> None:
    models = load_catalog()
    text = run_cli(capsys, "models", "list")
    assert_fits(text, *(m.id for m in models), *{m.tier for m in models}, "standard", "retired")
    assert "sizes" not in text  # a --wide column

    wide = run_cli(capsys, "models", "list", "--wide")
    header = next(line for line in wide.splitlines() if "price/image" in line)
    for column in ("sizes", "seed", "neg", "n/call", "baseline", "why not"):
        assert column in header
    for model in models:  # each model on one line, with its reason whole
        row = next(line for line in wide.splitlines() if f" {model.id} " in line)
        assert model.tier in row and model.status in row

    doc = json.loads(run_cli(capsys, "models", "list", "--json"))
    assert {m["id"] for m in doc} == {m.id for m in models} and "licence" in doc[0]


def test_generate_and_run_tables_fit_80_columns(
    capsys: pytest.CaptureFixture[str], narrow: Settings, one_run: dict, tmp_path: Path
) -> None:
    run_id = one_run["run_id"]
    listing = run_cli(capsys, "runs", "list")
    assert_fits(listing, run_id, one_run["status"], f"${one_run['cost_usd']:.3f}")
    shown = run_cli(capsys, "runs", "show", run_id)
    models = {image["model"] for image in one_run["images"]}
    assert_fits(table_block(shown, "Trace"), "intake", "decision")
    assert_fits(table_block(shown, "Attempts"), *models, "accepted")
    wide = run_cli(capsys, "runs", "show", run_id, "--wide")
    assert "seed req/ret" in table_block(wide, "Attempts")

    human = run_cli(
        capsys,
        "generate", BRIEF, "--brand", "Acme Coffee", "--n", "1", "--size", "256x256",
        "--seed", "12", "--no-memory", "--out", str(tmp_path / "again"),
    )  # fmt: skip
    assert_fits(table_block(human, "Accepted images"), "procedural/")
    assert_fits(table_block(human, "Decisions"), "intake")


def test_template_brand_key_and_cache_tables_fit_80_columns(
    capsys: pytest.CaptureFixture[str], one_run: dict
) -> None:
    assert_fits(run_cli(capsys, "templates", "list"), "brand-hero", "@1 approved")
    assert_fits(run_cli(capsys, "templates", "stats", "brand-hero"), "@1", "approved")
    assert_fits(run_cli(capsys, "templates", "history", "brand-hero"), "brand-hero@1", "seeded")
    assert_fits(run_cli(capsys, "templates", "variables"), "brief", "palette")
    assert_fits(run_cli(capsys, "brands", "list"), "Acme Coffee")
    create = ["keys", "create", "--tenant", "acme", "--role", "approver", "--json"]
    made = json.loads(run_cli(capsys, *create, "--principal", "ana.lee@acme.example"))
    assert_fits(
        run_cli(capsys, "keys", "list", "--tenant", "acme"),
        made["id"],
        "approver",
        "ana.lee@acme.example",
    )
    assert_fits(run_cli(capsys, "cache", "stats"), "procedural/")


def test_the_eval_summary_fits_80_columns(
    capsys: pytest.CaptureFixture[str], narrow: Settings, tmp_path: Path
) -> None:
    suite = write_suite(
        tmp_path / "s.yaml",
        ON_BRAND_CASES[:2],
        targets=[
            {"name": "default-target", "memory": False},
            {"name": "cheap-draft-model", "memory": False, "model": "procedural/draft"},
        ],
    )
    with pytest.raises(SystemExit):
        main(["eval", "run", str(suite), "--run-dir", str(tmp_path / "run")])
    text = capsys.readouterr().out
    summary = table_block(text, "mini v1: 2 cases")
    assert_fits(summary, "default-target", "cheap-draft-model", "p95 ms", "$/img")
    assert "fallback" not in summary  # a --wide column
    assert_fits(table_block(text, "A/B: cheap-draft-model vs default-target"), "pass_rate")


def test_the_id_the_next_command_takes_is_never_cut(
    capsys: pytest.CaptureFixture[str], narrow: Settings
) -> None:
    """`memory forget --id` takes a note's id: at 80 columns the list cut it to
    `note-c5aae4be2d846aacca…` so that a long note could show more (outside tester); the
    note gives way instead, and a note holding control characters lines up."""
    brand = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")
    run_cli(capsys, "brands", "add", brand)
    note = "always show the cup from a low angle with soft morning light " * 3 + "\x1b[31m"
    added = json.loads(run_cli(capsys, "memory", "add", note, "--brand", "Acme Coffee", "--json"))
    shown = run_cli(capsys, "memory", "notes", "--brand", "Acme Coffee")
    assert_fits(shown, added["id"])
    assert "\x1b" not in shown
