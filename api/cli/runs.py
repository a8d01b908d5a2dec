"""``brandloop runs list|show|resume|reproduce|stats``: the registry's record of every run."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from brandloop import event_loop, views
from brandloop.agent.repairs import fix_rates, repair_stats
from brandloop.agent.runner import resume_run
from brandloop.api.cli import tables
from brandloop.api.cli.app import runs_app
from brandloop.api.cli.common import (
    check_output_folder,
    database,
    out,
    print_json,
    run_stops_reported,
    settings,
)
from brandloop.api.cli.delivery import ForceOption, OutOption, deliver, delivery_target
from brandloop.api.cli.generate import exit_code
from brandloop.api.cli.tables import Column, Wide
from brandloop.api.preview import thumbnail
from brandloop.domain import Receipt
from brandloop.errors import NotFoundError, ProvidersUnavailableError
from brandloop.registry import crud
from brandloop.registry.types import usd
from brandloop.views import SHA256, RunTrace, TraceEvent, find_run, run_view

if TYPE_CHECKING:
    from brandloop.reproduce import Reproduction


def run_trace(ref: str, *, tenant: str) -> RunTrace:
    """Everything the registry knows about a run, found by run id or by an artifact's sha256."""
    with database().session() as session:
        run = find_run(session, tenant=tenant, ref=ref)
        if run is None:
            raise NotFoundError(
                f"no artifact {ref}" if SHA256.fullmatch(ref) else f"unknown run {ref!r}"
            )
        return views.run_trace(session, run=run)


ATTEMPT_COLUMNS = (
    Column("attempt"),
    Column("model"),
    Column("outcome"),
    Column("composite", justify="right"),
    Column("cost", justify="right"),
    Column("seed req/ret", wide=True),
    Column("signals", wide=True, text=True),
)


def _summary(event: TraceEvent) -> str:
    payload = event.payload
    if event.kind == "decision":
        return f"{payload['action']}: {payload['reason']}"
    return ", ".join(f"{k}={v}" for k, v in payload.items() if v is not None)


@runs_app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """The most recent runs."""
    cfg = settings()
    with database().session() as session:
        rows = [
            run_view(session, r) for r in crud.list_runs(session, tenant=cfg.tenant, limit=limit)
        ]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    columns = (
        Column("run", key=True),
        Column("status"),
        Column("acc", justify="right"),
        Column("cost", justify="right"),
        Column("brand", text=True),
        Column("brief", text=True),
        Column("attempts", wide=True, justify="right"),
        Column("created", wide=True),
    )
    table_rows = [
        (
            r.run_id,
            r.status,
            str(r.accepted),
            usd(r.cost_usd),
            r.brand,
            r.brief,
            str(r.attempts),
            f"{r.created_at:%Y-%m-%d %H:%M}",
        )
        for r in rows
    ]
    tables.show(out, "Runs", columns, table_rows, wide=wide)


@runs_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="run id, or the sha256 of one of its images")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """The whole trace of a run: decisions, attempts with prompts, seeds, scores and cost."""
    trace = run_trace(ref, tenant=settings().tenant)
    if as_json:
        print_json(trace.model_dump(mode="json"))
        return
    run = trace.run
    out.print(
        Text.assemble(
            (run.run_id, "bold"), f"  {run.status}  brand {run.brand}  template {run.template}"
        )
    )
    out.print(f"brief: {run.brief}")
    out.print(
        f"{run.accepted} accepted of {run.attempts} attempts, {usd(run.cost_usd)}. {run.reason}"
    )
    trace_columns = (
        Column("#", justify="right"),
        Column("node"),
        Column("event"),
        Column("detail", text=True),
    )
    events = [(str(e.seq), e.node, e.kind, _summary(e)) for e in trace.events]
    tables.show(out, "Trace", trace_columns, events, wide=wide)
    attempts = [
        (
            a.id.split("-", 1)[-1],
            Text.assemble(a.model, (" preview", "yellow")) if a.preview else a.model,
            a.outcome,
            f"{a.composite:.2f}" if a.composite is not None else "-",
            usd(a.cost_usd),
            f"{a.seed_requested}/{a.seed_returned}",
            " ".join(f"{k}={v:.2f}" for k, v in a.scores.items()) or (a.error or ""),
        )
        for a in trace.attempts
    ]
    tables.show(out, "Attempts", ATTEMPT_COLUMNS, attempts, wide=wide)
    _print_lineage(trace.receipts)
    for image in run.images[:4]:
        if image.deleted:
            at = image.deleted_at
            when = f" (deleted {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if at else ""
            out.print(f"{image.sha256[:12]}  its bytes were deleted; its receipt stays{when}")
        elif image.path and Path(image.path).exists():
            preview = ("  preview", "yellow") if image.preview else ""
            out.print(
                Text.assemble(f"{image.sha256[:12]}  {image.model}  seed {image.seed}", preview)
            )
            out.print(thumbnail(Path(image.path).read_bytes(), width=32))
    if trace.attempts and not trace.receipts:
        out.print(f"prompt: {trace.attempts[-1].prompt}")


