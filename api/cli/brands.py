"""``brandloop brands add|list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from brandloop.api.cli.app import brands_app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud


@brands_app.command("add")
def add(path: Annotated[Path, typer.Argument(help="brand kit YAML file")]) -> None:
    """Add a brand kit (or update the brand with the same name)."""
    kit = load_brand_kit(path)
    cfg = settings()
    with database().session() as session:
        row = crud.upsert_brand(session, tenant=cfg.tenant, kit=kit)
        out.print(f"brand {kit.name} stored as {row.id}")


@brands_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the brands in the registry."""
    cfg = settings()
    with database().session() as session:
        rows = crud.list_brands(session, tenant=cfg.tenant)
        if as_json:
            print_json([{"id": r.id, **r.kit} for r in rows])
            return
        table = Table(title="Brands")
        for column in ("id", "name", "palette", "tone"):
            table.add_column(column)
        for row in rows:
            kit = crud.brand_kit(row)
            swatches = " ".join(f"[on {c.hex}]  [/] {c.hex}" for c in kit.palette)
            table.add_row(row.id, kit.name, swatches, ", ".join(kit.tone))
        out.print(table)
