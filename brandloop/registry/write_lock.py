"""The embedded SQLite database's write lock, for a transaction that must not interleave.

A registry lock on PostgreSQL is a row or advisory lock of its own (a tenant's spend row, a
template's advisory key, a thread's row); on SQLite each of them is the one write lock of the
whole database, taken here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

__all__ = ["sqlite_write_lock"]


def sqlite_write_lock(session: Session) -> bool:
    """On SQLite, hold the database's write lock until this transaction ends (``BEGIN
    IMMEDIATE``, unless the transaction has written already and holds it) and say True; on
    any other database do nothing and say False: the caller locks its own way."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return False
    raw: Any = conn.connection.driver_connection
    if not raw.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return True
