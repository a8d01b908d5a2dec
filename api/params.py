"""Strict types for what arrives as text (query, path and header values) and for the text
fields of request bodies that carry numbers: what the OpenAPI schema says, and nothing it
does not.

A query ``limit=+5``, ``limit=5_000``, ``limit=٣`` (an Arabic-Indic digit), ``wait=nan``,
``start=0`` (a Unix time for a date) or ``since=2026-01-01`` (a moment without a zone) would
each pass a lenient parser; here each is refused with a 422 naming the parameter. Bodies are
strict models (``api/schemas.py``): no ``true`` for a number, no ``"3"`` for an integer.

A number parameter puts its check last, after the ``Query``/``Path`` that bounds it, so that
the schema states the bounds (``minimum``/``maximum``; placed first, pydantic cannot push them
into the integer schema and they would leak out as unknown ``ge``/``le`` keys):
``limit: Annotated[int, Query(ge=1, le=500), ASCII_INT] = 50``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

from brandloop.domain import ASPECT_TEXT, FORMAT_TEXT, SIZE_TEXT

__all__ = [
    "ASCII_INT",
    "ASCII_NUMBER",
    "ASPECT_PATTERN",
    "FORMAT_PATTERN",
    "LAST_EVENT_ID_PATTERN",
    "SIZE_PATTERN",
    "TEMPLATE_REF",
    "VERSION_NUMBER",
    "QueryDate",
    "QueryDateTime",
]

_INT = re.compile(r"^[0-9]{1,12}$")
_VERSION = re.compile(r"^[1-9][0-9]{0,11}$")
# a JSON number without its sign (bounds refuse what is below zero): what a client's JSON or
# float formatting writes, e.g. ``2.5``, ``0.1`` or ``3e-05``; never ``nan``, ``inf`` or ``_``
_FLOAT = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# RFC 3339 date-time with a zone ("Z" or an offset): the schema's ``format: date-time``
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _text_matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return BeforeValidator(check)


#: A non-negative integer written in ASCII digits, nothing else (last in its ``Annotated``).
ASCII_INT = _text_matching(_INT, "a whole number in ASCII digits")
#: A version number: ASCII digits from 1, without a leading zero (``02`` is not version 2, as
#: the CLI and a template reference ``name@2`` read it; last in its ``Annotated``).
VERSION_NUMBER = _text_matching(
    _VERSION, "a version number in ASCII digits from 1, without a leading zero"
)
#: A non-negative number in ASCII digits, with a fraction or an exponent as JSON writes them
#: (no sign, ``nan``, ``inf`` or ``_``; last in its ``Annotated``).
ASCII_NUMBER = _text_matching(_FLOAT, "a number in ASCII digits")
#: A calendar day, ``YYYY-MM-DD``.
QueryDate = Annotated[date, _text_matching(_DATE, "a date, YYYY-MM-DD")]
#: A moment with its zone, RFC 3339 (``2026-11-30T09:00:00Z``).
QueryDateTime = Annotated[
    AwareDatetime,
    _text_matching(_DATE_TIME, "an RFC 3339 date-time with its zone, e.g. 2026-11-30T09:00:00Z"),
]


#: A ``Last-Event-ID``: an event id the stream sent, a trace sequence number (at most 18
#: digits, so always inside the registry's 64-bit range)
LAST_EVENT_ID_PATTERN = r"^[0-9]{1,18}$"

#: What the schema states of a size, an aspect ratio and a campaign format (either), exactly
#: what is taken: a size is WIDTHxHEIGHT with each side 64..4096 pixels
#: (``brandloop.domain.parse_size``), an aspect ratio W:H with each part 1..999
#: (``brandloop.domain.size_for_aspect``; a ratio past 4:1 is made at 4:1); ASCII digits with
#: no leading zero, no sign and no blanks
#: (the patterns are ``brandloop.domain``'s, which a ``campaign run`` file's formats follow too)
SIZE_PATTERN = SIZE_TEXT
ASPECT_PATTERN = ASPECT_TEXT
FORMAT_PATTERN = FORMAT_TEXT

#: A template reference: ``name``, ``name@VERSION`` or ``name:LABEL``
#: (``brandloop.agent.templates.REF_PATTERN``, versions as the template routes take them)
TEMPLATE_REF = r"^[a-z0-9][a-z0-9_.-]{0,119}(@[1-9][0-9]{0,5}|:[a-z0-9][a-z0-9_-]{0,63})?$"
