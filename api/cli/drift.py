"""``brandloop drift list``: quality drops per (template version, model) the monitor found."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.policies.drift import load_drift_policy
from brandloop.templates import drift as monitor

drift_app = typer.Typer(
    help="Image-quality drift per (template version, model).", no_args_is_help=True
)
app.add_typer(drift_app, name="drift")


@drift_app.command("list")
def list_(
    template: Annotated[
        str | None, typer.Option(help="only this template (name or name@VERSION)")
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--baselines", help="also show every monitored baseline")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Drift events (newest last), after bringing the monitor up to date with every score."""
    cfg = settings()
    policy = load_drift_policy()
    with database().session() as session:
        monitor.observe_all(session, tenant=cfg.tenant, policy=policy)
        events = [
            monitor.event_dict(e)
            for e in monitor.list_events(session, tenant=cfg.tenant, template=template)
        ]
        baselines: list[dict[str, Any]] = [
            {
                "template": b.template_ref,
                "model": b.model,
                "baseline_n": b.baseline_n,
                "baseline_mean": b.baseline_mean,
                "baseline_std": b.baseline_std,
                "monitored_n": b.monitored_n,
                "statistic": b.statistic,
            }
            for b in monitor.list_baselines(session, tenant=cfg.tenant)
            if template is None
            or b.template_ref == template
            or b.template_ref.startswith(f"{template}@")
        ]
    if as_json:
        print_json({"policy": policy.model_dump(), "events": events, "baselines": baselines})
        return
    out.print(
        f"method {policy.method}: baseline {policy.baseline_size} scores, k={policy.k}σ, "
        f"alarm when S > h={policy.h}σ"
    )
    table = Table(title="Drift events")
    for column in ("#", "detected", "template", "model", "baseline", "recent", "S", "attempt"):
        table.add_column(column)
    for e in events:
        table.add_row(
            str(e["id"]),
            e["detected_at"][:19],
            e["template"],
            e["model"],
            f"{e['baseline_mean']:.3f}±{e['baseline_std']:.3f}",
            f"{e['recent_mean']:.3f} (n={e['recent_n']})",
            f"{e['statistic']:.1f}",
            e["last_attempt_id"],
        )
    out.print(table if events else "no drift events")
    if show_all:
        table = Table(title="Monitored baselines")
        for column in ("template", "model", "baseline", "monitored", "S"):
            table.add_column(column)
        for b in baselines:
            mean = b["baseline_mean"]
            table.add_row(
                b["template"],
                b["model"],
                f"{mean:.3f}±{b['baseline_std']:.3f}"
                if mean is not None
                else f"collecting {b['baseline_n']}/{policy.baseline_size}",
                str(b["monitored_n"]),
                f"{b['statistic']:.2f}",
            )
        out.print(table)
