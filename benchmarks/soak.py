"""Soak benchmark: thousands of jobs through the HTTP API of one ``brandloop serve`` on the
embedded default (SQLite registry and checkpoints, in-process workers, embedded Chroma memory,
the procedural provider), watching the server's memory and the checkpoint file.

Targets (issue 18): the server's RSS after the whole run stays within 50 MB of its RSS after the
first 100 jobs, and the checkpoint file stays bounded under the retention policy (it does not
grow with the number of finished runs). The baseline is the same server and load with the
retention switched off (``--keep -1``: every checkpoint kept, as before the policy existed).

Jobs are submitted without seeds by ``--concurrency`` clients, each waiting for its job before
the next (``POST /v1/generations?wait=``). Samples every ``--sample-every`` jobs: RSS (VmRSS of
the server process), checkpoint file size (with its WAL), registry size, jobs/s.

Usage: ``.venv/bin/python benchmarks/soak.py [--jobs 3000] [--concurrency 4] [--keep 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
BRANDLOOP = [sys.executable, "-c", "from brandloop.api.cli import main; main()"]
FINAL = ("succeeded", "failed", "cancelled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def file_mb(*paths: Path) -> float:
    return sum(p.stat().st_size for p in paths if p.exists()) / 1e6


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*BRANDLOOP, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


class Soak:
    def __init__(self, args: argparse.Namespace, data_dir: Path) -> None:
        self.args = args
        self.data_dir = data_dir
        self.lock = threading.Lock()
        self.submitted = 0
        self.done = 0
        self.states: dict[str, int] = {}
        self.samples: list[dict[str, Any]] = []
        self.started = time.monotonic()
        self.next_sample = args.sample_every

    def sample(self, pid: int, label: str | int) -> dict[str, Any]:
        point = {
            "jobs": label,
            "rss_mb": round(rss_mb(pid), 1),
            "checkpoints_mb": round(
                file_mb(
                    self.data_dir / "checkpoints.sqlite", self.data_dir / "checkpoints.sqlite-wal"
                ),
                2,
            ),
            "registry_mb": round(
                file_mb(self.data_dir / "brandloop.db", self.data_dir / "brandloop.db-wal"), 2
            ),
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }
        self.samples.append(point)
        print(json.dumps(point), flush=True)
        return point

    def client(self, base: str, headers: dict[str, str], pid: int) -> None:
        body = {"brief": "a steaming cup on a wooden table", "brand": "Acme Coffee",
                "size": self.args.size}  # fmt: skip
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            while True:
                with self.lock:
                    if self.submitted >= self.args.jobs:
                        return
                    self.submitted += 1
                job = http.post("/v1/generations", params={"wait": 60}, json=body).json()
                while job.get("state") not in FINAL:
                    time.sleep(0.05)
                    job = http.get(f"/v1/jobs/{job['id']}").json()
                with self.lock:
                    self.done += 1
                    self.states[job["state"]] = self.states.get(job["state"], 0) + 1
                    if self.done >= self.next_sample:
                        self.next_sample += self.args.sample_every
                        self.sample(pid, self.done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument(
        "--keep", type=int, default=0,
        help="BRANDLOOP_CHECKPOINT_KEEP for the server; -1: no retention (the baseline)",
    )  # fmt: skip
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle before the last RSS")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="write the samples as JSON")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="brandloop-soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
    env.update(BRANDLOOP_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", ORT_DISABLE_TELEMETRY="1")
    env["BRANDLOOP_API_RATE_LIMIT_PER_MINUTE"] = "1000000"
    env["BRANDLOOP_API_RATE_LIMIT_BURST"] = "1000000"
    env["BRANDLOOP_API_ACCESS_LOG"] = "false"
    env["BRANDLOOP_CHECKPOINT_KEEP"] = str(max(args.keep, 0) if args.keep >= 0 else 1000)
    made = subprocess.run(
        [*BRANDLOOP, "keys", "create", "--tenant", "soak", "--role", "admin", "--principal",
         "soak", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(env, port, data_dir / "server.log")
    try:
        kit = yaml.safe_load((ROOT / "examples/brands/acme-coffee.yaml").read_text())
        httpx.post(f"{base}/v1/brands", json=kit, headers=headers, timeout=30).raise_for_status()
        soak = Soak(args, data_dir)
        soak.sample(proc.pid, 0)
        threads = [
            threading.Thread(target=soak.client, args=(base, headers, proc.pid), daemon=True)
            for _ in range(args.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        soak.sample(proc.pid, soak.done)
        time.sleep(args.idle)
        idle = soak.sample(proc.pid, f"{soak.done}+idle")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)

    # the reference: the first sample at or past 100 jobs (the "after the first 100")
    first = next(
        (s for s in soak.samples if isinstance(s["jobs"], int) and s["jobs"] >= 100),
        soak.samples[0],
    )
    end = soak.samples[-2]
    growth = end["rss_mb"] - first["rss_mb"]
    per_job_kb = (
        (end["checkpoints_mb"] - first["checkpoints_mb"]) * 1e3 / max(1, soak.done - first["jobs"])
    )
    rate = soak.done / max(1e-9, end["elapsed_s"])
    print()
    print(f"jobs: {soak.done} ({soak.states}), {rate:.1f} jobs/s, concurrency {args.concurrency}")
    print(
        f"RSS after {first['jobs']} jobs: {first['rss_mb']} MB; after {soak.done}: "
        f"{end['rss_mb']} MB ({growth:+.1f} MB; target within 50 MB); idle: {idle['rss_mb']} MB"
    )
    print(
        f"checkpoint file: {first['checkpoints_mb']} MB after {first['jobs']} jobs, "
        f"{end['checkpoints_mb']} MB after {soak.done} ({per_job_kb:+.2f} KB per job; "
        f"retention keep={args.keep})"
    )
    failed = soak.states.get("failed", 0) + soak.states.get("cancelled", 0)
    # bounded: the file does not grow with finished runs (the baseline grows ~100 KB per job)
    bounded = per_job_kb <= 1.0
    verdict = abs(growth) <= 50 and bounded and failed == 0
    print(
        "PASS" if verdict else "FAIL",
        f"(RSS within 50 MB: {abs(growth) <= 50}; checkpoint file bounded, at most 1 KB per "
        f"job: {bounded}; every job succeeded: {failed == 0})",
    )
    if args.report:
        args.report.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                        "samples": soak.samples, "states": soak.states}, indent=2)
        )  # fmt: skip


if __name__ == "__main__":
    main()
