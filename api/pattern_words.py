"""What a field's pattern asks for, in words: the ``detail`` and ``errors[].msg`` of a 422 for
text that does not match its pattern say this, never the pattern itself (a blank brief's
pattern lists the invisible characters that count as blank, and a format's is a whole regex).

The schema keeps the patterns (the contract); the error keeps its ``type``
(``string_pattern_mismatch``); only its message is put in words here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from brandloop.api.params import (
    ASPECT_PATTERN,
    FORMAT_PATTERN,
    LAST_EVENT_ID_PATTERN,
    SIZE_PATTERN,
    TEMPLATE_REF,
)
from brandloop.domain import BRAND_NAME, BRAND_NAME_RULE, NOT_BLANK, PROVIDER_NAME
from brandloop.templates.governance import (
    LABEL_PATTERN,
    MODEL_HINT_PATTERN,
    NAME_PATTERN,
    PRINCIPAL_NAME,
)

__all__ = ["pattern_message"]

#: each pattern a field of the API has, with what it asks for (``{field}``: the field's name)
_WORDS: Final[Mapping[str, str]] = {
    NOT_BLANK: "{field} must not be blank (white space and invisible characters only)",
    FORMAT_PATTERN: "a format must be WIDTHxHEIGHT (each side 64..4096) or W:H (each part "
    "1..999), in ASCII digits without a leading zero, e.g. 1024x640 or 16:9",
    SIZE_PATTERN: "{field} must be WIDTHxHEIGHT, each side 64..4096 in ASCII digits without a "
    "leading zero, e.g. 1024x640",
    ASPECT_PATTERN: "{field} must be W:H, each part 1..999 in ASCII digits without a leading "
    "zero, e.g. 16:9",
    TEMPLATE_REF: "{field} must be name, name@VERSION or name:LABEL (a template name of "
    "lower-case letters, digits, '_', '.' and '-')",
    NAME_PATTERN.pattern: "{field} must be a template name: 1-120 lower-case letters, digits, "
    "'_', '.' or '-', starting with a letter or digit",
    LABEL_PATTERN.pattern: "{field} must be a label: 1-64 lower-case letters, digits, '_' or "
    "'-', starting with a letter or digit",
    PRINCIPAL_NAME: "{field} must be a user name: 1-120 of A-Z a-z 0-9 _ . @ -, starting with "
    "a letter or digit",
    MODEL_HINT_PATTERN.pattern: "a model hint must be provider/model, e.g. procedural/draft",
    BRAND_NAME: "{field} " + BRAND_NAME_RULE,
    PROVIDER_NAME.pattern: "a provider name must be 1-40 lower-case letters, digits, '_' or "
    "'-', starting with a letter or digit",
    LAST_EVENT_ID_PATTERN: "{field} must be an event id the stream sent: 1-18 ASCII digits",
    r"^[0-9a-f]{64}$": "{field} must be 64 lower-case hexadecimal digits (a sha256)",
    r"^note-[0-9a-f]{32}$": "{field} must be a note id: note- and 32 lower-case hexadecimal digits",
    r"^[1-9][0-9]{0,5}$": "a version must be 1-999999 in ASCII digits, without a leading zero",
}
#: a pattern not listed above (named without it: it may hold characters no one can see)
_OTHER = "{field} is not in the form this field takes (see its pattern in the OpenAPI schema)"


def pattern_message(loc: tuple[Any, ...], ctx: Mapping[str, Any] | None) -> str:
    """What the field at ``loc`` (pydantic's location of the error) takes, in words."""
    field = next((str(part) for part in reversed(loc) if not isinstance(part, int)), "the value")
    if field.isdigit():  # a list item's index as text
        field = "the value"
    pattern = str((ctx or {}).get("pattern", ""))
    return _WORDS.get(pattern, _OTHER).format(field=field)
