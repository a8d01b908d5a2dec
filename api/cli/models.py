"""``brandloop models list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from brandloop.agent.runner import catalog_models
from brandloop.api.cli.app import models_app
from brandloop.api.cli.common import database, err, out, print_json, settings
from brandloop.api.cli.tables import Column, Wide, show
from brandloop.domain import ModelSpec
from brandloop.policies.catalog import configured_providers, model_views
from brandloop.registry.types import usd


def _shapes(model: ModelSpec) -> str:
    if model.aspect_ratios:
        return " ".join(model.aspect_ratios)
    return " ".join(model.sizes) if model.sizes else "any"


def _price(model: ModelSpec) -> str:
    prices = sorted(model.prices.values())
    if len(prices) > 1 and prices[0] != prices[-1]:
        return f"{usd(prices[0])}-{usd(prices[-1]).removeprefix('$')}"
    return usd(model.price_per_image_usd)


MODEL_COLUMNS = (
    Column("id"),
    Column("tier"),
    Column("status"),
    Column("price/image", justify="right"),
    Column("usable"),
    Column("sizes", wide=True, text=True),
    Column("seed", wide=True),
    Column("neg", wide=True),
    Column("n/call", wide=True, justify="right"),
    Column("baseline", wide=True, justify="right"),
    Column("why not", wide=True, text=True),
)


@models_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False, wide: Wide = False) -> None:
    """The model catalog (shipped YAML merged with the registry), and which models this
    process can use with the providers its settings configure."""
    cfg = settings()
    models = model_views(catalog_models(database(), cfg), cfg)
    if as_json:
        print_json([m.model_dump(mode="json") for m in models])
        return
    rows = [
        (
            m.id,
            m.tier,
            m.status,
            _price(m),
            Text("yes", style="green") if m.usable else Text("no", style="dim"),
            _shapes(m),
            "yes" if m.supports_seed else "no",
            "yes" if m.supports_negative_prompt else "no",
            str(m.max_images_per_call),
            f"{m.quality_baseline:.2f}",
            m.unusable_reason or "-",
        )
        for m in models
    ]
    title = "Model catalog (more: --wide; licences and price tables: --json)"
    show(out, title, MODEL_COLUMNS, rows, wide=wide)
    if configured_providers(cfg) == {"procedural"}:
        err.print(
            "No provider credentials are set: only the procedural models are active. Set "
            "BRANDLOOP_OPENAI_API_KEY, BRANDLOOP_STABILITY_API_KEY, BRANDLOOP_A1111_BASE_URL or "
            "BRANDLOOP_COMFYUI_BASE_URL to enable more."
        )
