"""``scripts/stack.sh stop`` stops the processes the stack started and nothing else: a pid file
whose pid now belongs to another program - even one whose command line names brandloop, as
``tail -f`` of a log in the stack's directory does - is only removed (docs/runbook.md,
"Draining a worker"; an outside tester's ``tail`` was SIGKILLed). An option without its value
is one line and exit 2, not a bash error."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stop(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/stack.sh"), "stop", *args],
        env={"PATH": "/usr/bin:/bin", "BRANDLOOP_STACK_DIR": str(stack_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _starttime(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]


def _alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def test_stop_leaves_a_program_that_took_a_stale_pid_alone(tmp_path: Path) -> None:
    log = tmp_path / "worker0.log"
    log.touch()
    tail = subprocess.Popen(["tail", "-f", str(log)])  # names the stack's dir: "brandloop"?
    impostor = subprocess.Popen(["sleep", "60"])  # a pid file with another process's start
    try:
        (tmp_path / "worker0.pid").write_text(f"{tail.pid}\n")
        (tmp_path / "api0.pid").write_text(f"{impostor.pid}\n")
        (tmp_path / "api0.start").write_text("1\n")
        done = _stop(tmp_path, "--keep-services", "--drain-seconds", "2")
        assert done.returncode == 0, done.stderr
        assert _alive(tail) and _alive(impostor)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["worker0.log"]
    finally:
        for process in (tail, impostor):
            process.kill()
            process.wait(timeout=10)


def test_stop_ends_the_processes_the_stack_started(tmp_path: Path) -> None:
    # one recorded with its start time, one from an older stack (no .start): `brandloop worker`
    recorded = subprocess.Popen(["sleep", "60"])
    older = subprocess.Popen(["bash", "-c", "exec -a 'brandloop worker' sleep 60"])
    try:
        time.sleep(0.2)  # the exec has happened
        (tmp_path / "api0.pid").write_text(f"{recorded.pid}\n")
        (tmp_path / "api0.start").write_text(_starttime(recorded.pid) + "\n")
        (tmp_path / "worker0.pid").write_text(f"{older.pid}\n")
        done = _stop(tmp_path, "--keep-services", "--drain-seconds", "5")
        assert done.returncode == 0, done.stderr
        assert recorded.wait(timeout=10) is not None and older.wait(timeout=10) is not None
        assert list(tmp_path.iterdir()) == []
    finally:
        for process in (recorded, older):
            process.kill()
            process.wait(timeout=10)


def test_an_option_without_its_value_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _stop(tmp_path, "--drain-seconds")
    assert (done.returncode, done.stderr) == (2, "stack: --drain-seconds needs a value\n")
