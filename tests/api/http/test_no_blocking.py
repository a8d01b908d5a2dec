"""No route or middleware blocks the event loop on the registry (issue 18, part 3).

The registry is made slow at its boundary: every statement the app's engine sends waits a
quarter of a second first (a SQLAlchemy ``before_cursor_execute`` hook on the test's own
engine, so the real database still answers). Each operation of the API is then called with
the key cache off (so the middleware looks the key up too), and while it waits on the slow
registry, ``GET /healthz`` on the same event loop must keep answering promptly. A handler or
middleware that ran a query on the loop would hold every other request for the length of that
query; one that runs it in the threadpool holds nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.conftest import Keys, brand_kit

SLOW_S = 0.25  # each statement, while the slow registry is on
PROMPT_S = SLOW_S  # a /healthz answer while a slow request is in flight: under one statement
FAKE = "0" * 64

#: a body that passes validation, so the request reaches the registry
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/generations"): {"brief": "a steaming cup", "brand": "Acme Coffee"},
    ("POST", "/v1/threads"): {"brand": "Acme Coffee", "title": "autumn"},
    ("POST", "/v1/threads/{thread_id}/messages"): {"content": "warmer"},
    ("POST", "/v1/campaigns"): {
        "name": "autumn",
        "brand": "Acme Coffee",
        "budget_usd": 1.0,
        "assets": [{"brief": "a steaming cup", "formats": ["256x256"]}],
    },
    ("POST", "/v1/brands"): brand_kit(),
    ("POST", "/v1/templates/{name}/versions"): {"body": "a photo of {{ subject }}"},
    ("POST", "/v1/templates/{name}/versions/{version}/review"): {"decision": "approve"},
    ("PUT", "/v1/templates/{name}/labels/{label}"): {"weights": {"1": 1.0}},
    ("POST", "/v1/memory/notes"): {"brand": "Acme Coffee", "text": "warm light"},
    ("POST", "/v1/review/runs/{run_id}"): {"decision": "approve"},
    ("POST", "/v1/review/runs/{run_id}/assign"): {"assignee": "bob"},
    ("PUT", "/v1/review/images/{sha256}/rating"): {"on_brand": 4, "usable": True},
    ("POST", "/v1/keys"): {"role": "viewer"},
}
PATH_VALUES = {
    "sha256": FAKE,
    "note_id": "note-" + "0" * 32,
    "version": "1",
    "label": "production",
    "name": "hero",
}
QUERIES = {
    "/v1/memory/search": {"brand": "Acme Coffee", "q": "warm"},
    "/v1/memory/notes": {"brand": "Acme Coffee"},
}
#: operations that answer without the registry
NO_REGISTRY = {("GET", "/healthz"), ("GET", "/metrics")}


class SlowRegistry:
    """Every statement of ``engine`` waits ``SLOW_S`` first while on; counts what it slowed."""

    def __init__(self, db: Database, delay_s: float = SLOW_S) -> None:
        self.delay_s = delay_s
        self.on = False
        self.slowed = 0
        self.on_loop: list[str] = []  # statements sent from the event loop's own thread
        self.loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        event.listen(db.engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread() is self.loop_thread:
            frames = traceback.extract_stack()[:-1]
            ours = [
                f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                for f in frames
                if "/brandloop/" in f.filename or "/api/" in f.filename
            ]
            self.on_loop.append(f"{statement[:60]!r} from {' < '.join(reversed(ours[-4:]))}")
        if self.on:
            with self._lock:
                self.slowed += 1
            time.sleep(self.delay_s)


def operations(app: Any) -> Iterator[tuple[str, str]]:
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            yield method.upper(), path


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    while "{" in path:  # any other id: one that does not exist
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "missing" + path[end + 1 :]
    return path


async def probe_while(task: asyncio.Task[httpx.Response], client: httpx.AsyncClient) -> list[float]:
    """``GET /healthz`` again and again while ``task`` runs: how long each took."""
    took = []
    while not task.done():
        started = time.perf_counter()
        response = await client.get("/healthz")
        took.append(time.perf_counter() - started)
        assert response.status_code == 200
        await asyncio.sleep(0.02)
    return took


@pytest.mark.slow
def test_no_operation_blocks_the_loop_while_the_registry_is_slow(
    settings: Settings, db: Database, keys: Keys
) -> None:
    app = create_app(
        settings,
        ApiSettings(
            workers=0,
            key_cache_seconds=0,  # every request looks its key up: the middleware is tested too
            rate_limit_per_minute=100_000,
            rate_limit_burst=10_000,
            max_wait_seconds=0,
        ),
        use_memory=False,
        database=db,
    )
    headers = keys["A", "admin"]
    slow = SlowRegistry(db)
    blocked: list[str] = []
    reached: set[tuple[str, str]] = set()

    async def scenario() -> None:
        slow.loop_thread = threading.current_thread()
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            made = await client.post("/v1/brands", json=brand_kit(), headers=headers)
            assert made.status_code == 201, made.text
            for method, path in operations(app):
                if (method, path) in NO_REGISTRY:
                    continue
                for attempt in (1, 2):  # a second try tells a stalled machine from a stall
                    slow.slowed = 0
                    slow.on = True
                    task = asyncio.ensure_future(
                        client.request(
                            method,
                            concrete(path),
                            params=QUERIES.get(path),
                            json=BODIES.get((method, path)),
                            headers=headers,
                        )
                    )
                    await asyncio.sleep(0.05)  # let it reach the registry
                    took = await probe_while(task, client)
                    response = task.result()
                    slow.on = False
                    assert response.status_code < 500, f"{method} {path}: {response.text[:300]}"
                    if slow.slowed:
                        reached.add((method, path))
                    if not took or max(took) < PROMPT_S:
                        break
                    if attempt == 2:
                        blocked.append(
                            f"{method} {path} ({response.status_code}): /healthz took "
                            f"{max(took) * 1000:.0f} ms, {slow.slowed} slow statement(s)"
                        )

    asyncio.run(scenario())
    assert not slow.on_loop, "statements sent on the event loop:\n" + "\n".join(slow.on_loop)
    assert not blocked, "blocked the event loop:\n" + "\n".join(blocked)
    every = {op for op in operations(app) if op not in NO_REGISTRY}
    assert every - reached == set(), f"never reached the registry: {sorted(every - reached)}"


@contextlib.contextmanager
def heap_frozen() -> Iterator[list[float]]:
    """The test process's heap so far (thousands of tests' objects in an xdist worker) moved out
    of the collector's reach while a measurement runs, and how long each collection in it took:
    a full collection of that heap stops every thread for up to a second in CI, which is the
    test runner's cost, not the serving loop being held."""
    pauses: list[float] = []
    started: list[float] = []

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append(time.perf_counter() - started[0])

    gc.collect()
    gc.freeze()
    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)
        gc.unfreeze()


