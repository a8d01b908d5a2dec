"""A job's log lines, from the worker through the agent, carry the job id and the run id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.logs import configure_logging
from tests.api.http.conftest import Keys


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger("brandloop")
    saved = root.handlers[:], root.level, root.propagate
    stream = io.StringIO()
    configure_logging(level=logging.DEBUG, stream=stream)
    yield stream
    root.handlers[:], root.level, root.propagate = saved


def test_job_lines_carry_the_job_and_run_ids(
    captured: io.StringIO, client: TestClient, keys: Keys, acme: dict[str, Any]
) -> None:
    body = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256", "seed": 3}
    job = client.post("/v1/generations?wait=60", json=body, headers=keys["A", "creator"]).json()
    assert job["state"] == "succeeded", job
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    ours = [e for e in entries if e["job_id"] == job["id"]]
    assert {e["run_id"] for e in ours} == {job["run_id"]}
    messages = {(e["logger"], e["msg"]) for e in ours}
    assert ("brandloop.jobs", "job started") in messages
    assert ("brandloop.jobs", "job finished") in messages
    assert ("brandloop.agent.runner", "run settled") in messages
