"""Brand memory: accepted prompts and style notes per tenant and brand, in Chroma.

The agent's planner recalls from :class:`BrandMemory` and the loop remembers into it; vectors
come from :class:`MiniLMEmbeddingFunction`, a local model that never touches the network.
"""

from brandloop.memory.embeddings import (
    EmbeddingModelError,
    MiniLMEmbeddingFunction,
    ModelChecksumError,
)
from brandloop.memory.store import (
    BrandMemory,
    MemoryHit,
    MemoryKind,
    collection_name,
    make_chroma_client,
)

__all__ = [
    "BrandMemory",
    "EmbeddingModelError",
    "MemoryHit",
    "MemoryKind",
    "MiniLMEmbeddingFunction",
    "ModelChecksumError",
    "collection_name",
    "make_chroma_client",
]
