"""``brandloop models list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from agent.runner import catalog_models
from api.cli.app import models_app
from api.cli.common import err, out, print_json, settings
from policies.catalog import configured_providers


@models_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The model catalog, with which models this process can use."""
    cfg = settings()
    models = catalog_models(cfg)
    providers = configured_providers(cfg)
    if as_json:
        print_json(
            [
                {
                    **m.model_dump(mode="json"),
                    "usable": m.provider in providers and m.status != "retired",
                }
                for m in models
            ]
        )
        return
    table = Table(title="Model catalog")
    for column in ("id", "tier", "status", "price/image", "seed", "usable", "notes"):
        table.add_column(column)
    for m in models:
        usable = m.provider in providers and m.status != "retired"
        table.add_row(
            m.id,
            m.tier,
            m.status,
            f"${m.price_per_image_usd:.3f}",
            "yes" if m.supports_seed else "no",
            "[green]yes[/]" if usable else "[dim]no[/]",
            m.notes,
        )
    out.print(table)
    if providers == {"procedural"}:
        err.print("No provider credentials are set: only the procedural models are active.")
