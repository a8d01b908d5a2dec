"""brandloop's error hierarchy; the CLI maps each to an exit code, the API to a problem type.

BrandloopError
├── BadInputError          exit 2 / HTTP 400-422: the caller's input is wrong
│   ├── NotFoundError      exit 2 / HTTP 404: a named thing does not exist
│   └── ConflictError      exit 2 / HTTP 409: the name or request clashes with what is stored
├── RefusedError           exit 3 / HTTP 422: a policy refused the request
├── BudgetExhaustedError   exit 4 / HTTP 402: nothing accepted before the money ran out
├── LeaseLostError         a worker lost its job's lease: its writes are refused
├── ProvidersUnavailableError  exit 5 / HTTP 503: no usable provider (each one down or left out)
├── ProviderError          a backend failed (see ``brandloop.tools.providers.errors``)
├── SchemaOutdatedError    exit 1: the database needs ``brandloop db upgrade`` first
└── InvariantError         exit 1 / HTTP 500: what the code relies on did not hold
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class BrandloopError(Exception):
    """Base of every error brandloop raises on purpose."""

    exit_code = 1
    problem_type = "internal"


class BadInputError(BrandloopError):
    exit_code = 2
    problem_type = "bad-input"


class NotFoundError(BadInputError):
    problem_type = "not-found"


class ConflictError(BadInputError):
    """What was asked clashes with what is stored (e.g. a name that two stored brands share):
    nothing was changed; the message says how to resolve it."""

    problem_type = "conflict"


class RefusedError(BrandloopError):
    exit_code = 3
    problem_type = "refused"


class BudgetExhaustedError(BrandloopError):
    exit_code = 4
    problem_type = "budget-exhausted"


class ProvidersUnavailableError(BrandloopError):
    exit_code = 5
    problem_type = "providers-unavailable"


class LeaseLostError(BrandloopError):
    """The job's lease was granted to another worker (a newer fencing token): this worker may
    no longer write anything for the job nor pay for anything."""

    problem_type = "lease-lost"


class ProviderError(BrandloopError):
    problem_type = "provider-error"


class SchemaOutdatedError(BrandloopError):
    """The database's schema is not this release's; the message names the command to run."""

    problem_type = "schema-outdated"


class InvariantError(BrandloopError):
    """Something the code relies on did not hold: a bug, or a row removed under a running step.

    Raised where an ``assert`` would vanish under ``python -O``.
    """


def present(value: T | None, what: str) -> T:
    """``value``, which cannot be None here; if it is, an :class:`InvariantError` naming ``what``."""
    if value is None:
        raise InvariantError(f"{what} is missing")
    return value


def utf8_problem(text: str) -> str | None:
    """What makes ``text`` not UTF-8 text, or None when it is.

    Python reads bytes that are not UTF-8 in command-line arguments, environment variables
    and (in a C or POSIX locale) standard input as surrogate escapes, a ``str`` that no
    database, JSON document, HTTP header or model takes.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        code = ord(bad)
        shown = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        return f"not valid UTF-8 ({shown} at character {exc.start + 1})"
    return None


def check_utf8(text: str, what: str) -> str:
    """``text`` if it is UTF-8 text, else a :class:`BadInputError` naming ``what``."""
    problem = utf8_problem(text)
    if problem is not None:
        raise BadInputError(f"{what} is {problem}")
    return text
