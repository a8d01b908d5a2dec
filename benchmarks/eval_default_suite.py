"""How long `brandloop eval run evals/suites/default.yaml --report ...` takes, end to end.

The issue's bar: under 3 minutes on the development machine (2 cores), embedded default.
Runs the real CLI in a fresh data dir (cold registry, cold Chroma, MiniLM loaded once) and
prints the wall time, the pass rate and the report's size.

    .venv/bin/python benchmarks/eval_default_suite.py [--repeat 1] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 180.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRANDLOOP_")}
        env["BRANDLOOP_DATA_DIR"] = str(Path(tmp) / "data")
        report = Path(tmp) / "report.html"
        document = Path(tmp) / "run.json"
        command = [
            str(ROOT / ".venv" / "bin" / "brandloop"),
            "eval",
            "run",
            str(ROOT / "evals" / "suites" / "default.yaml"),
            "--report",
            str(report),
            "--json",
            str(document),
            "--repeat",
            str(args.repeat),
            "--concurrency",
            str(args.concurrency),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if not document.exists():
            print(done.stderr, file=sys.stderr)
            return 1
        data = json.loads(document.read_text())
        summary = data["summary"]["default"]
        print(
            f"default suite: {data['suite']['cases']} cases x {args.repeat} repeat(s), "
            f"concurrency {args.concurrency}, {os.cpu_count()} cpus"
        )
        print(f"  wall time (CLI process, cold data dir): {wall:.1f} s (limit {LIMIT_S:.0f} s)")
        print(f"  run time reported by the harness:        {data['wall_s']:.1f} s")
        print(
            f"  pass rate {summary['pass_rate']:.1%}, latency p50/p95 "
            f"{summary['latency_p50_ms']:.0f}/{summary['latency_p95_ms']:.0f} ms, "
            f"exit code {done.returncode}"
        )
        print(f"  report: {report.stat().st_size / 1024:.0f} KiB")
        return 0 if wall < LIMIT_S and done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
