"""Server time of every studio page at 200 runs (issue 15: each under 150 ms).

Seeds one tenant with 200 runs: 8 real runs of the agent on the procedural provider (each with
its attempts, trace and receipts), cloned with new ids across the last 30 days, plus a chat
thread with a revision, a run waiting for review, rubric ratings, a second template version and
a campaign. Then asks each page ``--repeat`` times in process (the app's own ASGI stack:
middleware, session lookup, queries, rendering; no network), after two warm-up requests, and
prints p50, p95 and max in ms. The wall time of an in-process request is an upper bound on the
server time (it adds the test client's own overhead). As a baseline it times what a hand-written
page would fetch instead: ``GET /v1/runs?limit=24`` (JSON, the same query as the gallery).

    .venv/bin/python benchmarks/studio_pages.py [--runs 200] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUDGET_MS = 150.0


def seed(client: Any, headers: dict[str, str], db: Any, runs: int) -> dict[str, str]:
    import yaml

    from brandloop.registry.models import AttemptRow, RunEventRow, RunRow

    for kit in ("acme-coffee", "nordlys-outdoor"):
        data = yaml.safe_load((ROOT / "examples" / "brands" / f"{kit}.yaml").read_text())
        client.post("/v1/brands", json=data, headers=headers)
    briefs = [
        ("Acme Coffee", "a steaming mug on a wooden table"),
        ("Acme Coffee", "coffee beans spilling from a paper bag"),
        ("Nordlys Outdoor", "a climber on a ridge at sunrise"),
        ("Acme Coffee", "latte art by the window"),
    ]
    sources = []
    for index in range(8):
        brand, brief = briefs[index % len(briefs)]
        job = client.post(
            "/v1/generations?wait=120",
            json={"brief": brief, "brand": brand, "size": "256x256", "count": 2, "seed": index},
            headers=headers,
        ).json()
        sources.append(job["run_id"])
    thread = client.post(
        "/v1/threads",
        json={"brand": "Acme Coffee", "message": "a mug on a table", "size": "256x256"},
        headers=headers,
    ).json()
    time.sleep(3)
    client.post(
        f"/v1/threads/{thread['id']}/messages",
        json={"content": "warmer, and drop the mug"},
        headers=headers,
    )
    now = datetime.now(UTC)
    with db.session() as session:
        originals = [session.get(RunRow, r) for r in sources]
        for n in range(runs - len(sources) - 2):
            src = originals[n % len(originals)]
            assert src is not None
            new_id = f"run_clone{n:05d}"
            created = now - timedelta(days=n % 30, minutes=n)
            session.add(
                RunRow(
                    id=new_id, tenant=src.tenant, brand_id=src.brand_id, brand_name=src.brand_name,
                    brief=src.brief, request=src.request, status=src.status, reason=src.reason,
                    template_ref=src.template_ref, cost_usd=src.cost_usd,
                    attempt_count=src.attempt_count, accepted_count=src.accepted_count,
                    result={**(src.result or {}), "run_id": new_id}, created_at=created,
                    finished_at=created,
                )
            )  # fmt: skip
            session.flush()
            for a in session.query(AttemptRow).filter(AttemptRow.run_id == src.id).all():
                clone = {c.name: getattr(a, c.name) for c in AttemptRow.__table__.columns}
                clone |= {"id": f"{new_id}-{a.id[-8:]}", "run_id": new_id,
                          "idempotency_key": f"{new_id}-{a.idempotency_key}"}  # fmt: skip
                session.add(AttemptRow(**clone))
            for e in session.query(RunEventRow).filter(RunEventRow.run_id == src.id).all():
                session.add(
                    RunEventRow(run_id=new_id, seq=e.seq, node=e.node, kind=e.kind,
                                payload=e.payload, at=created)
                )  # fmt: skip
    return {"run": sources[0], "thread": thread["id"]}


def timed(
    client: Any, path: str, repeat: int, headers: dict[str, str] | None = None
) -> list[float]:
    for _ in range(2):
        response = client.get(path, headers=headers or {})
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path, headers=headers or {})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description="studio page server time at N runs")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bl-studio-bench-")) / "data"
    os.environ["BRANDLOOP_DATA_DIR"] = str(data_dir)
    os.environ["BRANDLOOP_API_LOG_JSON"] = "false"

    from fastapi.testclient import TestClient

    from brandloop.api.app import create_app
    from brandloop.api.auth import create_key
    from brandloop.api.config import ApiSettings
    from brandloop.api.studio.sessions import create_link
    from brandloop.registry.db import Database
    from brandloop.settings import get_settings

    settings = get_settings()
    db = Database.from_settings(settings)
    app = create_app(
        settings,
        ApiSettings(workers=2, rate_limit_per_minute=10**6, rate_limit_burst=10**6),
        database=db,
    )
    with TestClient(app) as client:
        with db.session() as session:
            _, key = create_key(session, tenant="A", role="admin")
            token = create_link(session, tenant="A", principal="bench", role="admin")
        headers = {"Authorization": f"Bearer {key}"}
        made = seed(client, headers, db, args.runs)
        page = client.get(f"/signin/link?token={token}").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        client.post("/signin/link", data={"token": token, "csrf": csrf})
        with db.session() as session:
            from brandloop.registry.models import RunRow

            total = session.query(RunRow).filter(RunRow.tenant == "A").count()
        run_page = client.get(f"/runs/{made['run']}").text
        sha = re.search(r"/thumbs/1024/([0-9a-f]{64})", run_page).group(1)  # type: ignore[union-attr]
        pages = [
            "/chat", f"/chat/{made['thread']}", "/runs", "/runs?page=5",
            "/runs?brand=Acme+Coffee&status=succeeded", f"/runs/{made['run']}", "/review",
            f"/review/{made['run']}", "/review/pairwise", "/agreement", "/templates",
            "/templates/brand-hero?a=1&b=1", "/campaigns", "/brands", "/brands/Acme Coffee",
            "/evals", "/costs", f"/thumbs/256/{sha}", f"/thumbs/1024/{sha}",
        ]  # fmt: skip
        print(f"{total} runs of tenant A; {args.repeat} timed requests per page after 2 warm-ups")
        print(f"{'page':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        worst = 0.0
        for path in pages:
            samples = timed(client, path, args.repeat)
            p95 = statistics.quantiles(samples, n=20)[18]
            worst = max(worst, p95)
            flag = "" if p95 < BUDGET_MS else "  OVER"
            print(
                f"{path[:48]:<48} {statistics.median(samples):8.1f} {p95:8.1f} "
                f"{max(samples):8.1f}{flag}"
            )
        base = timed(client, "/v1/runs?limit=24", args.repeat, headers)
        print(
            f"{'baseline: GET /v1/runs?limit=24 (JSON)':<48} {statistics.median(base):8.1f} "
            f"{statistics.quantiles(base, n=20)[18]:8.1f} {max(base):8.1f}"
        )
        verdict = "every page under" if worst < BUDGET_MS else "NOT every page under"
        print(f"{verdict} {BUDGET_MS:.0f} ms at p95 (worst p95 {worst:.1f} ms)")


if __name__ == "__main__":
    main()
