"""A run killed with SIGKILL resumes with `brandloop runs resume` and pays no attempt twice.

The real CLI runs in a subprocess with a fake paid provider that keeps a ledger (see
fake_providers.py); the test kills it while a provider call is in flight, then resumes it in
a fresh process and counts what the fake backend billed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIEF = (ROOT / "examples" / "briefs" / "autumn-sale.txt").read_text().strip()
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]


def _env(
    data_dir: Path, ledger: Path, slow_from: int | None, database_url: str | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANDLOOP_", "BL_TEST_"))}
    env.update(
        BRANDLOOP_DATA_DIR=str(data_dir),
        BRANDLOOP_PROVIDER_PLUGINS="tests.agent.fake_providers:ledger_provider",
        BL_TEST_LEDGER=str(ledger),
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
    )
    if database_url is not None:
        env["BRANDLOOP_DATABASE_URL"] = database_url
    if slow_from is not None:
        env.update(BL_TEST_SLOW_FROM=str(slow_from), BL_TEST_SLEEP_S="120")
    return env


def _ledger(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines() if line]  # type: ignore[misc]


def _wait_for(predicate, timeout: float = 240.0) -> None:
    # generous: a cold `brandloop` process on a loaded 2-core CI machine takes tens of seconds
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the run to reach the kill point")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("slow_from", "paid_before_kill"),
    # round 1 is two calls; round 2 has one or two (a round-1 accept leaves one image to make),
    # so "mid second round" is its first call in flight, whatever the seed
    [(1, 1), (2, 2)],
    ids=["killed-mid-first-round", "killed-mid-second-round"],
)
def test_a_killed_run_resumes_without_paying_twice(
    tmp_path: Path, slow_from: int, paid_before_kill: int, database_url: str | None, seed: int
) -> None:
    data_dir, ledger = tmp_path / "data", tmp_path / "ledger.txt"
    args = [
        "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--n", "2", "--size", "256x256", "--seed", str(seed), "--budget", "1", "--no-memory",
        "--json", "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    stderr = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen(
        [*BRANDLOOP, *args],
        cwd=ROOT,
        env=_env(data_dir, ledger, slow_from, database_url),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: (
                sum(1 for kind, _ in _ledger(ledger) if kind == "paid") >= paid_before_kill
                and sum(1 for kind, _ in _ledger(ledger) if kind == "start") > paid_before_kill
            )
        )
        time.sleep(0.3)  # let the finished attempt reach the registry, as a real crash would
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _ledger(ledger)
    paid_before = [key for kind, key in before if kind == "paid"]
    assert len(paid_before) == paid_before_kill

    listing = subprocess.run(
        [*BRANDLOOP, "runs", "list", "--json"],
        cwd=ROOT, env=_env(data_dir, ledger, None, database_url), capture_output=True, text=True, check=True,
    )  # fmt: skip
    (run,) = json.loads(listing.stdout)
    assert run["status"] == "running"
    resumed = subprocess.run(
        [*BRANDLOOP, "runs", "resume", run["run_id"], "--json"],
        cwd=ROOT, env=_env(data_dir, ledger, None, database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["status"] in {"succeeded", "partial"}, result["reason"]

    paid = Counter(key for kind, key in _ledger(ledger) if kind == "paid")
    assert max(paid.values()) == 1, f"an attempt was paid twice: {paid}"
    for key in paid_before:
        assert paid[key] == 1, "an attempt paid before the crash was paid again"
    prices = {"procedural/draft": 0.01, "procedural/studio": 0.04}
    shown = subprocess.run(
        [*BRANDLOOP, "runs", "show", run["run_id"], "--json"],
        cwd=ROOT, env=_env(data_dir, ledger, None, database_url), capture_output=True, text=True, check=True,
    )  # fmt: skip
    attempts = json.loads(shown.stdout)["attempts"]
    assert {a["idempotency_key"] for a in attempts if a["artifact_sha256"]} == set(paid)
    # the call in flight at the kill may have been billed: its outcome is unknown, it is never
    # sent again, and it counts as spent (until an operator reconciles it)
    started = Counter(key for kind, key in _ledger(ledger) if kind == "start")
    unknown = [a for a in attempts if a["billing"] == "unknown"]
    assert unknown, "the call in flight at the kill is recorded as billing: unknown"
    for attempt in unknown:
        assert started[attempt["idempotency_key"]] == 1
    assert result["cost_usd"] == pytest.approx(
        sum(prices[a["model"]] for a in attempts if a["artifact_sha256"] or a in unknown)
    )
    # the resumed trace tells each attempt's start and end once, however often the node ran
    events = json.loads(shown.stdout)["events"]
    for kind in ("attempt_started", "attempt_finished"):
        told = Counter(e["payload"]["attempt"] for e in events if e["kind"] == kind)
        assert told and max(told.values()) == 1, (kind, told)
        assert set(told) == {a["id"] for a in attempts}, kind
