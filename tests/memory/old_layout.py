"""Brand memory as the store wrote it before campaign collections (session 26 and earlier):
one exact-identity collection per tenant, brand and kind, campaign records only in it, tagged
by ``campaign_id``, and no mark of campaign collections on the collection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection

from brandloop.memory import MiniLMEmbeddingFunction
from brandloop.memory.store import _HNSW, MemoryKind, collection_identity, collection_name

Record = tuple[str, str, Mapping[str, str | int | float | bool]]


def write_old_layout(
    client: ClientAPI,
    ef: MiniLMEmbeddingFunction,
    *,
    tenant: str,
    brand: str,
    kind: MemoryKind,
    records: Sequence[Record],
) -> Collection:
    """Upsert (id, text, metadata) records as the old ``BrandMemory._writable`` did."""
    collection = client.get_or_create_collection(
        collection_name(tenant, brand, kind),
        configuration={"hnsw": _HNSW},
        metadata=collection_identity(tenant, brand, kind),
        embedding_function=ef,  # type: ignore[arg-type]
    )
    collection.upsert(
        ids=[r[0] for r in records],
        documents=[r[1] for r in records],
        metadatas=[dict(r[2]) for r in records],  # type: ignore[misc]
    )
    return collection


def old_prompt(i: int, campaign: str | None, text: str) -> Record:
    """A prompt record as ``remember_prompt`` stored it."""
    metadata: dict[str, Any] = {
        "kind": "prompt",
        "model": "procedural/draft",
        "seed": i,
        "template": "banner@1",
        "run_id": f"run_old{i}",
        "created_at": 1_700_000_000.0 + i,
    }
    if campaign is not None:
        metadata["campaign_id"] = campaign
    return f"prompt-old{i}", text, metadata


def old_descriptor(i: int, campaign: str | None, colours: str) -> Record:
    """A descriptor record as ``remember_descriptor`` stored it."""
    metadata: dict[str, Any] = {
        "kind": "descriptor",
        "colours": colours,
        "model": "procedural/draft",
        "seed": i,
        "run_id": f"run_old{i}",
        "created_at": 1_700_000_000.0 + i,
    }
    if campaign is not None:
        metadata["campaign_id"] = campaign
    return f"descriptor-old{i}", f"dominant colours: {colours}", metadata
