"""Structured logs: JSON when stderr is not a terminal, and every line written for a run (agent,
memory, artifacts, the eval harness) or a job (the API's workers) carries its run id / job id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brandloop.agent.runner import run_generation
from brandloop.domain import GenerationRequest
from brandloop.evals.loader import load_suite
from brandloop.evals.models import TargetSpec
from brandloop.evals.runner import EvalRunner
from brandloop.logs import bound, configure_logging, set_debug
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.helpers import CountingProvider, add_acme, allow
from tests.evals.conftest import ON_BRAND_CASES, write_suite


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """brandloop's logs, at DEBUG, as the JSON a service writes to a pipe."""
    root = logging.getLogger("brandloop")
    saved = (root.handlers[:], root.level, root.propagate)
    stream = io.StringIO()
    configure_logging(level=logging.DEBUG, stream=stream)
    yield stream
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]
    set_debug(False)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    for entry in parsed:
        assert {"ts", "level", "logger", "msg", "run_id", "job_id", "request_id"} <= entry.keys()
    return parsed


def test_json_when_not_a_terminal_and_short_lines_when_it_is() -> None:
    root = logging.getLogger("brandloop")
    saved = root.handlers[:], root.level, root.propagate
    try:
        piped, terminal = io.StringIO(), Terminal()
        configure_logging(stream=piped)
        with bound(run_id="run_1", job_id="job_1"):
            logging.getLogger("brandloop.agent.x").info("hello %s", "world")
        entry = json.loads(piped.getvalue())
        assert (entry["msg"], entry["run_id"], entry["job_id"]) == ("hello world", "run_1", "job_1")
        configure_logging(stream=terminal)
        with bound(run_id="run_2"):
            logging.getLogger("brandloop.agent.x").warning("careful")
        assert terminal.getvalue() == "WARNING brandloop.agent.x [run=run_2] careful\n"
    finally:
        root.handlers[:], root.level, root.propagate = saved


def test_a_traceback_is_logged_only_in_debug_mode() -> None:
    stream = io.StringIO()
    root = logging.getLogger("brandloop")
    saved = root.handlers[:], root.level, root.propagate
    try:
        configure_logging(stream=stream)
        for debug in (False, True):
            set_debug(debug)
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("brandloop.x").exception("failed")
        quiet, loud = (json.loads(line) for line in stream.getvalue().splitlines())
        assert quiet["error"] == loud["error"] == "ValueError"
        assert "traceback" not in quiet and "ValueError: boom" in loud["traceback"]
    finally:
        set_debug(False)
        root.handlers[:], root.level, root.propagate = saved


async def test_a_run_logs_from_every_layer_with_its_run_id(
    captured: io.StringIO, settings: Settings, db: Database, database: str
) -> None:
    brand = add_acme(settings, db)
    request = GenerationRequest(brief="a steaming cup", brand=brand, size="256x256", seed=5)
    result = await run_generation(
        request,
        settings=settings,
        db=db,
        providers={"procedural": CountingProvider()},
        image_moderator=allow,
    )
    entries = lines(captured)
    ours = [e for e in entries if e["run_id"] == result.run_id]
    loggers = {e["logger"] for e in ours}
    assert {"brandloop.agent.runner", "brandloop.agent.context"} <= loggers
    assert any(name.startswith("brandloop.memory.") for name in loggers), loggers
    assert "brandloop.artifacts" in loggers
    settled = next(e for e in ours if e["msg"] == "run settled")
    assert settled["status"] == result.status and settled["cost_usd"] == result.cost_usd
    decisions = [e for e in ours if e.get("kind") == "decision"]
    assert decisions and all(e["level"] == "info" for e in decisions)
    if database == "sqlite":  # the embedded file migrates on first use (PostgreSQL is migrated)
        assert any(e["logger"] == "brandloop.registry.db" for e in entries)


async def test_an_eval_case_logs_its_run(
    captured: io.StringIO, settings: Settings, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ON_BRAND_CASES[:1]))
    run = await EvalRunner(
        suite=suite,
        targets=[TargetSpec(name="t", memory=False)],
        run_dir=tmp_path / "run",
        base_settings=settings,
    ).run()
    run_id = run.results[0].run_id
    entries = lines(captured)
    case = next(e for e in entries if e["msg"] == "eval case ran")
    assert (case["logger"], case["run_id"], case["case"]) == (
        "brandloop.evals.runner",
        run_id,
        ON_BRAND_CASES[0]["id"],
    )
    assert any(e["logger"] == "brandloop.agent.runner" and e["run_id"] == run_id for e in entries)
