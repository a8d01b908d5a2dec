"""Rules the product code keeps, checked on the source: no ``assert`` as a runtime check (it
vanishes under ``python -O``), and ``docs/architecture.md`` draws the layers exactly as the
import-linter contract in ``pyproject.toml`` states them."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER_FOLDERS = ["agent", "api", "evals", "memory", "policies", "tools"]


def product_files() -> list[Path]:
    """Every product module once: the layer folders and core (``brandloop/`` minus its links)."""
    core = [*(ROOT / "brandloop").glob("*.py"), *(ROOT / "brandloop" / "templates").rglob("*.py")]
    core += (ROOT / "brandloop" / "registry").rglob("*.py")
    files = [p for folder in LAYER_FOLDERS for p in (ROOT / folder).rglob("*.py")] + core
    return [p for p in files if "migrations" not in p.parts]


def test_no_assert_statement_in_product_code() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in product_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert len(product_files()) > 100
    assert found == []


def _drawn_layers() -> list[set[str]]:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Layers and the one import name", 1)[1]
    block = section.split("```", 2)[1]
    layers = []
    for chunk in re.split(r"\n\s*▼[^\n]*", block.strip("\n")):
        names = " ".join(re.split(r"\s{2,}", line.strip())[0] for line in chunk.splitlines())
        names = names.strip().removeprefix("core:")
        layers.append({n.strip().removeprefix("brandloop.") for n in names.split(":") if n.strip()})
    return layers


def test_the_architecture_doc_draws_the_contracts_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    stated = [{n.strip() for n in layer.split(":")} for layer in contract["layers"]]
    assert _drawn_layers() == stated
