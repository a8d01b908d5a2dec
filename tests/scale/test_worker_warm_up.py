"""A fresh ``brandloop worker`` loads its models before it takes its first job (``api/warmup.py``).

It used to load them inside its first job, on the worker's one event loop: 10-20 s during which
that job and every other job on the worker waited (a job sent again to a fresh worker after a
crash started ~13 s late). Now the worker logs ``warm-up done`` before it consumes anything, and
its log's model loads (``loaded <loader> in <s> s``) were all made by the warm-up thread, none
by the job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.scale.stack import job_states, setup_tenant, started_stack, submit

pytestmark = [pytest.mark.server, pytest.mark.slow]

WARMUP_THREAD = "brandloop-warmup"
CLASSIFIER = "brandloop.tools.moderation.semantic.classifier.default_semantic_layer"


def _records(log: Path) -> list[dict[str, object]]:
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def test_a_fresh_worker_loads_its_models_before_its_first_job(tmp_path: Path) -> None:
    with started_stack(tmp_path, redis_db=11) as stack:
        base = stack.start_api()
        stack.wait_ready()
        setup_tenant(stack)
        job_id = submit(stack, base, 0)  # waits in Redis: no worker yet
        stack.start_worker(1)
        deadline = time.monotonic() + 180
        while job_states(stack, base, [job_id])[job_id]["state"] not in (
            "succeeded",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, stack.logs()
            time.sleep(0.3)
        assert job_states(stack, base, [job_id])[job_id]["state"] == "succeeded", stack.logs()
        records = _records(tmp_path / "worker0.log")
    messages = [str(r.get("msg", "")) for r in records]
    done = [i for i, m in enumerate(messages) if m.startswith("warm-up done")]
    assert done, stack.logs()
    loads = [r for r in records if str(r.get("msg", "")).startswith("loaded ")]
    assert CLASSIFIER in {r.get("loader") for r in loads}, loads
    # every model was loaded by the warm-up, none by the job (which ran after it)
    assert [r for r in loads if r.get("loaded_in") != WARMUP_THREAD] == [], loads
    job_lines = [i for i, r in enumerate(records) if r.get("job_id") == job_id]
    assert not job_lines or min(job_lines) > done[0], messages
