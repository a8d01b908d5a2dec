"""``brandloop gc``: apply the retention policy (checkpoints of finished runs, old unneeded
images); see ``brandloop.agent.retention``."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from brandloop import event_loop
from brandloop.agent.retention import collect_garbage
from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    check_tenant_option,
    database,
    err,
    out,
    print_json,
    settings,
)
from brandloop.errors import BadInputError
from brandloop.settings import MAX_RETENTION_DAYS


@app.command("gc")
def gc(
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="only this tenant (default: every tenant)",
            callback=check_tenant_option,
        ),
    ] = None,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            help="days after which unneeded images go "
            "(default: BRANDLOOP_ARTIFACT_RETENTION_DAYS per tenant)",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would go; delete nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Prune finished runs' checkpoints and delete images nothing needs any more.

    Never deleted: accepted images, the raw images their receipts name, images of runs that
    are running or waiting for review, and images used after the cut-off. Without --tenant,
    also deletes stray files (no row names them: a process killed while recording them)
    older than BRANDLOOP_STRAY_GRACE_SECONDS (default an hour), and this host's thumbnails
    whose image is gone (deleted through another replica).
    """
    if older_than is not None and not 0 < older_than <= MAX_RETENTION_DAYS:
        raise BadInputError(
            f"--older-than must be more than 0 days and at most {MAX_RETENTION_DAYS}"
        )
    cfg = settings()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # off a terminal rich leaves a blank line on stderr
    ) as progress:
        task = progress.add_task("checking images", total=None)
        report = event_loop.run(
            collect_garbage(
                cfg,
                database(),
                tenant=tenant,
                older_than_days=older_than,
                dry_run=dry_run,
                progress=lambda n: progress.advance(task, n),
            )
        )
    if as_json:
        print_json(dataclasses.asdict(report))
        return
    delete, prune = ("would delete", "would prune") if dry_run else ("deleted", "pruned")
    if dry_run:
        out.print("dry run: deletes nothing")
    if not report.tenants:
        out.print(
            "no retention age is set (--older-than, BRANDLOOP_ARTIFACT_RETENTION_DAYS): images kept"
        )
    for name, days in report.tenants.items():
        out.print(f"tenant {name}: images unneeded for more than {_plain(days)} days")
    if report.stray_grace_seconds is not None:
        out.print(
            f"{delete} {report.strays} stray file(s) ({report.stray_bytes / 1e6:.1f} MB): "
            f"no row names them, older than {report.stray_grace_seconds:g} s"
        )
        out.print(
            f"{delete} {report.orphan_thumbnails} thumbnail(s) "
            f"({report.orphan_thumbnail_bytes / 1e6:.1f} MB) whose image is gone"
        )
    out.print(
        f"{delete} {report.artifacts} image(s) ({report.files} file(s), "
        f"{report.bytes / 1e6:.1f} MB), "
        f"{report.cache_entries} cache entr{'y' if report.cache_entries == 1 else 'ies'}; "
        f"kept {report.kept_in_use} still needed; "
        f"{prune} the checkpoints of {report.checkpoints_pruned} finished run(s)"
    )


def _plain(number: float) -> str:
    """``number`` in positional notation, never scientific (``1e-05`` reads as ``0.00001``)."""
    text = f"{number:.9f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
