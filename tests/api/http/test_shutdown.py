"""Shutting down with work in flight: a job being prepared in a thread when the app stops
finishes its registry work before the pool is closed, and no connection is left open (the
PostgreSQL check in tests/conftest.py fails a test that leaves one)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.jobs.worker import settled_in_thread
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, both_databases

settings = pytest.fixture(name="settings")(both_databases)

GEN = {"brief": "a steaming cup on a wooden table", "brand": "Acme Coffee", "size": "256x256"}


def test_cancelling_waits_for_the_thread_to_finish():
    release = threading.Event()
    finished: list[str] = []

    def registry_write() -> str:
        release.wait(5)
        finished.append("written")
        return "done"

    async def scenario() -> None:
        task = asyncio.create_task(settled_in_thread(registry_write))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.1)
        assert not task.done(), "the cancelled task gave up while its thread still ran"
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["written"]

    asyncio.run(scenario())


def test_settled_in_thread_returns_and_raises_like_the_function():
    assert asyncio.run(settled_in_thread(lambda a, b: a + b, 2, 3)) == 5
    with pytest.raises(ZeroDivisionError):
        asyncio.run(settled_in_thread(lambda: 1 / 0))


def test_wait_idle_waits_for_a_session_in_another_thread(db: Database):
    checked_out = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with db.session() as session:
            session.connection()
            checked_out.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert checked_out.wait(5)
    started = time.monotonic()
    assert db.wait_idle(0.2) is False
    assert time.monotonic() - started >= 0.2
    threading.Timer(0.2, release.set).start()
    assert db.wait_idle(5) is True
    holder.join(5)


def test_stopping_right_after_a_submission_leaves_nothing_open(
    make_client: Callable[..., TestClient], keys: Keys, acme: object
):
    creator = keys["A", "creator"]
    for _ in range(6):  # the app stops while the job is claimed and prepared in a thread
        client = make_client()
        response = client.post("/v1/generations", json=GEN, headers=creator)
        assert response.status_code == 202, response.text
        client.__exit__(None, None, None)


def test_a_serving_app_keeps_its_startup_heap_out_of_full_collections(
    settings: Settings, db: Database
) -> None:
    """``brandloop serve`` freezes what startup made (a full collection walking the imported
    agent stalled every request in flight for 150-480 ms); an app that stops unfreezes it."""
    from brandloop.api.app import create_app
    from brandloop.api.config import ApiSettings

    assert gc.get_freeze_count() == 0
    for freeze in (False, True):
        app = create_app(
            settings, ApiSettings(workers=0), use_memory=False, database=db, freeze_heap=freeze
        )

        async def serve(app: Any = app) -> int:
            async with app.router.lifespan_context(app):
                return gc.get_freeze_count()

        frozen = asyncio.run(serve())
        assert (frozen > 10_000) is freeze, frozen
        assert gc.get_freeze_count() == 0
