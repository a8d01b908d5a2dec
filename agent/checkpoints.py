"""The checkpointer a run is saved with, and the types it may bring back from a checkpoint."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

import brandloop.domain as domain
from brandloop.registry import fencing

log = logging.getLogger(__name__)

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

# The saver's own schema (langgraph-checkpoint-sqlite 3.x, task_path included). Created here
# rather than by ``AsyncSqliteSaver.setup``, whose script also sets the journal mode - which
# SQLite refuses at once, with no busy wait, while a concurrent run of the same process writes.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS checkpoints (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        parent_checkpoint_id TEXT,
        type TEXT,
        checkpoint BLOB,
        metadata BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    )""",
    """CREATE TABLE IF NOT EXISTS writes (
        thread_id TEXT NOT NULL,
        checkpoint_ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        task_path TEXT NOT NULL DEFAULT '',
        idx INTEGER NOT NULL,
        channel TEXT NOT NULL,
        type TEXT,
        value BLOB,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    )""",
)
_locks: dict[tuple[int, str], asyncio.Lock] = {}


def _opening_lock(key: str) -> asyncio.Lock:
    """One lock per file per event loop: runs of one process open the file one at a time."""
    return _locks.setdefault((id(asyncio.get_running_loop()), key), asyncio.Lock())


@asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    """A saver on its own connection. Several runs of one process (the eval harness, the API
    worker) share the file: they open it one at a time, and each waits up to
    ``BUSY_TIMEOUT_S`` for the others' writes instead of failing with "database is locked"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    async with aiosqlite.connect(key, timeout=BUSY_TIMEOUT_S) as conn:
        async with _opening_lock(key):
            await conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            # In WAL mode a commit then waits for no fsync: a checkpoint is written before the
            # next node starts (runner.DURABILITY) and survives the process being killed; only
            # the last ones may be lost to a power cut, and the run resumes from an earlier one.
            await conn.execute("PRAGMA synchronous=NORMAL")
            async with conn.execute("PRAGMA journal_mode") as cursor:
                mode = await cursor.fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                await conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                await conn.execute(statement)
            await conn.commit()
        saver = AsyncSqliteSaver(conn, serde=serializer())
        saver.is_setup = True
        yield saver


def _postgres_conninfo(database_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a libpq connection string."""
    scheme, _, rest = database_url.partition("://")
    return f"{scheme.split('+', 1)[0]}://{rest}"


@asynccontextmanager
async def postgres_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """LangGraph's PostgreSQL saver in the registry's database (at scale: runs of every worker
    share their checkpoints, so any worker can resume any run)."""
    conninfo = _postgres_conninfo(database_url)
    async with _fenced_saver().from_conn_string(conninfo, serde=serializer()) as saver:
        if database_url not in _postgres_ready:
            await _setup_once(saver, conninfo)
            _postgres_ready.add(database_url)
        yield saver


@functools.cache
def _fenced_saver() -> Any:
    """LangGraph's PostgreSQL saver whose writes check the job's fencing token first (a worker
    paused past its lease must not add checkpoints to a run another worker has taken over)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    class FencedPostgresSaver(AsyncPostgresSaver):
        async def aput(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.to_thread(fencing.verify_current)
            return await super().aput(*args, **kwargs)

        async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
            await asyncio.to_thread(fencing.verify_current)
            await super().aput_writes(*args, **kwargs)

    return FencedPostgresSaver


#: Databases whose checkpoint tables this process has already set up.
_postgres_ready: set[str] = set()
#: Arbitrary, fixed key of the advisory lock that serialises checkpoint-table setup.
_SETUP_LOCK_KEY = 7351208452


async def _setup_once(saver: BaseCheckpointSaver[str], conninfo: str) -> None:
    """Run LangGraph's table setup under a PostgreSQL advisory lock: workers and replicas that
    start together would otherwise race on ``checkpoint_migrations`` (duplicate key)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as lock:
        # Poll with try-lock rather than block: a session waiting inside pg_advisory_lock keeps a
        # statement open, and the setup's CREATE INDEX CONCURRENTLY waits for every open
        # statement to finish - a deadlock PostgreSQL does not detect.
        while True:
            cursor = await lock.execute("SELECT pg_try_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                break
            await asyncio.sleep(0.05)
        try:
            await saver.setup()  # type: ignore[attr-defined]
            log.info("postgres checkpoint tables ready")
        finally:
            await lock.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))


@asynccontextmanager
async def checkpointer_for(
    database_url: str, path: Path
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """The checkpointer for this deployment: PostgreSQL when the registry is PostgreSQL, else
    the SQLite file ``path``."""
    if database_url.startswith("postgresql"):
        async with postgres_checkpointer(database_url) as saver:
            yield saver
    else:
        async with sqlite_checkpointer(path) as saver:
            yield saver
