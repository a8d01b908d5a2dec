"""Helpers the command modules share: settings, the invocation's database, consoles, JSON
output, brand references."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from rich.console import Console

from brandloop.domain import BrandKit
from brandloop.errors import BadInputError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def settings() -> Settings:
    return get_settings()


class _Invocation:
    """What one run of the CLI opened; the database is opened by the first command needing it."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def database(self) -> Database:
        if self.db is None:
            self.db = Database.from_settings(settings())
        return self.db


_invocation: ContextVar[_Invocation | None] = ContextVar("brandloop_cli_invocation", default=None)


@contextmanager
def invocation() -> Iterator[None]:
    """The scope of one CLI run (:func:`brandloop.api.cli.main`): its database is built once,
    passed to what the command calls, and disposed of when the command ends."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():  # the terminal (or CI log) width, as of this run
        out.width = err.width = int(columns)
    current = _Invocation()
    token = _invocation.set(current)
    try:
        yield
    finally:
        _invocation.reset(token)
        if current.db is not None:
            current.db.dispose()


def database() -> Database:
    """This CLI run's registry (SQLite migrates itself; PostgreSQL must be current)."""
    current = _invocation.get()
    if current is None:
        raise RuntimeError("brandloop commands run through brandloop.api.cli.main")
    return current.database()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _unwritable_folder(folder: Path) -> tuple[Path, str] | None:
    """Why ``folder`` cannot be made a folder (if missing) and written in: the path at fault
    and what is wrong with it; None when it can."""
    target = folder.absolute()
    if target.exists():
        if not target.is_dir():
            return target, "is a file, not a folder"
        existing = target
    elif target.is_symlink():
        return target, "is a link to nothing"
    else:
        existing = next(parent for parent in target.parents if parent.exists())
        if not existing.is_dir():
            return existing, "is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return existing, "is a folder this user may not write in"
    return None


def _refuse(option: str, path: Path, fault: Path, problem: str) -> BadInputError:
    if fault == path.absolute():
        return BadInputError(f"{option} {path} {problem}")
    return BadInputError(f"{option} {path}: {fault} {problem}")


def check_output_folder(path: Path, option: str) -> Path:
    """``path`` if the command can make it a folder and write in it; else, before anything is
    spent or stored, a :class:`BadInputError` naming ``option``: the path is a file, lies under
    a file, is a dangling link, or is where this user may not write. Nothing is created."""
    found = _unwritable_folder(path)
    if found is not None:
        raise _refuse(option, path, *found)
    return path


def check_output_file(path: Path, option: str) -> Path:
    """``path`` if the command can write a file there (as :func:`check_output_folder` checks
    its folder); a folder of that name is refused."""
    if path.is_dir():
        raise BadInputError(f"{option} {path} is a folder, not a file")
    found = _unwritable_folder(path.absolute().parent)
    if found is not None:
        raise _refuse(option, path, *found)
    return path


def looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or Path(ref).is_file()


def ensure_brand(ref: str, *, tenant: str) -> str:
    """A brand reference as given on the command line: a YAML path is added (or updated)
    first; anything else must name a brand already in the registry. Returns its name as the
    registry spells it (a kit named ``acme coffee`` updates the brand ``Acme Coffee``)."""
    if looks_like_path(ref):
        kit: BrandKit = load_brand_kit(Path(ref))
        with database().session() as session:
            return crud.upsert_brand(session, tenant=tenant, kit=kit).name
    return ref
