"""A target's template files: candidate versions registered, approved, in the target's fresh
registry before its cases run (``docs/evals.md``, Targets).

A file is checked as ``brandloop templates create`` / ``new-version`` check a version, by the
same function (:func:`brandloop.templates.governance.check_content`: the name, the sandbox,
the params, the model hints), so a version that CI evaluated can also be proposed. The
version a file names may not clash with one the registry holds with other content (the
shipped ``brand-hero@1``, or an earlier file's): versions are immutable. A file naming no
version is the next free number of its template.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from brandloop.agent.templates import shipped_versions
from brandloop.domain import TemplateVersion
from brandloop.errors import BadInputError
from brandloop.policy_files import describe_validation_error, load_yaml_file
from brandloop.templates.governance import (
    ACTOR_PATTERN,
    MAX_TEMPLATE_VERSION,
    TemplateMetadata,
    TemplateSpec,
    check_content,
    version_from_spec,
)
from brandloop.tools.moderation.keys import redact_keys

#: What a version's content is, for a clash: the fields a run uses (not who wrote it, or why).
CONTENT_FIELDS = ("body", "negative_body", "params", "model_hints", "metadata")


@dataclass(frozen=True)
class TemplateFile:
    """One target template file, read: its content as ``create`` takes it, and the fields
    only a registered version has (the number it names, its author and created time)."""

    path: str
    spec: TemplateSpec
    version: int | None
    author: str
    created_at: datetime | None

    @property
    def name(self) -> str:
        return str(self.spec.name)

    def as_version(self, number: int) -> TemplateVersion:
        """The approved version this file registers as ``name@number``."""
        return version_from_spec(
            self.spec,
            name=self.name,
            version=number,
            author=self.author,
            message=self.spec.message,
            status="approved",
            created_at=self.created_at,
        )


def _refuse(path: str, problem: str) -> BadInputError:
    return BadInputError(f"template file {path}: {problem}")


def _number(path: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(path, f"version {value!r} is not a whole number")
    if not 1 <= value <= MAX_TEMPLATE_VERSION:
        raise _refuse(path, f"version {value} is not from 1 to {MAX_TEMPLATE_VERSION:,}")
    return value


def read_template_file(path: str) -> TemplateFile:
    """Parse a target's template file (the shape ``templates export`` and the golden suite's
    copies write: a template file with ``name``, and optionally ``version``, ``author``,
    ``created_at``; a ``status`` is ignored: every file is registered approved)."""
    data = load_yaml_file(Path(path), what="template file")
    if not isinstance(data, dict) or "name" not in data or "body" not in data:
        raise _refuse(path, "needs at least name and body")
    data = dict(data)
    version = _number(path, data.pop("version", None))
    author = data.pop("author", "system")
    data.pop("status", None)
    created_at = data.pop("created_at", None)
    if not isinstance(author, str) or not ACTOR_PATTERN.fullmatch(author):
        raise _refuse(path, f"author {author!r} is not a valid user name")
    try:
        spec = TemplateSpec.model_validate(data)
        when = None if created_at is None else TypeAdapter(datetime).validate_python(created_at)
    except ValidationError as exc:
        raise _refuse(path, describe_validation_error(exc)) from None
    if not isinstance(spec.name, str):
        raise _refuse(path, "needs at least name and body")
    return TemplateFile(path=path, spec=spec, version=version, author=author, created_at=when)


def check_template_file(file: TemplateFile, *, models: Collection[str]) -> None:
    """Refuse a file ``templates create`` / ``new-version`` would refuse (``models``: the
    catalog's model ids), in one line naming the file."""
    try:
        check_content(file.spec, name=file.name, models=models, key_scan=redact_keys)
    except BadInputError as exc:
        raise _refuse(file.path, str(exc)) from None


def _content(version: TemplateVersion) -> dict[str, Any]:
    content = version.model_dump(include=set(CONTENT_FIELDS))
    content["metadata"] = TemplateMetadata.model_validate(version.metadata).model_dump()
    return content


@dataclass(frozen=True)
class Registration:
    """What one file does to a fresh registry: registers ``number``, or finds it there
    already with the same content (``new`` false: a file listed twice, a carried copy)."""

    file: TemplateFile
    number: int
    new: bool


def plan_registrations(paths: list[str]) -> list[Registration]:
    """The versions the files register in a registry holding the shipped templates only, in
    the order given: a file's ``version``, else the next free number of its template. A
    version that is there already with other content is a clash, refused naming the file."""
    held: dict[str, dict[int, TemplateVersion]] = {}
    for shipped, _ in shipped_versions():
        held.setdefault(shipped.name, {})[shipped.version] = shipped
    plan: list[Registration] = []
    for path in paths:
        file = read_template_file(path)
        versions = held.setdefault(file.name, {})
        number = file.version
        if number is None:
            number = 1
            while number in versions:
                number += 1
        candidate = file.as_version(number)
        existing = versions.get(number)
        if existing is not None:
            differ = [f for f in CONTENT_FIELDS if _content(existing)[f] != _content(candidate)[f]]
            if differ:
                raise _refuse(
                    path,
                    f"{file.name}@{number} is already in the target's registry with another "
                    f"{', '.join(differ)}; versions never change: leave out 'version' to "
                    f"register the next one ({file.name}@{max(versions) + 1})",
                )
        else:
            versions[number] = candidate
        plan.append(Registration(file=file, number=number, new=existing is None))
    return plan
