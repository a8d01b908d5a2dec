"""The batched reader of the hottest routes (``api/reads.py``): answers, errors and context come
back to the caller; reads queued while a thread is busy go as one batch; a slow read holds up
neither the loop nor the other thread; after ``close`` it still answers."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from brandloop.api.reads import BatchedReads

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.fixture
def reads():
    reader = BatchedReads(threads=1)
    yield reader
    reader.close()


async def test_answers_errors_and_the_callers_context_come_back(reads: BatchedReads) -> None:
    assert await reads.run(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(KeyError, match="missing"):
        await reads.run({}.__getitem__, "missing")
    REQUEST_ID.set("req-7")
    assert await reads.run(REQUEST_ID.get) == "req-7"
    assert await reads.run(threading.current_thread) is not threading.current_thread()


async def test_reads_queued_while_the_thread_is_busy_go_as_one_batch(reads: BatchedReads) -> None:
    gate = threading.Event()
    first = asyncio.ensure_future(reads.run(gate.wait, 5))
    while reads.batches == 0:  # the thread has taken the first read and is blocked in it
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(reads.run(lambda i=i: i * i)) for i in range(10)]
    await asyncio.sleep(0.02)
    assert not any(r.done() for r in rest)
    gate.set()
    assert await first is True
    assert await asyncio.gather(*rest) == [i * i for i in range(10)]
    assert (reads.batches, reads.reads) == (2, 11)


async def test_a_slow_read_does_not_hold_up_the_other_thread() -> None:
    reader = BatchedReads(threads=2)
    gate = threading.Event()
    try:
        slow = asyncio.ensure_future(reader.run(gate.wait, 5))
        while reader.batches == 0:
            await asyncio.sleep(0.001)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.run(lambda: "quick"), 2) == "quick"
        assert time.monotonic() - started < 1
        assert not slow.done()
        gate.set()
        assert await slow is True
    finally:
        gate.set()
        reader.close()


async def test_a_caller_that_goes_away_does_not_break_the_batch(reads: BatchedReads) -> None:
    gate = threading.Event()
    first = asyncio.ensure_future(reads.run(gate.wait, 5))
    while reads.batches == 0:
        await asyncio.sleep(0.001)
    ran: list[int] = []
    gone = asyncio.ensure_future(reads.run(ran.append, 1))
    kept = asyncio.ensure_future(reads.run(lambda: "kept"))
    await asyncio.sleep(0.01)
    gone.cancel()
    gate.set()
    assert await kept == "kept"
    assert await first is True
    assert gone.cancelled() and ran == []  # skipped: nobody waited for it


async def test_after_close_the_threads_are_gone_and_reads_still_answer() -> None:
    reader = BatchedReads(threads=2, name="closing-reads")
    assert await reader.run(lambda: 1) == 1
    assert any(t.name.startswith("closing-reads-") for t in threading.enumerate())
    reader.close()
    assert not any(t.name.startswith("closing-reads-") for t in threading.enumerate())
    assert await reader.run(lambda: 2) == 2  # through asyncio.to_thread


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BatchedReads(threads=0)
