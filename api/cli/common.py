"""Helpers the command modules share: settings, the invocation's database, consoles, JSON
output, brand references.

The consoles print text literally (no markup, no ``:emoji:`` codes): briefs, notes, brand and template names
are the user's, and a "[/red]" in them is text, not a style. Styled output is built as
:class:`rich.text.Text` (``Text(status, style="green")``, ``Text.assemble(...)``), never by
putting markup into a string."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.segment import Segment

from brandloop import event_loop
from brandloop.agent.retention import prune_finished_runs
from brandloop.agent.runner import cancel_interrupted
from brandloop.api.auth import HOLDS_API_KEY, key_shaped, stored_keys
from brandloop.domain import BrandKit
from brandloop.errors import BadInputError, BrandloopError, ConflictError, NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.types import usd
from brandloop.settings import (
    TENANT_PATTERN,
    TENANT_RULE,
    Settings,
    configured_credentials,
    credential_in,
    get_settings,
    get_writer_settings,
)
from brandloop.storage import StorageFailedError, storage_problem
from brandloop.tools.credentials import SigningError
from brandloop.views import run_view

#: C0 and C1 control characters but the line break and the tab: shown escaped, never sent
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with each control character written out (``\x1b``): a brief or a note holding
    ``ESC [2J`` cleared the screen of whoever listed the runs (outside tester)."""
    return _CONTROLS.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


