"""Strict types for what arrives as text (query, path and header values) and for the text
fields of request bodies that carry numbers: what the OpenAPI schema says, and nothing it
does not.

A query ``limit=+5``, ``limit=5_000``, ``limit=٣`` (an Arabic-Indic digit), ``wait=nan``,
``start=0`` (a Unix time for a date) or ``since=2026-01-01`` (a moment without a zone) would
each pass a lenient parser; here each is refused with a 422 naming the parameter. Bodies are
strict models (``api/schemas.py``): no ``true`` for a number, no ``"3"`` for an integer.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

__all__ = [
    "ASPECT_PATTERN",
    "FORMAT_PATTERN",
    "SIZE_PATTERN",
    "QueryDate",
    "QueryDateTime",
    "QueryFloat",
    "QueryInt",
]

_INT = re.compile(r"^[0-9]{1,12}$")
_FLOAT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$")
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


#: A non-negative integer written in ASCII digits, nothing else.
QueryInt = Annotated[int, _text_matching(_INT, "a whole number in ASCII digits")]
#: A non-negative decimal number written in ASCII digits (no exponent, nan or inf).
QueryFloat = Annotated[float, _text_matching(_FLOAT, "a decimal number in ASCII digits")]
#: A calendar day, ``YYYY-MM-DD``.
QueryDate = Annotated[date, _text_matching(_DATE, "a date, YYYY-MM-DD")]
#: A moment with its zone, RFC 3339 (``2026-11-30T09:00:00Z``).
QueryDateTime = Annotated[
    AwareDatetime,
    _text_matching(_DATE_TIME, "an RFC 3339 date-time with its zone, e.g. 2026-11-30T09:00:00Z"),
]


#: What the schema states of a size, an aspect ratio and a campaign format (either): ASCII
#: digits only (the ranges are checked by ``brandloop.domain.parse_size`` / ``size_for_aspect``)
SIZE_PATTERN = r"^[0-9]{1,7}x[0-9]{1,7}$"
ASPECT_PATTERN = r"^[0-9]{1,3}:[0-9]{1,3}$"
FORMAT_PATTERN = r"^([0-9]{1,7}x[0-9]{1,7}|[0-9]{1,3}:[0-9]{1,3})$"
