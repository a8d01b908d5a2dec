"""The benchmark scripts added for issues 13 and 14 refuse bad arguments with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("script", "args", "says"),
    [
        ("agent_value.py", ["--seeds", "7,x"], "expected comma-separated seeds"),
        ("agent_value.py", ["--seeds", "7,7"], "a seed is repeated"),
        ("agent_value.py", ["--seeds", ""], "expected comma-separated seeds"),
        ("agent_value.py", ["--seeds", "７"], "expected comma-separated seeds"),
        ("text_gate_long.py", ["--briefs", "0"], "a whole number above 0"),
        ("text_gate_long.py", ["--runs", "-1"], "a whole number above 0"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(script: str, args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert says in done.stderr.strip().splitlines()[-1]
