"""The rules of a template's life: immutable versions, review, labels, and the audit trail.

A version is created as ``draft``; its author (or an approver) submits it (``in_review``); an
approver who is not its author approves or rejects it. Versions never change after creation.
Labels are movable pointers, optionally a weighted split (``3=90,4=10``); a protected label
(``production``) moves only by an approver and only to approved versions; rejecting a version
takes it out of every label (a label move by the reviewer). Every step writes an
``audit_log`` entry (who, when, what) and review steps also a ``template_reviews`` row.

Every function checks everything first and only then writes, so a refused call changes nothing
even before the caller's transaction rolls back.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from brandloop.domain import (
    MAX_MESSAGE_CHARS,
    MAX_REVIEW_NOTE_CHARS,
    ModerationVerdict,
    TemplateStatus,
    TemplateVersion,
    is_blank,
    utcnow,
)
from brandloop.errors import BadInputError, ConflictError, NotFoundError, RefusedError
from brandloop.policy_files import (
    describe_validation_error,
    parse_yaml,
    read_policy_yaml,
    yaml_error,
)
from brandloop.registry import crud
from brandloop.registry.models import TemplateLabelRow, TemplateRow, TemplateVersionRow
from brandloop.registry.models_templates import TemplateReviewRow
from brandloop.templates.sandbox import compose_check

log = logging.getLogger(__name__)

POLICY_PATH: Final = Path(__file__).with_name("governance.yaml")
NAME_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,119}$")
LABEL_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: a principal's (user's) name, exact; the API's schemas state the same pattern
PRINCIPAL_NAME: Final = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,119}$"
ACTOR_PATTERN: Final = re.compile(PRINCIPAL_NAME)
MODEL_HINT_PATTERN: Final = re.compile(r"^[a-z0-9_-]+/[A-Za-z0-9_.:-]+$")
RESERVED_ACTORS: Final = frozenset({"system"})
#: The largest weight a label may give a version (a split's total stays finite and exact).
MAX_LABEL_WEIGHT: Final = 1_000_000.0

# The patterns above keep ``^...$`` because schemas (pydantic, OpenAPI) reuse them, where ``$``
# is the end of the text; Python's ``$`` also matches before a final newline, so Python code
# checks with ``fullmatch`` (``"lee\n"`` is not ``lee``).


def same_person(a: str, b: str) -> bool:
    """Whether two user names name one person for the review rules (four eyes): names that
    differ only in case do (``Lee``, ``lee``, ``LEE``), so a case change never makes an author
    someone else. The HTTP API keeps ``ana`` and ``Ana`` as two principals, but not as two
    reviewers of one another's work."""
    return a.casefold() == b.casefold()


class GovernanceError(BadInputError):
    """A step the review rules do not allow (exit 2): wrong state, wrong person, protected label."""

    problem_type = "governance"


ReviewAction = Literal["submit", "approve", "reject", "comment"]


