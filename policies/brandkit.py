"""Brand kits from YAML files, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brandloop.domain import BrandKit
from brandloop.errors import BadInputError
from brandloop.policy_files import describe_validation_error, load_yaml_file

MAX_KIT_BYTES = 256 * 1024


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
    data = load_yaml_file(path, what="brand kit")
    return parse_brand_kit(data, source=str(path))
