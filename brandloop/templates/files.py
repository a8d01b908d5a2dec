"""Templates as YAML files, one per template, so teams can keep and review them in Git.

``export`` writes every version (content, author, message, status) and every label of each
template. ``import`` reads a whole directory before it writes anything, and then applies it in
the caller's transaction: new templates and versions are added, versions already in the registry
must be identical (versions are immutable; content, author and message; a status only behind the
registry's, as in an export older than a review), and labels are moved under the same rules as
``brandloop templates label``. A version new to the registry comes in with the review state the
file gives it only as the same steps by hand would allow: ``in_review`` from its author or an
approver (``submit``); ``approved`` or ``rejected`` (reviewed in the pull request) from an
approver who is not its author (four eyes, :func:`~brandloop.templates.governance.same_person`),
recorded as that version's review by the importer. Anyone may import drafts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, model_validator
from sqlalchemy.orm import Session

from brandloop.artifacts import atomic_write
from brandloop.domain import MAX_MESSAGE_CHARS, TemplateStatus, TemplateVersion
from brandloop.errors import BadInputError, present
from brandloop.policy_files import yaml_error
from brandloop.registry import crud
from brandloop.registry.models import TemplateVersionRow
from brandloop.templates.governance import (
    ACTOR_PATTERN,
    MAX_DESCRIPTION_CHARS,
    RESERVED_ACTORS,
    GovernanceError,
    GovernancePolicy,
    KeyScan,
    TemplateMetadata,
    TemplateScreen,
    TemplateSpec,
    _approves,
    _audit,
    _review,
    check_actor,
    check_label,
    check_metadata,
    check_model_hints,
    check_name,
    check_params,
    check_weights,
    labels,
    load_governance_policy,
    move_label,
    parse_yaml_file,
    same_person,
    screen_spec,
    usable_weights,
    version_statuses,
    versions,
)

log = logging.getLogger(__name__)

HEADER = (
    "# brandloop prompt template (brandloop templates export). Versions are immutable:\n"
    "# add a new version at the end instead of editing one; labels may be moved.\n"
)


class VersionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: a whole number as YAML writes one: "1", true or 1.0 are refused, as everywhere else
    version: StrictInt = Field(ge=1)
    status: TemplateStatus = "draft"
    author: str = Field(min_length=1, max_length=120, pattern=ACTOR_PATTERN.pattern)
    #: up to ``MAX_MESSAGE_CHARS`` for a version new to the registry (checked on import, naming
    #: the file and version); a version the registry has may hold a longer one stored before
    #: the CLI enforced the limit, and its own export imports again
    message: str = ""
    created_at: datetime | None = None
    body: str = Field(min_length=1)
    negative_body: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    model_hints: list[str] = Field(default_factory=list)
    metadata: TemplateMetadata = Field(default_factory=TemplateMetadata)

    def spec(self) -> TemplateSpec:
        """The version's content as a template file holds it (its message apart: see
        ``message``)."""
        return TemplateSpec(
            body=self.body,
            negative_body=self.negative_body,
            params=self.params,
            model_hints=self.model_hints,
            metadata=self.metadata,
        )

    def content(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "negative_body": self.negative_body,
            "params": self.params,
            "model_hints": list(self.model_hints),
            "metadata": self.metadata.model_dump(),
        }


#: a version number as a label's weights name it in a file: ASCII digits, no leading zero
_VERSION_KEY = re.compile(r"[1-9][0-9]*")


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    labels: dict[str, dict[str, float]] = Field(default_factory=dict)
    versions: list[VersionFile] = Field(min_length=1)
    #: the file it was read from (its name), for errors found after reading
    _source: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _numbers(self) -> TemplateFile:
        numbers = [v.version for v in self.versions]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"versions must be numbered 1, 2, 3 … in order; found {numbers}")
        for label, weights in self.labels.items():
            for key in weights:
                if not _VERSION_KEY.fullmatch(key):  # "１" or "01" read as 1 (outside tester)
                    raise ValueError(
                        f"label {label!r} names version {key!r}: a version is written in ASCII "
                        "digits with no leading zero (1, 2, 3 …)"
                    )
                if int(key) not in numbers:
                    raise ValueError(f"label {label!r} names version {key!r}, which the file lacks")
            try:  # the rules of ``templates label``, refused while the file is read
                check_label(label)
                check_weights(weights, f"label {label!r}")
            except BadInputError as exc:
                raise ValueError(str(exc)) from None
            for key, weight in weights.items():
                if not weight > 0:  # as ``templates label`` refuses it (leave the version out)
                    raise ValueError(
                        f"label {label!r} gives version {key} the weight {weight!r}; in a file "
                        "each weight is above 0 (leave a version without traffic out)"
                    )
        return self


def _traffic(weights: dict[str, Any]) -> dict[str, float]:
    """A label's weights as a file holds them: the versions with traffic (weight above 0)."""
    return {str(k): float(v) for k, v in weights.items() if float(v) > 0}


