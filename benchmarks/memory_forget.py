"""What rebuilding the on-disk store's SQLite file costs a ``forget``.

One brand's memory of ``--records`` style notes (random 384-dimension vectors, texts of about
60 characters, as ``memory add`` stores them) on an on-disk Chroma opened as every entry
point opens it (``make_chroma_store``). Each of ``--forgets`` rounds forgets one note by id,
timed two ways, alternately, so machine load hits both alike:

- ``forget``: ``BrandMemory.forget(record_id=...)`` as shipped: Chroma's delete, then
  ``VACUUM`` of chroma.sqlite3 (the deleted text is gone from the file);
- ``baseline``: Chroma's own ``collection.delete`` of one record, what forget did before
  (the deleted text stays in the file's free space).

Usage: .venv/bin/python benchmarks/memory_forget.py [--records 2000] [--forgets 10]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=_count, default=2000)
    parser.add_argument("--forgets", type=_count, default=10)
    args = parser.parse_args()

    from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction
    from brandloop.memory.shared import SQLITE_NAME, LocalChroma
    from brandloop.memory.store import collection_name, make_chroma_store
    from brandloop.settings import Settings

    store = make_chroma_store(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bl-forget-"))))
    if not isinstance(store, LocalChroma):
        sys.exit(
            "benchmarks/memory_forget.py: unset BRANDLOOP_CHROMA_HOST (it times the disk store)"
        )
    memory = BrandMemory(store, MiniLMEmbeddingFunction())
    rng = random.Random(6)
    total = args.records + 2 * args.forgets
    ids = [f"note-{i:032x}" for i in range(total)]
    for start in range(0, total, 500):
        batch = ids[start : start + 500]
        memory.put_records(
            tenant="bench", brand="brand_bench", kind="note", ids=batch,
            embeddings=[[rng.gauss(0, 1) for _ in range(384)] for _ in batch],
            documents=[f"note {i}: warm wood, soft morning light, no neon {rng.random()}" for i in batch],
            metadatas=[{"kind": "note", "created_at": 0.0} for _ in batch],
        )  # fmt: skip
    size = (store.path / SQLITE_NAME).stat().st_size
    shipped: list[float] = []
    baseline: list[float] = []
    victims = iter(ids[args.records :])
    for _ in range(args.forgets):
        start = time.perf_counter()
        memory.forget(tenant="bench", brand="brand_bench", record_id=next(victims))
        shipped.append((time.perf_counter() - start) * 1000)
        with memory.exclusive():
            collection = memory.client.get_collection(
                collection_name("bench", "brand_bench", "note")
            )
            start = time.perf_counter()
            collection.delete(ids=[next(victims)])
            baseline.append((time.perf_counter() - start) * 1000)
    print(f"{args.records} notes, chroma.sqlite3 {size / 1e6:.1f} MB, {args.forgets} forgets each")
    for name, times in (
        ("forget (delete + VACUUM)", shipped),
        ("baseline (delete only)", baseline),
    ):
        print(f"  {name:26} median {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms")


if __name__ == "__main__":
    main()
