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


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        saver = AsyncSqliteSaver(conn, serde=serializer())
        await saver.setup()
        yield saver
