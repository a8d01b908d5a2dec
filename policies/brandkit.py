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
    if data is None:
        raise BadInputError(f"{source}: the file is empty: expected a mapping of brand fields")
    if not isinstance(data, dict):
        raise BadInputError(
            f"{source}: expected a mapping of brand fields, got {type(data).__name__}"
        )
    try:
        return BrandKit.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{source}: {describe_validation_error(exc)}") from None


#: what a path that is not a regular file is, as its error names it
_KINDS = (
    ("is_dir", "a directory"),
    ("is_char_device", "a character device"),
    ("is_block_device", "a block device"),
    ("is_fifo", "a FIFO"),
    ("is_socket", "a socket"),
)


def load_brand_kit(path: Path) -> BrandKit:
    """Read and validate one brand kit file."""
    if not path.exists():
        raise BadInputError(f"brand kit {path} does not exist")
    if not path.is_file():  # a directory, a device such as /dev/null, a FIFO
        kind = next(
            (what for test, what in _KINDS if getattr(path, test)()), "not a file of any kind"
        )
        raise BadInputError(f"brand kit {path} is not a regular file ({kind})")
    if path.stat().st_size > MAX_KIT_BYTES:
        raise BadInputError(f"brand kit {path} is larger than {MAX_KIT_BYTES // 1024} KiB")
    data = load_yaml_file(path, what="brand kit")
    return parse_brand_kit(data, source=str(path))
