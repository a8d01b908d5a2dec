"""Brand kits from YAML files, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from brandloop.domain import BrandKit
from brandloop.errors import BadInputError

MAX_KIT_BYTES = 256 * 1024


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the first failing field, e.g. ``palette.0.hex: 'blue' is not ...``."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{where}: {message}{extra}"


def parse_brand_kit(data: Any, *, source: str = "brand kit") -> BrandKit:
    if not isinstance(data, dict):
        raise BadInputError(
            f"{source}: expected a mapping of brand fields, got {type(data).__name__}"
        )
    try:
        return BrandKit.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{source}: {describe_validation_error(exc)}") from None


def load_brand_kit(path: Path) -> BrandKit:
    """Read and validate one brand kit file."""
    if not path.is_file():
        raise BadInputError(f"brand kit {path} does not exist")
    if path.stat().st_size > MAX_KIT_BYTES:
        raise BadInputError(f"brand kit {path} is larger than {MAX_KIT_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise BadInputError(f"brand kit {path} is not valid YAML: {reason}") from None
    return parse_brand_kit(data, source=str(path))
