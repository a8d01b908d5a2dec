"""The agent's own overhead per run: wall time minus time spent inside providers.

A 4-image request on the embedded procedural provider, in a fresh data dir, repeated; reports
the median and spread. Usage: .venv/bin/python benchmarks/agent_overhead.py [--runs 10] [--size 512x512]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--memory", action="store_true", help="recall/remember with Chroma too")
    args = parser.parse_args()
    os.environ["BRANDLOOP_DATA_DIR"] = tempfile.mkdtemp(prefix="bl-bench-")

    from brandloop.agent.runner import RunTiming, run_generation
    from brandloop.domain import GenerationRequest
    from brandloop.policies.brandkit import load_brand_kit
    from brandloop.registry import crud
    from brandloop.registry.db import Database
    from brandloop.settings import get_settings

    settings = get_settings()
    db = Database.from_settings(settings)
    with db.session() as session:
        crud.upsert_brand(
            session, tenant="default", kit=load_brand_kit(ROOT / "examples/brands/acme-coffee.yaml")
        )
    brief = (ROOT / "examples/briefs/morning-ritual.txt").read_text().strip()
    timings: list[RunTiming] = []
    rounds: list[int] = []

    async def one(seed: int) -> None:
        request = GenerationRequest(
            brief=brief, brand="Acme Coffee", count=4, size=args.size, seed=seed, budget_usd=2
        )
        result = await run_generation(
            request, settings=settings, db=db, use_memory=args.memory, timing=timings.append
        )
        rounds.append(sum(1 for d in result.decisions if d.node == "plan"))

    asyncio.run(one(0))  # warm-up: imports, migrations, first compile
    timings.clear()
    rounds.clear()
    for seed in range(1, args.runs + 1):
        asyncio.run(one(seed))
    overhead = [t.overhead_s * 1000 for t in timings]
    wall = [t.wall_s * 1000 for t in timings]
    print(
        f"runs={args.runs} size={args.size} memory={args.memory} rounds/run median={statistics.median(rounds)}"
    )
    print(f"wall      median {statistics.median(wall):7.1f} ms")
    print(
        f"overhead  median {statistics.median(overhead):7.1f} ms  min {min(overhead):.1f}  max {max(overhead):.1f}"
    )


if __name__ == "__main__":
    main()
