"""The queue between job submission and the workers: an interface, and the in-process default.

The durable record is the ``jobs`` table; the queue only carries job ids to whoever runs them.
A Celery (or any broker) queue implements the same two methods and the workers stay as they are.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable


@runtime_checkable
class JobQueue(Protocol):
    """Carries job ids from the API to a worker; at-least-once is enough (claims are atomic)."""

    async def put(self, job_id: str) -> None: ...

    async def get(self) -> str: ...

    def qsize(self) -> int: ...


class InProcessQueue:
    """The embedded default: an ``asyncio.Queue`` in the serving process."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, job_id: str) -> None:
        self._queue.put_nowait(job_id)

    async def get(self) -> str:
        return await self._queue.get()

    def qsize(self) -> int:
        return self._queue.qsize()
