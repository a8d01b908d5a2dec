"""The checkpointer a run is saved with, and the types it may bring back from a checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

import brandloop.domain as domain

_STATE_TYPES = [
    "GenerationRequest",
    "BrandKit",
    "PaletteColour",
    "TemplateVersion",
    "Candidate",
    "Attempt",
    "Scores",
    "Signal",
    "ModerationVerdict",
    "Decision",
]


def serializer() -> JsonPlusSerializer:
    """A serializer that restores brandloop's own state types and nothing unexpected."""
    return JsonPlusSerializer(
        allowed_msgpack_modules=[(domain.__name__, name) for name in _STATE_TYPES]
    )


BUSY_TIMEOUT_S = 30.0


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """A saver on its own connection. Several runs of one process (the eval harness, the API
    worker) share the file, so each waits up to ``BUSY_TIMEOUT_S`` for the others' writes
    (schema set-up included) instead of failing at once with "database is locked"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path), timeout=BUSY_TIMEOUT_S) as conn:
        await conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        async with conn.execute("PRAGMA journal_mode") as cursor:
            mode = await cursor.fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            await conn.execute("PRAGMA journal_mode=WAL")
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
        yield saver
