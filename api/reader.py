"""Registry reads off the event loop, served in batches by threads of their own.

The hottest read of the API (``GET /v1/runs/{id}``) is one indexed statement: on the event
loop it would block it (issue 18 part 3), and through ``asyncio.to_thread`` the hop costs more
than the read. A :class:`BatchedReader` keeps a few threads waiting on one queue. A request
puts its read there and awaits a future; a thread that wakes takes every read waiting (not
only the first), runs them one after the other, and hands all the answers back to the loop
with one ``call_soon_threadsafe``. Under concurrent load one wake-up on each side serves many
requests, where the executor pays two per request; with one request at a time it costs what
``to_thread`` does. More than one thread keeps a slow read (a PostgreSQL round trip, a
locked SQLite page) from holding up the reads queued behind it: the next one wakes and takes
them.

Each read runs in a copy of the caller's context (as ``to_thread`` does), and its exception
is raised to the awaiting request.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_R = TypeVar("_R")
#: A read waiting for a thread: its loop, the function with its arguments, the caller's
#: context and the future the request awaits.
_Work = tuple[asyncio.AbstractEventLoop, Callable[..., Any], tuple[Any, ...],
              contextvars.Context, "asyncio.Future[Any]"]  # fmt: skip
#: An answer handed back to the loop: the future, its result, the exception raised instead.
_Done = tuple["asyncio.Future[Any]", Any, BaseException | None]

_STOP = None


class BatchedReader:
    """``threads`` threads (named ``name-N``) running the reads given to :meth:`run`."""

    def __init__(self, *, threads: int = 2, name: str = "brandloop-reader") -> None:
        if threads < 1:
            raise ValueError(f"a reader needs at least one thread, got {threads}")
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, fn: Callable[..., _R], *args: Any) -> _R:
        """``fn(*args)`` in one of the reader's threads; its result or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_R] = loop.create_future()
        self._queue.put((loop, fn, args, contextvars.copy_context(), future))
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads once the reads already queued are done."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stopping = False
            while True:  # every read waiting now, answered with one wake-up of each loop
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stopping = True
                    break
                batch.append(more)
            answers: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
            for loop, fn, args, context, future in batch:
                try:
                    answer: _Done = (future, context.run(fn, *args), None)
                except BaseException as exc:  # raised again in the awaiting request
                    answer = (future, None, exc)
                answers.setdefault(loop, []).append(answer)
            for loop, done in answers.items():
                try:
                    loop.call_soon_threadsafe(_settle, done)
                except RuntimeError:  # the loop closed while the reads ran: nobody waits
                    log.debug("reader answers dropped: the event loop is closed")
            if stopping:
                return


def _settle(done: list[_Done]) -> None:
    """On the loop: hand each request its answer (one whose request went away is dropped)."""
    for future, result, error in done:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