def _print_lineage(receipts: list[Receipt]) -> None:
    """Per accepted image: template version, prompts, model and version, seeds, params,
    scores, moderation and cost, as its receipt records them."""
    for receipt in receipts:
        verdicts = "; ".join(
            f"{m.source} {'allowed' if m.allowed else 'blocked'}"
            + (f" ({', '.join(m.categories)})" if m.categories else "")
            for m in receipt.moderation
        )
        scores = " ".join(f"{k}={v:.2f}" for k, v in receipt.scores.items())
        out.print(Text.assemble("\n", (f"image {receipt.sha256}", "bold")))
        for key, value in (
            ("template", receipt.template),
            ("model", f"{receipt.model} version {receipt.model_version}"),
            ("preview", "yes: the procedural preview renderer" if receipt.preview else "no"),
            ("seed", f"requested {receipt.seed_requested}, returned {receipt.seed_returned}"),
            ("size", f"{receipt.width}x{receipt.height}"),
            ("params", json.dumps(receipt.params, sort_keys=True)),
            ("scores", f"composite {receipt.composite:.3f}  {scores}"),
            ("moderation", verdicts or "-"),
            ("cost", usd(receipt.cost_usd)),
            ("prompt", receipt.prompt),
            ("negative", receipt.negative_prompt or "-"),
            ("raw image", receipt.source_sha256 or "-"),
        ):
            out.print(f"  {key:<10} {value}", markup=False)


