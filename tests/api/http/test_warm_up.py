"""The models load at start, before the process takes work (``api/warmup.py``).

A fresh ``brandloop serve`` used to load its models on first use: its first submission waited
~7 s for the moderation classifier the door needs. Now it loads them in a thread of its own from
start; ``/readyz`` answers 503 ``warming: <what>`` until they are in (``/healthz`` stays 200),
names a model that failed to load, and the first submission loads nothing: every load in
``brandloop_model_load_seconds`` was made by the warm-up thread.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.api.jobs.store import FINAL_STATES
from brandloop.settings import Settings

if TYPE_CHECKING:
    from brandloop.api.warmup import Warmup
from tests.api.http.conftest import brand_kit
from tests.api.http.test_server import HTTP_TIMEOUT, env_for, free_port, make_key, server

LOAD_LINE = re.compile(r'^brandloop_model_loads\{loader="([^"]+)",thread="([^"]+)"\} (\S+)$', re.M)
CLASSIFIER = "brandloop.tools.moderation.semantic.classifier.default_semantic_layer"
EMBEDDINGS = "brandloop.memory.embeddings.MiniLMEmbeddingFunction"
LEXICON = "brandloop.tools.moderation.lexicon.default_lexicon"
WARMUP_THREAD = "brandloop-warmup"  # api/warmup.py (its name in the metric is part of the contract)


def wait_ready(client: httpx.Client | TestClient, timeout: float = 180.0) -> list[str]:
    """Poll ``/readyz`` until it answers 200; the ``models`` check of each 503 seen before."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/readyz")
        if answer.status_code == 200:
            return seen
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        seen.append(answer.json()["checks"].get("models", ""))
        assert client.get("/healthz").status_code == 200  # the process answers meanwhile
        assert time.monotonic() < deadline, seen[-3:]
        time.sleep(0.05)


@pytest.mark.server
@pytest.mark.slow
def test_a_served_process_warms_up_and_its_first_submission_loads_nothing(
    tmp_path: Path, database_url: str | None
) -> None:
    env = env_for(tmp_path / "data", database_url, BRANDLOOP_WARM_UP="true")  # as served
    admin = make_key(env, "acme", "admin")
    port = free_port()
    with (
        server(env, port, tmp_path / "server.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT) as client,
    ):
        # how far the warm-up is when the server first answers depends on the machine: not
        # ready, it says it is warming (which models: test_readyz_says_warming_... below)
        first = client.get("/readyz")
        if first.status_code != 200:
            assert first.status_code == 503, first.text
            assert "models warming: " in first.json()["detail"], first.json()
        seen = wait_ready(client)
        assert all(s.startswith("warming: ") for s in seen), seen
        assert client.get("/readyz").json()["checks"]["models"] == "ok"

        assert client.post("/v1/brands", json=brand_kit(), headers=admin).status_code == 201
        created = client.post(
            "/v1/generations",
            json={"brief": "a steaming cup", "brand": "Acme Coffee", "size": "256x256"},
            headers=admin,
        )
        assert created.status_code == 202, created.text
        job_url = f"/v1/jobs/{created.json()['id']}"
        deadline = time.monotonic() + 120
        while client.get(job_url, headers=admin).json()["state"] not in FINAL_STATES:
            assert time.monotonic() < deadline
            time.sleep(0.2)

        metrics = client.get("/metrics", headers=admin).text
    loads = LOAD_LINE.findall(metrics)
    assert {CLASSIFIER, EMBEDDINGS, LEXICON} <= {loader for loader, _, _ in loads}, loads
    assert all(float(count) == 1 for _, _, count in loads), loads
    # neither the submission at the door nor its job loaded a model: the warm-up had
    assert [(lo, th) for lo, th, _ in loads if th != WARMUP_THREAD] == [], loads
    # and left the app and its models out of later garbage collections (each full collection
    # walked them all, 70-100 ms with the loop stopped: a GET's p99 went from 10 ms to 40 ms)
    frozen = re.search(r"^brandloop_gc_frozen_objects (\S+)$", metrics, re.M)
    assert frozen is not None and float(frozen.group(1)) > 100_000, frozen


def test_the_warm_up_freezes_what_it_loaded_only_when_asked(settings: Settings) -> None:
    from brandloop.api.warmup import Warmup

    kept: list[object] = []

    def big_model() -> None:
        kept.extend({"weight": i} for i in range(50_000))

    assert gc.get_freeze_count() == 0
    Warmup([("unfrozen model", lambda: None)]).run()
    assert gc.get_freeze_count() == 0  # a test's process (or anything not serving) stays as is
    try:
        Warmup([("big model", big_model)], freeze=True).run()
        assert gc.get_freeze_count() >= 50_000
        assert len(kept) == 50_000
    finally:
        gc.unfreeze()


def _app(settings: Settings, warmup: Warmup) -> TestClient:
    """An app as ``brandloop serve`` builds it: with a warm-up of the given models."""
    api = ApiSettings(workers=1, rate_limit_per_minute=100_000, rate_limit_burst=10_000)
    return TestClient(create_app(settings, api, use_memory=False, warmup=warmup))


def test_readyz_says_warming_until_the_models_are_loaded(settings: Settings) -> None:
    from brandloop.api.warmup import Warmup

    release = threading.Event()
    warmup = Warmup([("slow model", lambda: release.wait(60)), ("quick model", lambda: None)])
    with _app(settings, warmup) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"]["models"] == "warming: slow model, quick model"
        assert "models warming: slow model, quick model" in answer.json()["detail"]
        assert client.get("/healthz").status_code == 200
        release.set()
        wait_ready(client, timeout=30)
        assert client.get("/readyz").json()["checks"]["models"] == "ok"


def test_a_model_that_fails_to_load_keeps_readyz_not_ready_and_says_which(
    settings: Settings,
) -> None:
    from brandloop.api.warmup import Warmup

    def broken() -> None:
        raise OSError("no such file: classifier.json")

    warmup = Warmup([("broken model", broken), ("good model", lambda: None)])
    with _app(settings, warmup) as client:
        deadline = time.monotonic() + 30
        while (answer := client.get("/readyz")).json()["checks"]["models"].startswith("warming"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert answer.status_code == 503
        assert answer.json()["checks"]["models"] == "failed: broken model (OSError)"
        assert "models failed: broken model (OSError)" in answer.json()["detail"]
        assert client.get("/healthz").status_code == 200  # the process stays up to say so
