"""``brandloop generate``: run the loop for one brief, with progress, a table and a receipt."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from brandloop import event_loop
from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.runner import (
    brand_run_policy,
    catalog_models,
    check_request,
    model_ladder,
    new_run_id,
    run_generation,
)
from brandloop.agent.writer import PromptWriter, build_writer
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    database,
    ensure_brand,
    err,
    out,
    print_json,
    run_stops_reported,
    settings,
)
from brandloop.api.cli.delivery import (
    ForceOption,
    check_delivery_folder,
    remember_folder,
    settle_folder,
    write_outputs,
)
from brandloop.api.cli.tables import Column, Wide
from brandloop.api.cli.verify import verify_files
from brandloop.api.preview import thumbnail
from brandloop.domain import (
    MAX_REQUEST_BUDGET_USD,
    GenerationRequest,
    RunResult,
    campaign_id_problem,
)
from brandloop.errors import BadInputError, ProvidersUnavailableError
from brandloop.policies.agent import load_agent_policy
from brandloop.policy_files import describe_validation_error
from brandloop.registry import crud
from brandloop.registry.types import usd
from brandloop.tools.credentials import CredentialReport, production_signer
from brandloop.tools.moderation.minors import refuse_at_the_door


class OutputFormat(StrEnum):
    png = "png"
    jpeg = "jpeg"
    webp = "webp"


#: The flag a user typed for each field of the request, for error messages.
REQUEST_FLAGS = {
    "brief": "BRIEF", "brand": "--brand", "count": "--n", "size": "--size",
    "aspect_ratio": "--aspect", "budget_usd": "--budget", "seed": "--seed", "model": "--model",
    "template": "--template", "campaign_id": "--campaign", "providers": "--providers",
    "output_format": "--format",
}  # fmt: skip
EXIT_BY_STATUS = {"succeeded": 0, "partial": 0, "awaiting_review": 0, "refused": 3, "failed": 4}


def exit_code(result: RunResult) -> int:
    """0 ok, 3 refused, 4 budget or round cap (or no hope) with nothing accepted, 5 no usable
    provider, 1 anything else."""
    if result.status == "failed" and result.stop_cause == "providers_unavailable":
        return ProvidersUnavailableError.exit_code
    return EXIT_BY_STATUS.get(result.status, 1)


IMAGE_COLUMNS = (
    Column("#", justify="right"),
    Column("file"),
    Column("model"),
    Column("preview"),
    Column("score", justify="right"),
    Column("cost", justify="right"),
    Column("seed", wide=True, justify="right"),
    Column("palette", wide=True, justify="right"),
    Column("sharp", wide=True, justify="right"),
    Column("expo", wide=True, justify="right"),
)
DECISION_COLUMNS = (Column("node"), Column("action"), Column("reason", text=True))


PENDING_COLUMNS = (
    Column("attempt"),
    Column("model"),
    Column("score", justify="right"),
    Column("cost", justify="right"),
    Column("seed", wide=True, justify="right"),
    Column("image", wide=True),
)


def pending_candidates(run_id: str) -> list[dict[str, Any]]:
    """The accepted candidates of a run waiting for review (nothing is delivered until it is
    approved): what ``generate`` lists, and ``--json`` gives as ``candidates``."""
    with database().session() as session:
        return [
            {
                "attempt_id": a.id,
                "model": a.model,
                "composite": a.composite,
                "cost_usd": a.cost_usd,
                "seed": a.seed_returned if a.seed_returned is not None else a.seed_requested,
                "sha256": a.artifact_sha256,
            }
            for a in crud.list_attempts(session, run_id=run_id)
            if a.outcome == "accepted"
        ]


def _pending(run_id: str) -> list[tuple[str, ...]]:
    """The accepted candidates of a run waiting for review, as rows of PENDING_COLUMNS."""
    return [
        (
            str(c["attempt_id"]).split("-", 1)[-1],
            str(c["model"]),
            f"{c['composite']:.2f}" if c["composite"] is not None else "-",
            usd(c["cost_usd"]),
            str(c["seed"]),
            (c["sha256"] or "")[:12],
        )
        for c in pending_candidates(run_id)
    ]


def _render(
    result: RunResult,
    credentials: list[CredentialReport],
    *,
    target: Path,
    wide: bool = False,
) -> None:
    colour = {"succeeded": "green", "partial": "yellow", "awaiting_review": "yellow"}.get(
        result.status, "red"
    )
    pending = _pending(result.run_id) if result.status == "awaiting_review" else []
    accepted = (
        f"{len(pending)} accepted, waiting for review"
        if result.status == "awaiting_review"
        else f"{len(result.images)} accepted"
    )
    out.print(
        Text.assemble(
            (result.run_id, "bold"),
            "  ",
            (result.status, colour),
            f"  {accepted}, {result.attempts} attempts, {usd(result.cost_usd)}",
        )
    )
    if result.reason:
        out.print(f"  {result.reason}")
    if pending:
        tables.show(out, "Accepted, waiting for review", PENDING_COLUMNS, pending, wide=wide)
    if result.images:
        templates = sorted({image.template for image in result.images})
        rows = [
            (
                str(index),
                Path(image.path).name if image.path else image.sha256[:12],
                image.model,
                Text("preview", style="yellow") if image.preview else "no",
                f"{image.composite:.2f}",
                usd(image.cost_usd),
                str(image.seed),
                *(
                    f"{image.scores.get(name, 0.0):.2f}"
                    for name in ("palette", "sharpness", "exposure")
                ),
            )
            for index, image in enumerate(result.images, start=1)
        ]
        title = f"Accepted images (template {', '.join(templates)})"
        tables.show(out, title, IMAGE_COLUMNS, rows, wide=wide)
        for image in result.images[:4]:
            if image.path:
                out.print(thumbnail(Path(image.path).read_bytes(), width=32))
        out.print(Text.assemble(("Content Credentials", "bold"), " (brandloop verify)"))
        for report in credentials:
            style = "green" if report.status == "valid" else "red"
            out.print(Text.assemble("  ", (report.summary, style)))
    decisions = [(d.node, d.action, d.reason) for d in result.decisions]
    tables.show(out, "Decisions", DECISION_COLUMNS, decisions, wide=wide)
    if result.receipt_path:
        out.print(f"Receipt and PNGs in {Path(result.receipt_path).parent}")
    if result.status == "awaiting_review":
        out.print(
            f"Nothing is delivered until a reviewer answers: brandloop review approve "
            f"{result.run_id} [--note ...] delivers the accepted images to {target}, brandloop review "
            f"reject {result.run_id} finishes the run with nothing delivered."
        )


@app.command()
def generate(
    brief: Annotated[str, typer.Argument(help="the creative request, in words")],
    brand: Annotated[str, typer.Option(help="brand id or name, or a brand kit YAML path")],
    n: Annotated[int, typer.Option("--n", help="how many accepted images are wanted")] = 1,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, e.g. 1024x1024")] = None,
    aspect: Annotated[
        str | None, typer.Option("--aspect", help="aspect ratio W:H, e.g. 16:9")
    ] = None,
    budget: Annotated[float | None, typer.Option(help="USD this run may spend")] = None,
    seed: Annotated[int | None, typer.Option(help="base seed, for reproducible runs")] = None,
    model: Annotated[str | None, typer.Option(help="use only this catalog model")] = None,
    providers: Annotated[
        str | None,
        typer.Option(help="only these providers, comma-separated, e.g. openai,stability"),
    ] = None,
    allow_preview: Annotated[
        bool,
        typer.Option(
            "--allow-preview",
            help="allow the procedural preview renderer beside configured real providers",
        ),
    ] = False,
    template: Annotated[str | None, typer.Option(help="name, name@VERSION or name:LABEL")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign id shared by related runs")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder for PNGs and receipt")
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option("--format", help="file format of the accepted images (default: the model's)"),
    ] = None,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    no_memory: Annotated[
        bool, typer.Option("--no-memory", help="do not recall or remember")
    ] = False,
    wide: Wide = False,
) -> None:
    """Generate on-brand images for BRIEF: plan, generate, moderate, score, replan."""
    cfg = settings()
    production_signer(cfg)  # misconfigured signing fails here, before anything is stored
    if budget is not None and not 0 < budget <= MAX_REQUEST_BUDGET_USD:
        raise BadInputError(
            f"--budget must be greater than zero and at most {MAX_REQUEST_BUDGET_USD:,} dollars"
        )
    run_id = new_run_id()
    target = check_delivery_folder(
        out_dir or Path("out") / run_id, run_id, option="--out", force=force
    )
    if size and aspect:  # the request's own words name its fields, not the options
        raise BadInputError("give --size or --aspect, not both")
    try:  # checked before the brand kit is registered: bad input stores nothing
        request = GenerationRequest(
            brief=brief,
            brand=brand,
            count=n,
            size=size or (None if aspect else cfg.default_size),
            aspect_ratio=aspect,
            budget_usd=budget,
            seed=seed,
            model=model,
            template=template,
            campaign_id=campaign,
            tenant=cfg.tenant,
            # each name as the API takes it (spaces around it stripped, an empty one refused);
            # only a blank option as a whole is the empty list
            providers=(providers.split(",") if providers.strip() else [])
            if providers is not None
            else None,
            allow_preview=allow_preview,
            output_format=output_format.value if output_format else None,
        )
    except ValidationError as exc:
        raise BadInputError(describe_validation_error(exc, names=REQUEST_FLAGS)) from None
    if campaign is not None and (problem := campaign_id_problem(campaign)):
        raise BadInputError(f"--campaign: {problem}")
    request = request.model_copy(
        update={"brand": ensure_brand(brand, tenant=cfg.tenant, create=True)}
    )
    db = database()
    model_ladder(
        cfg,
        catalog_models(db, cfg),
        request,
        brand_run_policy(cfg, db, request),
        providers_as=REQUEST_FLAGS["providers"],
    )
    load_agent_policy()  # a malformed BRANDLOOP_AGENT_POLICY fails here, before the run starts
    prompt = check_request(db, request, run_id=run_id)
    with db.session() as session:  # the minors line at the door, as the API's: nothing stored
        refuse_at_the_door(
            session,
            tenant=cfg.tenant,
            actor="cli",
            subject_type="generation",
            subject_id="(new generation)",
            texts=(("brief", redacted_text(request.brief)), ("prompt", prompt or request.brief)),
        )
    writer = build_writer()  # a writer that cannot be built (its extra missing) fails here too
    remember_folder(run_id, target)  # runs resume / review approve deliver there too
    with run_stops_reported(run_id, tenant=cfg.tenant, as_json=as_json):
        if as_json:
            result = event_loop.run(
                run_generation(
                    request,
                    settings=cfg,
                    db=database(),
                    run_id=run_id,
                    use_memory=not no_memory,
                    writer=writer,
                )
            )
        else:
            result = _with_progress(request, run_id, use_memory=not no_memory, writer=writer)
    result = write_outputs(result, target, tenant=cfg.tenant, force=force)
    settle_folder(result)
    if as_json:
        document = result.model_dump(mode="json")
        if result.status == "awaiting_review":  # what waits for the verdict: none delivered yet
            document["candidates"] = pending_candidates(result.run_id)
        print_json(document)
    else:
        credentials = verify_files([Path(i.path) for i in result.images if i.path], cfg)
        _render(result, credentials, target=target, wide=wide)
    raise typer.Exit(exit_code(result))


def _with_progress(
    request: GenerationRequest, run_id: str, *, use_memory: bool, writer: PromptWriter | None
) -> RunResult:
    """The run with a progress bar on stderr: started only once everything that can refuse the
    request before work starts has been checked, so an error is never preceded by it."""
    cfg = settings()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} accepted"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=request.count)

        def on_event(node: str, kind: str, payload: dict[str, Any]) -> None:
            if kind == "decision":
                progress.console.print(
                    Text.assemble(
                        "  ", (node, "cyan"), f" {payload['action']}: {payload['reason']}"
                    )
                )
            elif kind == "accepted":
                progress.update(task, completed=payload["accepted"])
            progress.update(task, description=f"{node}: {kind}")

        result = event_loop.run(
            run_generation(
                request,
                settings=cfg,
                db=database(),
                run_id=run_id,
                on_event=on_event,
                use_memory=use_memory,
                writer=writer,
            )
        )
        progress.update(task, completed=len(result.images), description=result.status)
    return result
