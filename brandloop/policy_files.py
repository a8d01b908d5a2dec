"""Reading the shipped policy files: parsed once per process and again only when a file changes.

A run reads the catalog, scoring, agent, drift and governance policies; parsing that YAML on
every run was most of the agent's own overhead. Callers get a fresh copy they may change.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int, size: int) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def read_policy_yaml(path: Path) -> Any:
    """The parsed content of a policy file (a deep copy of the cached parse)."""
    stat = path.stat()
    return copy.deepcopy(_parsed(str(path.resolve()), stat.st_mtime_ns, stat.st_size))
