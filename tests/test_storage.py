"""How a failure of the run's storage is worded (``brandloop/storage.py``), from real failures:
the CLI says it to "this user", the service's job error to its client ("the service"); a
database's own error text (its statement, its server, a URL) is never repeated."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from brandloop.registry.db import Database
from brandloop.storage import storage_problem


def _read_only_engine(db: Database, data_dir: Path) -> sa.Engine:
    """An engine on the test's registry whose transactions may not write."""
    if db.url.startswith("sqlite"):
        path = data_dir / "brandloop.db"
        return sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    return sa.create_engine(db.url, connect_args={"options": "-c default_transaction_read_only=on"})


def test_a_read_only_registry_is_named_in_words_not_by_its_error(
    db: Database, data_dir: Path
) -> None:
    db.ensure_schema()
    engine = _read_only_engine(db, data_dir)
    try:
        with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t_storage_probe (x integer)"))
    finally:
        engine.dispose()
    said = storage_problem(caught.value, writer="the service")
    assert said == "the registry is read-only (the service may not write its database)"
    assert storage_problem(caught.value) == (
        "the registry is read-only (this user may not write its database)"
    )


def test_a_full_device_and_an_unwritable_folder_are_named_with_their_path(
    tmp_path: Path,
) -> None:
    with pytest.raises(OSError) as full, open("/dev/full", "wb") as device:
        device.write(b"x")
        device.flush()
    assert full.value.errno == errno.ENOSPC
    assert storage_problem(full.value) == "no space left on device"
    folder = tmp_path / "artifacts" / "4f"
    denied = PermissionError(errno.EACCES, "Permission denied", str(folder))
    assert storage_problem(denied, writer="the service") == (
        f"{folder} may not be written by the service"
    )
    assert storage_problem(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None
    assert storage_problem(ValueError("not storage")) is None


def test_a_read_only_checkpoint_file_is_named_in_words(tmp_path: Path) -> None:
    """SQLite's own error (the checkpoint saver writes through aiosqlite, not SQLAlchemy)."""
    path = tmp_path / "checkpoints.sqlite"
    sqlite3.connect(path).close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            read_only.execute("CREATE TABLE t_storage_probe (x integer)")
    finally:
        read_only.close()
    assert storage_problem(caught.value, writer="the service") == (
        "the checkpoint file is read-only (the service may not write it)"
    )