class GovernancePolicy(BaseModel):
    """Who may approve versions and move protected labels; which labels are protected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: frozenset[str] = frozenset()
    protected_labels: frozenset[str] = frozenset({"production"})


def load_governance_policy(path: Path = POLICY_PATH) -> GovernancePolicy:
    """The shipped policy; ``BRANDLOOP_TEMPLATE_APPROVERS`` (comma-separated) replaces approvers."""
    data = read_policy_yaml(path) or {}
    env = os.environ.get("BRANDLOOP_TEMPLATE_APPROVERS")
    if env is not None:
        data["approvers"] = _approvers_from_env(env)
    return GovernancePolicy.model_validate(data)


def _approvers_from_env(env: str) -> list[str]:
    """``BRANDLOOP_TEMPLATE_APPROVERS``: user names separated by commas (spaces around them
    ignored). An empty entry (``ana,,lee``) or a name no ``--as`` could give (``x y``) is a
    malformed setting, named by its variable, not an approver nobody can be."""
    names = [name.strip() for name in env.split(",")]
    if env.strip() == "":
        return []
    for name in names:
        if not name:
            raise BadInputError(
                f"BRANDLOOP_TEMPLATE_APPROVERS={env!r} has an empty name: user names "
                "separated by commas"
            )
        if len(name) > MAX_NAME_LENGTH or not ACTOR_PATTERN.fullmatch(name):
            raise BadInputError(
                f"BRANDLOOP_TEMPLATE_APPROVERS: {name[:40]!r} is not a valid user name: "
                f"1-{MAX_NAME_LENGTH} of A-Z a-z 0-9 _ . @ -, starting with a letter or digit"
            )
    return names


#: the most characters a template's description holds (the CLI, the API, a new template's import)
MAX_DESCRIPTION_CHARS: Final = 2000
#: the most characters a version's metadata holds, keys, values and any extra fields counted
#: together: a file's YAML aliases can make a few hundred bytes megabytes (outside tester: a
#: 692-byte file stored 8 MB), refused while the file is read, before anything copies it
MAX_METADATA_CHARS: Final = 16_000
#: what the API's schema allows of the named fields (``TemplateMetadataIn``), for every new
#: version wherever it is written (``version_from_spec``, import)
METADATA_FIELD_LIMITS: Final = {"domain": 200, "tone": 200, "safety_notes": 2000}


def _size_past(value: Any, limit: int) -> bool:
    """Whether ``value`` (YAML's data) holds more than ``limit`` characters, counted without
    copying it and stopping as soon as it does: aliases share one object many times over."""
    seen = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            seen += len(item) if isinstance(item, str) else 8
        seen += 1
        if seen > limit:
            return True
    return False


class TemplateMetadata(BaseModel):
    """What a reviewer wants to know about a template besides its text."""

    model_config = ConfigDict(extra="allow")

    domain: str = ""
    tone: str = ""
    safety_notes: str = ""

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and _size_past(data, MAX_METADATA_CHARS):
            raise ValueError(
                f"metadata holds more than {MAX_METADATA_CHARS:,} characters (YAML aliases "
                "count each time they are used)"
            )
        return data


def check_metadata(metadata: TemplateMetadata, subject: str) -> None:
    """A new version's metadata within what the API's schema allows of its named fields."""
    for name, limit in METADATA_FIELD_LIMITS.items():
        text = getattr(metadata, name)
        if len(text) > limit:
            raise BadInputError(
                f"{subject}: metadata.{name} is {len(text)} characters long; at most {limit} "
                "are allowed for a new version"
            )


class TemplateSpec(BaseModel):
    """The content of one version as a template file holds it (see ``examples/templates``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="optional; must match NAME if given")
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    body: str = Field(min_length=1)
    negative_body: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    model_hints: list[str] = Field(default_factory=list, max_length=20)
    metadata: TemplateMetadata = Field(default_factory=TemplateMetadata)
    message: str = Field(default="", max_length=MAX_MESSAGE_CHARS)

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        if is_blank(value):  # spaces or invisible characters: a prompt of nothing
            raise ValueError("body is empty: it is the prompt every run of the version renders")
        return value

    @field_validator("model_hints")
    @classmethod
    def _hints(cls, value: list[str]) -> list[str]:
        for hint in value:
            if not MODEL_HINT_PATTERN.fullmatch(hint):
                raise ValueError(
                    f"model hint {hint!r} is not provider/model, e.g. procedural/draft"
                )
        return value

    def check(self) -> None:
        """The bodies must be safe, use only known variables, and render with sample values."""
        compose_check(self.body, self.negative_body)


def describe_validation(exc: ValidationError) -> str:
    """One line: the first failing field and its problem, and how many more there are."""
    return describe_validation_error(exc)


M = TypeVar("M", bound=BaseModel)


def parse_yaml_file(text: str, model: type[M], *, source: str, holds: str) -> M:
    """``text`` (a YAML mapping that ``holds`` what the message says) checked as ``model``;
    any problem is one :class:`BadInputError` naming ``source``."""
    data = parse_yaml(text, source=source)
    if not isinstance(data, dict):
        raise BadInputError(f"{source} must hold a mapping with {holds}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"{source}: {describe_validation(exc)}") from None


def load_spec(path: Path) -> TemplateSpec:
    """Read and check a template file; any problem is one clear :class:`BadInputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise yaml_error(str(path), exc) from None
    except OSError as exc:
        raise BadInputError(f"cannot read template file {path}: {exc.strerror}") from None
    spec = parse_yaml_file(text, TemplateSpec, source=str(path), holds="at least 'body'")
    spec.check()
    return spec


# --------------------------------------------------------------------------- checks


#: The longest template name, user name (``--as``) and label (the patterns above say the same).
MAX_NAME_LENGTH: Final = 120
MAX_LABEL_LENGTH: Final = 64


def _too_long(what: str, value: str, limit: int) -> BadInputError | None:
    """A name over ``limit`` characters, named by its start (the whole would fill the line)."""
    if len(value) <= limit:
        return None
    return BadInputError(
        f"{what} {value[:24]!r}… is {len(value)} characters long; at most {limit} are allowed"
    )


def check_text(what: str, text: str, limit: int) -> str:
    """``text`` (a commit message, a review note) within ``limit`` characters, else a
    :class:`BadInputError` saying its length and the limit, never the text (it fills lines)."""
    if len(text) > limit:
        raise BadInputError(f"{what} is {len(text)} characters long; at most {limit} are allowed")
    return text


def check_note(note: str, what: str = "the note") -> str:
    """A review note within the API's limit (``POST .../review``'s ``note``)."""
    return check_text(what, note, MAX_REVIEW_NOTE_CHARS)


def check_actor(actor: str) -> str:
    if (problem := _too_long("--as", actor or "", MAX_NAME_LENGTH)) is not None:
        raise problem
    if not ACTOR_PATTERN.fullmatch(actor or ""):
        raise BadInputError(
            f"--as {actor!r} is not a valid user name: 1-{MAX_NAME_LENGTH} of "
            "A-Z a-z 0-9 _ . @ -, starting with a letter or digit"
        )
    if actor.lower() in {reserved.lower() for reserved in RESERVED_ACTORS}:
        # in every case: four eyes compare names ignoring case
        raise BadInputError(f"--as {actor!r} is reserved for brandloop itself (in any case)")
    return actor


def check_name(name: str) -> str:
    if (problem := _too_long("template name", name, MAX_NAME_LENGTH)) is not None:
        raise problem
    if not NAME_PATTERN.fullmatch(name):
        raise BadInputError(
            f"template name {name!r} must be lower-case letters, digits, '-', '_' or '.' "
            f"(starting with a letter or digit, at most {MAX_NAME_LENGTH} characters)"
        )
    return name


def _template(session: Session, tenant: str, name: str) -> TemplateRow:
    row = crud.get_template(session, tenant=tenant, name=name)
    if row is None:
        raise NotFoundError(f"template {name!r} does not exist")
    return row


#: No template has more versions than this (the API's and the studio's bound too); a larger
#: number names no version, and would not fit a database integer.
MAX_TEMPLATE_VERSION = 100_000


def _version(session: Session, template: TemplateRow, version: int) -> TemplateVersionRow:
    row = (
        crud.get_template_version(session, template_id=template.id, version=version)
        if 1 <= version <= MAX_TEMPLATE_VERSION
        else None
    )
    if row is None:
        raise NotFoundError(f"template {template.name}@{version} does not exist")
    return row


def _audit(
    session: Session,
    tenant: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any] | None = None,
) -> None:
    crud.audit(
        session,
        tenant=tenant,
        actor=actor,
        action=f"template.{action}",
        subject_type="template",
        subject_id=subject,
        detail=detail,
    )
    log.info(f"template {action}", extra={"tenant": tenant, "template": subject, "actor": actor})


def _review(
    session: Session, template: TemplateRow, version: int, actor: str, action: str, note: str
) -> None:
    session.add(
        TemplateReviewRow(
            template_id=template.id,
            version=version,
            actor=actor,
            action=action,
            note=note,
            at=utcnow(),
        )
    )


# --------------------------------------------------------------------------- versions


def version_from_spec(
    spec: TemplateSpec,
    *,
    name: str,
    version: int,
    author: str,
    message: str,
    status: TemplateStatus = "draft",
    created_at: datetime | None = None,
) -> TemplateVersion:
    """The version ``spec`` becomes when stored as ``name@version``: what every write path
    (``create``, ``new-version``, an eval target's template files) stores of a file."""
    check_metadata(spec.metadata, f"{name}@{version}")
    return TemplateVersion(
        name=name,
        version=version,
        body=spec.body,
        negative_body=spec.negative_body,
        params=spec.params,
        model_hints=spec.model_hints,
        metadata=spec.metadata.model_dump(),
        author=author,
        message=message,
        status=status,
        **({} if created_at is None else {"created_at": created_at}),
    )


def _store_version(
    session: Session,
    *,
    tenant: str,
    name: str,
    version: int,
    spec: TemplateSpec,
    actor: str,
    message: str,
    status: TemplateStatus = "draft",
) -> TemplateVersionRow:
    model = version_from_spec(
        spec, name=name, version=version, author=actor, message=message, status=status
    )
    return crud.add_template_version(
        session, tenant=tenant, version=model, description=spec.description
    )


#: A content check a template's text must pass before it is stored: the minors line
#: (``brandloop.tools.moderation.minors.template_screen``). Callers pass it in, so core never
#: imports the tools layer and no write path can skip it (it is a required argument).
TemplateScreen = Callable[[str], ModerationVerdict]


def screen_spec(
    session: Session,
    *,
    tenant: str,
    actor: str,
    subject: str,
    spec: TemplateSpec,
    screen: TemplateScreen,
) -> None:
    """Refuse a template whose body or description fails ``screen``, on the audit record.

    The negative body is not screened: it lists what an image must *not* show. The audit
    entry holds the layers, spans and rules, never the text, and is committed on its own
    because the caller's transaction rolls back with the refusal.
    """
    for field, text in (("body", spec.body), ("description", spec.description)):
        if not text.strip():
            continue
        verdict = screen(text)
        if verdict.allowed:
            continue
        crud.audit_committed(
            session,
            tenant=tenant,
            actor=actor,
            action="moderation.refused."
            + "_".join(c.replace("/", "_") for c in verdict.categories),
            subject_type="template",
            subject_id=subject,
            detail={
                "field": field,
                "categories": verdict.categories,
                "findings": [
                    f.model_dump(mode="json", exclude={"excerpt"}) for f in verdict.findings
                ],
            },
        )
        raise RefusedError(
            f"template {subject} refused: its {field} fails moderation ("
            + "; ".join(verdict.reasons)
            + ")"
        )


def check_model_hints(hints: list[str], models: Collection[str]) -> None:
    """Every model hint names a model of the catalog (``models``: its ids), as a model named
    in a generation request must: an unknown one is a :class:`NotFoundError` naming it; and
    names it once (the API refuses a format listed twice the same way): a
    :class:`BadInputError` naming the one listed twice."""
    twice = next((h for i, h in enumerate(hints) if h in hints[:i]), None)
    if twice is not None:
        raise BadInputError(f"model_hints lists {twice} twice; list each model once")
    unknown = [hint for hint in dict.fromkeys(hints) if hint not in models]
    if unknown:
        raise NotFoundError(
            "model_hints name "
            + ("a model" if len(unknown) == 1 else "models")
            + f" the catalog does not hold: {', '.join(unknown)} (known models: "
            + (", ".join(sorted(models)) or "none")
            + ")"
        )


#: Request fields brandloop sets itself on every call (the providers' own body fields and the
#: agent's record of an LLM writer): a template's params may not set them. ``quality`` is not
#: among them: a template's quality narrows the planner's arms (``agent/nodes/plan.py``).
RESERVED_PARAMS: Final = frozenset(
    {
        "prompt",
        "negative_prompt",
        "model",
        "checkpoint",
        "n",
        "count",
        "n_iter",
        "batch_size",
        "size",
        "width",
        "height",
        "aspect_ratio",
        "seed",
        "response_format",
        "output_format",
        "writer",
    }
)


#: A param's name: a word a provider's request takes as a field (``steps``, ``cfg_scale``,
#: ``style_preset``), never spaces, line breaks or a paragraph. The API's schema states it too.
PARAM_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_PARAM_NAME_CHARS: Final = 64
#: The most characters a param's text value holds: it goes with every call and into every
#: receipt (a 300,000-character value was stored and sent).
MAX_PARAM_TEXT_CHARS: Final = 2000
#: Counts the key-shaped tokens of a text (an API key, a token, ``password=...``):
#: ``brandloop.tools.moderation.keys.redact_keys``, which returns the text redacted and the
#: count. Callers pass it in, as they pass the screen: core does not import the tools layer.
KeyScan = Callable[[str], tuple[str, int]]


def _key_shaped(key_scan: KeyScan | None, text: str) -> bool:
    return key_scan is not None and key_scan(text)[1] > 0


#: why a key-shaped param is refused, after what it is
_KEY_REASON: Final = (
    "looks like an API key, token or password; a param is sent with every call and "
    "written into every receipt and image, so a secret belongs in the provider's settings, "
    "not a template"
)


def check_params(params: dict[str, Any], *, key_scan: KeyScan | None = None) -> None:
    """A template's ``params`` (the defaults of every call made from it) are a mapping of
    names to scalar values (text of at most :data:`MAX_PARAM_TEXT_CHARS`, a number,
    true/false). A name is :data:`PARAM_NAME` and none is a field brandloop sets itself
    (:data:`RESERVED_PARAMS`, in any case: ``Seed`` is ``seed`` to a provider that ignores
    case); ``quality``, if given, is text. With ``key_scan`` (the CLI and the API pass it), no name
    or text value is key-shaped: the message names the param, never the value (nor a name
    that is itself key-shaped). Anything else is one :class:`BadInputError` naming the key
    (exit 2, HTTP 422). Versions stored before these rules are read as they are."""
    if not isinstance(params, dict):
        raise BadInputError("params must be a mapping of names to values, e.g. {steps: 30}")
    for index, (key, value) in enumerate(params.items(), start=1):
        if not isinstance(key, str) or not key.strip():
            raise BadInputError(f"params: {key!r} is not a parameter name")
        if _key_shaped(key_scan, key):
            raise BadInputError(f"params: the name of param #{index} (in file order) {_KEY_REASON}")
        if len(key) > MAX_PARAM_NAME_CHARS or not PARAM_NAME.fullmatch(key):
            shown = f"{key[:24]!r}…" if len(key) > 24 else repr(key)
            raise BadInputError(
                f"params: {shown} is not a param name: 1-{MAX_PARAM_NAME_CHARS} of A-Z a-z 0-9 "
                "_ . -, starting with a letter"
            )
        if key.lower() in RESERVED_PARAMS:
            raise BadInputError(
                f"params: {key!r} is set by brandloop itself and may not be a template param "
                f"(reserved, in any case: {', '.join(sorted(RESERVED_PARAMS))})"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInputError(f"params.{key}: {value} is not a finite number")
        if not isinstance(value, str | int | float | bool):
            kind = {dict: "a mapping", list: "a list", type(None): "null"}.get(
                type(value), type(value).__name__
            )
            raise BadInputError(f"params.{key}: must be text, a number or true/false, not {kind}")
        if isinstance(value, str) and len(value) > MAX_PARAM_TEXT_CHARS:
            raise BadInputError(
                f"params.{key}: the text is {len(value):,} characters long; at most "
                f"{MAX_PARAM_TEXT_CHARS:,} are allowed"
            )
        # the value alone (``sk-...``), and as an assignment (``api_key: hunter2...``)
        if not isinstance(value, bool) and (
            _key_shaped(key_scan, str(value)) or _key_shaped(key_scan, f"{key}={value}")
        ):
            raise BadInputError(f"params.{key}: the value {_KEY_REASON}")
        if key == "quality" and not isinstance(value, str):
            raise BadInputError(f"params.quality: must be a quality setting's name, not {value!r}")


def check_content(
    spec: TemplateSpec, *, name: str, models: Collection[str], key_scan: KeyScan | None = None
) -> None:
    """What a version's content must satisfy to be stored as a version of ``name``, by any
    path (``create``, ``new-version``, the HTTP API, an eval target's template files): a valid
    name the file agrees with, safe bodies (the sandbox), scalar params brandloop does not set
    itself (none key-shaped, given ``key_scan``), and model hints naming models of the catalog
    (``models``: its ids), each once."""
    check_name(name)
    if spec.name is not None and spec.name != name:
        raise BadInputError(f"the file names template {spec.name!r}, not {name!r}")
    spec.check()
    check_params(spec.params, key_scan=key_scan)
    check_model_hints(spec.model_hints, models)


def _store_next(
    session: Session,
    *,
    tenant: str,
    name: str,
    spec: TemplateSpec,
    actor: str,
    message: str,
    blank_first: str,
    blank_later: str,
) -> TemplateVersionRow:
    """Under the template's lock: its first version if it does not exist, else the next free
    number (a blank ``message`` is ``blank_first`` or ``blank_later``). Parallel callers get
    distinct numbers, in the order the lock admits them."""
    crud.lock_template(session, tenant=tenant, name=name)
    template = crud.get_template(session, tenant=tenant, name=name)
    version = 1 if template is None else latest_version(session, template) + 1
    row = _store_version(
        session,
        tenant=tenant,
        name=name,
        version=version,
        spec=spec,
        actor=actor,
        message=message if message.strip() else (blank_first if version == 1 else blank_later),
    )
    action = "created" if version == 1 else "version_created"
    _audit(session, tenant, actor, action, f"{name}@{version}", {"status": "draft"})
    return row


def _already_exists(name: str) -> ConflictError:
    return ConflictError(f"template {name!r} already exists; add a version with new-version")


def create_template(
    session: Session,
    *,
    tenant: str,
    name: str,
    spec: TemplateSpec,
    actor: str,
    screen: TemplateScreen,
    models: Collection[str],
    key_scan: KeyScan | None = None,
) -> TemplateVersionRow:
    """A new template with its first version, as a draft authored by ``actor``; ``models``
    are the catalog's model ids, which its model hints must name; ``key_scan`` (the CLI and
    the API pass ``redact_keys``) refuses a key-shaped param (:func:`check_params`). Of two
    callers creating one name at once, one creates it and the other gets a
    :class:`ConflictError`."""
    check_actor(actor)
    check_content(spec, name=name, models=models, key_scan=key_scan)
    screen_spec(session, tenant=tenant, actor=actor, subject=f"{name}@1", spec=spec, screen=screen)
    if crud.get_template(session, tenant=tenant, name=name) is not None:
        raise _already_exists(name)
    crud.lock_template(session, tenant=tenant, name=name)
    if crud.get_template(session, tenant=tenant, name=name) is not None:
        raise _already_exists(name)
    return _store_next(
        session,
        tenant=tenant,
        name=name,
        spec=spec,
        actor=actor,
        message=spec.message,
        blank_first="first version",
        blank_later="first version",
    )


def latest_version(session: Session, template: TemplateRow) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.max(TemplateVersionRow.version), 0)).where(
                TemplateVersionRow.template_id == template.id
            )
        )
        or 0
    )


