"""The product's own loops run on uvloop where it is installed (brandloop/event_loop.py): a
``brandloop`` command's run, the HTTP service's agent loop and the Celery workers' job loop.
A provider call's client-side work is mostly the loop's and httpx's (docs/providers.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvloop

from brandloop import event_loop
from brandloop.api.jobs.celery_queue import LeasedRunner
from brandloop.api.jobs.worker import AgentLoop
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.test_cli import run_cli
from tests.fakes.loop_recording import LoopRecordingProvider

ROOT = Path(__file__).resolve().parents[1]
ACME = str(ROOT / "examples" / "brands" / "acme-coffee.yaml")


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_a_run_goes_on_uvloop() -> None:
    assert event_loop.uses_uvloop()
    assert event_loop.run(_loop_type()) is uvloop.Loop


async def test_the_services_agents_run_on_uvloop() -> None:
    agents = AgentLoop()
    agents.start()
    try:
        assert await agents.run(_loop_type()) is uvloop.Loop
    finally:
        await asyncio.to_thread(agents.stop)


def test_the_celery_workers_job_loop_is_uvloop(settings: Settings, db: Database) -> None:
    runner = LeasedRunner(settings, db, queue=None)  # type: ignore[arg-type]  # never started
    try:
        assert isinstance(runner.loop, uvloop.Loop)
    finally:
        runner.loop.close()


def test_a_brandloop_command_calls_its_provider_on_uvloop(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    seed: int,
) -> None:
    monkeypatch.setenv(
        "BRANDLOOP_PROVIDER_PLUGINS", "tests.fakes.loop_recording:loop_recording_provider"
    )
    get_settings.cache_clear()
    LoopRecordingProvider.loops.clear()
    code, out, err = run_cli(
        capsys, "generate", "a steaming coffee cup", "--brand", ACME, "--n", "1",
        "--size", "256x256", "--seed", str(seed), "--no-memory", "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, (err, out)
    assert LoopRecordingProvider.loops, "the provider was not called"
    assert set(LoopRecordingProvider.loops) == {"uvloop"}
