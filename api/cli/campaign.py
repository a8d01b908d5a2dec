"""``brandloop campaign run FILE.yaml``: several assets for one brand, one memory, one budget."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop import event_loop
from brandloop.agent.budgets import BudgetScope, set_budget, spent
from brandloop.agent.campaign import (
    AssetResult,
    CampaignReport,
    CampaignSpec,
    kit_path,
    load_campaign,
    resolve_brand,
    run_campaign,
)
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    Interrupted,
    database,
    err,
    interrupted,
    out,
    print_json,
    refuse_credentials,
    settings,
)
from brandloop.api.cli.generate import EXIT_BY_STATUS
from brandloop.api.cli.tables import Column, Wide
from brandloop.domain import campaign_id_problem
from brandloop.errors import BadInputError, ProvidersUnavailableError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.registry import spend
from brandloop.registry.models import RunRow
from brandloop.registry.models_agent import BudgetRow
from brandloop.registry.types import usd
from brandloop.settings import Settings
from brandloop.tools.moderation.pii import find_pii
from brandloop.tools.moderation.policy import default_moderation_policy

campaign_app = typer.Typer(
    help="Campaigns: several related assets for one brand.", no_args_is_help=True
)
app.add_typer(campaign_app, name="campaign")


ASSET_COLUMNS = (
    Column("asset"),
    Column("size"),
    Column("status"),
    Column("acc", justify="right"),
    Column("preview"),
    Column("cost", justify="right"),
    Column("note", text=True),
    Column("run", wide=True),
)


#: With nothing accepted, the code of the first of these that some asset ended with.
_NOTHING_ACCEPTED_ORDER = (4, ProvidersUnavailableError.exit_code, EXIT_BY_STATUS["refused"])


def exit_code(report: CampaignReport) -> int:
    """How ``campaign run`` exits, each asset counted as ``generate`` exits for its run.

    0 when any asset accepted an image or waits for review: a partial campaign is ok, as a
    partial run is (the report says which assets fell short and why). With nothing accepted:
    4 if a budget or round cap (or the stopping rule) stopped any asset, else 5 if providers
    were unavailable, else 3 (every asset refused); 1 for anything else."""
    codes = {
        ProvidersUnavailableError.exit_code
        if row.status == "failed" and row.stop_cause == "providers_unavailable"
        else EXIT_BY_STATUS.get(row.status, 1)
        for row in report.assets
    }
    if 0 in codes:
        return 0
    return next((code for code in _NOTHING_ACCEPTED_ORDER if code in codes), 1)


def _preview(row: AssetResult) -> str | Text:
    """The preview column: whether the asset's accepted images are procedural previews."""
    if not row.previews:
        return "no" if row.images else "-"
    if row.previews == len(row.images):
        return Text("preview", style="yellow")
    return Text(f"{row.previews} of {len(row.images)} preview", style="yellow")


def _render(report: CampaignReport, *, wide: bool = False) -> None:
    colours = {"succeeded": "green", "partial": "yellow", "awaiting_review": "yellow"}
    rows = [
        (
            row.asset,
            row.size,
            Text(row.status, style=colours.get(row.status, "red")),
            f"{row.accepted}/{row.wanted}",
            _preview(row),
            usd(row.cost_usd),
            "" if row.status == "succeeded" else row.reason,
            row.run_id,
        )
        for row in report.assets
    ]
    title = f"Campaign {report.campaign_id} ({report.brand})"
    tables.show(out, title, ASSET_COLUMNS, rows, wide=wide)
    budget = f" of {usd(report.budget_usd, 2)}" if report.budget_usd is not None else ""
    if report.awaiting_review:
        waiting = [r.run_id for r in report.assets if r.status == "awaiting_review"]
        spread = (
            f"consistency not measured yet: {report.awaiting_review} asset(s) wait for review, "
            f"{', '.join(waiting)} (brandloop review approve|reject RUN)"
        )
    elif report.palette_spread is None or report.descriptor_spread is None:
        spread = "consistency not measured (fewer than two accepted images)"
    else:
        spread = (
            f"palette spread {report.palette_spread:.3f}, descriptor spread "
            f"{report.descriptor_spread:.2f} ΔE (lower is more consistent)"
        )
    out.print(
        f"{report.accepted}/{report.wanted} accepted, {usd(report.cost_usd)}{budget}; "
        f"{spread}; memory {'on' if report.memory else 'off'}"
    )


