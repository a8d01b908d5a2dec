"""The root Typer app and the sub-apps command modules attach to."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from brandloop.logs import configure_logging, set_debug

app = typer.Typer(
    name="brandloop",
    help="Turn creative requests into approved, on-brand, traceable images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
brands_app = typer.Typer(help="Brand kits: add, list and rename.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Runs: list, show the trace, resume, reproduce, and what repairs work (stats).",
    no_args_is_help=True,
)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="BRANDLOOP_DEBUG",
            help="debug logs, and the traceback of an error before its one-line reason",
        ),
    ] = False,
) -> None:
    """Turn creative requests into approved, on-brand, traceable images."""
    if debug:
        set_debug(True)
        configure_logging(level=logging.DEBUG)


app.add_typer(brands_app, name="brands")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
