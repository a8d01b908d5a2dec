"""``brandloop templates ...``: versioned prompt templates, their review, labels and evidence.

Mutating commands act as the user named by ``--as USER`` (authenticated identities arrive with
the API). Every refusal is one line on stderr with exit code 2, and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.text import Text

from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.runner import catalog_models
from brandloop.agent.templates import REF_PATTERN, ensure_shipped_templates
from brandloop.api.cli import tables
from brandloop.api.cli.app import app
from brandloop.api.cli.common import (
    check_output_folder,
    database,
    out,
    print_json,
    refuse_credentials,
    settings,
)
from brandloop.api.cli.tables import Column, Wide
from brandloop.domain import is_blank
from brandloop.errors import BadInputError, NotFoundError
from brandloop.registry import crud
from brandloop.registry.models import TemplateRow, TemplateVersionRow
from brandloop.registry.types import usd
from brandloop.templates import files, governance
from brandloop.templates.sandbox import KNOWN_VARIABLES
from brandloop.templates.stats import stats_document
from brandloop.tools.moderation.keys import redact_keys
from brandloop.tools.moderation.minors import template_screen

templates_app = typer.Typer(
    help="Prompt templates: versions, review, labels, A/B splits, diff, stats, export/import.",
    no_args_is_help=True,
)
app.add_typer(templates_app, name="templates")

Actor = Annotated[str, typer.Option("--as", help="the user doing this (author, reviewer)")]
TemplateFile = Annotated[
    Path, typer.Option("--file", "-f", help="template YAML: body, negative_body, params, metadata")
]
Name = Annotated[str, typer.Argument(help="template name")]
Version = Annotated[int, typer.Argument(help="version number", min=1)]
AsJson = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def _tenant() -> str:
    return settings().tenant


def _version_summary(row: TemplateVersionRow) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "author": row.author,
        "message": row.message,
        "created_at": row.created_at.isoformat(),
    }


def _version_full(template: TemplateRow, row: TemplateVersionRow) -> dict[str, Any]:
    return {
        "ref": f"{template.name}@{row.version}",
        **_version_summary(row),
        "body": row.body,
        "negative_body": row.negative_body,
        "params": row.params,
        "model_hints": list(row.model_hints),
        "metadata": row.meta,
    }


# --------------------------------------------------------------------------- authoring

ReviewVerb = Literal["submit", "approve", "reject", "comment"]

#: each review step: the governance rule that checks and records it, and what the CLI says
_REVIEW_STEPS: dict[ReviewVerb, tuple[Callable[..., Any], str]] = {
    "submit": (governance.submit, "{ref} is in review"),
    "approve": (governance.approve, "{ref} approved by {actor}"),
    "reject": (governance.reject, "{ref} rejected by {actor}"),
    "comment": (governance.comment, "comment added to {ref}"),
}


def _review_step(verb: ReviewVerb, name: str, version: int, actor: str, note: str) -> None:
    step, done = _REVIEW_STEPS[verb]
    note = redacted_text(note)  # stored as the API stores it: no personal data, no key
    with database().session() as session:
        step(session, tenant=_tenant(), name=name, version=version, actor=actor, note=note)
    out.print(done.format(ref=f"{name}@{version}", actor=actor))


def _catalog_ids() -> list[str]:
    """The ids of the catalog's models, which a version's model hints must name."""
    return [model.id for model in catalog_models(database(), settings())]


def _seed_shipped() -> None:
    """Seed the shipped templates in a transaction of their own, so a refusal that follows
    (recorded in the audit log in its own transaction) never waits on this one."""
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())


@templates_app.command("create")
def create(name: Name, file: TemplateFile, actor: Actor) -> None:
    """Create template NAME with its first version (a draft) from a YAML file."""
    spec = governance.load_spec(file)
    refuse_credentials(f"template {file}", spec.model_dump(mode="json"))
    models = _catalog_ids()
    _seed_shipped()
    with database().session() as session:
        governance.create_template(
            session,
            tenant=_tenant(),
            name=name,
            spec=spec,
            actor=actor,
            screen=template_screen,
            models=models,
            key_scan=redact_keys,
        )
    out.print(f"created {name}@1 (draft) by {actor}; next: brandloop templates submit {name} 1")


@templates_app.command("new-version")
def new_version(
    name: Name,
    file: TemplateFile,
    actor: Actor,
    message: Annotated[str, typer.Option("--message", "-m", help="what changed and why")],
) -> None:
    """Add the next version of NAME (a draft); earlier versions never change."""
    spec = governance.load_spec(file)
    refuse_credentials(f"template {file}", spec.model_dump(mode="json"))
    models = _catalog_ids()
    _seed_shipped()
    with database().session() as session:
        row = governance.new_version(
            session,
            tenant=_tenant(),
            name=name,
            spec=spec,
            actor=actor,
            message=message,
            screen=template_screen,
            models=models,
            key_scan=redact_keys,
        )
        version = row.version
    out.print(f"created {name}@{version} (draft) by {actor}")


@templates_app.command("submit")
def submit(
    name: Name,
    version: Version,
    actor: Actor,
    note: Annotated[str, typer.Option(help="a note for the reviewer")] = "",
) -> None:
    """Send a draft for review (draft -> in_review)."""
    _review_step("submit", name, version, actor, note)


@templates_app.command("approve")
def approve(
    name: Name,
    version: Version,
    actor: Actor,
    note: Annotated[str, typer.Option(help="the reviewer's note")] = "",
) -> None:
    """Approve a version in review (an approver who is not its author)."""
    _review_step("approve", name, version, actor, note)


@templates_app.command("reject")
def reject(
    name: Name,
    version: Version,
    actor: Actor,
    note: Annotated[str, typer.Option(help="why it is rejected (required)")],
) -> None:
    """Reject a version in review, saying why."""
    if is_blank(note):
        raise BadInputError("a rejection needs a --note saying why")
    _review_step("reject", name, version, actor, note)


@templates_app.command("comment")
def comment(
    name: Name,
    version: Version,
    actor: Actor,
    message: Annotated[str, typer.Option("--message", "-m", help="the comment")],
) -> None:
    """Comment on a version (any state)."""
    _review_step("comment", name, version, actor, message)


@templates_app.command("label")
def label(
    name: Name,
    label_name: Annotated[str, typer.Argument(metavar="LABEL", help="production, staging, ...")],
    spec: Annotated[
        str, typer.Argument(metavar="VERSION[=WEIGHT,...]", help="e.g. 3, or 3=90,4=10")
    ],
    actor: Actor,
) -> None:
    """Point LABEL at a version, or split it by weight (canary / A/B). Rollback = move back."""
    weights = governance.parse_label_spec(spec)
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        governance.move_label(
            session, tenant=_tenant(), name=name, label=label_name, weights=weights, actor=actor
        )
    total = sum(weights.values())
    split = ", ".join(f"{name}@{v} {percent(w / total)}" for v, w in weights.items())
    out.print(f"{name}:{label_name} -> {split}")


# --------------------------------------------------------------------------- reading


@templates_app.command("list")
def list_(as_json: AsJson = False, wide: Wide = False) -> None:
    """Every template with its newest version and its labels."""
    rows: list[dict[str, Any]] = []
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        for template in governance.list_templates(session, tenant=_tenant()):
            versions = governance.versions(session, template=template)
            rows.append(
                {
                    "name": template.name,
                    "description": template.description,
                    "versions": len(versions),
                    "latest": _version_summary(versions[-1]) if versions else None,
                    "labels": governance.label_weights(session, template=template),
                }
            )
    if as_json:
        print_json(rows)
        return
    columns = (
        Column("name"),
        Column("latest"),
        Column("labels", text=True),
        Column("description", text=True),
        Column("versions", wide=True, justify="right"),
    )
    table_rows = [
        (
            r["name"],
            f"@{r['latest']['version']} {r['latest']['status']}" if r["latest"] else "-",
            " ".join(f"{k}->{_split(v)}" for k, v in r["labels"].items()),
            r["description"],
            str(r["versions"]),
        )
        for r in rows
    ]
    tables.show(out, "Templates", columns, table_rows, wide=wide)


def percent(share: float) -> str:
    """A version's share of a label's traffic as a whole percent, never hiding that it has
    some or not all: ``<1%`` for a share above 0 that would round to 0% (``1=0.5,2=1000``
    showed @1 as 0% though it gets 0.05% of the runs), ``>99%`` for one short of all."""
    if 0 < share < 0.01:
        return "<1%"
    if 0.99 < share < 1:
        return ">99%"
    return f"{share:.0%}"


def _split(weights: dict[str, float]) -> str:
    if len(weights) == 1:
        return f"@{next(iter(weights))}"
    total = sum(weights.values())
    return ",".join(f"@{k}={percent(w / total)}" for k, w in weights.items())


def show_document(ref: str, *, tenant: str) -> dict[str, Any]:
    match = REF_PATTERN.fullmatch(ref)
    if not match:
        raise BadInputError(f"template reference {ref!r} is not name, name@VERSION or name:LABEL")
    with database().session() as session:
        ensure_shipped_templates(session, tenant=tenant)
        template = crud.get_template(session, tenant=tenant, name=match["name"])
        if template is None:
            raise NotFoundError(f"template {match['name']!r} does not exist")
        versions = governance.versions(session, template=template)
        labels = governance.label_weights(session, template=template)
        if match["version"]:
            selected = [int(match["version"])]
        else:
            label_name = match["label"] or "production"
            if label_name not in labels:
                numbers = [v.version for v in versions]
                which = (
                    f"show one of its versions: {template.name}@N, N from {min(numbers)} to "
                    f"{max(numbers)}; its history: brandloop templates history {template.name}"
                    if numbers
                    else "it has no versions"
                )
                raise NotFoundError(
                    f"template {template.name!r} has no label {label_name!r}; {which}"
                )
            selected = sorted(int(k) for k in labels[label_name])
        by_number = {v.version: v for v in versions}
        missing = [v for v in selected if v not in by_number]
        if missing:
            raise NotFoundError(f"template {template.name}@{missing[0]} does not exist")
        return {
            "name": template.name,
            "description": template.description,
            "ref": ref,
            "labels": labels,
            "versions": [_version_summary(v) for v in versions],
            "selected": [_version_full(template, by_number[v]) for v in selected],
            "reviews": [
                {
                    "version": r.version,
                    "actor": r.actor,
                    "action": r.action,
                    "note": r.note,
                    "at": r.at.isoformat(),
                }
                for r in governance.reviews(session, template=template)
                if r.version in selected
            ],
        }


@templates_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="name, name@VERSION or name:LABEL")],
    as_json: AsJson = False,
    wide: Wide = False,
) -> None:
    """A template version (or the versions a label points to), its labels and review trail."""
    doc = show_document(ref, tenant=_tenant())
    if as_json:
        print_json(doc)
        return
    out.print(Text.assemble((doc["name"], "bold"), f"  {doc['description']}"))
    out.print(
        "labels: " + (", ".join(f"{k}->{_split(v)}" for k, v in doc["labels"].items()) or "none")
    )
    out.print(
        "versions: "
        + ", ".join(f"@{v['version']} {v['status']} ({v['author']})" for v in doc["versions"])
    )
    for v in doc["selected"]:
        out.print(
            Text.assemble(
                "\n", (v["ref"], "bold"), f"  {v['status']}  by {v['author']}  {v['created_at']}"
            )
        )
        out.print(f"message: {v['message']}")
        out.print("body:")
        out.print("  " + v["body"], markup=False)
        out.print("negative_body:")
        out.print("  " + (v["negative_body"] or "(empty)"), markup=False)
        out.print(f"params: {v['params']}  model_hints: {', '.join(v['model_hints']) or '-'}")
        out.print(f"metadata: {v['metadata']}")
    if doc["reviews"]:
        columns = (
            Column("version", justify="right"),
            Column("who"),
            Column("action"),
            Column("note", text=True),
            Column("at", wide=True),
        )
        reviews = [
            (str(r["version"]), r["actor"], r["action"], r["note"], r["at"][:19])
            for r in doc["reviews"]
        ]
        tables.show(out, "Review", columns, reviews, wide=wide)


@templates_app.command("diff")
def diff(name: Name, v1: Version, v2: Version) -> None:
    """A unified diff of two versions of NAME (bodies, params, model hints, metadata)."""
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        text = governance.diff_versions(session, tenant=_tenant(), name=name, v1=v1, v2=v2)
    if not text:
        out.print(f"{name}@{v1} and {name}@{v2} have the same content")
        return
    for line in text.splitlines():
        style = {"+": "green", "-": "red", "@": "cyan"}.get(line[:1])
        if line.startswith(("+++", "---")):
            style = "bold"
        out.print(line, style=style, markup=False)


@templates_app.command("stats")
def stats(name: Name, as_json: AsJson = False, wide: Wide = False) -> None:
    """Per-version evidence: acceptance rate, mean scores, cost per accepted image, counts."""
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        doc = stats_document(session, tenant=_tenant(), name=name)
    if as_json:
        print_json(doc)
        return
    columns = (
        Column("version"),
        Column("status"),
        Column("acc", justify="right"),
        Column("rate", justify="right"),
        Column("mean", justify="right"),
        Column("$/acc", justify="right"),
        Column("runs", wide=True, justify="right"),
        Column("tries", wide=True, justify="right"),
    )
    rows = [
        (
            f"@{v['version']}" + (f" ({labels})" if (labels := _shares(v["labels"])) else ""),
            v["status"],
            str(v["accepted"]),
            "-" if v["acceptance_rate"] is None else f"{v['acceptance_rate']:.0%}",
            "-" if v["mean_composite"] is None else f"{v['mean_composite']:.3f}",
            "-" if v["cost_per_accepted_usd"] is None else usd(v["cost_per_accepted_usd"]),
            str(v["runs"]),
            str(v["attempts"]),
        )
        for v in doc["versions"]
    ]
    title = f"{name}: outcomes per version (signal means, total cost: --json)"
    tables.show(out, title, columns, rows, wide=wide)


def _shares(labels: dict[str, float]) -> str:
    return " ".join(f"{label} {percent(weight)}" for label, weight in labels.items())


@templates_app.command("history")
def history(name: Name, as_json: AsJson = False, wide: Wide = False) -> None:
    """The audit trail of NAME: every version, review step and label move, with who and when."""
    pattern = re.compile(rf"^{re.escape(name)}[@:]")
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        if crud.get_template(session, tenant=_tenant(), name=name) is None:
            raise NotFoundError(f"template {name!r} does not exist")
        rows: list[dict[str, Any]] = [
            {
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "subject": r.subject_id,
                "detail": r.detail,
            }
            for r in crud.list_audit(session, tenant=_tenant())
            if r.subject_type == "template" and pattern.match(r.subject_id)
        ]
    if as_json:
        print_json(rows)
        return
    columns = (
        Column("at"),
        Column("who"),
        Column("action"),
        Column("subject"),
        Column("detail", text=True),
    )
    trail = [
        (
            r["at"][:16],
            r["actor"],
            r["action"].removeprefix("template."),
            r["subject"],
            ", ".join(f"{k}={v}" for k, v in r["detail"].items() if v not in (None, "")),
        )
        for r in rows
    ]
    tables.show(out, f"{name}: audit trail", columns, trail, wide=wide)


@templates_app.command("variables")
def variables() -> None:
    """The variables a template body may use."""
    columns = (Column("variable"), Column("meaning", text=True))
    tables.show(out, "Template variables", columns, list(KNOWN_VARIABLES.items()))


# --------------------------------------------------------------------------- files


@templates_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="folder for one <name>.yaml per template")],
) -> None:
    """Write every template (all versions, labels) as YAML, for a Git repository."""
    check_output_folder(directory, "DIRECTORY")
    with database().session() as session:
        ensure_shipped_templates(session, tenant=_tenant())
        paths = files.export_templates(session, tenant=_tenant(), directory=directory)
    out.print(f"exported {len(paths)} template(s) to {directory}")


@templates_app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(help="folder of template YAML files")],
    actor: Actor,
    as_json: AsJson = False,
) -> None:
    """Add the templates, versions and label moves a folder of YAML files holds (all or none)."""
    for template in files.read_directory(directory):
        refuse_credentials(f"templates {directory}", template.model_dump(mode="json"))
    _seed_shipped()
    with database().session() as session:
        report = files.import_templates(
            session,
            tenant=_tenant(),
            directory=directory,
            actor=actor,
            screen=template_screen,
            models=_catalog_ids(),
            key_scan=redact_keys,
        )
    if as_json:
        print_json(report)
        return
    for item in report:
        added = ", ".join(f"@{v}" for v in item["added_versions"]) or "no new versions"
        moved = ", ".join(item["moved_labels"]) or "no label moves"
        out.print(f"{item['template']}: {added}; {moved}")
