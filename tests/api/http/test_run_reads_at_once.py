"""``GET /v1/runs/{id}`` read by many requests at once: the reader's threads answer them in
batches (``api/reader.py``), and each request gets its own run, its own 404, and never another
request's answer or another tenant's run, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from tests.api.http.conftest import Keys, assert_problem, brand_kit


def _run(client: TestClient, headers: dict[str, str], seed: int) -> str:
    job = client.post(
        "/v1/generations?wait=60",
        json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64", "seed": seed},
        headers=headers,
    ).json()
    assert job["state"] in ("succeeded", "failed"), job
    run_id: str = job["run_id"]
    return run_id


def test_reads_at_once_each_get_their_own_answer(client: TestClient, keys: Keys) -> None:
    for tenant in ("A", "b_2-X"):  # tenants differ in case and separators
        made = client.post("/v1/brands", json=brand_kit(), headers=keys[tenant, "admin"])
        assert made.status_code == 201, made.text
    ours = [_run(client, keys["A", "creator"], seed) for seed in (1, 2, 3)]
    theirs = _run(client, keys["b_2-X", "creator"], 4)
    viewer, other = keys["A", "viewer"], keys["b_2-X", "viewer"]
    asks: list[tuple[str, dict[str, str], int]] = [
        *[(run_id, viewer, 200) for run_id in ours],
        (theirs, other, 200),
        (theirs, viewer, 404),  # another tenant's run is not found, not forbidden
        (ours[0], other, 404),
        ("run_" + "0" * 32, viewer, 404),
    ]
    plan = [asks[i % len(asks)] for i in range(96)]
    random.Random(7).shuffle(plan)
    start = threading.Barrier(16)

    def ask(index: int) -> tuple[int, str, int, dict[str, Any]]:
        if index < 16:
            start.wait()
        run_id, headers, wanted = plan[index]
        response = client.get(f"/v1/runs/{run_id}", headers=headers)
        if wanted == 404:
            assert_problem(response, 404, "not-found")
        return index, run_id, response.status_code, response.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(len(plan))))
    for index, run_id, status, body in answers:
        assert status == plan[index][2], (run_id, status, body)
        if status == 200:
            assert body["run_id"] == run_id, (run_id, body)
        else:
            assert run_id in body["detail"], body