@campaign_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="campaign YAML (see examples/campaigns)")],
    campaign_id: Annotated[
        str | None,
        typer.Option("--campaign-id", help="reuse a campaign id (its memory and budget)"),
    ] = None,
    no_memory: Annotated[
        bool, typer.Option("--no-memory", help="do not recall or remember")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    wide: Wide = False,
) -> None:
    """Run every asset of FILE in order and report per-asset results and consistency.

    The file's budget_usd may tighten the campaign's limit, never loosen one set with
    `campaign budget`: the tighter applies. Exits 0 when any asset accepted an image (a partial
    campaign), 4 when nothing was and a budget or round cap stopped it (5 providers down, 3
    refused)."""
    _check_id(campaign_id)
    cfg = settings()
    spec = load_campaign(file)
    refuse_credentials(f"campaign {file}", spec.model_dump(mode="json"))
    kit = kit_path(spec, file.resolve().parent)
    if kit is not None:  # the kit a new brand would be stored from, as `brands add` checks it
        refuse_credentials(f"brand kit {spec.brand}", load_brand_kit(kit).model_dump(mode="json"))
    _no_personal_data(f"{file}: name", spec.name)
    brand = resolve_brand(spec, file.resolve().parent, db=database(), tenant=cfg.tenant)
    total = sum(len(a.formats or spec.defaults.formats) for a in spec.assets)
    # named here, so a Ctrl-C can find the run it stopped (run_campaign names it the same way)
    campaign_id = campaign_id or f"{spec.name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    with _stopped_campaign(campaign_id, tenant=cfg.tenant, as_json=as_json):
        _run(spec, brand, cfg, campaign_id, no_memory=no_memory, as_json=as_json, wide=wide,
             total=total)  # fmt: skip


@contextmanager
def _stopped_campaign(campaign_id: str, *, tenant: str, as_json: bool) -> Iterator[None]:
    """A Ctrl-C cancels the asset's run it lands in, keeping what it paid for, as `generate`'s
    does (README: exit 130, the line names the run and what it spent); the assets not begun
    never run. It once left that run `running` with a bare "interrupted"."""
    try:
        yield
    except KeyboardInterrupt:
        with database().session() as session:
            running = session.scalar(
                select(RunRow.id).where(
                    RunRow.tenant == tenant,
                    RunRow.campaign_id == campaign_id,
                    RunRow.status == "running",
                )
            )
        if running is None:
            raise Interrupted(
                f"interrupted: campaign {campaign_id} stopped between its assets; nothing was "
                "running and the assets not begun never run"
            ) from None
        stopped = interrupted(running, tenant=tenant, as_json=as_json)
        raise Interrupted(
            f"{stopped} (campaign {campaign_id}: the assets not begun never run)"
        ) from None