class _Shown(Console):
    """A console that never sends the control characters of the text it shows: rich's own
    styles and controls (``Segment.control``) still reach a terminal, the text's never."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(visible(segment.text), segment.style)
            for segment in buffer
        )


class _Out(_Shown):
    """stdout. A reader that closed the pipe (`brandloop runs show RUN | head -1`) ends the
    command with exit 141 (128 + SIGPIPE, as `git log | head` does), quietly: rich's own
    answer, exit 1, is brandloop's "internal error" (outside tester)."""

    def on_broken_pipe(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's flush at exit must not fail
        raise SystemExit(141)


out = _Out(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = _Shown(stderr=True, highlight=False, markup=False, emoji=False)

log = logging.getLogger(__name__)


def settings() -> Settings:
    return get_settings()


def credentials() -> dict[str, str]:
    """The credentials this process's settings configure, each with its variable
    (:func:`~brandloop.settings.configured_credentials`); none from a malformed group of
    settings: the command names that itself when it reads them."""
    from brandloop.api.config import get_api_settings

    found: dict[str, str] = {}
    for read in (get_settings, get_writer_settings, get_api_settings):
        try:
            found.update(configured_credentials(read()))
        except BadInputError:
            continue
    return found


def credential_problem(text: str, known: dict[str, str]) -> str | None:
    """Why ``text`` (something a user typed) may not be used, or None: it holds a configured
    credential, named by its variable and never repeated."""
    variable = credential_in(text, known)
    if variable is None:
        return None
    return (
        f"holds the value of {variable}, a configured credential, which is never stored or "
        "sent to a provider: remove it (a shell expands $VARIABLE inside double quotes)"
    )


def api_key_problem(texts: list[str]) -> str | None:
    """Why ``texts`` (what a user typed) may not be used, or None: one holds an API key
    brandloop made (live or revoked, of any tenant), found by its shape and confirmed in this
    run's registry; never whose key it is, nor its value."""
    shaped = sorted({token for text in texts for token in key_shaped(text)})
    if not shaped:
        return None
    with database().session() as session:
        if stored_keys(session, shaped):
            return HOLDS_API_KEY
    return None


def refuse_credentials(where: str, document: Any) -> None:
    """A :class:`BadInputError` naming the first text of ``document`` (a file a user wrote:
    a campaign, a template, a brand kit) that holds a configured credential, e.g.
    ``campaign c.yaml: assets.0.brief holds the value of BRANDLOOP_OPENAI_API_KEY, ...``;
    nothing when none does; an API key brandloop made is refused the same way
    (:func:`api_key_problem`). Called before the command stores or runs anything."""
    known = credentials()

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, str):
            problem = credential_problem(value, known) or api_key_problem([value])
            if problem is not None:
                raise BadInputError(f"{where}: {'.'.join(path) or 'text'} {problem}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key, [*path, "(key)"])
                walk(item, [*path, str(key)])
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, [*path, str(index)])

    walk(document, [])


def check_tenant_option(value: str | None) -> str | None:
    """A ``--tenant`` value as BRANDLOOP_TENANT and API keys take it, refused (exit 2, naming
    the option) before the command stores or looks up anything under an id no key reaches."""
    if value is not None and not TENANT_PATTERN.fullmatch(value):
        raise typer.BadParameter(f"tenant {value!r} must be {TENANT_RULE}")
    return value


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


def signing_stopped(
    exc: SigningError, run_id: str, *, as_json: bool, verdict: str | None = None
) -> SigningError:
    """What a run stopped by a failed signer (what it paid for kept: docs/provenance.md)
    raises: the error (exit 8) names the run and the command that finishes it (``brandloop
    runs resume``, or for a review ``verdict`` such as ``approve``, that verdict given again:
    the run waits for review again); with ``--json`` stdout gets a JSON error object carrying
    ``run_id`` first and that command."""
    if verdict is None:
        key, command = "resume", f"brandloop runs resume {run_id}"
        message = f"{exc}; run {run_id} is kept: `{command}` finishes it once the signer is back"
    else:
        key, command = "retry", f"brandloop review {verdict} {run_id}"
        message = (
            f"{exc}; run {run_id} waits for review again: `{command}` gives the verdict again "
            "once the signer is back"
        )
    if as_json:
        print_json(
            {
                "error": SigningError.problem_type,
                "message": message,
                "run_id": run_id,
                key: command,
                "exit_code": SigningError.exit_code,
            }
        )
    return SigningError(message)


def storage_stopped(problem: str, run_id: str, *, as_json: bool) -> StorageFailedError:
    """What a run stopped by its storage raises (exit 8): one line naming what failed, the
    run and ``brandloop runs resume RUN``; with ``--json`` stdout gets a JSON error object
    carrying the run's id, status and cost so far and that command."""
    command = f"brandloop runs resume {run_id}"
    message = f"storage failed: {problem}; run {run_id} is kept: `{command}` finishes it once that is fixed"
    if as_json:
        state: dict[str, Any] = {"status": "running"}
        with suppress(Exception), database().session() as session:  # it may be what failed
            row = crud.get_run(session, tenant=settings().tenant, run_id=run_id)
            if row is not None:
                view = run_view(session, row)
                state = {
                    "status": view.status,
                    "attempts": view.attempts,
                    "cost_usd": view.cost_usd,
                }
        print_json(
            {
                "error": StorageFailedError.problem_type,
                "message": message,
                "run_id": run_id,
                **state,
                "resume": command,
                "exit_code": StorageFailedError.exit_code,
            }
        )
    return StorageFailedError(message)


class Interrupted(BrandloopError):
    """The user stopped the command with Ctrl-C (SIGINT): exit 130, as a shell reports it."""

    exit_code = 130
    problem_type = "interrupted"


@contextmanager
def run_stops_reported(run_id: str, *, tenant: str, as_json: bool) -> Iterator[None]:
    """Around driving run ``run_id`` (``generate``, ``runs resume``): a stopped signer, a
    Ctrl-C and a storage failure each become their one line and exit code, naming the run."""
    try:
        yield
    except SigningError as exc:
        raise signing_stopped(exc, run_id, as_json=as_json) from exc
    except KeyboardInterrupt:
        raise interrupted(run_id, tenant=tenant, as_json=as_json) from None
    except Exception as exc:
        stopped = storage_problem(exc)
        if stopped is None:
            raise
        raise storage_stopped(stopped, run_id, as_json=as_json) from exc


def _retain_cancelled(run_id: str) -> None:
    """A run Ctrl-C cancelled keeps only its newest checkpoints, as a run that ends on its own
    does (``BRANDLOOP_CHECKPOINT_KEEP``); should that fail, ``brandloop gc`` prunes it later."""
    try:
        event_loop.run(prune_finished_runs(settings(), database(), [run_id]))
    except Exception as exc:  # the cancel is recorded: the line the user sees comes first
        log.warning("run %s's checkpoints are left for gc: %s", run_id, type(exc).__name__)


def interrupted(run_id: str, *, tenant: str, as_json: bool) -> Interrupted:
    """What a run command stopped with Ctrl-C raises, once the run is ended ``cancelled``
    (docs/agent.md, Crash-safe resumption: Ctrl-C cancels the run, keeping what it paid for):
    one line naming the run, that it is cancelled and what it spent; with ``--json`` stdout
    gets the run's state as a JSON error object."""
    left = cancel_interrupted(
        database(), tenant=tenant, run_id=run_id, reason="interrupted (Ctrl-C)"
    )
    if left.status == "cancelled":
        _retain_cancelled(run_id)
        message = (
            f"interrupted: run {run_id} is cancelled ({left.attempts} attempts, "
            f"{usd(left.cost_usd)} spent); nothing is delivered: start a new run to go on"
        )
    elif left.status == "unknown":  # stopped before the run was stored
        message = f"interrupted before run {run_id} began: nothing was spent"
    else:  # it finished, or waits for review, before the interrupt landed
        message = f"interrupted: run {run_id} is {left.status}: `brandloop runs show {run_id}`"
    if as_json:
        print_json(
            {
                "error": Interrupted.problem_type,
                "message": message,
                "run_id": run_id,
                "status": left.status,
                "attempts": left.attempts,
                "cost_usd": left.cost_usd,
                "exit_code": Interrupted.exit_code,
            }
        )
    return Interrupted(message)


def _why(exc: OSError, otherwise: str = "cannot be written") -> str:
    """What an OSError from making a folder or a file says about the path, in words."""
    if exc.errno == errno.ENAMETOOLONG:
        return "is too long a name for this file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "is a folder this user may not write in"
    if exc.errno == errno.EROFS:
        return "is on a read-only file system"
    if exc.errno == errno.ENOTDIR:
        return "is a file, not a folder"
    return f"{otherwise} ({exc.strerror or exc})"


def _long_part(path: Path) -> Path:
    """The outermost part of ``path`` whose name is longer than a file system allows (the
    path itself when no single name is)."""
    limit = os.pathconf("/", "PC_NAME_MAX")
    parts = [*reversed(path.parents), path]
    return next((p for p in parts if len(os.fsencode(p.name)) > limit), path)


def _unwritable_folder(folder: Path, file: str | None = None) -> tuple[Path, str] | None:
    """Why ``folder`` cannot be made a folder (if missing) and written in (a file named
    ``file`` made in it, if given): the path at fault and what is wrong with it; None when it
    can.

    Tried, not guessed from permission bits (which pass for root, and say nothing of a name
    too long or of a file system such as /proc): the missing folders are made, a file is
    created and removed in the last one, and the folders made are removed again."""
    target = folder.absolute()
    missing: list[Path] = []
    existing = target
    try:
        if target.is_symlink() and not target.exists():
            return target, "is a link to nothing"
        if target.exists() and not target.is_dir():
            return target, "is a file, not a folder"
        while not existing.exists():
            if existing.is_symlink():
                return existing, "is a link to nothing"
            missing.append(existing)
            existing = existing.parent
    except OSError as exc:  # a name too long to even look up: name the part at fault
        return _long_part(existing), _why(exc)
    if not existing.is_dir():
        return existing, "is a file, not a folder"
    made: list[Path] = []
    try:
        for step in reversed(missing):
            try:
                step.mkdir()
            except FileExistsError:  # made meanwhile by someone else: theirs, not removed
                continue
            except OSError as exc:
                at_fault = step.parent if exc.errno in (errno.EACCES, errno.EPERM) else step
                return at_fault, _why(exc, "cannot be made a folder")
            made.append(step)
        try:
            handle, probe = tempfile.mkstemp(dir=target, prefix=".brandloop-probe-")
        except OSError as exc:
            return target, _why(exc, "cannot be written in")
        os.close(handle)
        os.unlink(probe)
        if file is not None:
            named = target / file
            try:
                os.close(os.open(named, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:  # there already (or made meanwhile): kept as it is
                pass
            except OSError as exc:
                return named, _why(exc, "cannot be made a file")
            else:
                named.unlink(missing_ok=True)
    finally:
        for step in reversed(made):
            with suppress(OSError):  # not empty: someone else writes there now
                step.rmdir()
    return None


def _refuse(option: str, path: Path, fault: Path, problem: str) -> BadInputError:
    if fault == path.absolute():
        return BadInputError(f"{option} {path} {problem}")
    return BadInputError(f"{option} {path}: {fault} {problem}")


def check_output_folder(path: Path, option: str) -> Path:
    """``path`` if the command can make it a folder and write in it; else, before anything is
    spent or stored, a :class:`BadInputError` naming ``option``: the path is a file, lies under
    a file, is a dangling link, is where this user may not write, is on a file system that
    takes no folder or file there (/proc), or has a name too long. Checked by trying; what the
    check made is removed again, so nothing is left behind."""
    found = _unwritable_folder(path)
    if found is not None:
        raise _refuse(option, path, *found)
    return path


def check_output_file(path: Path, option: str) -> Path:
    """``path`` if the command can write a file there (its folder as
    :func:`check_output_folder` checks it, and a file of that name created and removed when
    there is none yet); a folder of that name is refused."""
    try:
        if path.is_dir():
            raise BadInputError(f"{option} {path} is a folder, not a file")
    except OSError as exc:  # a name too long to even look up
        raise _refuse(option, path, _long_part(path.absolute()), _why(exc)) from None
    target = path.absolute()
    found = _unwritable_folder(target.parent, target.name)
    if found is not None:
        raise _refuse(option, path, *found)
    return path


def looks_like_path(ref: str) -> bool:
    """A ``--brand`` value is a kit file when it ends in ``.yaml``/``.yml`` or holds a path
    separator; anything else is a brand id or name, whatever files the working directory
    holds (a file named ``Nordlys Outdoor`` there does not hide the brand)."""
    return ref.endswith((".yaml", ".yml")) or "/" in ref or os.sep in ref


def ensure_brand(ref: str, *, tenant: str, create: bool = False) -> str:
    """A brand reference as given on the command line; returns the brand's name as the
    registry spells it (a kit named ``acme coffee`` is the brand ``Acme Coffee``).

    A kit file (:func:`looks_like_path`) names the brand of its ``name``. A stored brand whose
    kit is the file's is used; one whose kit differs is refused (exit 2): the file never
    replaces a stored kit, ``brandloop brands add FILE`` does. A brand not stored yet is added
    from the file only with ``create`` (``generate``: the README's first run); read-only
    commands (memory, runs, score ...) create and change nothing, so there it is unknown
    (exit 2). Anything else must name a brand already in the registry (checked by the caller).
    """
    if not looks_like_path(ref):
        return ref
    kit: BrandKit = load_brand_kit(Path(ref))
    refuse_credentials(f"brand kit {ref}", kit.model_dump(mode="json"))
    with database().session() as session:
        row = crud.get_brand(session, tenant=tenant, ref=kit.name)
        if row is None:
            if not create:
                raise NotFoundError(
                    f"unknown brand {kit.name!r} (from {ref}); add it with "
                    f"`brandloop brands add {ref}`"
                )
            return crud.upsert_brand(session, tenant=tenant, kit=kit).name
        if not crud.same_kit(row, kit):
            raise ConflictError(
                f"{ref} differs from the stored kit of brand {row.name!r}; it was not used: "
                f"`brandloop brands add {ref}` replaces the stored kit, or give --brand "
                f"{row.name!r} to use the stored one"
            )
        return row.name
