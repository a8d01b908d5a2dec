"""``brandloop drift list``: quality drops per (template version, model) the monitor found."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from brandloop.agent.templates import REF_PATTERN, ensure_shipped_templates
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, out, print_json, settings
from brandloop.api.cli.tables import Column, Wide
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policies.drift import load_drift_policy
from brandloop.registry import crud
from brandloop.templates import drift as monitor
from brandloop.templates import governance

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
    wide: Wide = False,
) -> None:
    """Drift events (newest last), after bringing the monitor up to date with every score."""
    cfg = settings()
    policy = load_drift_policy()
    with database().session() as session:
        if template is not None:  # a typo is "does not exist", never "no drift events"
            _check_template(session, template, tenant=cfg.tenant)
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
    event_columns = (
        Column("detected"),
        Column("template"),
        Column("model"),
        Column("baseline"),
        Column("recent"),
        Column("S", justify="right"),
        Column("#", wide=True, justify="right"),
        Column("attempt", wide=True),
    )
    rows = [
        (
            e["detected_at"][:16],
            e["template"],
            e["model"],
            f"{e['baseline_mean']:.3f}±{e['baseline_std']:.3f}",
            f"{e['recent_mean']:.3f} n={e['recent_n']}",
            f"{e['statistic']:.1f}",
            str(e["id"]),
            e["last_attempt_id"],
        )
        for e in events
    ]
    if events:
        tables.show(out, "Drift events", event_columns, rows, wide=wide)
    else:
        out.print("no drift events")
    if show_all:
        baseline_columns = (
            Column("template"),
            Column("model"),
            Column("baseline"),
            Column("monitored", justify="right"),
            Column("S", justify="right"),
        )
        baseline_rows = [
            (
                b["template"],
                b["model"],
                f"{b['baseline_mean']:.3f}±{b['baseline_std']:.3f}"
                if b["baseline_mean"] is not None
                else f"collecting {b['baseline_n']}/{policy.baseline_size}",
                str(b["monitored_n"]),
                f"{b['statistic']:.2f}",
            )
            for b in baselines
        ]
        tables.show(out, "Monitored baselines", baseline_columns, baseline_rows, wide=wide)


def _check_template(session: Session, ref: str, *, tenant: str) -> None:
    """``ref`` (name or name@VERSION) names a template, and version, the tenant has."""
    match = REF_PATTERN.fullmatch(ref)
    if match is None or match["label"]:
        raise BadInputError(f"--template {ref!r} is not name or name@VERSION")
    ensure_shipped_templates(session, tenant=tenant)
    row = crud.get_template(session, tenant=tenant, name=match["name"])
    if row is None:
        raise NotFoundError(f"template {match['name']!r} does not exist")
    version = match["version"]
    if version and int(version) not in {
        v.version for v in governance.versions(session, template=row)
    }:
        raise NotFoundError(f"template {match['name']}@{version} does not exist")
