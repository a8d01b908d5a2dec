"""Brand memory that cannot be used at all, over HTTP: the memory routes answer 503
``memory-unavailable`` (they were a bare 500), and a generation job still succeeds without
memory (it ended failed, "the run failed", with a run link that answered 404)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
from tests.memory.faults import corrupt_embedded_store, dead_port

NOTE = "note-" + "0" * 32


def _memory_routes_answer_503(client: TestClient, keys: Keys) -> None:
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    answers = [
        client.post("/v1/memory/notes", json={"brand": "Acme Coffee", "text": "no neon"},
                    headers=creator),
        client.get("/v1/memory/search", params={"brand": "Acme Coffee", "q": "light"},
                   headers=viewer),
        client.get("/v1/memory/notes", params={"brand": "Acme Coffee"}, headers=viewer),
        client.delete(f"/v1/memory/notes/{NOTE}", params={"brand": "Acme Coffee"},
                      headers=creator),
    ]  # fmt: skip
    for response in answers:
        body = assert_problem(response, 503, "memory-unavailable")
        assert "Chroma" in body["title"] and "memory store (Chroma)" in body["detail"]


def _a_job_succeeds_without_memory(client: TestClient, keys: Keys, seed: int) -> None:
    creator = keys["A", "creator"]
    job = client.post(
        "/v1/generations",
        json={"brief": "a cup of coffee", "brand": "Acme Coffee", "size": "128x128",
              "seed": seed},
        headers=creator,
    ).json()  # fmt: skip
    final = wait_job(client, job["id"], creator)
    assert final["state"] == "succeeded", final
    run = client.get(final["links"]["run"], headers=keys["A", "viewer"])
    assert run.status_code == 200, run.text
    trace = client.get(f"/v1/runs/{final['run_id']}/trace", headers=keys["A", "viewer"]).json()
    decisions = [e for e in trace["events"] if e["kind"] == "decision"]
    shown = json.dumps(decisions)
    assert '"unavailable"' in shown and "brand memory is unavailable" in shown


def _acme_id(client: TestClient, keys: Keys) -> str:
    response = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return str(body["id"])


@pytest.fixture
def dead_chroma(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings (built after this) name a Chroma server nothing answers for."""
    monkeypatch.setenv("BRANDLOOP_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("BRANDLOOP_CHROMA_PORT", str(dead_port()))
    get_settings.cache_clear()


def test_a_chroma_server_that_is_down_is_a_503_and_stops_no_job(
    dead_chroma: None, make_client: Callable[..., TestClient], keys: Keys, seed: int
) -> None:
    client = make_client(use_memory=True)
    _acme_id(client, keys)
    _memory_routes_answer_503(client, keys)
    _a_job_succeeds_without_memory(client, keys, seed)


def test_a_corrupt_embedded_store_is_a_503_and_stops_no_job(
    settings: Settings,
    db: Database,
    make_client: Callable[..., TestClient],
    keys: Keys,
    seed: int,
) -> None:
    client = make_client(use_memory=True)
    brand_id = _acme_id(client, keys)
    corrupt_embedded_store(settings, brand_id, tenant="A")
    _memory_routes_answer_503(client, keys)
    _a_job_succeeds_without_memory(client, keys, seed)


@pytest.fixture
def chroma_path_a_file(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings (built after this) name a file as the on-disk Chroma store's directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    blocker = data_dir / "not-a-directory"
    blocker.write_text("a file\n")
    monkeypatch.setenv("BRANDLOOP_CHROMA_PATH", str(blocker))
    get_settings.cache_clear()


def test_a_chroma_path_that_is_a_file_is_a_503_and_stops_no_job(
    chroma_path_a_file: None, make_client: Callable[..., TestClient], keys: Keys, seed: int
) -> None:
    """An outside tester's BRANDLOOP_CHROMA_PATH of a file: GET /v1/memory/notes was a 500 and
    jobs failed with an internal error."""
    client = make_client(use_memory=True)
    _acme_id(client, keys)
    _memory_routes_answer_503(client, keys)
    _a_job_succeeds_without_memory(client, keys, seed)
