"""Ctrl-C (SIGINT) on ``brandloop eval run`` ends it with one line and exit 130, saying how many
case runs are recorded and that the same command with ``--run-dir`` resumes the rest; resuming
does (an outside tester's report: it exited 130 in silence, as typer turns Ctrl-C into a bare
exit 130 for every command that does not catch it itself)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.agent.test_crash_resume import BRANDLOOP, ROOT, _env, _ledger, _wait_for
from tests.evals.conftest import ON_BRAND_CASES, write_suite


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_on_an_eval_says_what_is_recorded_and_how_to_resume(
    tmp_path: Path, database_url: str | None
) -> None:
    suite = write_suite(tmp_path / "suite.yaml", ON_BRAND_CASES[:3])
    run_dir, ledger = tmp_path / "run", tmp_path / "ledger.txt"
    argv = [*BRANDLOOP, "eval", "run", str(suite), "--run-dir", str(run_dir), "--concurrency", "1"]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=_env(tmp_path / "data", ledger, 1, database_url),  # its second call waits 120 s
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_sigint_as_default,  # as a terminal starts it (xdist workers ignore SIGINT)
    )
    try:
        _wait_for(lambda: sum(1 for kind, _ in _ledger(ledger) if kind == "start") >= 2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, (proc.returncode, stderr[-2000:])
    last = stderr.replace("\r", "\n").strip().splitlines()[-1]
    found = re.fullmatch(
        r"brandloop: error: interrupted: (\d) of 3 case runs are recorded in (.+); the same "
        r"command with --run-dir (.+) resumes the rest",
        last,
    )
    assert found is not None, last
    assert found.group(2) == found.group(3) == str(run_dir)

    resumed = subprocess.run(
        argv, cwd=ROOT, env=_env(tmp_path / "data", ledger, None, database_url),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    recorded = int(found.group(1))
    if recorded:
        assert f"{recorded} resumed from an interrupted run" in resumed.stdout, resumed.stdout
