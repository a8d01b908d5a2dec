"""A refused form field in plain words: what the field takes, never the schema's wording
(pydantic's "Input should be ...") or pattern, and never what was typed (it may hold a secret).

``docs/studio.md``: "A field a form refuses is named with what it takes in plain words".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from brandloop.domain import is_blank

__all__ = ["field_named", "field_problem"]

#: what a field's pattern asks for, in the words the API's docs and the CLI use
_PATTERN_WORDS = {
    "size": "not of the form WIDTHxHEIGHT, each side 64..4096 pixels, e.g. 1024x640",
    "aspect_ratio": "not of the form W:H, e.g. 16:9",
    "label": "takes lower-case letters, digits, '-' or '_', starting with a letter or digit, "
    "at most 64 characters, e.g. production",
}
_NOT_TAKEN = "is not a value this field takes"


def _number(value: Any) -> str:
    """``1000000`` as ``1,000,000``; ``0.5`` as it is."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def _words(where: str, error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if isinstance(ctx.get("plain"), str):  # brandloop's own words, naming no input
        return str(ctx["plain"])
    if kind == "missing":
        return "is required: fill it in"
    if kind == "blank":  # the schema's not_blank: its message names the field by its name
        return "is blank: write something"
    if kind == "string_pattern_mismatch":
        if isinstance(value, str) and is_blank(value):
            return "is blank: write something"
        return _PATTERN_WORDS.get(where.rsplit(".", 1)[-1], "is not in the form this field takes")
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "is empty: write something"
        return f"takes at least {_number(ctx.get('min_length'))} characters"
    if kind == "string_too_long":
        return f"takes at most {_number(ctx.get('max_length'))} characters"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "takes a whole number"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "takes a number"
    if kind in ("bool_parsing", "bool_type"):
        return "takes yes or no"
    if kind == "greater_than_equal":
        return f"takes a number of at least {_number(ctx.get('ge'))}"
    if kind == "greater_than":
        return f"takes a number above {_number(ctx.get('gt'))}"
    if kind == "less_than_equal":
        return f"takes a number of at most {_number(ctx.get('le'))}"
    if kind == "less_than":
        return f"takes a number below {_number(ctx.get('lt'))}"
    if kind in ("literal_error", "enum"):
        return f"takes one of {ctx.get('expected', 'the choices offered')}"
    if kind in ("too_long", "too_short"):
        return "has too many or too few entries"
    return _NOT_TAKEN


def field_named(errors: Sequence[Mapping[str, Any]], *, skip: int = 0) -> str | None:
    """The field the first of pydantic's ``errors`` is about (the first part of its location
    after ``skip``: a form's field), or None."""
    first: Mapping[str, Any] = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))[skip:]
    return str(loc[0]) if loc else None


def field_problem(
    errors: Sequence[Mapping[str, Any]],
    *,
    skip: int = 0,
    labels: Mapping[str, str] | None = None,
) -> str:
    """``where: what it takes`` for the first of pydantic's ``errors``; ``skip`` leaves out the
    leading parts of its location (``body``, ``query``) a person never typed. ``labels`` are
    a form's fields by the labels its page shows (``message`` is "Brief"): a field there is
    named by its label, as the person saw it."""
    first: Mapping[str, Any] = errors[0] if errors else {}
    loc = tuple(str(p) for p in tuple(first.get("loc", ()))[skip:])
    where = ".".join(loc) or "the form"
    name = (labels or {}).get(loc[0]) if len(loc) == 1 else None
    return f"{name or where}: {_words(where, first)}"
