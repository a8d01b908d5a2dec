"""`brandloop review approve` killed with SIGKILL after it claimed the run (``awaiting_review``
-> ``running``) and before it finished it: the verdict given again finishes the run once its
claim has lapsed (it once answered "is running, not awaiting review" for good), delivering the
images without paying for anything again.

The real CLI runs in subprocesses with a fake paid provider that keeps a ledger
(tests/agent/fake_providers.py); the process giving the verdict makes its providers only after
a long pause, right after its claim, and is killed there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from brandloop.registry.db import Database
from brandloop.registry.models import AuditRow, RunRow
from brandloop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BRIEF = (ROOT / "examples" / "briefs" / "autumn-sale.txt").read_text().strip()
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]


def _env(tmp_path: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRANDLOOP_", "BL_TEST_"))}
    env.update(
        BRANDLOOP_DATA_DIR=str(tmp_path / "data"),
        BRANDLOOP_AGENT_POLICY=str(policy),
        BRANDLOOP_REVIEW_LEASE_SECONDS="1",
        BRANDLOOP_PROVIDER_PLUGINS="tests.agent.fake_providers:ledger_provider",
        BL_TEST_LEDGER=str(tmp_path / "ledger.txt"),
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        **extra,
    )
    if database_url is not None:
        env["BRANDLOOP_DATABASE_URL"] = database_url
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BRANDLOOP, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def _status(db: Database, run_id: str) -> str | None:
    with db.session() as session:
        return session.scalar(select(RunRow.status).where(RunRow.id == run_id))


@pytest.mark.slow
def test_a_verdict_killed_after_claiming_the_run_can_be_given_again(
    tmp_path: Path, database_url: str | None, seed: int
) -> None:
    env = _env(tmp_path, database_url)
    ledger = tmp_path / "ledger.txt"
    made = _cli(
        env, "generate", BRIEF, "--brand", str(ROOT / "examples/brands/acme-coffee.yaml"),
        "--n", "1", "--size", "256x256", "--seed", str(seed), "--budget", "1", "--no-memory",
        "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    waiting = json.loads(made.stdout)
    assert waiting["status"] == "awaiting_review", waiting
    run_id, paid = waiting["run_id"], ledger.read_text()
    assert "paid " in paid

    db = Database(
        Settings(data_dir=tmp_path / "data", database_url=database_url).resolved_database_url
    )
    try:
        stalled = {
            "BRANDLOOP_PROVIDER_PLUGINS": "tests.agent.fake_providers:stalled_ledger_provider",
            "BL_TEST_STALL_S": "120",
        }
        proc = subprocess.Popen(
            [*BRANDLOOP, "review", "approve", run_id, "--note", "on brand"],
            cwd=ROOT, env={**env, **stalled}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while _status(db, run_id) != "running":  # claimed; now held before finishing
                assert proc.poll() is None and time.monotonic() < deadline, "never claimed"
                time.sleep(0.05)
            time.sleep(2)  # longer than its lease: only its renewals keep the claim alive
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert _status(db, run_id) == "running"  # what the killed process left
        time.sleep(1.5)  # its claim lapses: nothing renews it now

        again = _cli(env, "review", "approve", run_id, "--note", "on brand", "--json")
        assert again.returncode == 0, again.stderr
        done = json.loads(again.stdout)
        assert done["status"] == "succeeded" and len(done["images"]) == 1, done
        assert ledger.read_text() == paid, "finishing the verdict paid for something again"
        shown = json.loads(_cli(env, "runs", "show", run_id, "--json").stdout)
        assert shown["run"]["status"] == "succeeded" and len(shown["receipts"]) == 1
        reviews = [e["payload"].get("action") for e in shown["events"] if e["node"] == "review"]
        assert reviews == ["request_review", "approved"], reviews
        with db.session() as session:
            actions = session.scalars(
                select(AuditRow.action).where(AuditRow.subject_id == run_id).order_by(AuditRow.id)
            ).all()
        assert actions == ["run.review.approve", "run.review.taken_over"], actions
        late = _cli(env, "review", "reject", run_id, "--note", "too late")
        assert late.returncode == 2 and "not awaiting review" in late.stderr, late.stderr
    finally:
        db.dispose()
