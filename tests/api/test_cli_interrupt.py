"""Ctrl-C on a command that does not catch it itself ends with one line and exit 130 (README:
"130 interrupted with Ctrl-C", "errors are one line on stderr"). Typer answers a Ctrl-C no
command caught with a bare exit code 130, returned without a word outside standalone mode: an
outside tester's `templates import` stopped in silence. Here the import blocks reading a
template file that is a named pipe, so the signal lands while the command runs."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]


def _sigint_as_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a terminal starts it (xdist ignores it)


def test_ctrl_c_on_templates_import_says_interrupted_and_stores_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    pipe = folder / "a.yaml"
    os.mkfifo(pipe)
    env = {**os.environ, "BRANDLOOP_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [*BRANDLOOP, "templates", "import", str(folder), "--as", "ana"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_sigint_as_default,
    )
    writer = None
    try:
        deadline = time.monotonic() + 60
        while writer is None:  # the pipe takes a writer once the command opens it to read
            try:
                writer = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the import never read its file"
                time.sleep(0.05)
        time.sleep(0.2)  # in its read now, waiting for bytes that never come
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert err.strip().splitlines() == ["brandloop: error: interrupted"], err[-2000:]
    listed = subprocess.run(
        [*BRANDLOOP, "templates", "list", "--json"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and '"a"' not in listed.stdout