def new_version(
    session: Session,
    *,
    tenant: str,
    name: str,
    spec: TemplateSpec,
    actor: str,
    message: str,
    screen: TemplateScreen,
    models: Collection[str],
    key_scan: KeyScan | None = None,
) -> TemplateVersionRow:
    """The next integer version of ``name``, as a draft; earlier versions stay as they are.
    Parallel callers each get a version of their own (the template's lock serialises them)."""
    check_actor(actor)
    if is_blank(message):
        raise BadInputError("a new version needs a commit message (-m)")
    check_text("the commit message (-m)", message, MAX_MESSAGE_CHARS)
    check_content(spec, name=name, models=models, key_scan=key_scan)
    template = _template(session, tenant, name)
    # the refusal's record names the number this version would likely get
    subject = f"{name}@{latest_version(session, template) + 1}"
    screen_spec(session, tenant=tenant, actor=actor, subject=subject, spec=spec, screen=screen)
    return _store_next(
        session,
        tenant=tenant,
        name=name,
        spec=spec,
        actor=actor,
        message=message,
        blank_first=message,
        blank_later=message,
    )


def add_version(
    session: Session,
    *,
    tenant: str,
    name: str,
    spec: TemplateSpec,
    actor: str,
    no_message: str,
    screen: TemplateScreen,
    models: Collection[str],
    key_scan: KeyScan | None = None,
) -> TemplateVersionRow:
    """The HTTP API's step: the next version of ``name``, creating the template with its
    first when it does not exist yet (a blank message is "first version" for that one, else
    ``no_message``). Decided under the template's lock, so parallel callers, the first
    included, each get the next free number, as if they had come one after another."""
    check_actor(actor)
    check_content(spec, name=name, models=models, key_scan=key_scan)
    template = crud.get_template(session, tenant=tenant, name=name)
    subject = f"{name}@{latest_version(session, template) + 1 if template else 1}"
    screen_spec(session, tenant=tenant, actor=actor, subject=subject, spec=spec, screen=screen)
    return _store_next(
        session,
        tenant=tenant,
        name=name,
        spec=spec,
        actor=actor,
        message=spec.message,
        blank_first="first version",
        blank_later=no_message,
    )


