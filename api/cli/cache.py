"""``brandloop cache stats|purge``: the content-addressed generation cache."""

from __future__ import annotations

from typing import Annotated

import typer

from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.api.cli.tables import Column
from brandloop.errors import BadInputError
from brandloop.policies.catalog import catalog_path, load_catalog
from brandloop.registry.types import usd
from brandloop.tools import cache as generation_cache

cache_app = typer.Typer(help="The generation cache: stats and purge.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Entries, hits and the money hits saved, per model."""
    cfg = settings()
    with database().session() as session:
        found = generation_cache.stats(session, tenant=cfg.tenant)
    if as_json:
        print_json(
            {
                "entries": found.entries,
                "hits": found.hits,
                "saved_usd": found.saved_usd,
                "by_model": found.by_model,
            }
        )
        return
    title = f"Generation cache: {found.entries} entries, {found.hits} hits, {usd(found.saved_usd)} saved"
    columns = (
        Column("model"),
        Column("entries", justify="right"),
        Column("hits", justify="right"),
        Column("saved", justify="right"),
    )
    rows = [
        (model, str(row["entries"]), str(row["hits"]), usd(row["saved_usd"]))
        for model, row in found.by_model.items()
    ]
    tables.show(out, title, columns, rows)


@cache_app.command("purge")
def purge(
    model: Annotated[str | None, typer.Option("--model", help="only this catalog model")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete cache entries (the images stay in the artifact store). A --model that is neither
    a catalog model nor one the cache holds entries of is bad input (exit 2): a typo purges
    nothing, and says so."""
    cfg = settings()
    with database().session() as session:
        if model is not None:
            cached = set(generation_cache.stats(session, tenant=cfg.tenant).by_model)
            known = cached | {m.id for m in load_catalog(catalog_path(cfg))}
            if model not in known:
                raise BadInputError(
                    f"--model {model!r} is neither a catalog model nor one the cache holds "
                    f"entries of; known: {', '.join(sorted(known))}"
                )
        removed = generation_cache.purge(session, tenant=cfg.tenant, model=model)
    if as_json:
        print_json({"deleted": removed, "model": model})
    else:
        out.print(f"deleted {removed} cache entr{'y' if removed == 1 else 'ies'}")
