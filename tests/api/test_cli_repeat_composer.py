"""A repeat and the prompt composer, through ``brandloop generate`` on SQLite and PostgreSQL
(docs/agent.md, "Repeat work is free"): the composer's version (``COMPOSER_VERSION`` in
tools/composer.py, bumped when its output changes) is part of the repeat key, so a seeded run
composed by an earlier composer is not replayed with the prompt that composer made.

The earlier composer is real code: a copy of this tree whose ``compose`` ends every prompt with
", film grain" and whose ``COMPOSER_VERSION`` is another, run as its own process on the same
data dir and database. Before session 24 the key left the composer out: the run after the
change replayed the old run's attempts from the cache, "film grain" and all, at $0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from brandloop.settings import Settings
from tests.api.test_cli import BRANDS, ROOT, run_cli

ARGS = ("generate", "a morning table", "--brand", "Acme Coffee", "--seed", "77", "--n", "1",
        "--size", "160x160", "--no-memory", "--json")  # fmt: skip
PACKAGES = ("brandloop", "agent", "api", "evals", "memory", "policies", "tools")


def _earlier_composer(tmp_path: Path) -> Path:
    """A copy of the code whose composer made other prompts, and had another version."""
    tree = tmp_path / "earlier"
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, tree / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    composer = tree / "tools" / "composer.py"
    source = composer.read_text(encoding="utf-8")
    assert source.count("    return prompt, negative\n") == 1
    source = source.replace(
        "    return prompt, negative\n", '    return prompt + ", film grain", negative\n'
    )
    source = re.sub(
        r"\nCOMPOSER_VERSION = (\d+)", lambda m: f"\nCOMPOSER_VERSION = {m[1]}0", source
    )
    composer.write_text(source, encoding="utf-8")
    return tree


def _actions(doc: dict[str, Any]) -> list[str]:
    return [d["action"] for d in doc["decisions"]]


def _generate(capsys: pytest.CaptureFixture[str], out: Path) -> dict[str, Any]:
    code, stdout, err = run_cli(capsys, *ARGS, "--out", str(out))
    assert code == 0, err
    doc: dict[str, Any] = json.loads(stdout)
    assert doc["status"] == "succeeded" and doc["images"], doc["reason"]
    return doc


def test_a_run_composed_by_another_composer_version_is_not_replayed(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "brands", "add", str(BRANDS / "acme-coffee.yaml"))
    assert code == 0, err
    tree = _earlier_composer(tmp_path)
    earlier = subprocess.run(  # from the copy's folder: ``-c`` imports from there first
        [sys.executable, "-c", "from brandloop.api.cli import main; main()", *ARGS,
         "--out", str(tmp_path / "out0")],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    old = json.loads(earlier.stdout)
    assert old["status"] == "succeeded" and old["cost_usd"] > 0, old["reason"]
    assert all(i["prompt"].endswith(", film grain") for i in old["images"]), old["images"]

    # the composer changed: the same seeded request is composed afresh and paid for
    new = _generate(capsys, tmp_path / "out1")
    assert "replay_cache" not in _actions(new), new["decisions"]
    assert new["cost_usd"] > 0 and not any(i["cache_hit"] for i in new["images"])
    assert not any("film grain" in i["prompt"] for i in new["images"]), new["images"]

    # the same composer version: a repeat, replayed from the cache at $0
    again = _generate(capsys, tmp_path / "out2")
    assert "replay_cache" in _actions(again), again["decisions"]
    assert again["cost_usd"] == 0 and all(i["cache_hit"] for i in again["images"])
    assert [i["prompt"] for i in again["images"]] == [i["prompt"] for i in new["images"]]