def export_templates(session: Session, *, tenant: str, directory: Path) -> list[Path]:
    """Write ``<directory>/<name>.yaml`` for every template of the tenant.

    Every file is made in memory and every target checked before the first is written: a
    target that is a folder is a :class:`BadInputError` naming it, and nothing is written."""
    from brandloop.templates.governance import list_templates

    documents: list[tuple[Path, bytes]] = []
    for template in list_templates(session, tenant=tenant):
        statuses = version_statuses(session, template=template)
        document = {
            "name": template.name,
            "description": template.description,
            "labels": {
                # a version the API gave weight 0 has no traffic: left out, as a file has it;
                # so is a rejected one a label older code left (runs never use it, and import
                # refuses a label on it), and a label left with neither
                row.label: traffic
                for row in labels(session, template=template)
                if (traffic := usable_weights(row.weights, statuses))
            },
            "versions": [
                {
                    "version": row.version,
                    "status": row.status,
                    "author": row.author,
                    "message": row.message,
                    "created_at": row.created_at.isoformat(),
                    "body": row.body,
                    "negative_body": row.negative_body,
                    "params": row.params,
                    "model_hints": list(row.model_hints),
                    "metadata": row.meta,
                }
                for row in versions(session, template=template)
            ],
        }
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
        documents.append((directory / f"{template.name}.yaml", (HEADER + text).encode("utf-8")))
    for path, _ in documents:
        if path.is_dir() and not path.is_symlink():  # a link is replaced, a folder cannot be
            raise BadInputError(
                f"{path} is a folder; export writes a file of that name there (nothing was "
                "exported): move the folder away or export to another folder"
            )
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path, data in documents:
        atomic_write(path, data)
        written.append(path)
    log.info("templates exported", extra={"tenant": tenant, "files": len(written)})
    return written


def read_directory(directory: Path) -> list[TemplateFile]:
    """Parse and check every template file of a directory; the first problem is an error."""
    if not directory.is_dir():
        raise BadInputError(f"{directory} is not a directory")
    paths = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not paths:
        raise BadInputError(f"{directory} holds no .yaml template files")
    files: list[TemplateFile] = []
    seen: set[str] = set()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise yaml_error(path.name, exc) from None
        parsed = parse_yaml_file(
            text,
            TemplateFile,
            source=path.name,
            holds="name and versions",
        )
        parsed._source = path.name
        check_name(parsed.name)
        if parsed.name in seen:
            raise BadInputError(f"{path.name}: template {parsed.name!r} appears in two files")
        seen.add(parsed.name)
        for version in parsed.versions:
            try:
                version.spec().check()
            except BadInputError as exc:
                raise BadInputError(f"{path.name} version {version.version}: {exc}") from None
        files.append(parsed)
    return files


#: The review step an imported state stands for, recorded by the importer.
REVIEW_ACTIONS: dict[str, str] = {
    "in_review": "submit",
    "approved": "approve",
    "rejected": "reject",
}