# --------------------------------------------------------------------------- review


def submit(
    session: Session,
    *,
    tenant: str,
    name: str,
    version: int,
    actor: str,
    note: str = "",
    is_approver: bool | None = None,
) -> TemplateVersionRow:
    """draft → in_review, by the version's author or an approver, once.

    Under the template's lock, as verdicts are, with the status read again under it: without
    it, concurrent submits all passed, and a submit that had read ``draft`` wrote
    ``in_review`` over a verdict committed meanwhile - a rejected version back in review, then
    approved and put on ``production`` (outside tester)."""
    check_actor(actor)
    check_note(note)
    crud.lock_template(session, tenant=tenant, name=name)
    template = _template(session, tenant, name)
    row = _version(session, template, version)
    session.refresh(row)  # its status as the database holds it now, under the lock
    if row.status != "draft":
        raise GovernanceError(f"{name}@{version} is {row.status}; only a draft can be submitted")
    policy = load_governance_policy()
    if not same_person(actor, row.author) and not _approves(actor, policy, is_approver):
        raise GovernanceError(
            f"{actor} may not submit {name}@{version}: only its author or an approver"
        )
    row.status = "in_review"
    _review(session, template, version, actor, "submit", note)
    _audit(
        session,
        tenant,
        actor,
        "submitted",
        f"{name}@{version}",
        {"from": "draft", "to": "in_review"},
    )
    session.flush()
    return row


