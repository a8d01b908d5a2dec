"""``brandloop eval``: outputs, exit codes for the gate and for a baseline regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brandloop.api.cli import main
from brandloop.settings import Settings
from tests.evals.conftest import ON_BRAND_CASES, write_suite

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
