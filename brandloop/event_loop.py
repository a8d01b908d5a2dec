"""The event loop brandloop runs its agents and provider calls on: uvloop where it is installed
(a dependency everywhere uvloop is built, i.e. not on Windows), asyncio's own loop elsewhere.

Every loop the product starts comes from here: the CLI's runs (:func:`run`), the HTTP
service's agent loop and the Celery workers' job loop (:func:`new_event_loop`); uvicorn picks
uvloop for the serving loop by itself when it is installed. A provider call's client-side work
is mostly the event loop's and httpx's, and on uvloop the loop's share costs less
(``benchmarks/providers_throughput.py``, ``docs/providers.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not built for Windows
    uvloop = None  # type: ignore[assignment]

__all__ = ["new_event_loop", "run", "uses_uvloop"]

T = TypeVar("T")


def uses_uvloop() -> bool:
    """Do this process's loops run on uvloop?"""
    return uvloop is not None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop, not set as any thread's current loop: uvloop's where it is installed."""
    if uvloop is not None:
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop from :func:`new_event_loop` (Ctrl-C, shutting down the
    async generators and the default executor, all as ``asyncio.run`` does)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
