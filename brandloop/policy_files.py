"""Reading the shipped policy files: parsed once per process and again only when a file changes.

A run reads the catalog, scoring, agent, drift and governance policies; parsing that YAML on
every run was most of the agent's own overhead. Callers get a fresh copy they may change.

Every YAML or schema problem of a file a user or a deployment writes is told the same way, in
one line (the CLI prints errors one a line): :func:`yaml_error` names the file, the line and the
column (``FILE:LINE:COLUMN: not valid YAML: PROBLEM``), :func:`describe_validation_error` the
first failing field and how many more fail.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from brandloop.domain import PATTERN_WORDS, UNSTORABLE, unstorable_places
from brandloop.errors import BadInputError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LINE_BREAK = re.compile(r"\s*[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+\s*")


def one_line(text: str) -> str:
    """``text`` on one line: each line break, with the white space around it, made one space.
    Spaces within a line are kept, so a quoted value (``principal '   '``) reads as it was."""
    return _LINE_BREAK.sub(" ", text.strip())


def describe_validation_error(
    exc: ValidationError, *, within: str = "", names: Mapping[str, str] | None = None
) -> str:
    """One line naming the first failing field, e.g. ``palette.0.hex: 'blue' is not ...``,
    and how many other problems there are: ``(and 4 more)``. ``within`` names the section
    the validated data came from (``scoring``: ``scoring.palette.weight: ...``); ``names``
    gives a field the name the user typed (``{"count": "--n"}``: ``--n: Input should be ...``).
    """
    errors = exc.errors(include_url=False)
    if not errors:  # pragma: no cover - pydantic raises with at least one error
        return one_line(str(exc))
    first = errors[0]
    loc = tuple(first["loc"])
    if names and loc and str(loc[0]) in names:
        loc = (names[str(loc[0])], *loc[1:])
    where = ".".join(str(part) for part in (within, *loc) if part != "") or "(top level)"
    message = one_line(str(first["msg"]).removeprefix("Value error, "))
    rule = PATTERN_WORDS.get(str((first.get("ctx") or {}).get("pattern")))
    if first.get("type") == "string_pattern_mismatch" and rule is not None:
        message = f"{one_line(repr(first.get('input')))[:100]} {rule}"
    extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{extra}"


def yaml_error(source: str, exc: yaml.YAMLError | UnicodeDecodeError) -> BadInputError:
    """The one-line :class:`BadInputError` for a file that is not YAML (or not UTF-8), e.g.
    ``brand policy p.yaml:2:1: not valid YAML: did not find expected ',' or ']' (while parsing
    a flow sequence from line 1, column 12)``."""
    if isinstance(exc, UnicodeDecodeError):
        return BadInputError(
            f"{source}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        )
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None or mark is None:  # e.g. a ReaderError: a character YAML does not allow
        return BadInputError(f"{source}: not valid YAML: {one_line(str(exc))}")
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    detail = one_line(str(problem))
    if context and context_mark is not None:
        detail += (
            f" ({one_line(str(context))} from line {context_mark.line + 1}, "
            f"column {context_mark.column + 1})"
        )
    elif context:
        detail += f" ({one_line(str(context))})"
    return BadInputError(f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {detail}")


def _precise(text: str, exc: yaml.YAMLError) -> yaml.YAMLError:
    """The pure-Python parser's account of the error in ``text``: libyaml's (the fast
    loader's) says less and places an unexpected end one line past the end of a file."""
    try:
        yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as precise:
        return precise
    return exc  # pragma: no cover - both parsers refuse the same documents


def field_path(loc: tuple[str | int, ...]) -> str:
    """A place in a file as its author reads it: ``assets[1].brief`` (``(top level)``)."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "(top level)"


#: the most values (mappings, lists, their keys and scalars) a YAML document read as input
#: may hold, its aliases expanded: far past any brand kit, template, campaign, eval suite or
#: blocklist (the shipped one holds about 51,000)
MAX_YAML_VALUES = 1_000_000


def _expands_past(value: Any, limit: int) -> bool:
    """Whether ``value`` holds more than ``limit`` values, counted as its aliases expand it and
    stopping as soon as it does (never walking more than ``limit`` of them)."""
    seen = 0
    stack = [value]
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_yaml(text: str, *, source: str) -> Any:
    """``text`` parsed as YAML; a syntax error is one :class:`BadInputError` naming ``source``
    and the line and column. A string holding a NUL or a lone surrogate (YAML's ``"\\0"``,
    ``"\\ud800"`` escapes) is refused too, naming the field: text no registry can store, as
    the API's input guard refuses it (``source: assets[0].brief: text may not hold ...``)."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise yaml_error(source, _precise(text, exc)) from None
    if _expands_past(data, MAX_YAML_VALUES):
        # aliases share one object many times over: a few hundred bytes can stand for a
        # billion values, which every reader after this would walk (a file's check hung)
        raise BadInputError(
            f"{source}: the document holds more than {MAX_YAML_VALUES:,} values once its "
            "YAML aliases are expanded (each alias counts every time it is used)"
        )
    places = unstorable_places(data)
    if places:
        more = f" (and {len(places) - 1} more)" if len(places) > 1 else ""
        raise BadInputError(f"{source}: {field_path(places[0])}: {UNSTORABLE}{more}")
    return data


def load_yaml_file(path: Path, *, what: str) -> Any:
    """The parsed content of a YAML file the user names (``what`` says what it holds, e.g.
    ``"campaign"``); a file that cannot be read, is not UTF-8 or is not YAML is one
    :class:`BadInputError` naming it."""
    source = f"{what} {path}".strip()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise yaml_error(source, exc) from None
    except OSError as exc:
        raise BadInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    return parse_yaml(text, source=source)


@lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int, size: int) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def read_policy_yaml(path: Path, *, what: str = "") -> Any:
    """The parsed content of a policy file (a deep copy of the cached parse).

    A file that is not YAML (or not UTF-8) is a :class:`BadInputError` naming it (``what``
    first, e.g. ``"brand policy"``), the line and the column; an unreadable one an ``OSError``.
    """
    stat = path.stat()
    source = f"{what} {path}".strip()
    try:
        return copy.deepcopy(_parsed(str(path.resolve()), stat.st_mtime_ns, stat.st_size))
    except UnicodeDecodeError as exc:
        raise yaml_error(source, exc) from None
    except yaml.YAMLError as exc:
        raise yaml_error(source, _precise(path.read_text(encoding="utf-8"), exc)) from None
