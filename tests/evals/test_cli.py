"""``brandloop eval``: outputs, exit codes for the gate and for a baseline regression."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from brandloop.api.cli import main
from brandloop.settings import Settings
from tests.evals.conftest import BRANDS, ON_BRAND_CASES, write_suite

# The harness gives each target its own SQLite registry whatever the deployment's database.
pytestmark = pytest.mark.databases("sqlite")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out, captured.err


def suite_file(tmp_path: Path, gate: float = 1.0) -> Path:
    return write_suite(
        tmp_path / "s.yaml",
        ON_BRAND_CASES,
        gate={"min_pass_rate": gate},
        targets=[{"name": "default", "memory": False}],
    )


def test_eval_run_writes_json_junit_and_report_and_passes_the_gate(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(suite_file(tmp_path)),
        "--json",
        str(out / "run.json"),
        "--junit",
        str(out / "junit.xml"),
        "--report",
        str(out / "report.html"),
        "--concurrency",
        "3",
    )
    assert code == 0, stderr
    document = json.loads((out / "run.json").read_text())
    assert document["gate"]["passed"] == {"default": True}
    assert (out / "junit.xml").read_text().count("<testcase") == len(ON_BRAND_CASES)
    assert (out / "report.html").stat().st_size > 10_000
    assert "100.0%" in stdout and "report:" in stdout


def test_a_failing_gate_and_a_significant_regression_exit_non_zero(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    suite = suite_file(tmp_path)
    baseline = tmp_path / "baseline.json"
    code, _, _ = run_cli(capsys, "eval", "run", str(suite), "--json", str(baseline))
    assert code == 0

    code, _, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(suite),
        "--target",
        "default:budget_usd=0.01,memory=off",
        "--baseline",
        str(baseline),
    )
    assert code == 1
    lines = stderr.strip().splitlines()
    assert any(line.startswith("brandloop: error: gate failed") for line in lines)
    assert any(line.startswith("brandloop: error: baseline regression") for line in lines)

    (tmp_path / "lenient").mkdir()
    lenient = suite_file(tmp_path / "lenient", gate=0.0)
    code, _, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(lenient),
        "--target",
        "default:budget_usd=0.01,memory=off",
        "--baseline",
        str(baseline),
    )
    assert code == 1 and "gate failed" not in stderr and "baseline regression" in stderr


def test_ab_targets_on_the_command_line(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, stdout, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(suite_file(tmp_path, gate=0.0)),
        "--target",
        "default",
        "--target",
        "studio:model=procedural/studio,memory=off",
        "--json",
        "-",
    )
    assert code == 0, stderr
    document = json.loads(stdout)
    comparison = document["comparisons"][0]
    assert (comparison["a"], comparison["b"]) == ("default", "studio")
    verdicts = {m["metric"]: m["verdict"] for m in comparison["metrics"]}
    assert verdicts["attempts"] == "better", "studio skips the soft draft round"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "run", "nope.yaml"], "does not exist"),
        (["eval", "run", "{suite}", "--target", "ghost"], "not a target of the suite"),
        (["eval", "run", "{suite}", "--baseline", "{suite}"], "not readable JSON"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    suite = str(suite_file(tmp_path))
    code, _, stderr = run_cli(capsys, *(a.format(suite=suite) for a in argv))
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr


def test_validate_and_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, stdout, _ = run_cli(capsys, "eval", "validate", str(suite_file(tmp_path)))
    assert code == 0 and f"{len(ON_BRAND_CASES)} cases" in stdout
    code, stdout, _ = run_cli(capsys, "eval", "schema")
    assert code == 0 and json.loads(stdout)["title"] == "SuiteFile"


# --------------------------------------------------------------------------- names that do not exist

HERO = Path(__file__).resolve().parents[2] / "policies" / "templates" / "brand-hero.yaml"


def tiny_suite(path: Path, cases: list[dict[str, object]] | None = None, **extra: object) -> Path:
    """One brand, small cases that cost one draft render each."""
    document: dict[str, object] = {
        "name": path.stem,
        "version": 1,
        "brands": [str(BRANDS / "acme-coffee.yaml")],
        "gate": {"min_pass_rate": 0.0},
        "defaults": {
            "request": {
                "size": "128x128",
                "budget_usd": 0.5,
                "seed": 3,
                "model": "procedural/draft",
            }
        },
        "cases": cases
        or [
            {
                "id": "cup",
                "brand": "Acme Coffee",
                "brief": "A coffee cup",
                "assertions": [{"kind": "max_cost", "max_usd": 1}],
            }
        ],
        **extra,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def template_file(path: Path, name: str, version: int | None = None) -> Path:
    data = yaml.safe_load(HERO.read_text(encoding="utf-8"))
    data["name"] = name
    data.pop("version", None)
    if version is not None:
        data["version"] = version
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


CASE = {"id": "cup", "brand": "Acme Coffee", "brief": "A coffee cup"}


@pytest.mark.parametrize(
    ("extra", "argv", "named"),
    [
        ({"targets": [{"name": "default", "template": "nope@2"}]}, [], "'nope@2'"),
        ({"targets": [{"name": "m", "model": "nope/none"}]}, [], "'nope/none'"),
        (
            {
                "cases": [
                    {
                        **CASE,
                        "request": {"template": "nope@9"},
                        "assertions": [{"kind": "accepted"}],
                    }
                ]
            },
            [],
            "'nope@9'",
        ),
        (
            {
                "cases": [
                    {
                        **CASE,
                        "request": {"model": "nope/none"},
                        "assertions": [{"kind": "accepted"}],
                    }
                ]
            },
            [],
            "'nope/none'",
        ),
        (
            {"targets": [{"name": "default", "template": "brand-hero@7"}]},
            [],
            "brand-hero has no version 7",
        ),
        (
            {"targets": [{"name": "default", "template": "brand-hero:canary"}]},
            [],
            "no label 'canary'",
        ),
        ({"targets": [{"name": "default", "template": "Brand Hero"}]}, [], "'Brand Hero'"),
        (
            {
                "cases": [
                    {
                        **CASE,
                        "assertions": [{"kind": "min_score", "signal": "nosuchsignal", "min": 0.5}],
                    }
                ]
            },
            [],
            "'nosuchsignal'",
        ),
        ({}, ["--target", "x:template=nope@3"], "'nope@3'"),
        ({}, ["--target", "x:model=nope/none"], "'nope/none'"),
        # no brand is known but the suite's: a fresh registry per target holds nothing else
        ({"brands": []}, [], "brand 'Acme Coffee' is not loaded by the suite: it lists no brands"),
        # names of files in the run dir, refused before anything is stored (not OSError)
        ({"name": "n" * 250}, [], "name: String should have at most 120 characters"),
        (
            {"cases": [{**CASE, "id": "c" * 260, "assertions": [{"kind": "accepted"}]}]},
            [],
            "id: String should have at most 120 characters",
        ),
        ({}, ["--target", "t" * 256 + ":cache=on"], "name: String should have at most 120"),
    ],
)
def test_an_unknown_template_model_or_signal_is_exit_2_before_any_case_runs(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    extra: dict[str, object],
    argv: list[str],
    named: str,
) -> None:
    cases = extra.pop("cases", None)
    suite = tiny_suite(tmp_path / "s.yaml", cases, **extra)  # type: ignore[arg-type]
    commands = [["eval", "run", str(suite), *argv]]
    if not argv:  # a suite's own names are checked by validate too
        commands.append(["eval", "validate", str(suite)])
    for command in commands:
        code, stdout, stderr = run_cli(capsys, *command)
        assert code == 2, (command, stdout, stderr)
        assert stderr.count("\n") == 1 and named in stderr, stderr
        assert stderr.startswith("brandloop: error: "), stderr
    assert not (settings.data_dir / "evals").exists(), "nothing is stored for bad input"


def test_a_template_from_the_targets_own_file_is_known_and_is_the_one_run(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    template_file(tmp_path / "hero2.yaml", "hero2")
    template_file(tmp_path / "hero-next.yaml", "brand-hero")  # no version: the next free, 2
    suite = tiny_suite(
        tmp_path / "s.yaml",
        targets=[
            {"name": "own", "templates": ["hero2.yaml"], "template": "hero2@1"},
            {"name": "next", "templates": ["hero-next.yaml"], "template": "brand-hero@2"},
        ],
    )
    code, stdout, stderr = run_cli(capsys, "eval", "validate", str(suite))
    assert code == 0, stderr
    code, stdout, stderr = run_cli(capsys, "eval", "run", str(suite), "--json", "-")
    assert code == 0, stderr
    rows = {r["target"]: r for r in json.loads(stdout)["cases"]}
    assert rows["own"]["error"] is None and rows["next"]["error"] is None
    used = {
        json.loads(p.read_text())["attempts"][0]["template"]
        for p in (settings.data_dir / "evals").glob("*/cases/*/cup__r0.json")
    }
    assert used == {"hero2@1", "brand-hero@2"}
    # a template only a file defines has no label: its bare name cannot resolve
    code, _, stderr = run_cli(
        capsys, "eval", "run", str(suite), "--target", "x:templates=hero2.yaml,template=hero2"
    )
    assert code == 2 and "hero2 has no label 'production'" in stderr, stderr


# --------------------------------------------------------------------------- baselines


def cheap_case(case_id: str) -> dict[str, object]:
    """A case that passes whatever it costs (up to $1), image or not."""
    return {**CASE, "id": case_id, "assertions": [{"kind": "max_cost", "max_usd": 1}]}


def test_a_baseline_sharing_too_few_cases_is_exit_2_and_a_partial_one_says_what_it_compared(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    baseline = tmp_path / "main.json"
    first = tiny_suite(tmp_path / "first.yaml", [cheap_case(f"c{i}") for i in range(7)])
    code, _, stderr = run_cli(capsys, "eval", "run", str(first), "--json", str(baseline))
    assert code == 0, stderr
    runs = set((settings.data_dir / "evals").iterdir())

    other = tiny_suite(tmp_path / "other.yaml", [cheap_case(f"x{i}") for i in range(3)])
    code, _, stderr = run_cli(capsys, "eval", "run", str(other), "--baseline", str(baseline))
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "shares no case with this run" in stderr, stderr
    assert "suite first v1" in stderr and "7 case(s)" in stderr, stderr
    assert set((settings.data_dir / "evals").iterdir()) == runs, "nothing ran or was stored"

    # one shared case measures nothing: a flipped one was a "significant regression", an
    # unchanged one "no significant regression"
    few = tiny_suite(tmp_path / "few.yaml", [cheap_case("c0"), cheap_case("bowl")])
    code, _, stderr = run_cli(capsys, "eval", "run", str(few), "--baseline", str(baseline))
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "shares only 1 case(s) with this run" in stderr, stderr
    assert "at least 6 shared cases" in stderr, stderr
    assert set((settings.data_dir / "evals").iterdir()) == runs, "nothing ran or was stored"

    cases = [cheap_case(f"c{i}") for i in range(6)] + [cheap_case("bowl")]
    partial = tiny_suite(tmp_path / "partial.yaml", cases)
    out = tmp_path / "partial.json"
    code, stdout, stderr = run_cli(
        capsys, "eval", "run", str(partial), "--baseline", str(baseline), "--json", str(out)
    )
    assert code == 0, stderr
    report = json.loads(out.read_text())["baseline"]
    assert (report["compared"], report["only_current"], report["only_baseline"]) == (6, 1, 1)
    assert report["summary"].startswith("compared 6 of 7 case(s)"), report["summary"]
    assert all(c["n"] == 6 for c in report["comparisons"] if c["metric"] == "pass_rate")
    assert report["passed"] and report["lost"] == []
    assert "baseline: compared 6 of 7 case(s)" in stdout


def test_a_run_that_accepts_no_image_where_the_baseline_did_is_exit_1_not_a_pass(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """Every case still passes (its one assertion is the cost), so the pass rate shows no
    difference; the composite cannot be compared at all. That is not measured, and the
    baseline check does not pass (it said "no significant regression", exit 0)."""
    cases = [
        {**case, "assertions": [{"kind": "max_cost", "max_usd": 1}]} for case in ON_BRAND_CASES
    ]
    suite = write_suite(tmp_path / "s.yaml", cases, targets=[{"name": "default", "memory": False}])
    baseline = tmp_path / "main.json"
    code, _, stderr = run_cli(capsys, "eval", "run", str(suite), "--json", str(baseline))
    assert code == 0, stderr
    assert all(row["accepted_composites"] for row in json.loads(baseline.read_text())["cases"])

    report_path, out = tmp_path / "r.html", tmp_path / "r.json"
    code, stdout, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(suite),
        "--target",
        "default:budget_usd=0.005,memory=off",  # below the price of one draft image
        "--baseline",
        str(baseline),
        "--json",
        str(out),
        "--report",
        str(report_path),
    )
    assert code == 1, (stdout, stderr)
    assert "gate failed" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.startswith("brandloop: error")]
    assert line.startswith("brandloop: error: baseline not measured: "), line
    assert "composite not measured in this run: the baseline has it for 6" in line, line
    document = json.loads(out.read_text())
    assert document["gate"]["passed"] == {"default": True}, "every case passed"
    report = document["baseline"]
    rows = {c["metric"]: c for c in report["comparisons"]}
    assert rows["composite"]["verdict"] == "not measured" and rows["composite"]["n"] == 0
    assert rows["pass_rate"]["verdict"] == "no detectable difference"
    assert (report["significant"], report["lost"], report["passed"]) == (
        False,
        ["composite"],
        False,
    )
    html = report_path.read_text()
    assert "GATE FAILED" in html and "not measured: composite" in html


def test_ab_targets_over_too_few_cases_are_not_measured_in_the_table_json_and_report(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    suite = tiny_suite(tmp_path / "s.yaml", [cheap_case("cup"), cheap_case("mug")])
    report_path, out = tmp_path / "r.html", tmp_path / "r.json"
    code, stdout, stderr = run_cli(
        capsys,
        "eval",
        "run",
        str(suite),
        "--target",
        "default",
        "--target",
        "studio:model=procedural/studio",
        "--json",
        str(out),
        "--report",
        str(report_path),
    )
    assert code == 0, stderr
    (comparison,) = json.loads(out.read_text())["comparisons"]
    rows = {m["metric"]: m for m in comparison["metrics"]}
    assert {m["verdict"] for m in rows.values()} == {"not measured"}, rows
    assert rows["cost_usd"]["n"] == 2 and rows["cost_usd"]["diff"] is not None, "means kept"
    assert all(m["ci_low"] is None for m in rows.values())
    assert "not measured: pass_rate, score, composite, cost_usd, attempts, latency_ms" in stdout
    assert "no detectable difference" not in stdout
    html = report_path.read_text()
    assert html.count('class="badge warn">not measured<') == len(rows)
    assert "no detectable difference" not in html


def test_a_template_file_naming_no_version_is_registered_once_per_run_and_tenant(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """Each case of a group prepares the group's tenant: a templates file naming no version
    used to add the next version for every case (brand-hero@2, @3, @4)."""
    template_file(tmp_path / "hero-next.yaml", "brand-hero")
    max_cost = [{"kind": "max_cost", "max_usd": 1}]
    cases = [{**CASE, "id": f"cup{i}", "group": "fall", "assertions": max_cost} for i in range(3)]
    suite = tiny_suite(
        tmp_path / "s.yaml",
        cases,
        targets=[{"name": "next", "templates": ["hero-next.yaml"], "template": "brand-hero@2"}],
    )
    code, stdout, stderr = run_cli(capsys, "eval", "run", str(suite), "--json", "-")
    assert code == 0, stderr
    assert all(r["error"] is None for r in json.loads(stdout)["cases"])
    (registry,) = (settings.data_dir / "evals").glob("*/data/next/brandloop.db")
    with sqlite3.connect(registry) as conn:
        rows = conn.execute(
            "SELECT v.version FROM template_versions v JOIN templates t ON t.id = v.template_id"
            " WHERE t.name = 'brand-hero' ORDER BY v.version"
        ).fetchall()
    assert [r[0] for r in rows] == [1, 2]


# --------------------------------------------------------------------------- the gate


def test_a_pass_rate_just_below_the_gate_fails_it_though_it_rounds_to_the_gate(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """2 of 3 is 0.66666..., which rounds (to 4 decimals, as the summary shows it) to 0.6667:
    the gate once compared that and passed a rate below 0.66667."""
    failing = {**CASE, "id": "free", "assertions": [{"kind": "max_cost", "max_usd": 0}]}
    cases = [cheap_case("cup"), cheap_case("mug"), failing]
    suite = tiny_suite(tmp_path / "s.yaml", cases, gate={"min_pass_rate": 0.66667})
    code, stdout, stderr = run_cli(capsys, "eval", "run", str(suite))
    assert code == 1, (stdout, stderr)
    assert "gate failed: pass rate below 66.667%" in stderr, stderr
    assert "default 66.666% (2/3)" in stderr, "as many decimals as the gate, rounded down"
    assert "66.666% (2/3)" in stdout, "a rate below the gate never reads as the gate"

    (tmp_path / "exact").mkdir()
    exact = tiny_suite(tmp_path / "exact" / "s.yaml", cases, gate={"min_pass_rate": 0.6666})
    code, _, stderr = run_cli(capsys, "eval", "run", str(exact))
    assert code == 0, stderr


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"passed": None}, "cases.2.passed: Field required"),
        ({"passed": "false"}, "cases.2.passed: Input should be a valid boolean"),
        ({"accepted_composites": [None]}, "cases.2.accepted_composites.0"),
    ],
)
def test_a_malformed_baseline_is_exit_2_naming_the_field_before_any_case_runs(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    tmp_path: Path,
    change: dict[str, object],
    named: str,
) -> None:
    suite = tiny_suite(tmp_path / "s.yaml", [cheap_case(f"c{i}") for i in range(6)])
    baseline = tmp_path / "main.json"
    code, _, stderr = run_cli(capsys, "eval", "run", str(suite), "--json", str(baseline))
    assert code == 0, stderr
    runs = set((settings.data_dir / "evals").iterdir())
    document = json.loads(baseline.read_text())
    row = document["cases"][2]
    row.update(change)
    if row["passed"] is None:
        del row["passed"]
    baseline.write_text(json.dumps(document))
    code, _, stderr = run_cli(
        capsys, "eval", "run", str(suite), "--fresh", "--baseline", str(baseline)
    )
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and named in stderr, stderr
    assert set((settings.data_dir / "evals").iterdir()) == runs, "nothing ran or was stored"


def test_groups_named_in_free_text_run_as_distinct_campaigns(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    """A group's name is free text: it once became the campaign id ``eval-Acme Autumn``, which
    a request refuses, and every case of the group errored."""
    max_cost = [{"kind": "max_cost", "max_usd": 1}]
    groups = ["Acme Autumn", "Acme Autumn", "acme autumn", "Ünï/Группа ☕ " + "g" * 120]
    cases = [
        {**CASE, "id": f"c{i}", "group": group, "assertions": max_cost}
        for i, group in enumerate(groups)
    ]
    suite = tiny_suite(tmp_path / "s.yaml", cases)
    code, stdout, stderr = run_cli(capsys, "eval", "run", str(suite), "--json", "-")
    assert code == 0, stderr
    rows = json.loads(stdout)["cases"]
    assert [r["error"] for r in rows] == [None] * 4
    (registry,) = (settings.data_dir / "evals").glob("*/data/default/brandloop.db")
    with sqlite3.connect(registry) as conn:
        campaigns = dict(conn.execute("SELECT tenant, campaign_id FROM runs").fetchall())
    assert len(campaigns) == 3 and len(set(campaigns.values())) == 3, campaigns
    assert all(c.startswith("eval-") for c in campaigns.values()), campaigns
