"""Scale-out benchmark: jobs/s through two Celery workers versus one, and the queue's added latency.

Needs the services of scripts/services.sh (PostgreSQL, Redis; Chroma is optional)::

    eval $(bash scripts/services.sh start)
    .venv/bin/python benchmarks/scale_workers.py [--jobs 16] [--latency 0.5] [--concurrency 1]

Each configuration gets a fresh database and a real stack (one API replica, N ``brandloop
worker`` processes) in front of the ledger fake provider with ``--latency`` seconds per call.
Throughput is jobs finished / (last finished - first submitted). The queue's added latency is
``started_at - created_at`` of jobs submitted one at a time to idle workers: the commit, the
Celery message through Redis, the worker's lease and claim. Targets: ≥ 1.8x with two workers,
p50 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.scale.stack import (
    Stack,
    flush_redis,
    fresh_database,
    job_states,
    setup_tenant,
    stack_env,
    submit,
)

FINAL = {"succeeded", "failed", "cancelled"}


def _at(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def measure(workers: int, args: argparse.Namespace) -> dict[str, float]:
    redis_url = os.environ["BRANDLOOP_TEST_REDIS_URL"].rsplit("/", 1)[0] + "/11"
    flush_redis(redis_url)
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(os.environ["BRANDLOOP_TEST_POSTGRES_URL"]) as database_url,
    ):
        env = stack_env(
            Path(tmp),
            database_url=database_url,
            redis_url=redis_url,
            chroma_host=os.environ.get("BRANDLOOP_TEST_CHROMA_HOST"),
            chroma_port=os.environ.get("BRANDLOOP_TEST_CHROMA_PORT"),
            provider_latency_s=args.latency,
        )
        stack = Stack(Path(tmp), env)
        stack.migrate()
        try:
            api = stack.start_api()
            for _ in range(workers):
                stack.start_worker(concurrency=args.concurrency)
            stack.wait_ready()
            setup_tenant(stack)
            time.sleep(3.0)  # the workers are up and have prepared their checkpointer
            # warm-up: one job per worker slot (model loading, first connections)
            warm = [submit(stack, api, 10_000 + i) for i in range(workers * args.concurrency)]
            _wait(stack, api, warm)

            # queue latency: one job at a time on idle workers
            latencies = []
            for i in range(args.probes):
                job = submit(stack, api, 20_000 + i)
                state = _wait(stack, api, [job])[job]
                latencies.append(_at(state["started_at"]) - _at(state["created_at"]))

            # throughput
            started = time.time()
            jobs = [submit(stack, api, i) for i in range(args.jobs)]
            states = _wait(stack, api, jobs)
            finished = max(_at(s["finished_at"]) for s in states.values())
            ok = sum(s["state"] == "succeeded" for s in states.values())
            return {
                "workers": workers,
                "jobs": args.jobs,
                "succeeded": ok,
                "seconds": round(finished - started, 3),
                "jobs_per_s": round(args.jobs / (finished - started), 3),
                "queue_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
                "queue_latency_max_ms": round(max(latencies) * 1000, 1),
            }
        finally:
            stack.stop()
            flush_redis(redis_url)


def _wait(stack: Stack, api: str, jobs: list[str]) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + 600
    while True:
        states = job_states(stack, api, jobs)
        if all(s["state"] in FINAL for s in states.values()):
            return states
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not finish in time:\n" + stack.logs())
        time.sleep(0.25)  # timings come from the rows, so polling slowly costs no accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per provider call")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs per worker at once")
    parser.add_argument("--probes", type=int, default=10, help="jobs for the latency figure")
    args = parser.parse_args()
    one = measure(1, args)
    two = measure(2, args)
    report = {
        "one_worker": one,
        "two_workers": two,
        "scaling": round(two["jobs_per_s"] / one["jobs_per_s"], 3),
        "queue_latency_p50_ms": round(
            statistics.median([one["queue_latency_p50_ms"], two["queue_latency_p50_ms"]]), 1
        ),
        "provider_latency_s": args.latency,
        "concurrency_per_worker": args.concurrency,
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
