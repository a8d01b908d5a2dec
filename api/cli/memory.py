"""``brandloop memory add|notes|search|forget|repair|rekey``: a brand's memory of style notes and
accepted work."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from sqlalchemy import select

from brandloop.agent.replay import forget_replays
from brandloop.agent.runner import open_memory
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, ensure_brand, err, out, print_json, settings
from brandloop.api.cli.tables import Column, Wide
from brandloop.api.style_notes import add_style_note, list_style_notes
from brandloop.errors import BadInputError, NotFoundError
from brandloop.memory.rekey import Owner, rekey_legacy, split_campaigns
from brandloop.registry import crud
from brandloop.registry.models import BrandRow, RunRow

memory_app = typer.Typer(
    help="Brand memory: style notes, accepted prompts, image descriptors.", no_args_is_help=True
)
app.add_typer(memory_app, name="memory")

BrandOption = Annotated[str, typer.Option("--brand", help="brand id or name, or a brand kit YAML")]


@contextmanager
def _brand_row(ref: str) -> Iterator[BrandRow]:
    """The stored brand ``ref`` names, in an open session."""
    cfg = settings()
    name = ensure_brand(ref, tenant=cfg.tenant)
    with database().session() as session:
        row = crud.get_brand(session, tenant=cfg.tenant, ref=name)
        if row is None:
            raise NotFoundError(f"unknown brand {ref!r}; add it with `brandloop brands add`")
        yield row


def _brand(ref: str) -> tuple[str, str]:
    """The brand's registry id (memory's exact key) and its slug (for people)."""
    with _brand_row(ref) as row:
        return row.id, crud.brand_kit(row).slug


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
    """Add a style note every later run of the brand will recall. A note the brand's text
    gate refuses (as it would refuse every later run) is not stored: exit 3, audited."""
    cfg = settings()
    brand_id, slug = _brand(brand)
    with database().session() as session:
        row = session.get(BrandRow, brand_id)
        if row is None:  # removed since
            raise NotFoundError(f"unknown brand {brand!r}; add it with `brandloop brands add`")
        added = add_style_note(
            open_memory(cfg),
            session,
            tenant=cfg.tenant,
            brand=row,
            actor="cli",
            text=text,
            policy_dirs=[cfg.data_dir / "policies"],
        )
        name = row.name  # the brand's name, as POST /v1/memory/notes answers it
    if as_json:
        print_json(
            {"id": added.id, "brand": name, "text": added.text, "redacted": list(added.redacted)}
        )
        return
    out.print(f"noted for {slug}: {added.id}")
    if added.redacted:
        err.print("redacted before it was stored: " + ", ".join(added.redacted))


@memory_app.command("notes")
def notes(
    brand: BrandOption,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """Every style note of the brand, newest first: what each of its runs recalls."""
    cfg = settings()
    with _brand_row(brand) as row:
        hits = list_style_notes(open_memory(cfg), tenant=cfg.tenant, brand=row)
        slug = crud.brand_kit(row).slug
    if as_json:
        print_json([h.model_dump(mode="json") for h in hits])
        return
    columns = (Column("text", text=True), Column("created"), Column("id", key=True))  # forget
    rows = [(hit.text, _when(hit.metadata.get("created_at")), hit.id) for hit in hits]
    tables.show(out, f"Style notes of {slug} ({len(hits)})", columns, rows, wide=wide)


@memory_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="what to look for")],
    brand: BrandOption,
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """The brand's memories nearest to TEXT: notes, accepted prompts, image descriptors."""
    cfg = settings()
    brand_id, slug = _brand(brand)
    hits = open_memory(cfg).search(tenant=cfg.tenant, brand=brand_id, query=text, k=k)
    if as_json:
        print_json([h.model_dump(mode="json") for h in hits])
        return
    columns = (
        Column("kind"),
        Column("distance", justify="right"),
        Column("text", text=True),
        Column("created", wide=True),
        Column("id", wide=True),
    )
    rows = [
        (hit.kind, f"{hit.distance:.3f}", hit.text, _when(hit.metadata.get("created_at")), hit.id)
        for hit in hits
    ]
    tables.show(out, f"Memory of {slug}", columns, rows, wide=wide)


