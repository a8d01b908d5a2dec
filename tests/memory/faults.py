"""The two ways the outside tester found brand memory unusable: a Chroma server that is not
there, and an on-disk store whose SQLite file is damaged."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from brandloop.memory import BrandMemory, MiniLMEmbeddingFunction, make_chroma_client
from brandloop.settings import Settings

PAGE = 4096


def dead_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def corrupt_embedded_store(settings: Settings, brand_id: str, tenant: str = "default") -> Path:
    """Write a note into the data dir's on-disk Chroma (closed again), then overwrite 500 bytes
    of every third page of its SQLite file, as the tester did; return the file."""
    client = make_chroma_client(settings)
    try:
        BrandMemory(client, MiniLMEmbeddingFunction()).add_note(
            tenant=tenant, brand=brand_id, text="always a soft morning light"
        )
    finally:
        client.close()  # type: ignore[attr-defined]
    path = settings.resolved_chroma_path / "chroma.sqlite3"
    rng = random.Random(6)
    with path.open("r+b") as file:
        for page in range(0, path.stat().st_size // PAGE, 3):
            file.seek(page * PAGE + 100)
            file.write(rng.randbytes(500))
    return path
