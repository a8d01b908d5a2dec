"""The built wheel installs one top-level package, ``brandloop``, and works on its own.

Every top-level folder (``agent/``, ``tools/``, ...) is a subpackage of ``brandloop`` through a
relative symlink; the wheel must carry real files for each, with their data, and nothing else at
the top level (another ``tools`` or ``api`` package in the environment would shadow ours).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYER_FOLDERS = ("agent", "api", "evals", "memory", "policies", "tools")

pytestmark = pytest.mark.slow


#: what a build from a copy of the tree leaves out: not the project's sources
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".brandloop", "out", "build", "*.egg-info", "__pycache__", ".mypy_cache",
    ".ruff_cache", "node_modules",
)  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the tree (its relative symlinks kept): pip builds in
    place, and the suite's other process writes beside the sources meanwhile."""
    out = tmp_path_factory.mktemp("wheel")
    tree = tmp_path_factory.mktemp("tree") / "brandloop"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=_NOT_SOURCES)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(tree),
        ],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:] + built.stdout[-2000:]
    [made] = out.glob("brandloop-*.whl")
    return made


def test_the_wheel_has_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"brandloop"}
    top_level_txt = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    if top_level_txt:
        text = zipfile.ZipFile(wheel).read(top_level_txt[0]).decode()
        assert text.split() == ["brandloop"]


def test_every_layer_folder_is_in_the_wheel_as_real_files(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    for folder in LAYER_FOLDERS:
        assert f"brandloop/{folder}/__init__.py" in names, folder
    # data the code reads at run time travels with it
    for data in (
        "brandloop/policies/catalog.yaml",
        "brandloop/templates/governance.yaml",
        "brandloop/memory/assets/minilm-tokenizer.json",
        "brandloop/evals/schema/suite.schema.json",
        "brandloop/registry/migrations/script.py.mako",
    ):
        assert data in names, data
    # a symlink stored in a zip has the S_IFLNK bits in its external attributes
    for info in archive.infolist():
        assert (info.external_attr >> 16) & 0o170000 != 0o120000, f"{info.filename} is a link"


def test_the_installed_wheel_imports_without_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    probe = (
        "import importlib.util, brandloop, brandloop.api.cli, brandloop.agent.graph\n"
        "from brandloop.policies.catalog import load_catalog\n"
        "from brandloop.templates.governance import load_governance_policy\n"
        "assert load_catalog(), 'catalog empty'\n"
        "load_governance_policy()\n"
        "print(brandloop.__file__)\n"
        "print(brandloop.agent.graph.__file__)\n"
        "print([n for n in ('agent', 'api', 'tools', 'memory', 'policies', 'evals')"
        " if importlib.util.find_spec(n) is not None])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    package_file, graph_file, stray = result.stdout.splitlines()
    assert Path(package_file).is_relative_to(target)
    assert Path(graph_file).is_relative_to(target)
    assert stray == "[]"