def _decide(
    session: Session,
    *,
    tenant: str,
    name: str,
    version: int,
    actor: str,
    note: str,
    outcome: Literal["approved", "rejected"],
    is_approver: bool | None = None,
) -> TemplateVersionRow:
    check_actor(actor)
    check_note(note)
    # under the template's lock, as label moves are: a label move at the same time either
    # comes first (and this rejection takes the version out of it) or sees the verdict
    crud.lock_template(session, tenant=tenant, name=name)
    template = _template(session, tenant, name)
    row = _version(session, template, version)
    session.refresh(row)  # its status as the database holds it now, under the lock
    verb = "approve" if outcome == "approved" else "reject"
    if row.status != "in_review":
        raise GovernanceError(
            f"{name}@{version} is {row.status}; only a version in review can be {outcome}"
        )
    if same_person(actor, row.author):
        raise GovernanceError(
            f"{row.author} wrote {name}@{version} and may not {verb} it; ask another approver"
            if actor == row.author
            else f"{row.author} wrote {name}@{version}; {actor} may not {verb} it (four eyes "
            "ignore case); ask another approver"
        )
    policy = load_governance_policy()
    if not _approves(actor, policy, is_approver):
        raise GovernanceError(
            f"{actor} is not an approver; approvers: {', '.join(sorted(policy.approvers)) or 'none'}"
        )
    row.status = outcome
    _review(session, template, version, actor, verb, note)
    _audit(
        session,
        tenant,
        actor,
        outcome,
        f"{name}@{version}",
        {"from": "in_review", "to": outcome, "note": note},
    )
    if outcome == "rejected":
        _unlabel(session, tenant=tenant, template=template, version=version, actor=actor, note=note)
    session.flush()
    return row


