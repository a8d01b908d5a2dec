"""Builds the labelled fixture set (scripts/make_fixtures.py) into a temporary directory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from brandloop.domain import BrandKit

ROOT = Path(__file__).resolve().parents[2]


def make_fixtures_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", ROOT / "scripts/make_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FixtureSet:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.manifest: dict[str, Any] = make_fixtures_module().build(directory)
        assert json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        self.brand = BrandKit.model_validate(self.manifest["brand"])
        self.width, self.height = self.manifest["size"]

    def bytes(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        return self.manifest["images"]

    def texts(self, kind: str) -> list[dict[str, Any]]:
        return self.manifest["texts"][kind]