def _when(created: object) -> str:
    if not isinstance(created, int | float | str) or created == "":
        return ""
    return datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%d %H:%M")


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
    brand_id, slug = _brand(brand)
    memory = open_memory(cfg)
    cutoff = parse_before(before) if before else None
    texts = memory.note_forms(tenant=cfg.tenant, brand=brand_id, before=cutoff, record_id=record_id)
    with database().session() as session:  # first: no repeat serves a note's prompts again
        forget_replays(session, tenant=cfg.tenant, brand_id=brand_id, texts=texts)
    removed = memory.forget(tenant=cfg.tenant, brand=brand_id, before=cutoff, record_id=record_id)
    if record_id is not None and removed == 0:
        raise NotFoundError(f"no memory {record_id!r} for {slug}")
    if as_json:
        print_json({"brand": slug, "deleted": removed})
    else:
        out.print(f"deleted {removed} record(s) from {slug}'s memory")


@memory_app.command("repair")
def repair(brand: BrandOption, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Rebuild the brand's memory from its stored texts (ids, times and scores kept).

    The fix for "brand memory of ... is damaged": an index that lost records when two
    processes wrote one data dir's memory at once. Safe to run on sound memory, and again.
    """
    cfg = settings()
    brand_id, slug = _brand(brand)
    rebuilt = open_memory(cfg).repair(tenant=cfg.tenant, brand=brand_id)
    if as_json:
        print_json({"brand": slug, "rebuilt": rebuilt})
        return
    kept = ", ".join(f"{count} {kind}(s)" for kind, count in rebuilt.items()) or "nothing"
    out.print(f"rebuilt {slug}'s memory: {kept}")


@memory_app.command("rekey")
def rekey(
    drop_legacy: Annotated[
        bool, typer.Option("--drop-legacy", help="delete legacy collections that fully moved")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Move memory from the old slug-named collections to exact-identity ones, and give each
    brand's campaigns collections of their own (idempotent).

    Run once after upgrading, for every tenant at once. Records a run made go to that run's
    exact tenant and brand; other records (notes) of a collection that several tenants
    shared are left unattributed, never copied to any of them. Brand memory written before
    campaign collections has its campaign records copied to them (until then a campaign's
    recall filters the brand's memory: right, but slower as the brand's history grows).
    """
    cfg = settings()
    db = database()
    with db.session() as session:
        brands = [(r.tenant, r.id, r.name) for r in session.scalars(select(BrandRow))]

    def run_owners(run_ids: Sequence[str]) -> dict[str, Owner]:
        by_name = {(tenant, name): brand_id for tenant, brand_id, name in brands}
        with db.session() as session:
            rows = session.execute(
                select(RunRow.id, RunRow.tenant, RunRow.brand_id, RunRow.brand_name).where(
                    RunRow.id.in_(run_ids)
                )
            )
            owners: dict[str, Owner] = {}
            for run_id, tenant, brand_id, brand_name in rows:
                found = brand_id or by_name.get((tenant, brand_name))
                if found is not None:
                    owners[run_id] = (tenant, found)
            return owners

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # off a terminal rich leaves a blank line on stderr
    ) as progress:
        task = progress.add_task("looking for legacy collections", total=None)

        def started(name: str, records: int) -> None:
            progress.update(task, description=f"re-keying {name} ({records} records)")

        memory = open_memory(cfg)
        with memory.exclusive():
            report = rekey_legacy(
                memory,
                brands=brands,
                run_owners=run_owners,
                drop_legacy=drop_legacy,
                on_collection=started,
            )

            def splitting(tenant: str, brand: str) -> None:
                progress.update(task, description=f"campaign collections of {brand} ({tenant})")

            report.campaign_brands, report.campaign_records = split_campaigns(
                memory, on_brand=splitting
            )
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    out.print(
        f"{report.collections} legacy collection(s): {report.moved} record(s) moved, "
        f"{report.unattributed} left unattributed; dropped {len(report.dropped)}, "
        f"kept {len(report.kept)}; {report.campaign_records} campaign record(s) of "
        f"{report.campaign_brands} brand(s) copied to campaign collections"
    )
