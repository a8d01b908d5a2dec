"""Helpers the command modules share: settings, consoles, JSON output, brand references."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from brandloop.domain import BrandKit
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.db import session_scope
from brandloop.settings import Settings, get_settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def settings() -> Settings:
    return get_settings()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or Path(ref).is_file()


def ensure_brand(ref: str, *, tenant: str) -> str:
    """A brand reference as given on the command line: a YAML path is added (or updated)
    first; anything else must name a brand already in the registry. Returns its name."""
    if looks_like_path(ref):
        kit: BrandKit = load_brand_kit(Path(ref))
        with session_scope(settings().resolved_database_url) as session:
            crud.upsert_brand(session, tenant=tenant, kit=kit)
        return kit.name
    return ref
