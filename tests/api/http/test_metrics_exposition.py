"""``/metrics`` is valid exposition: each series once, money without float noise.

An outside tester saw ``brandloop_attempts_total{outcome="accepted",provider="procedural"}``
several times with different values (the rows were counted per model and cache hit, and each
was written under its provider) and ``brandloop_cost_usd_total 2.749999999999999``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, brand_kit


def test_each_series_is_listed_once_and_money_is_rounded(
    make_client: Callable[..., TestClient], keys: Keys
) -> None:
    client = make_client()
    admin = keys["A", "admin"]
    assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
    for model in ("procedural/draft", "procedural/studio", "procedural/draft"):  # a repeat too
        body = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64", "seed": 3}
        job = client.post("/v1/generations?wait=60", json={**body, "model": model}, headers=admin)
        assert job.json()["state"] in ("succeeded", "failed"), job.text  # attempts either way
    text = client.get("/metrics", headers=admin).text
    samples = [line.rsplit(" ", 1)[0] for line in text.splitlines() if line and line[0] != "#"]
    assert any(s.startswith('brandloop_attempts_total{outcome="') for s in samples), text
    repeated = [name for name, n in Counter(samples).items() if n > 1]
    assert repeated == [], repeated
    cost = re.search(r"^brandloop_cost_usd_total (\S+)$", text, re.M)
    assert cost is not None and float(cost[1]) > 0
    assert len(cost[1].split(".")[-1].rstrip("0")) <= 6, cost[1]
