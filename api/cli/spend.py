"""``brandloop spend unknown|reconcile``: provider calls whose outcome is unknown.

A call that timed out after its request was sent (or whose run stopped mid-call) may have been
billed. It keeps its reservation and counts as spent until an operator settles it from the
provider's invoice or usage page.
"""

from __future__ import annotations

from typing import Annotated

import typer

from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.api.cli.tables import Column
from brandloop.registry import spend
from brandloop.registry.types import usd
from brandloop.templates.governance import check_actor

spend_app = typer.Typer(
    help="The spend ledger: calls of unknown outcome, and reconciling them.", no_args_is_help=True
)
app.add_typer(spend_app, name="spend")


@spend_app.command("unknown")
def unknown(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Calls that may have been billed: each counts its whole reservation as spent."""
    cfg = settings()
    with database().session() as session:
        rows = [
            {
                "id": row.id,
                "run_id": row.run_id,
                "provider": row.provider,
                "model": row.model,
                "reserved_usd": row.amount_usd,
                "created_at": row.created_at.isoformat(),
                "note": row.note,
            }
            for row in spend.unknown_calls(session, tenant=cfg.tenant)
        ]
    if as_json:
        print_json(rows)
        return
    columns = (  # reconcile takes the reservation: never cut
        Column("reservation", key=True),
        Column("run", key=True),
        Column("model"),
        Column("reserved", justify="right"),
        Column("when"),
    )
    cells = [
        (
            str(row["id"]),
            str(row["run_id"]),
            str(row["model"]),
            usd(float(row["reserved_usd"] or 0.0)),
            str(row["created_at"]),
        )
        for row in rows
    ]
    tables.show(out, f"{len(rows)} call(s) of unknown outcome, counted as spent", columns, cells)


@spend_app.command("reconcile")
def reconcile(
    reservation: Annotated[str, typer.Argument(help="reservation id from `spend unknown`")],
    charged: Annotated[
        float, typer.Option("--charged", help="USD the provider billed for it (0: not billed)")
    ],
    actor: Annotated[str, typer.Option("--as", help="who reconciles (audit)")] = "cli",
    over_reservation: Annotated[
        bool,
        typer.Option(
            "--over-reservation",
            help="record a charge more than 10 times the call's reservation (final once settled)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Settle an unknown call to what the provider billed; its run's cost follows. A charge
    more than 10 times the call's reservation needs --over-reservation: a settlement is final."""
    check_actor(actor)  # the audit entry's actor: a user's name, never brandloop's own
    cfg = settings()
    with database().session() as session:
        row = spend.reconcile(
            session,
            tenant=cfg.tenant,
            reservation_id=reservation,
            charged_usd=charged,
            actor=actor,
            over_reservation=over_reservation,
        )
        state, billed = row.state, row.charged_usd
    if as_json:
        print_json({"id": reservation, "state": state, "charged_usd": billed})
    else:
        out.print(f"{reservation}: {state}, {usd(billed or 0.0)}")
