"""What the cross-process lock of the embedded brand memory costs a recall.

One brand's memory of ``--prompts`` accepted prompts (a quarter of them in one campaign) on
an on-disk Chroma, opened as every entry point opens it (``make_chroma_store``: a
``LocalChroma`` behind ``<chroma dir>/brandloop-memory.lock``). Timed, interleaved query by
query so machine load hits each alike, each with the shipped MiniLM embedding the query:

- ``locked``: ``BrandMemory.recall(..., campaign_id=...)`` through the lock, as shipped;
- ``baseline``: the same recall on the same client without the lock (the code before it: what
  one process alone would do);
- ``lock alone``: taking and releasing the lock around nothing;
- ``after a foreign write``: a recall after another process wrote (simulated by a new token
  in the lock file), which reopens the client and reloads the index from disk.

Usage: .venv/bin/python benchmarks/memory_lock.py [--prompts 200] [--queries 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=_count, default=200)
    parser.add_argument("--queries", type=_count, default=100)
    args = parser.parse_args()

    from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction
    from brandloop.memory.shared import LOCK_NAME, LocalChroma
    from brandloop.memory.store import make_chroma_store
    from brandloop.settings import Settings

    ef = MiniLMEmbeddingFunction()
    store = make_chroma_store(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bl-lock-"))))
    if not isinstance(store, LocalChroma):
        sys.exit("benchmarks/memory_lock.py: unset BRANDLOOP_CHROMA_HOST (it times the disk store)")
    memory = BrandMemory(store, ef)
    for i in range(args.prompts):
        memory.remember_prompt(
            tenant="acme_co", brand="brand_1", prompt=f"a coffee cup, autumn light, take {i}",
            model="m", seed=i, template="t", run_id=f"run_{i}",
            campaign_id="fall" if i % 4 == 0 else None, scores={"composite": 0.8},
        )  # fmt: skip

    def recall(on: BrandMemory) -> Callable[[], Any]:
        return lambda: on.recall(
            tenant="acme_co", brand="brand_1", query="a warm coffee cup", campaign_id="fall"
        )

    def nothing() -> None:
        with store.access(write=False):
            pass

    locked: list[float] = []
    baseline: list[float] = []
    alone: list[float] = []
    recall(memory)()  # warm-up: load the index
    for _ in range(args.queries):
        unlocked = BrandMemory(store.client, ef)  # the client as it is now, no lock
        locked.append(_ms(recall(memory)))
        baseline.append(_ms(recall(unlocked)))
        alone.append(_ms(nothing))
    fd = os.open(store.path / LOCK_NAME, os.O_RDWR)
    reopened: list[float] = []
    for _ in range(min(args.queries, 30)):
        os.pwrite(fd, uuid.uuid4().hex.encode(), 0)  # what another process's write leaves
        reopened.append(_ms(recall(memory)))
    os.close(fd)
    print(f"{args.prompts} prompts, recall with a campaign, medians of {args.queries}:")
    print(f"  locked {statistics.median(locked):.2f} ms")
    print(f"  baseline (same client, no lock) {statistics.median(baseline):.2f} ms")
    print(f"  lock alone {statistics.median(alone) * 1000:.1f} us")
    print(
        f"  after a foreign write (reopen) {statistics.median(reopened):.2f} ms "
        f"({store.reopened} reopens)"
    )


if __name__ == "__main__":
    main()
