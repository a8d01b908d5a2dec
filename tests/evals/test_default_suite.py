"""The shipped default suite on the embedded default must meet its gate: a regression in
templates, models, policies or the agent fails CI here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from brandloop.evals.loader import load_suite
from brandloop.evals.reports.document import gate_results, summaries
from brandloop.evals.runner import EvalRunner
from brandloop.settings import Settings
from tests.evals.conftest import ROOT

# The harness gives each target its own SQLite registry whatever the deployment's database.
pytestmark = pytest.mark.databases("sqlite")


@pytest.mark.slow
async def test_the_default_suite_meets_its_gate(tmp_path: Path, settings: Settings) -> None:
    suite = load_suite(ROOT / "evals" / "suites" / "default.yaml")
    started = time.perf_counter()
    run = await EvalRunner(
        suite=suite,
        targets=suite.targets,
        run_dir=tmp_path / "run",
        concurrency=4,
        base_settings=settings,
    ).run()
    elapsed = time.perf_counter() - started
    table = summaries(run)
    failed = [
        f"{r.case_id}: " + "; ".join(a.message for a in r.assertions if not a.passed)
        for r in run.results
        if not r.passed
    ]
    assert all(gate_results(run, table).values()), (table, failed)
    assert table["default"].error_rate == 0, failed
    assert elapsed < 180
