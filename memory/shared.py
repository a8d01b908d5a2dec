"""One data dir's embedded Chroma, shared safely by every process that uses it.

Chroma's embedded ``PersistentClient`` keeps each collection's vector index in memory and
writes the whole of it back on each flush. Two processes on one directory (two CLI runs, an
API server and a CLI, ...) each flush their own copy, so each write loses the other's
vectors: the SQLite side then holds records the index does not, and any filtered query or
``get`` with embeddings fails with ``Error finding id`` for good. Chroma documents the
embedded client as single-process.

:class:`LocalChroma` makes it safe: every memory operation holds an exclusive ``fcntl`` lock
on ``<chroma dir>/brandloop-memory.lock``; each write leaves a new token in that file, and an
operation that finds a token it did not leave reopens its client first, so it reads the index
the other process wrote instead of overwriting it with a stale one. Reopening costs a few
milliseconds and happens only after another process wrote; the lock itself costs about
0.1 ms an operation (docs/runbook.md). A Chroma server (``BRANDLOOP_CHROMA_HOST``) needs none
of this.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from chromadb.api import ClientAPI
from chromadb.api.client import Client

__all__ = ["LOCK_NAME", "SQLITE_NAME", "LocalChroma"]

LOCK_NAME = "brandloop-memory.lock"
#: the file embedded Chroma keeps its records, texts and write-ahead log in
SQLITE_NAME = "chroma.sqlite3"
_TOKEN_BYTES = 32


class LocalChroma:
    """The embedded Chroma client of ``path``, handed out only under the cross-process lock.

    ``open_client`` builds a fresh client of the directory; the store owns the clients it
    builds (it closes one to reopen), so nothing else in the process should hold a
    ``PersistentClient`` of the same directory.
    """

    def __init__(self, path: Path, open_client: Callable[[Path], ClientAPI]) -> None:
        self._path = path
        self._open_client = open_client
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0
        self._client: ClientAPI | None = None
        self._seen = b""
        self._written = False
        self.reopened = 0  # how many times another process's writes made this one reopen

    @property
    def path(self) -> Path:
        """The Chroma directory."""
        return self._path

    @contextmanager
    def access(self, *, write: bool) -> Iterator[ClientAPI]:
        """The client, up to date with every other process's writes, for the ``with`` block.

        Re-entrant within a thread; other threads and processes wait. A ``write`` block leaves
        a new token even when it fails part-way, since it may have changed the files.
        """
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield self.client
                finally:
                    self._depth -= 1
                    self._written = self._written or write
                return
            fd = self._lock_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth, self._written = 1, write
            try:
                yield self._fresh(fd)
            finally:
                self._depth = 0
                try:
                    if self._written:
                        self._seen = uuid.uuid4().hex.encode()
                        os.pwrite(fd, self._seen, 0)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int:
        """The lock file's descriptor, reopened in a forked child (a shared description would
        make parent and child one holder)."""
        if self._fd is None or self._pid != os.getpid():
            self._path.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            if self._pid:  # a forked child: the parent's client is not ours to use
                self._client = None
            self._pid = os.getpid()
        return self._fd

    def _fresh(self, fd: int) -> ClientAPI:
        token = os.pread(fd, _TOKEN_BYTES, 0)
        if self._client is not None and token != self._seen:
            cast(Client, self._client).close()  # stops the instance, so the next one reloads
            self._client = None
            self.reopened += 1
        self._seen = token
        return self.client

    def vacuum(self) -> None:
        """Rewrite Chroma's SQLite file so that what was deleted is gone from the disk too.

        Chroma deletes rows, and SQLite leaves their bytes in freed pages and free space inside
        pages (a forgotten note's text could be read back from the file). ``VACUUM`` rebuilds
        the file from its live rows only. Call it within :meth:`access` (``write=True``): it
        needs every other process of the data dir to wait, which the lock makes them do. It
        costs about as much as copying the file (docs/runbook.md has the figures).
        """
        with contextlib.closing(
            sqlite3.connect(self._path / SQLITE_NAME, timeout=30, isolation_level=None)
        ) as conn:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("VACUUM")

    @property
    def client(self) -> ClientAPI:
        """The current client (opened on first use); use it within :meth:`access`."""
        if self._client is None:
            self._client = self._open_client(self._path)
        return self._client
