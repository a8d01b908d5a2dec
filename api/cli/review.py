"""``brandloop review approve|reject RUN_ID [--note ...]``: answer a run waiting for review."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Literal

import typer

from brandloop import event_loop
from brandloop.agent.review_claims import Verdict
from brandloop.agent.runner import finish_review
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings, signing_stopped
from brandloop.api.cli.delivery import ForceOption, OutOption, deliver, delivery_target
from brandloop.api.cli.tables import Column
from brandloop.domain import is_blank
from brandloop.errors import BadInputError, ConflictError, NotFoundError
from brandloop.registry import crud
from brandloop.registry.types import usd
from brandloop.templates.governance import check_note
from brandloop.tools.credentials import SigningError

review_app = typer.Typer(help="Human review of runs that wait for it.", no_args_is_help=True)
app.add_typer(review_app, name="review")

NoteOption = Annotated[str, typer.Option("--note", help="why, for the audit log")]


def _decide(
    run_id: str,
    decision: Literal["approve", "reject"],
    note: str,
    as_json: bool,
    *,
    out_dir: Path | None = None,
    force: bool = False,
) -> None:
    if decision == "reject" and is_blank(note):  # as the API and the studio ask
        raise BadInputError("a rejection needs a note saying why: --note")
    check_note(note, "--note")  # the API's limit (2,000 characters)
    cfg = settings()
    # an approval delivers where generate would have (checked before the verdict is recorded)
    target = delivery_target(run_id, out_dir, force=force) if decision == "approve" else None
    try:
        actor = getpass.getuser()
    except OSError:  # no login name in some containers
        actor = "cli"
    from brandloop.api.jobs.worker import settle_reviewed

    db, asked = database(), Verdict(decision, note, actor)
    try:
        outcome = event_loop.run(
            finish_review(run_id, settings=cfg, db=db, verdict=asked, by=actor, tenant=cfg.tenant)
        )
    except SigningError as exc:  # the run waits for review again, nothing it paid for lost
        raise signing_stopped(exc, run_id, as_json=as_json, verdict=decision) from exc
    result = outcome.result
    with db.session() as session:  # a run the API made: its job ends as the run did
        settle_reviewed(session, tenant=cfg.tenant, run_id=result.run_id, result=result)
    result, where = deliver(result, target, tenant=cfg.tenant, force=force)
    problem = outcome.not_the_callers(asked)
    if problem is not None:  # a verdict recorded first finished the run with another decision
        raise ConflictError(problem)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        out.print(
            f"{result.run_id} {result.status}: {len(result.images)} delivered, "
            f"{usd(result.cost_usd)}. {result.reason}{where}",
            markup=False,
        )


@review_app.command("approve")
def approve(
    run_id: Annotated[str, typer.Argument()],
    note: NoteOption = "",
    out_dir: OutOption = None,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Approve the run's accepted images; the run finishes and delivers them: the PNGs and
    receipt.json go to --out, else to the folder generate was given, as generate writes them."""
    _decide(run_id, "approve", note, as_json, out_dir=out_dir, force=force)


@review_app.command("reject")
def reject(
    run_id: Annotated[str, typer.Argument()],
    note: NoteOption = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Reject the run's accepted images; the run finishes with nothing delivered."""
    _decide(run_id, "reject", note, as_json)


@review_app.command("agreement")
def agreement(
    brand: Annotated[str | None, typer.Option("--brand", help="one brand only")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """How often the automatic acceptance rule agrees with reviewers (the same figure as
    GET /v1/review/agreement and the studio's Agreement page)."""
    from brandloop.evals.agreement import judge_agreement

    cfg = settings()
    with database().session() as session:
        if brand is not None and not crud.brand_ids(session, tenant=cfg.tenant, ref=brand):
            raise NotFoundError(f"unknown brand {brand!r}")  # as wherever a brand is named
        report = judge_agreement(session, tenant=cfg.tenant, brand=brand)
    if as_json:
        print_json(report.model_dump(mode="json"))
        return
    overall = report.overall
    if overall.agreement is None:
        out.print("agreement: not measured (no image has a reviewer's verdict yet)")
        return
    kappa = "undefined" if overall.kappa is None else f"{overall.kappa:.2f}"
    out.print(
        f"agreement {overall.agreement:.1%} over {overall.labelled} labelled image(s) "
        f"(Cohen's kappa {kappa}); rule accepted, people did not: {overall.rule_only}; "
        f"people accepted, rule did not: {overall.people_only}",
        markup=False,
    )
    columns = (
        Column("signal"),
        Column("labelled", justify="right"),
        Column("agreement", justify="right"),
        Column("kappa", justify="right"),
    )
    rows = [
        (
            name,
            str(figure.labelled),
            "not measured" if figure.agreement is None else f"{figure.agreement:.1%}",
            "-" if figure.kappa is None else f"{figure.kappa:.2f}",
        )
        for name, figure in report.by_signal.items()
    ]
    tables.show(out, "per signal (signal passed vs people's verdict)", columns, rows)
    for item in report.disagreements[:20]:
        side = (
            "rule accepted, people rejected"
            if item.rule_accepts
            else "people accepted, rule rejected"
        )
        out.print(f"  {item.sha256[:12]} {item.run_id} {item.brand}: {side}", markup=False)
