"""A run's storage failing under it (its artifact folder, the registry, the SQLite checkpoint
file), told in plain words.

The CLI (``brandloop generate`` and ``runs resume``: exit 8) and the HTTP service (a job's
``storage-failed`` error, 503) word the failure with :func:`storage_problem` and keep the run,
to be finished by a resume once the storage is fixed. The words never repeat the error's own
text for a database error (it may quote a statement, its values or the server): only what it
means, so neither a secret nor a database URL reaches a user.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from brandloop.errors import BrandloopError

__all__ = ["StorageFailedError", "storage_problem"]


class StorageFailedError(BrandloopError):
    """The run's storage (its artifact folder, the registry) could not be written: the run is
    kept, and a resume (``brandloop runs resume``, ``POST /v1/runs/{id}/resume``) finishes it
    once that is fixed. Exit 8, as for the other failure of the run's surroundings that keeps
    the run (the signer's); HTTP 503."""

    exit_code = 8
    problem_type = "storage-failed"


_READ_ONLY = ("readonly database", "read-only transaction", "read only", "read-only file system")
_FULL = ("disk is full", "no space left on device", "disk full")
#: what a database server that cannot be reached (or has no such database, or refuses the
#: user) says when a connection is made: psycopg's "connection failed: ..." and the like
_UNREACHABLE = (
    "connection failed",
    "could not connect",
    "connection refused",
    "connection timeout",
)


def storage_problem(
    exc: BaseException, *, writer: str = "this user", roots: dict[str, Path] | None = None
) -> str | None:
    """What an error from writing the run's files or the registry says, in plain words
    (None when it is no such error): the path and why, no space left, a read-only registry.
    ``writer`` is who may not write, as the reader knows it ("this user" at the command
    line, "the service" to an API client). With ``roots`` (an API client's words: a name per
    folder, ``{"<artifacts dir>": ...}``) a path is named inside the first root holding it
    (``<artifacts dir>/4f``), never as the server's own path; a path outside them is not
    named."""
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | TimeoutError):
        name = _shown(exc.filename, roots)
        where = f" ({name})" if name else ""
        if exc.errno == errno.ENOSPC:
            return f"no space left on device{where}"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{name or 'a file'} may not be written by {writer}"
        if exc.errno == errno.EROFS:
            return f"{name or 'a file'} is on a read-only file system"
        if exc.errno in (errno.EDQUOT, errno.EIO):
            return f"{exc.strerror or exc}{where}"
        return None
    if _unreachable(exc):  # through SQLAlchemy, or psycopg's own (the checkpointer's)
        return f"the registry's database could not be reached: {_first_reason(exc)}"
    if isinstance(exc, DBAPIError):
        text = str(exc.orig).lower()
        if any(sign in text for sign in _READ_ONLY):
            return f"the registry is read-only ({writer} may not write its database)"
        if any(sign in text for sign in _FULL):
            return "no space left on device for the registry"
    if isinstance(exc, sqlite3.Error):  # SQLite's own, not through SQLAlchemy: the checkpoints
        text = str(exc).lower()
        if any(sign in text for sign in _READ_ONLY):
            return f"the checkpoint file is read-only ({writer} may not write it)"
        if any(sign in text for sign in _FULL):
            return "no space left on device for the checkpoint file"
    return None


def _shown(filename: object, roots: dict[str, Path] | None) -> str | None:
    """The failing path as the reader may see it: whole at the command line (the user's own
    machine), inside a named root for an API client, else not at all."""
    if not filename:
        return None
    if roots is None:
        return str(filename)
    path = Path(str(filename)).resolve()
    for name, root in roots.items():
        try:
            inside = path.relative_to(root.resolve())
        except ValueError:
            continue
        return f"{name}/{inside.as_posix()}" if inside.parts else name
    return None


def _unreachable(exc: BaseException) -> bool:
    """Did connecting to the database server fail (not a statement)?"""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if type(orig).__name__ != "OperationalError":
        return False
    text = str(orig).lower()
    return any(sign in text for sign in _UNREACHABLE)


def _first_reason(exc: BaseException) -> str:
    """The server's reason, its last line that says something (psycopg repeats the address
    before it: 'connection failed: connection to server at "127.0.0.1", port 5432 failed:
    Connection refused'); never the URL, which may hold a password."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    reason = lines[0] if lines else type(orig).__name__
    return reason.rsplit("failed: ", 1)[-1] if "failed: " in reason else reason