def _unlabel(
    session: Session, *, tenant: str, template: TemplateRow, version: int, actor: str, note: str
) -> None:
    """Take a rejected ``version`` out of every label that points to it, as label moves by
    ``actor`` (the reviewer) whose audit entry gives the reason: a split keeps its other
    versions' weights; a label left with no version that gets traffic is removed (``to``:
    None). Called under the template's lock, in the verdict's transaction."""
    key = str(version)
    for row in labels(session, template=template):
        session.refresh(row)  # as the database holds it now, under the lock
        if key not in row.weights:
            continue
        before = dict(row.weights)
        after = {k: w for k, w in before.items() if k != key}
        if not sum(after.values()) > 0:
            after = {}
        if after:
            crud.set_label(
                session, template_id=template.id, label=row.label, weights=after, actor=actor
            )
        else:
            session.delete(row)
        _audit(
            session,
            tenant,
            actor,
            "label_moved",
            f"{template.name}:{row.label}",
            {
                "label": row.label,
                "from": before,
                "to": after or None,
                "reason": f"{template.name}@{version} was rejected: {note}",
            },
        )


#: A version in these states is never used: a label's traffic goes only to the others.
UNUSABLE_STATUSES: Final = frozenset({"rejected"})


def usable_weights(weights: dict[str, Any], statuses: dict[int, str]) -> dict[str, float]:
    """The part of a label's ``weights`` that carries traffic: versions with a weight above 0
    that exist (``statuses``: version number to status) and are not rejected. A label stored
    by older code may still name a rejected version; runs, exports and shares ignore it."""
    return {
        str(k): float(w)
        for k, w in weights.items()
        if float(w) > 0 and statuses.get(int(k), "rejected") not in UNUSABLE_STATUSES
    }


def version_statuses(session: Session, *, template: TemplateRow) -> dict[int, str]:
    """Each version number of ``template`` with its status."""
    return dict(session.execute(_VERSION_STATUSES, {"template_id": template.id}).all())


#: built once: resolving a template reads it on every submission
_VERSION_STATUSES = select(TemplateVersionRow.version, TemplateVersionRow.status).where(
    TemplateVersionRow.template_id == bindparam("template_id")
)


def _approves(actor: str, policy: GovernancePolicy, is_approver: bool | None) -> bool:
    """Whether ``actor`` may approve: the caller's own identity system decides when it says so
    (the HTTP API passes the key's role), else the policy's list of approvers (case aside, as
    :func:`same_person` compares names)."""
    if is_approver is not None:
        return is_approver
    return any(same_person(actor, approver) for approver in policy.approvers)


def approve(
    session: Session,
    *,
    tenant: str,
    name: str,
    version: int,
    actor: str,
    note: str = "",
    is_approver: bool | None = None,
) -> TemplateVersionRow:
    """in_review → approved, by an approver who is not the author."""
    return _decide(
        session,
        tenant=tenant,
        name=name,
        version=version,
        actor=actor,
        note=note,
        outcome="approved",
        is_approver=is_approver,
    )


def reject(
    session: Session,
    *,
    tenant: str,
    name: str,
    version: int,
    actor: str,
    note: str,
    is_approver: bool | None = None,
) -> TemplateVersionRow:
    """in_review → rejected, by an approver who is not the author; the note says why."""
    if is_blank(note):
        raise BadInputError("a rejection needs a note saying why")
    return _decide(
        session,
        tenant=tenant,
        name=name,
        version=version,
        actor=actor,
        note=note,
        outcome="rejected",
        is_approver=is_approver,
    )


def comment(
    session: Session, *, tenant: str, name: str, version: int, actor: str, note: str
) -> None:
    """A review comment on a version, in any state."""
    check_actor(actor)
    if is_blank(note):
        raise BadInputError("a comment needs text")
    check_note(note, "the comment")
    template = _template(session, tenant, name)
    _version(session, template, version)
    _review(session, template, version, actor, "comment", note)
    _audit(session, tenant, actor, "commented", f"{name}@{version}", {"note": note})
    session.flush()


