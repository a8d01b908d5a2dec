"""Brand memory recall latency as a brand's history grows, beside Chroma's own unfiltered query.

For each size (records per brand: 80% accepted prompts, 10% notes, 10% image descriptors) one
brand's memory, opened as a run opens it (the on-disk store behind the data dir's lock,
``LocalChroma``), is filled through ``BrandMemory.put_records`` (the exact-identity layout: one
collection per kind) and, for the baseline, the same records go into one plain collection with the same index
settings (cosine, index flushed on every write).

Timed, each with the shipped MiniLM embedding function embedding the query text:

- ``recall``: ``BrandMemory.recall(tenant, brand, query, k=5)``, the real code path the
  planner calls (opens and checks the prompt and note collections, two unfiltered queries);
- ``recall+campaign``: the same with ``campaign_id`` (one of 50 campaigns, ~800 prompts at
  50k: the campaign's prompts come first; since session 27 they are read from the campaign's
  own collection, unfiltered, before they were a ``where`` on ``campaign_id``);
- ``baseline``: what a user writes by hand: ``collection.query(query_texts=[q], n_results=5)``
  on one unfiltered collection holding all of the brand's records;
- ``before``: the slug-keyed layout's recall (one collection, ``where`` on ``kind``, as the
  store did before exact identity), on the baseline's collection.

After the timings, ``split`` times ``BrandMemory.split_campaigns(rebuild=True)`` on the filled
brand: what ``brandloop memory rekey`` costs a brand of that size written before campaign
collections (copying each campaign record, vector included, to its campaign's collection;
rebuild also drops and refills them). "not measured" on a tree without it.

Record texts are made up; their vectors are real MiniLM embeddings of a pool of texts, each
nudged by a little noise so no two records are the same (embedding 50k texts here would take
minutes). Queries are other made-up briefs, embedded by the code under test each time.

Usage: .venv/bin/python benchmarks/memory_recall.py [--sizes 1000,10000,50000] [--queries 60]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

ADJECTIVES = [
    "warm",
    "cool",
    "bold",
    "soft",
    "bright",
    "muted",
    "rustic",
    "sleek",
    "cosy",
    "crisp",
    "vivid",
    "calm",
]
SUBJECTS = [
    "latte",
    "espresso",
    "croissant",
    "mug",
    "beans",
    "kettle",
    "cafe",
    "barista",
    "pastry",
    "grinder",
]
SCENES = [
    "morning",
    "table",
    "window",
    "street",
    "counter",
    "garden",
    "kitchen",
    "market",
    "terrace",
    "studio",
]
STYLES = [
    "flat lay",
    "close-up",
    "wide shot",
    "top view",
    "poster",
    "banner",
    "still life",
    "portrait",
]


def text(rng: random.Random) -> str:
    return (
        f"{rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)} on a {rng.choice(SCENES)}, "
        f"{rng.choice(STYLES)}, {rng.choice(ADJECTIVES)} light"
    )


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _cases(memory: Any, baseline: Any, ef: Any) -> dict[str, Callable[[str], None]]:
    def recall(q: str) -> None:
        memory.recall(tenant="acme_co", brand="brand_1", query=q, k=5)

    def recall_campaign(q: str) -> None:
        memory.recall(tenant="acme_co", brand="brand_1", query=q, k=5, campaign_id="c7")

    def plain(q: str) -> None:
        baseline.query(query_texts=[q], n_results=5)

    def before(q: str) -> None:  # the slug-keyed store's recall, one collection
        embedding = ef.embed_query([q])
        for where in ({"kind": "prompt"}, {"kind": "note"}):
            baseline.query(query_embeddings=embedding, n_results=5, where=where)

    embedded = ef.embed_query(["warm latte on a kitchen table, soft light"])
    with memory.exclusive():
        prompts = memory._collection("acme_co", "brand_1", "prompt")

    def embed(q: str) -> None:  # the share of every case above that is the query's embedding
        ef.embed_query([q])

    def baseline_vector(_: str) -> None:  # Chroma's query alone, vector given
        baseline.query(query_embeddings=embedded, n_results=5)

    def prompts_vector(_: str) -> None:  # one of recall's two queries alone, vector given
        prompts.query(query_embeddings=embedded, n_results=5)

    return {
        "recall": recall,
        "recall+campaign": recall_campaign,
        "baseline": plain,
        "before": before,
        "embed": embed,
        "baseline query (vector given)": baseline_vector,
        "prompt query (vector given)": prompts_vector,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--pool", type=int, default=1500, help="distinct texts embedded")
    args = parser.parse_args()

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction
    from brandloop.memory.shared import LocalChroma
    from brandloop.memory.store import _HNSW, KINDS

    rng = random.Random(7)
    nprng = np.random.default_rng(7)
    ef = MiniLMEmbeddingFunction()
    pool_texts = [text(rng) for _ in range(args.pool)]
    pool = np.asarray(ef(pool_texts), dtype=np.float32)
    queries = [text(rng) for _ in range(args.queries)]
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        # the store as a run opens it (make_chroma_store): behind the data dir's lock
        store = LocalChroma(
            Path(tempfile.mkdtemp(prefix="bl-recall-")),
            lambda path: chromadb.PersistentClient(
                path=path, settings=ChromaSettings(anonymized_telemetry=False)
            ),
        )
        memory = BrandMemory(store, ef)
        with memory.exclusive():
            client = memory.client
            baseline = client.create_collection(  # the same index settings as the store's
                "baseline",
                configuration={"hnsw": _HNSW},
                embedding_function=ef,  # type: ignore[arg-type]
            )
        kinds = [KINDS[0]] * 8 + [KINDS[1], KINDS[2]]
        batch = 2000
        for start in range(0, size, batch):
            n = min(batch, size - start)
            picks = nprng.integers(0, len(pool), n)
            vectors = pool[picks] + nprng.normal(0, 0.01, (n, pool.shape[1])).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = [f"r{start + i}" for i in range(n)]
            record_kinds = [kinds[(start + i) % len(kinds)] for i in range(n)]
            docs = [f"{pool_texts[p]} #{start + i}" for i, p in enumerate(picks)]
            metas: list[dict[str, str | int | float | bool]] = [
                {
                    "kind": k,
                    "run_id": f"run_{(start + i) // 4}",
                    "seed": start + i,
                    "created_at": float(start + i),
                    **({"campaign_id": f"c{(start + i) % 50}"} if k == "prompt" else {}),
                }
                for i, k in enumerate(record_kinds)
            ]
            for kind in KINDS:
                chosen = [i for i, k in enumerate(record_kinds) if k == kind]
                memory.put_records(
                    tenant="acme_co",
                    brand="brand_1",
                    kind=kind,
                    ids=[ids[i] for i in chosen],
                    embeddings=[vectors[i].tolist() for i in chosen],
                    documents=[docs[i] for i in chosen],
                    metadatas=[metas[i] for i in chosen],
                )
            baseline.add(
                ids=ids,
                embeddings=cast(Any, vectors),
                documents=docs,
                metadatas=cast(Any, metas),
            )
        assert memory.count(tenant="acme_co", brand="brand_1") == size == baseline.count()

        cases = _cases(memory, baseline, ef)
        for fn in cases.values():  # warm-up: load indexes
            fn(queries[0])
        results: dict[str, list[float]] = {name: [] for name in cases}
        for q in queries:  # interleaved, so load on the machine hits every case alike
            for name, fn in cases.items():
                results[name] += timed(lambda fn=fn, q=q: fn(q), 1)
        medians = {name: statistics.median(t) for name, t in results.items()}
        split = "not measured"
        if hasattr(memory, "split_campaigns"):
            start = time.perf_counter()
            copied = memory.split_campaigns(tenant="acme_co", brand="brand_1", rebuild=True)
            split = f"{time.perf_counter() - start:.1f} s ({copied} records)"
        rows.append((size, medians))
        print(
            f"{size:>6} records/brand  "
            + "  ".join(f"{name} {ms:6.2f} ms" for name, ms in medians.items())
            + f"  recall/baseline {medians['recall'] / medians['baseline']:.2f}x"
            + f"  campaign/baseline {medians['recall+campaign'] / medians['baseline']:.2f}x"
            + f"  split {split}",
            flush=True,
        )
        del client, store, memory
    print()
    print("| records per brand | recall | recall + campaign | Chroma unfiltered query | recall / "
          "baseline | recall + campaign / baseline | before: filtered recall | embedding alone "
          "| Chroma query, vector given | one recall query, vector given |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, m in rows:
        print(
            f"| {size:,} | {m['recall']:.2f} | {m['recall+campaign']:.2f} | {m['baseline']:.2f} "
            f"| {m['recall'] / m['baseline']:.2f}x | {m['recall+campaign'] / m['baseline']:.2f}x "
            f"| {m['before']:.2f} | {m['embed']:.2f} "
            f"| {m['baseline query (vector given)']:.2f} | {m['prompt query (vector given)']:.2f} |"
        )
    print("(milliseconds, medians; cases interleaved query by query)")


if __name__ == "__main__":
    main()
