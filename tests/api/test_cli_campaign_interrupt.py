"""Ctrl-C on `brandloop campaign run` cancels the asset's run it lands in, keeping what it paid
for, as `generate` does (README: exit 130, the line names the run and what it spent); the
assets not begun never run. An outside tester's interrupted campaign left its run `running`
with a bare "interrupted". The provider is the ledger plugin (the outside world): from its
second call it waits, so the signal lands while a call is out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.agent.test_crash_resume import BRANDLOOP, ROOT, _env, _ledger, _wait_for

ACME = ROOT / "examples" / "brands" / "acme-coffee.yaml"


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_on_a_campaign_cancels_the_run_it_stopped(
    tmp_path: Path, database_url: str | None
) -> None:
    data, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = _env(data, ledger, 2, database_url)
    added = subprocess.run(
        [*BRANDLOOP, "brands", "add", str(ACME)], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        "name: stopme\nbrand: Acme Coffee\nbudget_usd: 1\nassets:\n"
        '  - id: a\n    brief: a cup of cocoa\n    count: 2\n    formats: ["128x128"]\n'
        '  - id: b\n    brief: a latte\n    formats: ["128x128"]\n'
    )
    proc = subprocess.Popen(
        [*BRANDLOOP, "campaign", "run", str(campaign), "--campaign-id", "stopme-1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_sigint_as_default,
    )  # fmt: skip
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
        r"brandloop: error: interrupted: run (run_\w+) is cancelled \(\d+ attempts, \$[\d.]+ "
        r"spent\); nothing is delivered: start a new run to go on \(campaign stopme-1: the "
        r"assets not begun never run\)",
        last,
    )
    assert found is not None, last
    listed = subprocess.run(
        [*BRANDLOOP, "runs", "list", "--json"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    runs = [(r["run_id"], r["status"]) for r in json.loads(listed.stdout)]
    assert runs == [(found.group(1), "cancelled")], runs  # the next asset never began