def reviews(
    session: Session, *, template: TemplateRow, version: int | None = None
) -> list[TemplateReviewRow]:
    query = select(TemplateReviewRow).where(TemplateReviewRow.template_id == template.id)
    if version is not None:
        query = query.where(TemplateReviewRow.version == version)
    return list(session.scalars(query.order_by(TemplateReviewRow.id)))


def deciders(session: Session, *, tenant: str) -> dict[tuple[str, int], str]:
    """``(template name, version)`` -> who approved or rejected it (the latest such verdict),
    for every decided version of the tenant's templates: the approver, never the author."""
    query = (
        select(TemplateRow.name, TemplateReviewRow.version, TemplateReviewRow.actor)
        .join(TemplateRow, TemplateRow.id == TemplateReviewRow.template_id)
        .where(TemplateRow.tenant == tenant, TemplateReviewRow.action.in_(("approve", "reject")))
        .order_by(TemplateReviewRow.id)
    )
    return {
        (str(name), int(version)): str(actor) for name, version, actor in session.execute(query)
    }


# --------------------------------------------------------------------------- labels


#: A version in a label spec, as the HTTP API's label weights name it: ASCII digits from 1,
#: no sign, space or leading zero (``[0-9]`` is ASCII in ``re``; ``str.isdigit`` and ``int``
#: also take Arabic-Indic or full-width digits, and ``int`` surrounding spaces).
VERSION_TEXT: Final = re.compile(r"[1-9][0-9]*")
#: A weight: a number in ASCII digits with an optional decimal point (``90``, ``0.5``), no
#: spaces, sign or exponent: ``1e3`` was taken as 1000 (the table then showed the version it
#: split with as 0%), and ``inf``, ``0x10`` or ``1_000`` are not digits either.
WEIGHT_TEXT: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def parse_label_spec(text: str, *, zero_allowed: bool = False) -> dict[str, float]:
    """``3`` or ``3=90,4=10`` → ``{"3": 90.0, "4": 10.0}`` (weights are relative). Versions
    and weights are written as the HTTP API takes them: ASCII digits, no spaces, no leading
    zero in a version (``01``, ``١``, ``１``, `` 1`` are refused, as the API refuses them).

    Each weight is above 0 (``templates label``: leave a version out instead) or, with
    ``zero_allowed`` (the studio, which keeps the HTTP API's rule), 0 too as long as one is
    above 0: ``3=0,4=1``."""
    low = "a number from 0 (no traffic) to" if zero_allowed else "a positive number of at most"
    weights: dict[str, float] = {}
    for part in text.split(","):
        version_text, equals, weight_text = part.partition("=")
        if not VERSION_TEXT.fullmatch(version_text):
            raise BadInputError(
                f"{text!r} is not VERSION or VERSION=WEIGHT,... (e.g. 3 or 3=90,4=10): a "
                f"version is a whole number from 1 in ASCII digits, no spaces or leading zeros"
            )
        if equals and not weight_text.strip():  # ``3=``: not ``3``, a weight left out
            raise BadInputError(
                f"{part!r} in {text!r} has no weight after '='; give one (3=90) or leave out "
                "'=' for a single version (3)"
            )
        if equals and not WEIGHT_TEXT.fullmatch(weight_text):
            raise BadInputError(
                f"weight {weight_text!r} in {text!r} is not a number in ASCII digits "
                "(e.g. 90 or 0.5), with no spaces"
            )
        weight = float(weight_text) if equals else 1.0
        lowest_ok = weight >= 0 if zero_allowed else weight > 0
        if not (lowest_ok and weight <= MAX_LABEL_WEIGHT):
            raise BadInputError(
                f"weight {weight_text!r} in {text!r} must be {low} {MAX_LABEL_WEIGHT:,.0f}"
            )
        key = version_text
        if key in weights:
            raise BadInputError(f"version {key} appears twice in {text!r}")
        weights[key] = weight
    if not sum(weights.values()) > 0:  # the API's rule (check_weights): one above 0
        raise BadInputError(f"{text!r} needs a weight above 0 for at least one version")
    return weights


def check_label(label: str) -> str:
    if (problem := _too_long("label", label, MAX_LABEL_LENGTH)) is not None:
        raise problem
    if not LABEL_PATTERN.fullmatch(label):
        raise BadInputError(
            f"label {label!r} must be lower-case letters, digits, '-' or '_' (starting with "
            f"a letter or digit, at most {MAX_LABEL_LENGTH} characters)"
        )
    return label


def check_weights(weights: dict[str, float], what: str) -> None:
    """A label's weights: at least one version, each weight a finite number from 0 (no
    traffic) to :data:`MAX_LABEL_WEIGHT`, at least one above 0. Bounded weights keep the
    total finite, so every version gets its share (``1e308`` twice would sum to infinity and
    starve all but the last)."""
    if not weights:
        raise BadInputError(f"{what} needs at least one version")
    for key, weight in weights.items():
        if not 0 <= weight <= MAX_LABEL_WEIGHT:  # also refuses nan and inf
            raise BadInputError(
                f"{what} gives version {key} the weight {weight!r}; weights are numbers from "
                f"0 to {MAX_LABEL_WEIGHT:,.0f}"
            )
    if not sum(weights.values()) > 0:
        raise BadInputError(f"{what} needs a weight above 0")


