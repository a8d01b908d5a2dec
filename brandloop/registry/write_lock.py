"""The embedded SQLite database's write lock, for a transaction that must not interleave.

A registry lock on PostgreSQL is a row or advisory lock of its own (a tenant's spend row, a
template's advisory key, a thread's row); on SQLite each of them is the one write lock of the
whole database, taken here.

Within one process the lock is queued for first (a ``threading.Lock`` per database file, held
until the transaction ends), and only then asked of SQLite. SQLite's own busy handler polls: a
waiter sleeps up to 100 ms between tries whatever happens meanwhile, so with sixteen
submissions at once the unlucky ones lost every race and waited 1-2 s (p99 1.5 s at 113
jobs/s with the workers off, ``benchmarks/http_load.py``). A thread waiting on the process's
lock is woken as soon as it is let go. Other processes on the same file (the CLI, a second
``brandloop serve``) still meet in SQLite's busy handler, as before.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

__all__ = ["install_process_write_lock", "sqlite_write_lock"]

#: how long a thread queues for the process's lock before asking SQLite anyway (its own busy
#: timeout then applies, as it did before the process lock existed)
QUEUE_S = 10.0
_HELD = "brandloop.write_lock"  # in the pooled connection's info: the process lock it holds
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _process_lock(engine: Engine) -> threading.Lock:
    key = str(engine.url)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _release(info: dict[Any, Any] | None) -> None:
    if info is None:
        return
    lock = info.pop(_HELD, None)
    if lock is not None:
        lock.release()


def install_process_write_lock(engine: Engine) -> None:
    """Let go of the process's lock when the transaction that took it ends: on commit or
    rollback, and, should neither be seen, when the connection is reset or returned to the
    pool (a closed session, an invalidated connection)."""

    def on_end(conn: Connection) -> None:
        _release(conn.connection.info)

    # each listener with the exact arguments of its event: SQLAlchemy reads a "reset"
    # listener without ``reset_state`` as the deprecated form, and warns
    def on_reset(_dbapi: Any, record: Any, _reset_state: Any) -> None:
        _release(getattr(record, "info", None))

    def on_checkin(_dbapi: Any, record: Any) -> None:
        _release(getattr(record, "info", None))

    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    event.listen(engine.pool, "reset", on_reset)
    event.listen(engine.pool, "checkin", on_checkin)


def sqlite_write_lock(session: Session) -> bool:
    """On SQLite, hold the database's write lock until this transaction ends (``BEGIN
    IMMEDIATE``, unless the transaction has written already and holds it) and say True; on
    any other database do nothing and say False: the caller locks its own way."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return False
    raw: Any = conn.connection.driver_connection
    if raw.in_transaction:
        return True
    info = conn.connection.info
    if _HELD not in info:
        lock = _process_lock(conn.engine)
        if lock.acquire(timeout=QUEUE_S):
            info[_HELD] = lock
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release(info)
        raise
    return True
