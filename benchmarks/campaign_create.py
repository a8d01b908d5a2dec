"""A large campaign through the HTTP API: ``POST /v1/campaigns`` of ``--assets`` assets with eight
formats each (400 jobs at the default 50), then ``GET /v1/campaigns/{id}`` of it while every job
is still queued (no workers run, so nothing leaves the queue), on the embedded default (SQLite
in a temporary data dir, the shipped moderation models).

What the POST pays for, per asset: redacting its brief once, the minors line on the brief and
on the prompt its first format renders (each distinct text judged once: the door's cache);
per job: the template resolved and rendered as its run will render it, and its row. The GET
reads the campaign, its jobs and the brand; a queued job no worker has claimed costs $0 with no
read of its run (``api/jobs/service.job_cost``).

Usage: .venv/bin/python benchmarks/campaign_create.py [--assets 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMATS = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "512x512"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["BRANDLOOP_DATA_DIR"] = tempfile.mkdtemp(prefix="bl-campaign-")

    import yaml
    from fastapi.testclient import TestClient

    from brandloop.api.app import create_app
    from brandloop.api.auth import create_key
    from brandloop.api.config import ApiSettings
    from brandloop.registry.db import Database
    from brandloop.settings import get_settings

    settings = get_settings()
    api = ApiSettings(workers=0, rate_limit_per_minute=100_000, rate_limit_burst=10_000)
    app = create_app(settings, api, use_memory=False)
    db = Database.from_settings(settings)
    with db.session() as session:
        _, admin = create_key(session, tenant="bench", role="admin")
        _, creator = create_key(session, tenant="bench", role="creator")
    db.dispose()
    kit = yaml.safe_load((ROOT / "examples" / "brands" / "acme-coffee.yaml").read_text())
    posts, gets = [], []
    with TestClient(app) as client:
        made = client.post("/v1/brands", json=kit, headers={"Authorization": f"Bearer {admin}"})
        assert made.status_code == 201, made.text
        headers = {"Authorization": f"Bearer {creator}"}
        for round_ in range(args.repeat):
            body = {
                "brand": "Acme Coffee",
                "name": f"round {round_}",
                "budget_usd": 10,
                "assets": [
                    {
                        "brief": f"round {round_}: a cup, take {i}, on an oak table",
                        "formats": FORMATS,
                    }
                    for i in range(args.assets)
                ],
            }
            start = time.perf_counter()
            answer = client.post("/v1/campaigns", json=body, headers=headers)
            posts.append(time.perf_counter() - start)
            assert answer.status_code == 202, answer.text[:500]
            campaign = answer.json()
            start = time.perf_counter()
            read = client.get(f"/v1/campaigns/{campaign['id']}", headers=headers)
            gets.append(time.perf_counter() - start)
            assert read.status_code == 200 and len(read.json()["assets"]) == len(body["assets"]) * 8
    jobs = args.assets * len(FORMATS)
    print(f"campaign of {args.assets} assets x {len(FORMATS)} formats = {jobs} jobs, "
          f"{args.repeat} rounds (each with new briefs)")  # fmt: skip
    print(f"POST /v1/campaigns   median {statistics.median(posts):.2f} s "
          f"(min {min(posts):.2f}, max {max(posts):.2f}); {1000 * statistics.median(posts) / jobs:.1f} ms per job")  # fmt: skip
    print(f"GET /v1/campaigns/id median {statistics.median(gets):.3f} s "
          f"(min {min(gets):.3f}, max {max(gets):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
