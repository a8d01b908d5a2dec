"""A run's lifecycle across processes, through the real CLI in subprocesses, on both databases.

- ``brandloop runs resume`` of a run another live process is still running is refused (exit 2,
  one line naming the run and that process's pid): it is not driven a second time. Once that
  process is gone (SIGKILL), the same command resumes the run at once (``agent/run_leases.py``).
- Ctrl-C (SIGINT) on ``generate`` cancels the run (docs/agent.md, Crash-safe resumption): one
  line naming the run, that it is cancelled and what it spent, exit 130; with ``--json`` the
  run's state on stdout. A run shows as many attempts as it lists, finished or not.
- A run killed right after its nodes wrote their decisions (the fake provider SIGKILLs its own
  process as round 2's first call begins) resumes from the checkpoint of the last node that
  finished: its trace tells each node's events once (``durability="sync"``, agent/runner.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.agent.test_crash_resume import BRANDLOOP, BRIEF, ROOT, _env, _ledger, _wait_for


def _generate(tmp_path: Path, seed: int) -> list[str]:
    return [
        "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--n", "2", "--size", "256x256", "--seed", str(seed), "--budget", "1", "--no-memory",
        "--json", "--out", str(tmp_path / "out"),
    ]  # fmt: skip


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BRANDLOOP, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def _only_run(env: dict[str, str]) -> str:
    listing = _cli(env, "runs", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    (run,) = json.loads(listing.stdout)
    return str(run["run_id"])


def _events(env: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    shown = _cli(env, "runs", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    events: list[dict[str, Any]] = json.loads(shown.stdout)["events"]
    return events


def _told_twice(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    told = Counter((e["node"], e["kind"], json.dumps(e["payload"], sort_keys=True)) for e in events)
    return [key for key, count in told.items() if count > 1]


@pytest.mark.slow
def test_resume_refuses_a_run_a_live_process_still_runs(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = _env(data_dir, ledger, None, database_url)
    stderr = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen(
        [*BRANDLOOP, *_generate(tmp_path, seed)],
        cwd=ROOT,
        env=_env(data_dir, ledger, 1, database_url),  # its second call waits 120 s
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: sum(1 for kind, _ in _ledger(ledger) if kind == "start") >= 2)
        run_id = _only_run(env)
        refused = _cli(env, "runs", "resume", run_id, "--json")
        assert proc.poll() is None, "generate still runs the run"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stderr.close()
    assert refused.returncode == 2, (refused.returncode, refused.stderr)
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert run_id in lines[0] and f"still running in pid {proc.pid}" in lines[0], lines[0]
    started = Counter(key for kind, key in _ledger(ledger) if kind == "start")
    assert max(started.values()) == 1, started  # the refused resume sent nothing again

    shown = json.loads(_cli(env, "runs", "show", run_id, "--json").stdout)
    assert shown["run"]["status"] == "running"
    assert shown["run"]["attempts"] == len(shown["attempts"]) > 0, shown["run"]

    # the process is gone (SIGKILL): the same command resumes the run at once
    resumed = _cli(env, "runs", "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] in {"succeeded", "partial"}
    kinds = Counter(e["kind"] for e in _events(env, run_id))
    assert kinds["done"] == 1, kinds


@pytest.mark.slow
def test_a_run_killed_after_its_nodes_decided_tells_each_event_once(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = _env(data_dir, ledger, None, database_url)
    killed = _cli({**env, "BL_TEST_KILL_AT": "2"}, *_generate(tmp_path, seed))
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert [kind for kind, _ in _ledger(ledger)].count("killed") == 1
    run_id = _only_run(env)
    before = _events(env, run_id)
    assert any(e["node"] == "observe" for e in before), "round 1 was observed before the kill"

    resumed = _cli(env, "runs", "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] in {"succeeded", "partial"}
    events = _events(env, run_id)
    assert not _told_twice(events), _told_twice(events)
    assert events[: len(before)] == before  # what the stream had sent stays as it was
    kinds = Counter(e["kind"] for e in events)
    assert kinds["done"] == 1, kinds


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_on_generate_cancels_the_run_and_says_so(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = _env(data_dir, ledger, None, database_url)
    proc = subprocess.Popen(
        [*BRANDLOOP, *_generate(tmp_path, seed)],
        cwd=ROOT,
        env=_env(data_dir, ledger, 1, database_url),  # its second call waits 120 s
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as a terminal starts it: a pytest-xdist worker ignores SIGINT, and an ignored signal
        # stays ignored across exec (Python then installs no KeyboardInterrupt handler)
        preexec_fn=_sigint_as_default,
    )
    try:
        _wait_for(lambda: sum(1 for kind, _ in _ledger(ledger) if kind == "start") >= 2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, (proc.returncode, stderr[-2000:])
    run_id = _only_run(env)
    lines = stderr.strip().splitlines()
    assert lines, "Ctrl-C printed no line on stderr"
    last = lines[-1]
    assert last.startswith("brandloop: error: interrupted: ") and run_id in last, last
    assert "cancelled" in last and "spent" in last, last
    state = json.loads(stdout)
    assert state["run_id"] == run_id and state["status"] == "cancelled", state

    shown = json.loads(_cli(env, "runs", "show", run_id, "--json").stdout)
    assert shown["run"]["status"] == "cancelled", shown["run"]
    assert shown["run"]["attempts"] == len(shown["attempts"]) == state["attempts"]
    assert shown["run"]["cost_usd"] == pytest.approx(state["cost_usd"])
    again = _cli(env, "runs", "resume", run_id)
    assert again.returncode == 2 and "cancelled" in again.stderr, again.stderr
    # its checkpoints were pruned as it was cancelled, as a run that ends on its own prunes
    # its own: gc finds nothing left of it (an outside tester's report: all were kept)
    swept = _cli(env, "gc", "--dry-run", "--json")
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["checkpoints_pruned"] == 0, swept.stdout


def _without_root_override(argv: list[str]) -> list[str]:
    """``argv`` run so that file modes bind it (root ignores them unless the capability that
    lets it is dropped)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file modes do not bind")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", *argv]


@pytest.mark.slow
def test_an_artifact_folder_gone_read_only_mid_run_names_it_and_the_resume(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    env = _env(data_dir, ledger, None, database_url)
    artifacts = data_dir / "artifacts"
    artifacts.mkdir(parents=True)
    for name in (f"{i:02x}" for i in range(256)):  # the store's folders, none writable
        (artifacts / name).mkdir(mode=0o555)
    failed = subprocess.run(
        _without_root_override([*BRANDLOOP, *_generate(tmp_path, seed)]),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert failed.returncode == 8, (failed.returncode, failed.stderr[-2000:])
    run_id = _only_run(env)
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("brandloop: error: storage failed: "), line
    assert str(artifacts) in line and "may not be written" in line, line
    assert run_id in line and f"`brandloop runs resume {run_id}`" in line, line
    state = json.loads(failed.stdout)
    assert state["run_id"] == run_id and state["status"] == "running", state
    assert state["resume"] == f"brandloop runs resume {run_id}"

    for folder in artifacts.iterdir():
        folder.chmod(0o755)
    resumed = _cli(env, "runs", "resume", run_id, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] in {"succeeded", "partial"}
    paid = Counter(key for kind, key in _ledger(ledger) if kind == "paid")
    assert max(paid.values()) == 1, f"an attempt was paid twice: {paid}"