JOB_SLOW_S = 0.03  # each statement of a running job (an agent run sends a few hundred)


@pytest.mark.slow
def test_a_running_job_never_holds_the_serving_loop(
    settings: Settings, db: Database, keys: Keys
) -> None:
    """The in-process workers' agents run on a loop of their own: while a job runs on the slow
    registry, none of its statements is sent from the serving loop's thread, and ``/healthz``
    keeps answering (an agent on the serving loop held it for every statement, and for its
    rendering, moderation and scoring between them)."""
    app = create_app(
        settings,
        ApiSettings(workers=1, rate_limit_per_minute=100_000, rate_limit_burst=10_000),
        use_memory=False,
        database=db,
    )
    headers = keys["A", "admin"]
    slow = SlowRegistry(db, delay_s=JOB_SLOW_S)
    took: list[float] = []

    async def scenario() -> dict[str, Any]:
        slow.loop_thread = threading.current_thread()
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            for kit in ("acme-coffee", "nordlys-outdoor"):
                made = await client.post("/v1/brands", json=brand_kit(kit), headers=headers)
                assert made.status_code == 201, made.text

            async def submit(brief: str, brand: str) -> str:
                submitted = await client.post(
                    "/v1/generations",
                    json={"brief": brief, "brand": brand, "size": "64x64"},
                    headers=headers,
                )
                assert submitted.status_code == 202, submitted.text
                return str(submitted.json()["id"])

            async def finished(job_id: str) -> dict[str, Any]:
                while True:
                    job: dict[str, Any] = (
                        await client.get(f"/v1/jobs/{job_id}", headers=headers)
                    ).json()
                    if job["state"] in ("succeeded", "failed", "cancelled"):
                        return job
                    await asyncio.sleep(0.1)

            # one job first, registry at full speed: the worker's one-off start (imports, model
            # loads in its thread, which hold the GIL) is not what this test is about. Another
            # brand's, so the measured run is still its brand's first (no spend history for the
            # stopping rule's cap, as before the warm-up)
            await asyncio.wait_for(
                finished(await submit("a tent by a lake", "Nordlys Outdoor")), 120
            )
            slow.on = True
            job_id = await submit("a steaming cup", "Acme Coffee")
            waiting = asyncio.ensure_future(asyncio.wait_for(finished(job_id), 120))
            took.extend(await probe_while(waiting, client))
            slow.on = False
            return waiting.result()

    with heap_frozen() as pauses:
        job = asyncio.run(scenario())
    assert job["state"] == "succeeded", job
    assert slow.slowed > 20, f"the job sent only {slow.slowed} statements: nothing was tested"
    assert not slow.on_loop, "a running job sent statements on the serving loop:\n" + "\n".join(
        slow.on_loop[:20]
    )
    assert took and max(took) < PROMPT_S, (
        f"/healthz took up to {max(took) * 1000:.0f} ms "
        f"(longest garbage collection meanwhile: {max(pauses, default=0) * 1000:.0f} ms)"
    )
