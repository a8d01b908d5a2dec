"""Registry reads of the hottest routes, run off the event loop in batches.

``asyncio.to_thread`` costs the loop a hand-off per call: an executor submit, a wake-up of a
worker, then a ``call_soon_threadsafe`` (a write to the loop's self-pipe) to hand the answer
back. Under load that hop costs more than the read itself (issue 18 part 3: the floor route
with its read on the loop served 1.6x the requests of the same route with ``to_thread``).

``BatchedReads`` keeps a few threads of its own. A caller queues its read and waits; a thread
that wakes takes everything queued by then, runs it in order, and hands all the answers back
with one wake-up of the loop. At low load a batch is one read and it costs what ``to_thread``
costs; at 16 concurrent requests, a batch carries several, and the loop pays one hop for them.

The reads still run in a thread, never on the loop, so a slow registry stalls no other request
(``tests/api/http/test_no_blocking.py``). With ``threads`` threads, one slow read holds up at
most the reads queued behind it in its own batch; the other threads go on taking new work.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]


class BatchedReads:
    """Run blocking reads in ``threads`` threads of its own, answering in batches."""

    def __init__(self, threads: int = 2, *, name: str = "brandloop-reads") -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self._threads_wanted = threads
        self._name = name
        self._queue: deque[_Item] = deque()
        self._ready = threading.Condition()
        self._idle = 0  # threads waiting for work
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.batches = 0  # batches taken so far (reads / batches = the hops saved per read)
        self.reads = 0

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` in one of the threads, in a copy of the caller's context (as
        ``asyncio.to_thread`` does); its result or its exception comes back here. After
        ``close`` it falls back to ``asyncio.to_thread``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._ready:
            if self._closed:
                closed = True
            else:
                closed = False
                self._queue.append((contextvars.copy_context(), fn, args, future))
                if self._idle:
                    self._ready.notify()
                elif len(self._threads) < self._threads_wanted:
                    self._start_thread()
        if closed:
            return await asyncio.to_thread(fn, *args)
        return await future

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the threads once the queued reads are done (callers of ``run`` after this
        fall back to ``asyncio.to_thread``)."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout_s)

    def _start_thread(self) -> None:  # with self._ready held
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._idle += 1
                    try:
                        self._ready.wait()
                    finally:
                        self._idle -= 1
                if not self._queue:  # closed and drained
                    return
                batch = list(self._queue)
                self._queue.clear()
                self.batches += 1
                self.reads += len(batch)
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
            answers = {}
            for context, fn, args, future in batch:
                if future.cancelled():  # the caller went away while it was queued
                    continue
                try:
                    answer = (future, True, context.run(fn, *args))
                except BaseException as exc:  # handed to the caller, raised there
                    answer = (future, False, exc)
                answers.setdefault(future.get_loop(), []).append(answer)
            for loop, settled in answers.items():
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the loop: hand each answer of a batch to its caller."""
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
