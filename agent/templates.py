"""Resolving a template reference (``name``, ``name@3``, ``name:label``) to one version.

The shipped ``brand-hero`` template is seeded on first use as version 1, approved, with the
``production`` label. A label may split traffic across versions by weight; the choice is
deterministic per request id (the run id), and the run records the version it got. A bare
``name`` means ``name:production``; a rejected version is never used.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from brandloop.domain import TemplateVersion
from brandloop.errors import BadInputError, NotFoundError
from brandloop.once import once
from brandloop.registry import crud
from brandloop.registry.models import TemplateRow
from brandloop.templates.governance import (
    MAX_TEMPLATE_VERSION,
    usable_weights,
    version_statuses,
)

DEFAULT_TEMPLATE = "brand-hero"
SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent / "policies" / "templates"
#: ``name``, ``name@3`` or ``name:label``; a version in ASCII digits from 1 with no leading
#: zero, as the HTTP API's template refs write it (``name@01`` is refused there too)
REF_PATTERN = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9_.-]*)(?:@(?P<version>[1-9][0-9]*)|:(?P<label>[a-z0-9_-]+))?$"
)


@once
def _shipped() -> tuple[dict[str, Any], ...]:
    """The shipped template files, read once per process (they are part of the package)."""
    return tuple(
        yaml.safe_load(path.read_text(encoding="utf-8"))
        for path in sorted(SHIPPED_TEMPLATES.glob("*.yaml"))
    )


def shipped_template_names() -> list[str]:
    """The templates every tenant's registry holds (seeded on first use)."""
    return [str(shipped["name"]) for shipped in _shipped()]


def _shipped_version(shipped: dict[str, Any]) -> tuple[TemplateVersion, str]:
    data = dict(shipped)
    description = str(data.pop("description", ""))
    return TemplateVersion(version=1, status="approved", **data), description


def shipped_versions() -> list[tuple[TemplateVersion, str]]:
    """Each shipped template's version 1 (approved) with its description: what every
    tenant's registry is seeded with."""
    return [_shipped_version(shipped) for shipped in _shipped()]


def ensure_shipped_templates(session: Session, *, tenant: str) -> dict[str, TemplateRow]:
    """Seed each shipped template (version 1, approved, label production) if it is missing,
    with the created time its file gives: the same in every registry, so an export of it is
    the same wherever it is made. The shipped templates' rows found already stored are
    returned by name (one just seeded is not: the caller reads it), so a caller resolving one
    of them does not read it again."""
    found: dict[str, TemplateRow] = {}
    for shipped in _shipped():
        stored = crud.get_template(session, tenant=tenant, name=shipped["name"])
        if stored is not None:
            found[stored.name] = stored
            continue
        # two first uses at once: one seeds it, the other finds it seeded
        crud.lock_template(session, tenant=tenant, name=shipped["name"])
        if crud.get_template(session, tenant=tenant, name=shipped["name"]) is not None:
            continue
        version, description = _shipped_version(shipped)
        row = crud.add_template_version(
            session, tenant=tenant, version=version, description=description
        )
        crud.set_label(
            session,
            template_id=row.template_id,
            label="production",
            weights={"1": 1.0},
            actor="system",
        )
        crud.audit(
            session,
            tenant=tenant,
            actor="system",
            action="template.seeded",
            subject_type="template",
            subject_id=f"{version.name}@1",
        )
    return found


def pick_weighted(weights: dict[str, float], request_id: str) -> int:
    """Deterministic weighted choice: the same request id always gets the same version.

    The request id is hashed (SHA-256, first 48 bits) to a point in [0, total weight); versions
    own consecutive intervals in version order, so a 90/10 split sends 90 % of ids to the first.
    """
    total = sum(weights.values())
    point = int(hashlib.sha256(request_id.encode()).hexdigest()[:12], 16) / float(16**12) * total
    running = 0.0
    for version, weight in sorted(weights.items(), key=lambda kv: int(kv[0])):
        running += weight
        if point < running:
            return int(version)
    return int(max(weights, key=int))


def resolve_template(
    session: Session, *, tenant: str, ref: str | None, request_id: str
) -> TemplateVersion:
    shipped = ensure_shipped_templates(session, tenant=tenant)
    ref = ref or DEFAULT_TEMPLATE
    match = REF_PATTERN.fullmatch(ref)
    if not match:
        raise BadInputError(f"template reference {ref!r} is not name, name@VERSION or name:LABEL")
    template = shipped.get(match["name"]) or crud.get_template(
        session, tenant=tenant, name=match["name"]
    )
    if template is None:
        raise NotFoundError(f"template {match['name']!r} does not exist")
    if match["version"]:
        version = int(match["version"])
    else:
        label = match["label"] or "production"
        label_row = crud.get_label(session, template_id=template.id, label=label)
        if label_row is None:
            raise NotFoundError(f"template {template.name!r} has no label {label!r}")
        # only versions that may be used share the traffic (a label stored by older code
        # may still name a rejected one): a split with none left is refused, for any run id
        statuses = version_statuses(session, template=template)
        usable = usable_weights(label_row.weights, statuses)
        if not usable:
            why = {  # a version the label names is rejected, gone, or weighted 0
                k: statuses.get(int(k), "missing") if float(w) > 0 else "weight 0"
                for k, w in sorted(label_row.weights.items(), key=lambda kw: int(kw[0]))
            }
            raise BadInputError(
                f"label {label!r} of template {template.name!r} points to no version that may "
                "be used ("
                + ", ".join(f"@{k} {reason}" for k, reason in why.items())
                + f"); move it: brandloop templates label {template.name} {label} VERSION"
            )
        version = pick_weighted(usable, request_id)
    row = (
        crud.get_template_version(session, template_id=template.id, version=version)
        if 1 <= version <= MAX_TEMPLATE_VERSION
        else None
    )
    if row is None:
        raise NotFoundError(f"template {template.name}@{version} does not exist")
    if row.status == "rejected":
        raise BadInputError(f"template {template.name}@{version} was rejected in review")
    return crud.template_version_model(template, row)
