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


def _anchored_patterns(trees: list[ast.Module]) -> set[str]:
    """Names bound to ``re.compile("...$")``: Python's ``$`` also matches before a final
    newline, so such a pattern checks a whole name only with ``fullmatch``."""
    names: set[str] = set()
    # names bound to a pattern's text, so ``re.compile(PRINCIPAL_NAME)`` counts too
    texts: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if isinstance(node.value.value, str):
                    texts |= {t.id: node.value.value for t in targets if isinstance(t, ast.Name)}
    for tree in trees:
        for node in ast.walk(tree):
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if not (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "compile"
                and value.args
            ):
                continue
            parts = value.args[0]
            text = "".join(
                c.value
                for c in ast.walk(parts)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ) or (texts.get(parts.id, "") if isinstance(parts, ast.Name) else "")
            if not text.endswith("$"):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_anchored_patterns_check_whole_strings() -> None:
    """``NAME_PATTERN.match("lee\\n")`` passes for ``lee``: names, labels, ids and refs are
    checked with ``fullmatch`` (a trailing newline once let an author approve their own
    template under ``lee\\n``)."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in product_files()}
    # parsers of free text (a revision request, a model's reply, the words before a match),
    # where a line break at the end changes nothing that is checked
    text_parsers = {"_REMOVE", "_ADD", "_CODE_FENCE", "_NEGATION"}
    anchored = _anchored_patterns(list(trees.values())) - text_parsers
    assert {"ACTOR_PATTERN", "NAME_PATTERN", "LABEL_PATTERN", "TENANT_PATTERN"} <= anchored
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}"
        for path, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"match", "search"}
        and isinstance(node.func.value, ast.Name | ast.Attribute)
        and (node.func.value.id if isinstance(node.func.value, ast.Name) else node.func.value.attr)
        in anchored
    ]
    assert found == []