def _check_imported_review(
    name: str, vf: VersionFile, actor: str, policy: GovernancePolicy
) -> None:
    """A new version's state from a file, allowed only as the review steps by hand would allow
    it (``submit``, ``approve``, ``reject`` by ``actor``): the file's author is taken as
    ``--as`` is, so an importer is never both author and approver of a version."""
    subject = f"{name}@{vf.version}"
    if vf.author.lower() in {reserved.lower() for reserved in RESERVED_ACTORS}:
        # brandloop's own versions are seeded, never imported: the shipped ones are in the
        # registry before an import reads a file (outside tester: "author: System" passed a
        # version off as one of brandloop's own)
        raise GovernanceError(
            f"{subject}: author {vf.author!r} is reserved for brandloop itself (in any case); "
            "a new version is written by a person"
        )
    if vf.status == "in_review":
        if not same_person(actor, vf.author) and not _approves(actor, policy, None):
            raise GovernanceError(
                f"{subject} is in_review in the file; only its author ({vf.author}) or an "
                f"approver may import it so ({actor} is neither)"
            )
    elif vf.status in {"approved", "rejected"}:
        if not _approves(actor, policy, None):
            raise GovernanceError(
                f"{subject} is {vf.status} in the file; only an approver may "
                f"import reviewed versions ({actor} is not one)"
            )
        if same_person(actor, vf.author):
            raise GovernanceError(
                f"{subject} is {vf.status} in the file and {actor} wrote it; four eyes: "
                "another approver imports it, or import it as a draft and review it"
            )


#: how far along the review a state is: a registry ahead of a file (a version approved after
#: the export was made) is an older export, not an edit; approved and rejected are both final
_REVIEW_STAGE: dict[str, int] = {"draft": 0, "in_review": 1, "approved": 2, "rejected": 2}


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _check_unchanged(name: str, vf: VersionFile, row: TemplateVersionRow) -> None:
    """A version the registry already has: the file must say what the registry says (content,
    author, message), else a :class:`BadInputError` naming the version and the fields. Its
    status may lag behind the registry's (an export older than a review), never run ahead of
    it or contradict it: import does not review a version the registry already has. The
    created time is not compared (the file's is kept only for a version new here)."""
    subject = f"{name}@{vf.version}"
    stored = {
        "body": row.body,
        "negative_body": row.negative_body,
        "params": row.params,
        "model_hints": list(row.model_hints),
        # as stored (with the named fields a file always has): never re-validated, so a
        # version stored before a limit still compares
        "metadata": {"domain": "", "tone": "", "safety_notes": "", **(row.meta or {})},
    }
    given = vf.content()
    fields = [key for key in stored if stored[key] != given[key]]
    fields += [
        f"{key} ({_short(mine)} in the file, {_short(theirs)} in the registry)"
        for key, mine, theirs in (
            ("author", vf.author, row.author),
            ("message", vf.message, row.message),
        )
        if mine != theirs
    ]
    if fields:
        raise BadInputError(
            f"{subject} differs from the registry in {'; '.join(fields)}; versions are "
            "immutable, add a new version instead"
        )
    if vf.status == row.status or _REVIEW_STAGE[row.status] > _REVIEW_STAGE[vf.status]:
        return  # the same, or the registry reviewed it after this export was made
    step = REVIEW_ACTIONS[vf.status]
    if row.status in {"approved", "rejected"}:  # the file gives the other verdict
        advice = "a verdict is final; add a new version instead"
    elif row.status == "draft" and step != "submit":
        advice = f"brandloop templates submit, then {step}, {name} {vf.version} do that"
    else:
        advice = f"brandloop templates {step} {name} {vf.version} does that"
    raise BadInputError(
        f"{subject} differs from the registry in status ({vf.status!r} in the file, "
        f"{row.status!r} in the registry); import does not review a version the registry "
        f"already has: {advice}"
    )