def _run(
    spec: CampaignSpec,
    brand: str,
    cfg: Settings,
    campaign_id: str,
    *,
    no_memory: bool,
    as_json: bool,
    wide: bool,
    total: int,
) -> None:
    if as_json:
        report = event_loop.run(
            run_campaign(
                spec,
                brand=brand,
                settings=cfg,
                db=database(),
                tenant=cfg.tenant,
                campaign_id=campaign_id,
                use_memory=not no_memory,
                actor="cli",
            )
        )
        print_json(report.model_dump(mode="json"))
        raise typer.Exit(exit_code(report))
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} assets"),
        TimeElapsedColumn(),
        console=err,
    )
    task = progress.add_task(spec.name, total=total)
    shown = threading.Event()

    def show() -> None:
        # the bar appears with the first run's first event: a file refused by the checks
        # before any run is one line on stderr, with no bar left above it
        if not shown.is_set():
            shown.set()
            progress.start()

    def on_event(node: str, kind: str, payload: dict[str, Any]) -> None:
        show()
        if kind == "decision":
            progress.console.print(
                Text.assemble("  ", (node, "cyan"), f" {payload['action']}: {payload['reason']}")
            )

    def on_asset(row: AssetResult) -> None:
        show()
        progress.advance(task)
        preview = f", {row.previews} preview" if row.previews else ""
        progress.console.print(
            Text.assemble(
                (row.asset, "bold"),
                f" {row.size}: {row.status}, {row.accepted}/{row.wanted}{preview}, "
                f"{usd(row.cost_usd)}",
            )
        )

    try:
        report = event_loop.run(
            run_campaign(
                spec,
                brand=brand,
                settings=cfg,
                db=database(),
                tenant=cfg.tenant,
                campaign_id=campaign_id,
                use_memory=not no_memory,
                actor="cli",
                on_event=on_event,
                on_asset=on_asset,
            )
        )
    finally:
        if shown.is_set():
            progress.stop()
    _render(report, wide=wide)
    if spec.budget_usd is not None and report.budget_usd != spec.budget_usd:
        out.print(
            f"the campaign's limit {usd(report.budget_usd or 0.0, 2)} (set with `campaign "
            f"budget` or an earlier run) is tighter than the file's {usd(spec.budget_usd, 2)}: "
            "it applied"
        )
    raise typer.Exit(exit_code(report))


def _check_id(campaign_id: str | None) -> None:
    if campaign_id is not None and (problem := campaign_id_problem(campaign_id)):
        raise BadInputError(f"--campaign-id: {problem}")
    if campaign_id is not None:
        _no_personal_data("--campaign-id", campaign_id)


def _no_personal_data(where: str, value: str) -> None:
    """A campaign's name becomes its id, a key every run, budget and listing keeps: one that
    holds personal data is refused (it cannot be redacted and stay the same key)."""
    kinds = sorted({f.kind for f in find_pii(value, tuple(default_moderation_policy().pii.redact))})
    if kinds:
        raise BadInputError(
            f"{where} holds personal data ({', '.join(kinds)}); a campaign id is stored and "
            "listed, so choose one without it"
        )


def _set_budget(
    session: Session, *, tenant: str, scope: BudgetScope, scope_id: str, amount: float
) -> BudgetRow:
    """Set the limit against the API's daily quota (``BRANDLOOP_API_DAILY_QUOTA_USD``): an API
    campaign holds its whole budget there, so a raise the quota cannot cover is bad input
    (exit 2) naming what the tenant holds, and the limit stays as it was."""
    from brandloop.api.config import get_api_settings

    quota = get_api_settings().daily_quota_usd
    try:
        return set_budget(
            session,
            tenant=tenant,
            scope=scope,
            scope_id=scope_id,
            limit_usd=amount,
            quota_usd=quota,
        )
    except spend.QuotaExceededError as exc:
        raise BadInputError(f"{exc}; the campaign's limit is unchanged") from exc


@campaign_app.command("budget")
def budget(
    amount: Annotated[float, typer.Argument(help="USD limit")],
    campaign_id: Annotated[
        str | None, typer.Option("--campaign-id", help="limit this campaign's runs")
    ] = None,
    tenant: Annotated[bool, typer.Option("--tenant", help="limit the whole tenant")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Set a campaign's or the tenant's budget; every run checks it before paying. An API
    campaign holds its budget against the daily quota: a raise must fit there too."""
    if (campaign_id is None) == (not tenant):
        raise BadInputError("give exactly one of --campaign-id ID or --tenant")
    _check_id(campaign_id)
    cfg = settings()
    scope: BudgetScope = "tenant" if tenant else "campaign"
    scope_id = cfg.tenant if tenant else str(campaign_id)
    with database().session() as session:
        row = _set_budget(session, tenant=cfg.tenant, scope=scope, scope_id=scope_id, amount=amount)
        limit = row.limit_usd
        used = spent(session, tenant=cfg.tenant, campaign_id=None if tenant else scope_id)
    if as_json:  # money to the micro-dollar, as stored (brandloop.registry.types.money)
        print_json({"scope": scope, "id": scope_id, "limit_usd": limit, "spent_usd": used})
    else:
        out.print(f"{scope} {scope_id}: limit {usd(limit, 2)}, spent so far {usd(used)}")
