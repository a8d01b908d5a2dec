"""``brandloop memory add|search|forget``: a brand's memory of style notes and accepted work."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from brandloop.agent.runner import open_memory
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, ensure_brand, out, print_json, settings
from brandloop.errors import BadInputError, NotFoundError
from brandloop.registry import crud

memory_app = typer.Typer(
    help="Brand memory: style notes, accepted prompts, image descriptors.", no_args_is_help=True
)
app.add_typer(memory_app, name="memory")

BrandOption = Annotated[str, typer.Option("--brand", help="brand id or name, or a brand kit YAML")]


def _brand_slug(ref: str) -> str:
    cfg = settings()
    name = ensure_brand(ref, tenant=cfg.tenant)
    with database().session() as session:
        row = crud.get_brand(session, tenant=cfg.tenant, ref=name)
        if row is None:
            raise NotFoundError(f"unknown brand {ref!r}; add it with `brandloop brands add`")
        return crud.brand_kit(row).slug


def parse_before(text: str) -> datetime:
    """A date (YYYY-MM-DD, midnight UTC) or an ISO timestamp (UTC when no zone is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadInputError(
                f"--before {text!r} is not a date (YYYY-MM-DD) or ISO time"
            ) from None
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@memory_app.command("add")
def add(
    text: Annotated[str, typer.Argument(help='a style note, e.g. "always a soft morning light"')],
    brand: BrandOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a style note every later run of the brand will recall."""
    cfg = settings()
    slug = _brand_slug(brand)
    record_id = open_memory(cfg).add_note(tenant=cfg.tenant, brand=slug, text=text)
    if as_json:
        print_json({"id": record_id, "brand": slug, "text": text})
    else:
        out.print(f"noted for {slug}: {record_id}")


@memory_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="what to look for")],
    brand: BrandOption,
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The brand's memories nearest to TEXT: notes, accepted prompts, image descriptors."""
    cfg = settings()
    slug = _brand_slug(brand)
    hits = open_memory(cfg).search(tenant=cfg.tenant, brand=slug, query=text, k=k)
    if as_json:
        print_json([h.model_dump(mode="json") for h in hits])
        return
    table = Table(title=f"Memory of {slug}")
    for column in ("id", "kind", "distance", "created", "text"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        created = hit.metadata.get("created_at")
        when = (
            datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%d %H:%M")
            if created is not None
            else ""
        )
        table.add_row(hit.id, hit.kind, f"{hit.distance:.3f}", when, hit.text[:120])
    out.print(table)


@memory_app.command("forget")
def forget(
    brand: BrandOption,
    before: Annotated[
        str | None, typer.Option(help="forget records created before this date")
    ] = None,
    record_id: Annotated[str | None, typer.Option("--id", help="forget this record")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete memories - their vectors and texts - by id, by age, or both."""
    if before is None and record_id is None:
        raise BadInputError("give --before DATE, --id ID or both")
    cfg = settings()
    slug = _brand_slug(brand)
    removed = open_memory(cfg).forget(
        tenant=cfg.tenant,
        brand=slug,
        before=parse_before(before) if before else None,
        record_id=record_id,
    )
    if record_id is not None and removed == 0:
        raise NotFoundError(f"no memory {record_id!r} for {slug}")
    if as_json:
        print_json({"brand": slug, "deleted": removed})
    else:
        out.print(f"deleted {removed} record(s) from {slug}'s memory")