def import_templates(
    session: Session,
    *,
    tenant: str,
    directory: Path,
    actor: str,
    screen: TemplateScreen,
    models: Collection[str],
    key_scan: KeyScan | None = None,
) -> list[dict[str, Any]]:
    """Apply a directory of template files; returns what was added or moved per template.

    Everything is read and checked first (every version's text through ``screen``, the
    minors line); the writes happen in the caller's transaction, so a refusal part-way (a
    changed version, a protected label, a new version whose model hints name a model the
    catalog (``models``: its ids) does not hold, or whose params ``key_scan`` finds
    key-shaped) leaves the registry unchanged. A version the registry has already is not
    checked against the catalog or the param rules again: a model retired since, or a param
    stored before a rule, does not stop an export from importing.
    """
    check_actor(actor)
    files = read_directory(directory)
    for tf in files:
        for vf in tf.versions:
            spec = vf.spec().model_copy(update={"description": tf.description})
            subject = f"{tf.name}@{vf.version}"
            screen_spec(
                session, tenant=tenant, actor=actor, subject=subject, spec=spec, screen=screen
            )
    policy = load_governance_policy()
    report: list[dict[str, Any]] = []
    for tf in files:
        # what is stored of it is read under its lock: a parallel writer waits for this import
        crud.lock_template(session, tenant=tenant, name=tf.name)
        template = crud.get_template(session, tenant=tenant, name=tf.name)
        existing = (
            {row.version: row for row in versions(session, template=template)} if template else {}
        )
        added: list[int] = []
        for vf in tf.versions:
            row = existing.get(vf.version)
            if row is not None:
                _check_unchanged(tf.name, vf, row)
                continue
            _check_imported_review(tf.name, vf, actor, policy)
            if len(vf.message) > MAX_MESSAGE_CHARS:  # an export made before the CLI's limit
                raise BadInputError(
                    f"{tf._source} version {vf.version}: message is {len(vf.message)} "
                    f"characters long; at most {MAX_MESSAGE_CHARS} are allowed for a version "
                    "new to this registry (shorten it in the file to import it)"
                )
            check_model_hints(vf.spec().model_hints, models)
            check_metadata(vf.metadata, f"{tf._source} version {vf.version}")
            if template is None and len(tf.description) > MAX_DESCRIPTION_CHARS:
                raise BadInputError(
                    f"{tf._source}: description is {len(tf.description)} characters long; at "
                    f"most {MAX_DESCRIPTION_CHARS} are allowed for a template new to this registry"
                )
            try:
                check_params(vf.params, key_scan=key_scan)
            except BadInputError as exc:
                raise BadInputError(f"{tf.name}@{vf.version}: {exc}") from None
            model = TemplateVersion(
                name=tf.name,
                version=vf.version,
                author=vf.author,
                status=vf.status,
                **vf.content(),
                message=vf.message,
                **({"created_at": vf.created_at} if vf.created_at else {}),
            )
            crud.add_template_version(
                session, tenant=tenant, version=model, description=tf.description
            )
            _audit(
                session,
                tenant,
                actor,
                "imported",
                f"{tf.name}@{vf.version}",
                {"author": vf.author, "status": vf.status, "source": str(directory)},
            )
            template = present(
                crud.get_template(session, tenant=tenant, name=tf.name), f"template {tf.name!r}"
            )
            if vf.status in REVIEW_ACTIONS:
                _review(
                    session,
                    template,
                    vf.version,
                    actor,
                    REVIEW_ACTIONS[vf.status],
                    f"imported as {vf.status} from {directory.name}",
                )
            added.append(vf.version)
        moved: list[str] = []
        template = present(template, f"template {tf.name!r}")
        for label, weights in sorted(tf.labels.items()):
            current = crud.get_label(session, template_id=template.id, label=label)
            wanted = {str(int(k)): float(v) for k, v in weights.items()}
            if current is not None and _traffic(current.weights) == wanted:
                continue
            move_label(
                session, tenant=tenant, name=tf.name, label=label, weights=wanted, actor=actor
            )
            moved.append(label)
        report.append({"template": tf.name, "added_versions": added, "moved_labels": moved})
    log.info("templates imported", extra={"tenant": tenant, "templates": len(report)})
    return report
