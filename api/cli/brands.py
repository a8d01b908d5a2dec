"""``brandloop brands add|list|rename``.

Brand names compare ignoring case and separators (``brandloop.domain.brand_key``): ``acme
coffee`` and ``Acme_Coffee`` name the brand ``Acme Coffee``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from brandloop.api.cli import tables
from brandloop.api.cli.app import brands_app
from brandloop.api.cli.common import database, out, print_json, refuse_credentials, settings
from brandloop.api.cli.tables import Column, Wide
from brandloop.domain import brand_key
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import crud
from brandloop.registry.models import BrandRow
from brandloop.views import brand_view


@brands_app.command("add")
def add(path: Annotated[Path, typer.Argument(help="brand kit YAML file")]) -> None:
    """Add a brand kit (or update the brand with the same name, compared ignoring case and
    separators: the brand keeps its spelling)."""
    kit = load_brand_kit(path)
    refuse_credentials(f"brand kit {path}", kit.model_dump(mode="json"))
    cfg = settings()
    with database().session() as session:
        stored = crud.store_brand(session, tenant=cfg.tenant, kit=kit)
        row = stored.row
    spelt = f" (the kit says {kit.name!r})" if kit.name != row.name else ""
    verb = {"created": "stored as", "updated": "updated:", "unchanged": "unchanged:"}
    out.print(f"brand {row.name} {verb[stored.change]} {row.id}{spelt}", markup=False)


@brands_app.command("rename")
def rename(
    ref: Annotated[str, typer.Argument(help="the brand: its id, or its name")],
    name: Annotated[str, typer.Argument(help="its new name")],
) -> None:
    """Give a brand another name (its id, runs and memory stay; its policy file is the new
    name's slug). Tells apart brands stored under one name before names ignored case."""
    cfg = settings()
    with database().session() as session:
        row = crud.rename_brand(session, tenant=cfg.tenant, ref=ref, name=name)
        out.print(f"brand {row.id} is now {row.name}", markup=False)


@brands_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False, wide: Wide = False) -> None:
    """List the brands in the registry."""
    cfg = settings()
    with database().session() as session:
        rows = crud.list_brands(session, tenant=cfg.tenant)
        if as_json:
            print_json([brand_view(r).model_dump(mode="json") for r in rows])
            return
        kits = [crud.brand_kit(row) for row in rows]
        columns = (
            Column("name"),
            Column("palette", text=True),
            Column("tone", text=True),
            Column("id", wide=True),
        )
        table_rows = [
            (
                kit.name,
                Text(" ").join(
                    Text.assemble(("  ", f"on {c.hex}"), f" {c.hex}") for c in kit.palette
                ),
                ", ".join(kit.tone),
                row.id,
            )
            for row, kit in zip(rows, kits, strict=True)
        ]
        shared = _shared_names(rows)
    tables.show(out, "Brands", columns, table_rows, wide=wide)
    for ids in shared:  # data from before names ignored case: the name answers to none of them
        out.print(
            f"brands {', '.join(ids)} share one name (case and separators ignored), which "
            "answers to none of them: rename all but one, e.g. "
            f"`brandloop brands rename {ids[-1]} NEW-NAME`",
            markup=False,
        )


def _shared_names(rows: Sequence[BrandRow]) -> list[list[str]]:
    """The ids of brands whose names have one key, per key (only in pre-0900 data)."""
    by_key: dict[str, list[str]] = {}
    for row in rows:
        by_key.setdefault(brand_key(row.name), []).append(row.id)
    return [ids for ids in by_key.values() if len(ids) > 1]
