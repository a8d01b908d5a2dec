"""``brandloop review approve|reject RUN_ID [--note ...]``: answer a run waiting for review."""

from __future__ import annotations

import asyncio
import getpass
from typing import Annotated, Literal

import typer

from brandloop.agent.runner import review_run
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings

review_app = typer.Typer(help="Human review of runs that wait for it.", no_args_is_help=True)
app.add_typer(review_app, name="review")

NoteOption = Annotated[str, typer.Option("--note", help="why, for the audit log")]


def _decide(run_id: str, decision: Literal["approve", "reject"], note: str, as_json: bool) -> None:
    cfg = settings()
    try:
        actor = getpass.getuser()
    except OSError:  # no login name in some containers
        actor = "cli"
    result = asyncio.run(
        review_run(
            run_id,
            settings=cfg,
            db=database(),
            decision=decision,
            note=note,
            actor=actor,
            tenant=cfg.tenant,
        )
    )
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        out.print(
            f"{result.run_id} {result.status}: {len(result.images)} delivered, ${result.cost_usd:.3f}. {result.reason}"
        )


@review_app.command("approve")
def approve(
    run_id: Annotated[str, typer.Argument()],
    note: NoteOption = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approve the run's accepted images; the run finishes and delivers them."""
    _decide(run_id, "approve", note, as_json)


@review_app.command("reject")
def reject(
    run_id: Annotated[str, typer.Argument()],
    note: NoteOption = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reject the run's accepted images; the run finishes with nothing delivered."""
    _decide(run_id, "reject", note, as_json)
