"""The ``brandloop`` command line: one Typer app, one module per command group.

Errors become one line on stderr and an exit code: 2 bad input, 3 refused by policy,
4 budget exhausted with nothing accepted, 5 no usable provider, 6 ``verify`` found a file
invalid, 7 brand memory unavailable, 8 the C2PA signer or the run's storage failed (the run is
kept; the line names ``brandloop runs resume RUN``), 130 interrupted with Ctrl-C (the run is
cancelled), 141 the output's reader left, 1 internal error. Text the user gave or stored is
printed literally, never read as rich markup, its control characters written out (``\x1b``),
never sent to the terminal (``common``). ``--debug``
(or ``BRANDLOOP_DEBUG=1``) prints the traceback first. Logs (warnings and worse; everything in
debug mode) go to stderr, one JSON object a line unless stderr is a terminal.

Every command's values pass one check before the command runs (:func:`_check_values`): text
must be UTF-8 (an argument of other bytes reaches Python as surrogate escapes, which no
database, JSON document or model takes), a number finite (``nan``, ``inf``), and no text may
hold a credential the settings configure (``BRANDLOOP_OPENAI_API_KEY``'s value typed into a
brief, often by a shell expanding ``$VARIABLE``): it would reach the receipt, the signed image,
the registry, brand memory and the provider. Paths may be any bytes the file system takes.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import pkgutil
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import typer
import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    api_key_problem,
    credential_problem,
    credentials,
    invocation,
    out,
)
from brandloop.errors import BrandloopError, utf8_problem
from brandloop.logs import configure_logging, debug_enabled, set_debug
from brandloop.policy_files import describe_validation_error, one_line, yaml_error
from brandloop.storage import StorageFailedError, storage_problem

try:  # typer >= 0.25 vendors its own click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

__all__ = ["app", "main"]


def _load_commands() -> None:
    """Each module of this package registers its commands on import; load them all."""
    for module in pkgutil.iter_modules(__path__):
        if module.name not in {"app", "common"}:
            importlib.import_module(f"{__name__}.{module.name}")


_load_commands()


def _value_problem(value: object) -> str | None:
    """What is wrong with one parsed command-line value, if anything."""
    if isinstance(value, str):
        return utf8_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, list | tuple):
        return next(filter(None, map(_value_problem, value)), None)
    return None


#: How a number is written on the command line: as JSON (and the HTTP API) writes one, in
#: ASCII digits with no spaces. Python's ``int`` and ``float`` (and pydantic's lax parsing)
#: also take Arabic-Indic and full-width digits, surrounding spaces and ``1_000``, which the
#: API refuses; ``nan`` and ``inf`` pass here to be named by :func:`_value_problem`.
_NUMBER_TEXT: dict[type, tuple[re.Pattern[str], str]] = {
    int: (
        re.compile(r"-?(?:0|[1-9][0-9]*)"),
        "is not a whole number in ASCII digits (0-9), with no spaces or leading zeros",
    ),
    float: (
        re.compile(
            r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)",
            re.IGNORECASE,
        ),
        "is not a number in ASCII digits (0-9), with no spaces",
    ),
}


def _strict_numbers(command: Any) -> None:
    """Make every number option and argument of ``command`` and its subcommands refuse a
    value not written in ASCII digits (exit 2, naming it), before it is converted."""
    for param in command.params:
        descriptor = getattr(param, "type_descriptor", None)
        rule = _NUMBER_TEXT.get(getattr(descriptor, "annotation", None))  # type: ignore[arg-type]
        if rule is None:
            continue
        pattern, problem = rule
        convert = param.process_value

        def process_value(
            ctx: Any,
            value: Any,
            convert: Callable[[Any, Any], Any] = convert,
            pattern: re.Pattern[str] = pattern,
            problem: str = problem,
            param: Any = param,
        ) -> Any:
            if isinstance(value, str) and not pattern.fullmatch(value):
                raise typer.BadParameter(f"{value!r} {problem}", ctx=ctx, param=param)
            return convert(ctx, value)

        param.process_value = process_value
    for sub in getattr(command, "commands", {}).values():
        _strict_numbers(sub)


def _no_empty_paths(command: Any) -> None:
    """Make every path option and argument of ``command`` and its subcommands refuse an empty
    value (exit 2, naming it as empty): converted, ``""`` is ``Path(".")``, the current folder,
    which a command then named as ``.`` ("no campaign file .") or even used."""
    for param in command.params:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if annotation is not Path and Path not in get_args(annotation):
            continue
        convert = param.process_value

        def process_value(
            ctx: Any, value: Any, convert: Callable[[Any, Any], Any] = convert, param: Any = param
        ) -> Any:
            if isinstance(value, str) and value == "":
                raise typer.BadParameter(
                    "the path is empty: name a file or folder", ctx=ctx, param=param
                )
            return convert(ctx, value)

        param.process_value = process_value
    for sub in getattr(command, "commands", {}).values():
        _no_empty_paths(sub)


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _check_values(command: Any) -> None:
    """Wrap the callback of ``command`` and of each of its subcommands so that a text value
    that is not UTF-8, a number that is not finite or a text holding a configured credential
    is refused (exit 2, naming the option or argument) before the command does anything."""
    callback: Callable[..., Any] | None = command.callback
    if callback is not None:
        params = {param.name: param for param in command.params}

        @functools.wraps(callback)
        def checked(*args: Any, **kwargs: Any) -> Any:
            for name, value in kwargs.items():
                problem = _value_problem(value)
                if problem is not None:
                    raise typer.BadParameter(problem, param=params.get(name))
            texts = {name: _texts(value) for name, value in kwargs.items()}
            if any(texts.values()):
                known = credentials()
                for name, items in texts.items():
                    problem = next(
                        filter(None, (credential_problem(t, known) for t in items)), None
                    )
                    if problem is None:
                        problem = api_key_problem(items)
                    if problem is not None:
                        raise typer.BadParameter(problem, param=params.get(name))
            return callback(*args, **kwargs)

        command.callback = checked
    for sub in getattr(command, "commands", {}).values():
        _check_values(sub)


def _tidy_help(command: Any) -> None:
    """Help as a reader sees it: each command's line in its group's list is the first
    paragraph of its help on one line (a docstring's line breaks are the source's, not the
    reader's), and reStructuredText's double backticks are single ones."""
    if command.help:
        command.help = command.help.replace("``", "`")
        first = command.help.strip().split("\n\n", 1)[0]
        command.short_help = " ".join(first.split())
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a traceback reaches the user only in debug mode."""
    set_debug(False)  # --debug applies to one run; BRANDLOOP_DEBUG to every run
    configure_logging(level=logging.WARNING)
    command = typer.main.get_command(app)
    _check_values(command)
    _strict_numbers(command)
    _no_empty_paths(command)
    _tidy_help(command)
    try:
        with invocation():
            code = command.main(args=argv, prog_name="brandloop", standalone_mode=False)
        if code == 130:  # typer's answer to a Ctrl-C no command caught: Exit(130), returned
            _fail("interrupted", 130)  # silently outside standalone mode (templates import)
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer's own answer to Ctrl-C: silent
            _fail("interrupted", 130)
        code = exc.exit_code
    except typer.Abort:
        _fail("aborted", 1)
    except click_exceptions.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        code = 0
    except click_exceptions.ClickException as exc:
        _fail(exc.format_message().replace("\n", " "), 2)
    except BrandloopError as exc:
        _fail(str(exc), exc.exit_code)
    except ValidationError as exc:
        _fail(describe_validation_error(exc), 2)
    except SettingsError as exc:  # BRANDLOOP_* settings are read through settings.load_settings
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        _fail(f"a setting is malformed: {exc}{cause}", 2)
    except (yaml.MarkedYAMLError, yaml.reader.ReaderError) as exc:
        # a document that does not parse (the loaders name their file: policy_files); not a
        # YAMLError of writing YAML (a RepresenterError is a bug: exit 1 below)
        name = str(getattr(getattr(exc, "problem_mark", None), "name", None) or "")
        _fail(str(yaml_error(name if name and name[0] != "<" else "a YAML file", exc)), 2)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:  # `... --json | head -c1`: the reader had enough (common._Out)
        out.on_broken_pipe()
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if (problem := storage_problem(exc)) is not None:  # a command other than a run's
            _fail(f"storage failed: {problem}", StorageFailedError.exit_code)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"internal error: {type(exc).__name__}: {first}", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    if debug_enabled() and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"brandloop: error: {one_line(message)}\n")
    sys.exit(code)
