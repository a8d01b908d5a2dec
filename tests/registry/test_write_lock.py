"""The SQLite write lock is queued for in the process first, and always let go.

Threads of one process wait for each other on a ``threading.Lock`` (woken the moment it is
let go) rather than in SQLite's busy handler (which sleeps up to 100 ms between tries). A lock
that was never let go would stall every later writer for the queue timeout, so each way a
transaction can end is checked here: commit, rollback, a session closed without either, and
``BEGIN IMMEDIATE`` itself failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from brandloop.registry import write_lock
from brandloop.registry.db import Database
from brandloop.registry.write_lock import sqlite_write_lock


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'r.db'}")
    with database.sessions() as session:  # migrate, and make a table to write in
        session.execute(text("CREATE TABLE t (v INTEGER)"))
        session.commit()
    yield database
    database.dispose()


def _lock(db: Database) -> threading.Lock:
    return write_lock._process_lock(db.engine)


def test_commit_and_rollback_let_go(db: Database) -> None:
    with db.sessions() as session:
        assert sqlite_write_lock(session) is True
        assert _lock(db).locked()
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.commit()
        assert not _lock(db).locked()
        sqlite_write_lock(session)
        assert _lock(db).locked()
        session.rollback()
        assert not _lock(db).locked()
    with db.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM t")) == 1


def test_a_session_closed_without_commit_lets_go(db: Database) -> None:
    session = db.sessions()
    sqlite_write_lock(session)
    session.execute(text("INSERT INTO t VALUES (2)"))
    session.close()
    assert not _lock(db).locked()
    with db.sessions() as check:
        assert check.scalar(text("SELECT count(*) FROM t")) == 0


def test_a_failed_begin_lets_go(db: Database, tmp_path: Path) -> None:
    # another process's writer (here: a raw connection of its own) holds SQLite's lock past
    # our busy timeout: BEGIN IMMEDIATE fails, and the process lock must not stay taken
    import sqlite3

    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with db.sessions() as session:
            session.execute(text("PRAGMA busy_timeout=50"))
            with pytest.raises(Exception, match="locked"):
                sqlite_write_lock(session)
            assert not _lock(db).locked()
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_second_thread_waits_in_the_process_and_goes_as_soon_as_it_is_let_go(
    db: Database,
) -> None:
    holding = threading.Event()
    release = threading.Event()
    got: list[float] = []

    def first() -> None:
        with db.sessions() as session:
            sqlite_write_lock(session)
            session.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            release.wait(10)
            session.commit()

    def second() -> None:
        holding.wait(10)
        with db.sessions() as session:
            sqlite_write_lock(session)
            got.append(time.monotonic())
            session.execute(text("INSERT INTO t VALUES (2)"))
            session.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    holding.wait(10)
    time.sleep(0.3)  # the second thread is queued by now, on the process's lock
    assert not got
    release.set()
    for t in threads:
        t.join(10)
    assert got and not _lock(db).locked()
    with db.sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM t")) == 2
