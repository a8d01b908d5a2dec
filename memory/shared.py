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

It also zeroes what Chroma's HNSW index writes from uninitialised memory. hnswlib allocates a
new index's slots with ``malloc`` and writes all of them to ``<uuid>/data_level0.bin`` and
``length.bin`` when it creates the files (100 slots, about 160 KB, for the first vector), so the
unused slots hold whatever that memory held before: heap this process freed, such as a run's
receipt with its prompt, a note's text, another brand's records. Nothing rewrites a slot until
a vector fills it, and ``VACUUM`` does not touch these files, so a forgotten note's text could
be read back from an index created while the text lay freed in memory (about one run in three
of the ``tests/memory`` sequence found it there).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from chromadb.api import ClientAPI
from chromadb.api.client import Client

__all__ = ["LOCK_NAME", "SQLITE_NAME", "LocalChroma", "scrub_index"]

LOCK_NAME = "brandloop-memory.lock"
#: the file embedded Chroma keeps its records, texts and write-ahead log in
SQLITE_NAME = "chroma.sqlite3"
_TOKEN_BYTES = 32
#: a segment directory of Chroma's HNSW index is known by this file
_HNSW_HEADER = "header.bin"
#: the start of header.bin as hnswlib writes it (persistence version 1, 100 bytes, packed):
#: version, offsetLevel0, max_elements, cur_element_count, size_data_per_element
_HEADER = struct.Struct("<iQQQQ")
_HEADER_BYTES = 100
_HEADER_VERSION = 1
#: how many bytes of each float in length.bin, one a slot
_LENGTH_BYTES = 4
_CHUNK = 1 << 20


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
        a new token even when it fails part-way, since it may have changed the files. An HNSW
        index created in the block (by a write, or by a read that applies queued writes) has
        its unused slots zeroed before the lock is released (:func:`scrub_index`).
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
            with contextlib.ExitStack() as after:  # runs last in first
                after.callback(fcntl.flock, fd, fcntl.LOCK_UN)
                after.callback(self._leave_token, fd)
                self._depth, self._written = 1, write
                after.callback(self._scrub_new, _index_dirs(self._path))
                try:
                    yield self._fresh(fd)
                finally:
                    self._depth = 0

    @property
    def read_epoch(self) -> tuple[int, bytes] | None:
        """Within a read-only :meth:`access` block, the store's state as this process knows
        it: while it stays the same, no process has written (each write leaves a new token,
        and another process's makes this one reopen), so what was read of the store still
        holds. None outside a block and within a write block (its changes leave no token
        until it ends)."""
        if not self._depth or self._written:
            return None
        return self.reopened, self._seen

    def _leave_token(self, fd: int) -> None:
        if self._written:
            self._seen = uuid.uuid4().hex.encode()
            os.pwrite(fd, self._seen, 0)

    def _scrub_new(self, before: set[str]) -> None:
        """Zero the unused slots of the indexes created since ``before`` (their directories'
        names): two directory listings a block, so each index is read once, when it is new."""
        for name in sorted(_index_dirs(self._path) - before):
            scrub_index(self._path / name)

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

        Every HNSW index of the directory then has its unused slots zeroed (:func:`scrub_index`),
        not only those :meth:`access` saw created: one created by an earlier version, or by a
        process that ran without this, may hold the text there. That costs a read of each
        index's unused slots (at most its first 100 slots, about 160 KB).
        """
        with contextlib.closing(
            sqlite3.connect(self._path / SQLITE_NAME, timeout=30, isolation_level=None)
        ) as conn:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("VACUUM")
        for name in sorted(_index_dirs(self._path)):
            scrub_index(self._path / name)

    @property
    def client(self) -> ClientAPI:
        """The current client (opened on first use); use it within :meth:`access`."""
        if self._client is None:
            self._client = self._open_client(self._path)
        return self._client


def _index_dirs(path: Path) -> set[str]:
    """The names of the directories in ``path`` (Chroma's HNSW segments among them)."""
    try:
        with os.scandir(path) as entries:
            return {e.name for e in entries if e.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return set()


def scrub_index(segment: Path) -> int:
    """Zero the bytes of an HNSW index's files past its last element; return how many files
    changed.

    hnswlib writes ``data_level0.bin`` and ``length.bin`` whole when it creates them, from
    memory it never initialised, and later writes only the slots of elements it adds (each
    zeroed first): past ``cur_element_count`` (header.bin) the files hold old heap contents,
    which no reader uses. A directory whose header is not the layout this knows is left
    alone, so a newer Chroma's files are never damaged; the test of the forgotten text would
    then fail rather than pass wrongly.
    """
    try:
        header = (segment / _HNSW_HEADER).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return 0
    if len(header) != _HEADER_BYTES:
        return 0
    version, _, capacity, count, per_element = _HEADER.unpack_from(header)
    if version != _HEADER_VERSION or per_element <= 0 or count > capacity:
        return 0
    changed = 0
    for name, width in (("data_level0.bin", per_element), ("length.bin", _LENGTH_BYTES)):
        changed += _zero_from(segment / name, count * width)
    return changed


def _zero_from(path: Path, start: int) -> int:
    """Zero ``path`` from byte ``start`` on, writing only where it is not zero already (a
    scrubbed file costs a read); 1 if it changed, else 0. Synced, as ``VACUUM`` syncs."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        wrote = False
        offset = start
        while offset < size:
            chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
            if not chunk:
                break
            if chunk.count(0) != len(chunk):
                os.pwrite(fd, bytes(len(chunk)), offset)
                wrote = True
            offset += len(chunk)
        if wrote:
            os.fsync(fd)
        return int(wrote)
    finally:
        os.close(fd)