def move_label(
    session: Session,
    *,
    tenant: str,
    name: str,
    label: str,
    weights: dict[str, float],
    actor: str,
    is_approver: bool | None = None,
) -> TemplateLabelRow:
    """Point ``label`` at one version or split it by weight; rollback is just another move."""
    check_actor(actor)
    check_label(label)
    check_weights(weights, f"label {label!r}")
    # one move of the template's labels at a time: each audit row's "from" is what it replaced
    crud.lock_template(session, tenant=tenant, name=name)
    template = _template(session, tenant, name)
    rows = {key: _version(session, template, int(key)) for key in weights}
    for version_row in rows.values():
        session.refresh(version_row)  # its status now, under the lock (a verdict takes it too)
    policy = load_governance_policy()
    for key, version_row in rows.items():
        if version_row.status == "rejected":
            raise GovernanceError(f"{name}@{key} was rejected and cannot be labelled")
    if label in policy.protected_labels:
        if not _approves(actor, policy, is_approver):
            raise GovernanceError(
                f"{label!r} is protected: only an approver may move it ({actor} is not one)"
            )
        unapproved = [f"{name}@{k} ({r.status})" for k, r in rows.items() if r.status != "approved"]
        if unapproved:
            raise GovernanceError(
                f"{label!r} is protected and may point only to approved versions: "
                + ", ".join(unapproved)
            )
    previous = crud.get_label(session, template_id=template.id, label=label)
    before = dict(previous.weights) if previous is not None else None
    label_row = crud.set_label(
        session, template_id=template.id, label=label, weights=dict(weights), actor=actor
    )
    _audit(
        session,
        tenant,
        actor,
        "label_moved",
        f"{name}:{label}",
        {"label": label, "from": before, "to": dict(weights)},
    )
    return label_row


def label_weights(session: Session, *, template: TemplateRow) -> dict[str, dict[str, float]]:
    """Each label of ``template`` with its weights as runs use them, for every reader (CLI,
    HTTP, studio): what rejecting the version would have left (:func:`_unlabel`). A label
    stored before rejecting took versions out of labels may still name a rejected one; that
    entry is left out (no run gets it), and a label with no weight above 0 left is left out
    too. Other entries are shown as set, weights of 0 included, in version order."""
    statuses = version_statuses(session, template=template)
    shown: dict[str, dict[str, float]] = {}
    for row in labels(session, template=template):
        weights = {
            str(int(k)): float(w)
            for k, w in sorted(row.weights.items(), key=lambda kw: int(kw[0]))
            if statuses.get(int(k), "rejected") not in UNUSABLE_STATUSES
        }
        if sum(weights.values()) > 0:
            shown[row.label] = weights
    return shown


def labels(session: Session, *, template: TemplateRow) -> list[TemplateLabelRow]:
    return list(
        session.scalars(
            select(TemplateLabelRow)
            .where(TemplateLabelRow.template_id == template.id)
            .order_by(TemplateLabelRow.label)
        )
    )


def versions(session: Session, *, template: TemplateRow) -> list[TemplateVersionRow]:
    return list(
        session.scalars(
            select(TemplateVersionRow)
            .where(TemplateVersionRow.template_id == template.id)
            .order_by(TemplateVersionRow.version)
        )
    )


def list_templates(session: Session, *, tenant: str) -> list[TemplateRow]:
    return list(
        session.scalars(
            select(TemplateRow).where(TemplateRow.tenant == tenant).order_by(TemplateRow.name)
        )
    )


# --------------------------------------------------------------------------- diff


def _version_text(row: TemplateVersionRow) -> list[str]:
    """Bodies one sentence a line (so a diff points at the sentence), the rest as YAML."""
    lines: list[str] = []
    for field, text in (("body", row.body), ("negative_body", row.negative_body)):
        lines.append(f"{field}:\n")
        lines += [f"  {part}\n" for part in re.split(r"(?<=[.;,])\s+", text.strip()) if part]
    rest = {"params": row.params, "model_hints": list(row.model_hints), "metadata": row.meta}
    lines += yaml.safe_dump(rest, sort_keys=False, allow_unicode=True, width=88).splitlines(
        keepends=True
    )
    return lines


def diff_versions(session: Session, *, tenant: str, name: str, v1: int, v2: int) -> str:
    """A unified diff of two versions' content (bodies, params, hints, metadata)."""
    template = _template(session, tenant, name)
    a, b = _version(session, template, v1), _version(session, template, v2)
    return "".join(
        difflib.unified_diff(
            _version_text(a), _version_text(b), fromfile=f"{name}@{v1}", tofile=f"{name}@{v2}"
        )
    )


DiffKind = Literal["same", "changed", "removed", "added"]


def side_by_side(
    session: Session, *, tenant: str, name: str, v1: int, v2: int
) -> list[tuple[str, str, DiffKind]]:
    """Two versions' content aligned line by line, for a side-by-side view: rows of
    (line of v1, line of v2, kind); a side is empty where the other has a line it lacks."""
    template = _template(session, tenant, name)
    a = [line.rstrip("\n") for line in _version_text(_version(session, template, v1))]
    b = [line.rstrip("\n") for line in _version_text(_version(session, template, v2))]
    rows: list[tuple[str, str, DiffKind]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(x, y, "same") for x, y in zip(a[i1:i2], b[j1:j2], strict=True)]
            continue
        left, right = a[i1:i2], b[j1:j2]
        for k in range(max(len(left), len(right))):
            x = left[k] if k < len(left) else ""
            y = right[k] if k < len(right) else ""
            kind: DiffKind = "changed" if x and y else ("removed" if x else "added")
            rows.append((x, y, kind))
    return rows
