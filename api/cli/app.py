"""The root Typer app and the sub-apps command modules attach to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="brandloop",
    help="Turn creative requests into approved, on-brand, traceable images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
brands_app = typer.Typer(help="Brand kits: add and list.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: list, show the trace, resume.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
app.add_typer(brands_app, name="brands")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
