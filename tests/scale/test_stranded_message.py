"""A worker killed (SIGKILL) after taking a job's message from Redis but before starting the job
leaves the job ``queued``, its message unacknowledged until the visibility timeout: another
worker's sweep sends it again within a few lease periods, and the job runs once."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.scale.stack import ROOT, Stack, job_states, setup_tenant, started_stack, submit

pytestmark = [pytest.mark.server, pytest.mark.slow]

LEASE_S = 2.0
#: the broker's visibility timeout here: long, so a job that runs at all within
#: ``WITHIN_S`` was sent again by a sweep, however long a loaded machine takes to start a
#: worker and warm its models (once a fixed 40 s, which a loaded machine overran)
VISIBILITY_S = 600
WITHIN_S = 300

# a worker's first step with a message: take it off the queue unacknowledged (as a prefetch
# does), then die before starting its job
_TAKE_AND_HOLD = """
import sys, time
from kombu import Connection
with Connection(sys.argv[1]) as conn:
    queue = conn.SimpleQueue("brandloop")
    message = queue.get(timeout=30)
    print(message.headers["argsrepr"], flush=True)
    time.sleep(600)
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with started_stack(
        tmp_path,
        redis_db=13,
        lease_seconds=LEASE_S,
        BRANDLOOP_CELERY_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
    ) as running:
        yield running


def test_a_job_a_dead_worker_took_but_never_started_is_sent_again(stack: Stack) -> None:
    base = stack.start_api()
    stack.wait_ready()
    setup_tenant(stack)
    job_id = submit(stack, base, 0)

    redis_url = stack.env["BRANDLOOP_REDIS_URL"]
    holder = subprocess.Popen(
        [sys.executable, "-c", _TAKE_AND_HOLD, redis_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert job_id in holder.stdout.readline()
    finally:
        holder.kill()  # SIGKILL: the message stays taken, unacknowledged
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen("brandloop") == 0
        assert client.hlen("unacked") == 1  # back only after the visibility timeout
    finally:
        client.close()
    assert job_states(stack, base, [job_id])[job_id]["state"] == "queued"

    stack.start_worker(concurrency=1)
    started = time.monotonic()
    while (job := job_states(stack, base, [job_id])[job_id])["state"] not in {
        "succeeded",
        "failed",
        "cancelled",
    }:
        # a worker starts and warms up; then within a lease period or two, not the timeout
        assert time.monotonic() - started < WITHIN_S, job["state"] + stack.logs()
        time.sleep(0.5)
    assert job["state"] == "succeeded", job
    paid = stack.paid_counts()
    assert paid and max(paid.values()) == 1