@runs_app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument()],
    out_dir: OutOption = None,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Continue a run that was interrupted, from its last checkpoint, without paying twice.

    The accepted images and receipt.json go to --out, else to the folder generate was given,
    as generate writes them. A run that has finished is not run again: its result, with the
    exit code ``generate`` gives it (3 refused, 4 failed), written to --out when given. A run
    its input stops (a template version rejected for it, a render past the cap) ends
    ``refused`` with that reason: exit 2, the one line."""
    cfg = settings()
    target = delivery_target(run_id, out_dir, force=force)
    with run_stops_reported(run_id, tenant=cfg.tenant, as_json=as_json):
        result = event_loop.run(resume_run(run_id, settings=cfg, db=database(), tenant=cfg.tenant))
    result, where = deliver(result, target, tenant=cfg.tenant, force=force)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        why = f" ({result.reason})" if result.status in ("refused", "failed") else ""
        out.print(
            f"{result.run_id} {result.status}: {len(result.images)} accepted, "
            f"{usd(result.cost_usd)}{why}{where}",
            markup=False,
        )
    raise typer.Exit(exit_code(result))


@runs_app.command("reproduce")
def reproduce(
    run_id: Annotated[str, typer.Argument()],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="also write the re-rendered PNGs here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """Re-render each accepted image from its receipt; say if it is byte-identical,
    perceptually identical (perceptual-hash distance) or different."""
    from brandloop.agent.budgets import OutsideRunPayer
    from brandloop.agent.runner import catalog_models, default_providers
    from brandloop.reproduce import PHASH_IDENTICAL_DISTANCE, reproduce_run
    from brandloop.tools.providers.batching import receipt_request
    from brandloop.tools.providers.factory import closing as providers_closing

    if out_dir is not None:
        check_output_folder(out_dir, "--out")
    cfg = settings()

    async def reproduce_closing() -> Reproduction:
        providers = default_providers(cfg)
        async with providers_closing(providers, owned=True):
            return await reproduce_run(
                cfg,
                database(),
                tenant=cfg.tenant,
                run_id=run_id,
                providers=providers,
                models=catalog_models(database(), cfg),
                payer=OutsideRunPayer(database(), tenant=cfg.tenant),
                request_for=receipt_request,
                out_dir=out_dir,
            )

    result = event_loop.run(reproduce_closing())
    if as_json:
        print_json(result.model_dump(mode="json"))
        _none_reproduced(result)
        return
    columns = (
        Column("image"),
        Column("result"),
        Column("distance", justify="right"),
        Column("note", text=True),
        Column("model", wide=True),
        Column("seed", wide=True, justify="right"),
    )
    colours = {"byte-identical": "green", "perceptually-identical": "yellow"}
    rows = [
        (
            image.sha256[:12],
            Text(image.verdict, style=colours.get(image.verdict, "red")),
            "-" if image.hash_distance is None else f"{image.hash_distance}/64",
            image.error or "",
            image.model,
            str(image.seed),
        )
        for image in result.images
    ]
    title = f"Reproduction of {result.run_id} (template {result.template})"
    tables.show(out, title, columns, rows, wide=wide)
    out.print(
        f"perceptually identical = pHash distance <= {PHASH_IDENTICAL_DISTANCE} of 64 bits; "
        f"reproduction cost {usd(result.cost_usd)}"
    )
    _none_reproduced(result)


def _none_reproduced(result: Reproduction) -> None:
    """Exit 5 (providers unavailable) when not one image could be re-rendered: a script must
    tell that from a reproduction (it exited 0 with every row ``failed``). A row re-rendered
    but not compared (its raw original lost from the store) was rendered: not a provider's
    failure."""
    failed = [
        image
        for image in result.images
        if image.verdict == "failed" and image.reproduced_sha256 is None
    ]
    if result.images and len(failed) == len(result.images):
        raise ProvidersUnavailableError(
            f"none of the {len(failed)} image(s) of {result.run_id} could be reproduced: "
            f"{failed[0].error or 'failed'}"
        )


@runs_app.command("stats")
def stats(
    brand: Annotated[str | None, typer.Option(help="only this brand (id or name)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    wide: Wide = False,
) -> None:
    """What repairs work: for each repair the diagnosis applied, how often the next round
    fixed the signal it aimed at - per action, per model, and per both."""
    cfg = settings()
    with database().session() as session:
        brand_id, brand_name = None, None
        if brand is not None:
            row = crud.get_brand(session, tenant=cfg.tenant, ref=brand)
            if row is None:
                raise NotFoundError(f"unknown brand {brand!r}")
            brand_id, brand_name = row.id, row.name
        report = repair_stats(
            fix_rates(session, tenant=cfg.tenant, brand_id=brand_id), brand=brand_name
        )
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    if not report.rows:
        out.print("no repair has been judged yet: fix rates are not measured")
        return
    counts = (
        Column("tried", justify="right"),
        Column("fixed", wide=True, justify="right"),
        Column("fix rate", justify="right"),
    )
    for title, rows, keys in (
        ("Fix rate per repair", report.by_action, ("action", "signal")),
        ("Fix rate per model", report.by_model, ("model",)),
        ("Fix rate per repair and model", report.rows, ("action", "signal", "model")),
    ):
        columns = (*(Column(key, wide=key == "signal" and len(keys) > 2) for key in keys), *counts)
        table_rows = [
            (
                *({"action": r.action, "signal": r.signal, "model": r.model}[k] for k in keys),
                str(r.tried),
                str(r.fixed),
                "not measured" if r.fix_rate is None else f"{r.fix_rate:.0%}",
            )
            for r in rows
        ]
        heading = title + (f" ({report.brand})" if report.brand else "")
        tables.show(out, heading, columns, table_rows, wide=wide)
