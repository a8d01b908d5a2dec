"""The generation cache skips the entries of a template version no run may use - one rejected
in review, the one such status (``TemplateStatus``) - and only those: a version whose metadata
happens to hold a ``retired`` key (metadata is free-form notes for reviewers) is used by runs,
so its cached images are served like any other's. Through the CLI, on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, run_cli
from tests.api.test_cli_templates import V1


def _generate(capsys: pytest.CaptureFixture[str], out: Path, seed: int) -> dict[str, Any]:
    code, text, err = run_cli(
        capsys, "generate", "a morning table", "--brand", str(BRANDS / "acme-coffee.yaml"),
        "--template", "annotated@1", "--size", "128x128", "--seed", str(seed % 2**32),
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0, err
    doc: dict[str, Any] = json.loads(text)
    assert doc["status"] == "succeeded" and doc["images"], doc["reason"]
    return doc


def test_a_version_with_a_retired_note_in_its_metadata_is_served_from_the_cache(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path, seed: int
) -> None:
    spec = yaml.safe_load(Path(V1).read_text())
    spec["metadata"]["retired"] = "replaces the 2025 banner"
    spec["name"] = "annotated"
    path = tmp_path / "annotated.yaml"
    path.write_text(yaml.safe_dump(spec))
    code, _, err = run_cli(
        capsys, "templates", "create", "annotated", "--file", str(path), "--as", "ana"
    )
    assert code == 0, err
    first = _generate(capsys, tmp_path / "o1", seed)
    assert first["cost_usd"] > 0
    again = _generate(capsys, tmp_path / "o2", seed)  # the same request: a repeat, free
    assert again["cost_usd"] == 0, again["reason"]
    assert all(image["cache_hit"] for image in again["images"]), again["images"]
