"""Verify an image's Content Credentials: the claim signature, the signing certificate against
the trust list, the hard binding to the file's bytes, and the ``brandloop.receipt`` assertion
against the registry's receipt. A file with no manifest is looked up by sha256, then by
perceptual hash, so a copy whose credentials were stripped is still traced to its run.

The CLI (``brandloop verify``) and the API (``GET /v1/artifacts/{sha256}/credentials``) both
answer a :class:`CredentialReport`; :func:`summary_line` is its one-line form.
"""

from __future__ import annotations

import io
import json
from typing import Any, Final, Literal

import c2pa
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from brandloop.artifacts import MEDIA_TYPES, image_format, sha256_hex
from brandloop.domain import ImageFormat
from brandloop.errors import BadInputError
from brandloop.registry import crud
from brandloop.registry.models import ArtifactRow
from brandloop.reproduce import PHASH_IDENTICAL_DISTANCE, hash_distance, perceptual_hash
from brandloop.tools.credentials.devca import DEV_CA_ORG
from brandloop.tools.credentials.manifest import RECEIPT_LABEL, receipt_assertion
from brandloop.tools.credentials.xmp import read_digital_source_type

#: ``unverified``: the manifest holds, but the registry verify was given does not know the run
#: it names (another install's file, another tenant's): nothing here vouches for the receipt
VerifyStatus = Literal["valid", "unverified", "invalid", "absent"]
Trust = Literal["trusted", "untrusted"]
Check = Literal["ok", "failed", "not_checked"]
ReceiptCheck = Literal["matches", "differs", "not_in_registry", "not_checked"]
MatchedBy = Literal["sha256", "perceptual_hash", "manifest"]

#: A stripped copy matches an accepted image when their 64-bit pHashes differ in at most this
#: many bits (the same bar ``runs reproduce`` uses for "perceptually identical").
MATCH_DISTANCE: Final = PHASH_IDENTICAL_DISTANCE
_READ_SETTINGS: Final = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_BINDING_PREFIXES: Final = (
    "assertion.dataHash.",
    "assertion.boxesHash.",
    "assertion.bmffHash.",
    "assertion.collectionHash.",
)
_SIGNATURE_FAILURES: Final = (
    "claimSignature.",
    "signingCredential.invalid",
    "signingCredential.revoked",
    "signingCredential.expired",
)
_NOT_PROBLEMS: Final = frozenset({"signingCredential.untrusted"})


class RegistryMatch(BaseModel):
    """The registry's accepted image a file was traced to, and how."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    attempt_id: str | None
    template: str | None
    sha256: str = Field(description="the accepted (signed) image in the registry")
    manifest_label: str | None = None
    matched_by: MatchedBy
    distance: int | None = Field(default=None, description="pHash bits apart, of 64")


class CredentialReport(BaseModel):
    """What verify found for one file."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    sha256: str
    format: ImageFormat
    status: VerifyStatus
    trust: Trust | None = None
    signer: str | None = None
    signer_issuer: str | None = None
    development_signer: bool = False
    manifest_label: str | None = None
    digital_source_type: str | None = None
    xmp_digital_source_type: str | None = None
    signature: Check = "not_checked"
    hard_binding: Check = "not_checked"
    receipt: ReceiptCheck = "not_checked"
    registry_bytes: Check = Field(
        default="not_checked",
        description="the file's sha256 against the image the registry recorded for its "
        "receipt's attempt: a valid manifest does not cover every byte (its own padding)",
    )
    run_id: str | None = None
    template: str | None = None
    model: str | None = None
    credentials_removed: bool = False
    match: RegistryMatch | None = Field(
        default=None, description="the best of ``matches`` (kept for older readers)"
    )
    matches: list[RegistryMatch] = Field(
        default_factory=list,
        description="every accepted image a file without a manifest may have come from, the "
        "best first: by sha256 most recent first, by perceptual hash nearest first",
    )
    problems: list[str] = Field(default_factory=list)
    summary: str = ""


def read_manifest_store(
    data: bytes, fmt: ImageFormat, trust_pem: str | None
) -> dict[str, Any] | None:
    """The c2pa reader's JSON for ``data``, or None when it carries no manifest.

    Raises ``c2pa.C2paError`` when a manifest is there but cannot be parsed."""
    settings: dict[str, Any] = dict(_READ_SETTINGS)
    if trust_pem:
        settings["trust"] = {"trust_anchors": trust_pem}
    with c2pa.Context.from_dict(settings) as context:
        reader = c2pa.Reader.try_create(MEDIA_TYPES[fmt], io.BytesIO(data), None, context)
        if reader is None:
            return None
        with reader:
            store: dict[str, Any] = json.loads(reader.json())
            return store


def _codes(store: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    results = store.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    found: list[dict[str, Any]] = active.get(kind) or []
    return found


def _check(success: list[str], failure: list[str], prefixes: tuple[str, ...]) -> Check:
    if any(code.startswith(prefixes) for code in failure):
        return "failed"
    if any(code.startswith(prefixes) for code in success):
        return "ok"
    return "not_checked"


def _signature(success: list[str], failure: list[str]) -> Check:
    if any(code.startswith(_SIGNATURE_FAILURES) for code in failure):
        return "failed"
    return "ok" if "claimSignature.validated" in success else "not_checked"


def _created_source_type(manifest: dict[str, Any]) -> str | None:
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    value = action.get("digitalSourceType")
                    return str(value) if value else None
    return None


def _receipt_of(manifest: dict[str, Any]) -> dict[str, Any] | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == RECEIPT_LABEL and isinstance(assertion.get("data"), dict):
            data: dict[str, Any] = assertion["data"]
            return data
    return None


def _signed_row(
    session: Session, *, tenant: str, sha256: str, run_id: str | None, attempt_id: str | None
) -> ArtifactRow | None:
    """The registry's accepted image for this file: by its own sha256, else by the run and
    attempt its manifest names."""
    row = crud.get_artifact(session, tenant=tenant, sha256=sha256, with_deleted=True)
    if row is not None and row.receipt is not None:
        return row
    if run_id and attempt_id:
        rows = crud.signed_artifacts_of_attempt(
            session, tenant=tenant, run_id=run_id, attempt_id=attempt_id
        )
        return rows[0] if rows else None
    return None


def _differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    keys = sorted(set(expected) | set(found))
    return [key for key in keys if expected.get(key) != found.get(key)]


def _with_manifest(
    report: CredentialReport, store: dict[str, Any], *, session: Session | None, tenant: str
) -> CredentialReport:
    label = store.get("active_manifest")
    manifest: dict[str, Any] = (store.get("manifests") or {}).get(label, {})
    failures = _codes(store, "failure")
    failure_codes = [str(item.get("code", "")) for item in failures]
    success_codes = [str(item.get("code", "")) for item in _codes(store, "success")]
    info = manifest.get("signature_info") or {}
    issuer = info.get("issuer")
    development = issuer == DEV_CA_ORG
    trusted = "signingCredential.trusted" in success_codes and not development
    problems = [
        f"{item.get('code')}: {item.get('explanation', '')}".rstrip(": ")
        for item in failures
        if item.get("code") not in _NOT_PROBLEMS
    ]
    receipt = _receipt_of(manifest)
    update: dict[str, Any] = {
        "manifest_label": label,
        "signer": info.get("common_name") or issuer,
        "signer_issuer": issuer,
        "development_signer": development,
        "trust": "trusted" if trusted else "untrusted",
        "digital_source_type": _created_source_type(manifest),
        "signature": _signature(success_codes, failure_codes),
        "hard_binding": _check(success_codes, failure_codes, _BINDING_PREFIXES),
        "run_id": receipt.get("run_id") if receipt else None,
        "template": receipt.get("template") if receipt else None,
        "model": receipt.get("model") if receipt else None,
    }
    if receipt is None:
        problems.append("no brandloop.receipt assertion")
    elif session is not None:
        row = _signed_row(
            session,
            tenant=tenant,
            sha256=report.sha256,
            run_id=receipt.get("run_id"),
            attempt_id=receipt.get("attempt_id"),
        )
        if row is None or row.receipt is None:
            update["receipt"] = "not_in_registry"
        else:
            differs = _differences(receipt_assertion(row.receipt), receipt)
            update["receipt"] = "differs" if differs else "matches"
            if differs:
                problems.append(
                    "brandloop.receipt differs from the registry's receipt in: "
                    + ", ".join(differs)
                )
            # found by the receipt's run and attempt, not by the file's own sha256: the bytes
            # were changed where the signature does not reach (the manifest's padding)
            update["registry_bytes"] = "ok" if row.sha256 == report.sha256 else "failed"
            if row.sha256 != report.sha256:
                # where: past the signature's reach only when the hard binding still holds (a
                # change it caught is named by its own line: the reason was wrong for it)
                where = (
                    " (changed where the signature does not reach)"
                    if update["hard_binding"] == "ok"
                    else ""
                )
                problems.append(
                    f"the file's bytes are not the registry's image {row.sha256[:16]} of this "
                    f"receipt{where}"
                )
    xmp = report.xmp_digital_source_type
    if (
        xmp is not None
        and update["digital_source_type"] is not None
        and xmp != update["digital_source_type"]
    ):
        problems.append("the XMP DigitalSourceType differs from the manifest's c2pa.created action")
    invalid = (
        store.get("validation_state") == "Invalid"
        or update["signature"] == "failed"
        or update["hard_binding"] != "ok"
        or bool(problems)
    )
    update["status"] = _manifest_status(invalid=invalid, receipt=update.get("receipt"))
    update["problems"] = problems
    return report.model_copy(update=update)


def _manifest_status(*, invalid: bool, receipt: ReceiptCheck | None) -> VerifyStatus:
    """``valid`` only when everything holds and, with a registry, the registry knows the run:
    a manifest signed by another brandloop install (its own development CA, any run id it
    likes) passes every C2PA check, and ``valid`` would vouch for a run no one here made."""
    if invalid:
        return "invalid"
    return "unverified" if receipt == "not_in_registry" else "valid"


def _by_phash(session: Session, *, tenant: str, data: bytes) -> list[tuple[ArtifactRow, int]]:
    """Every accepted image of the tenant within :data:`MATCH_DISTANCE` bits of ``data``'s
    perceptual hash, with its distance: the same pixels delivered by several runs are each a
    candidate, and none may hide another."""
    try:
        own = perceptual_hash(data)
    except (OSError, ValueError, Image.DecompressionBombError):
        return []
    near: dict[str, int] = {}
    for sha, text in crud.accepted_phashes(session, tenant=tenant):
        distance = hash_distance(own, int(text, 16))
        if distance <= MATCH_DISTANCE:
            near[sha] = distance
    found = []
    for sha, distance in near.items():
        row = crud.get_artifact(session, tenant=tenant, sha256=sha, with_deleted=True)
        if row is not None and row.receipt:
            found.append((row, distance))
    return found


def _signed_from_raw(session: Session, *, tenant: str, raw: str) -> list[ArtifactRow]:
    """The tenant's accepted (signed) images made from the raw image ``raw``, the newest signed
    file of each accepted attempt whose image it is: a first call's, a cache replay's, and
    another run's that rendered the same bytes - the raw row, keyed by tenant and sha256,
    names only the first run that stored it."""
    newest: dict[str | None, ArtifactRow] = {}
    for row in crud.signed_artifacts_from_raw(session, tenant=tenant, raw=raw):
        if row.receipt and row.sha256 != raw:
            newest.setdefault(row.attempt_id, row)
    return list(newest.values())


def _newest_first(rows: list[ArtifactRow]) -> list[ArtifactRow]:
    """Most recent first; equal times by run and sha256, so the order never depends on the
    database's."""
    ordered = sorted(rows, key=lambda r: (r.run_id or "", r.sha256))
    return sorted(ordered, key=lambda r: r.created_at, reverse=True)


def _registry_matches(
    session: Session, *, tenant: str, sha256: str, data: bytes
) -> list[tuple[ArtifactRow, MatchedBy, int | None]]:
    """Every accepted image a file without a manifest may have come from, the best first: the
    file itself, else each image made from the raw image the file is (same sha256; most recent
    first), else its perceptual-hash neighbours (nearest first, then most recent)."""
    row = crud.get_artifact(session, tenant=tenant, sha256=sha256, with_deleted=True)
    if row is not None and row.receipt is not None:
        return [(row, "sha256", None)]
    signed = _signed_from_raw(session, tenant=tenant, raw=sha256)
    if not signed and row is not None and row.run_id and row.attempt_id:
        signed = crud.signed_artifacts_of_attempt(  # a raw row no accepted attempt names
            session, tenant=tenant, run_id=row.run_id, attempt_id=row.attempt_id
        )[:1]
    if signed:
        return [(r, "sha256", None) for r in _newest_first(signed)]
    near = _by_phash(session, tenant=tenant, data=data)
    distance = {r.sha256: d for r, d in near}
    rows = sorted(_newest_first([r for r, _ in near]), key=lambda r: distance[r.sha256])
    return [(r, "perceptual_hash", distance[r.sha256]) for r in rows]


def _match_of(row: ArtifactRow, how: MatchedBy, distance: int | None) -> RegistryMatch:
    receipt = row.receipt or {}
    credentials = receipt.get("credentials") or {}
    return RegistryMatch(
        run_id=str(receipt.get("run_id") or row.run_id),
        attempt_id=receipt.get("attempt_id") or row.attempt_id,
        template=receipt.get("template"),
        sha256=row.sha256,
        manifest_label=credentials.get("manifest_label"),
        matched_by=how,
        distance=distance,
    )


def _absent(
    report: CredentialReport, *, session: Session | None, tenant: str, data: bytes
) -> CredentialReport:
    if session is None:
        return report.model_copy(update={"status": "absent"})
    found = _registry_matches(session, tenant=tenant, sha256=report.sha256, data=data)
    if not found:
        return report.model_copy(update={"status": "absent"})
    matches = [_match_of(row, how, distance) for row, how, distance in found]
    receipt = found[0][0].receipt or {}
    return report.model_copy(
        update={
            "status": "absent",
            "credentials_removed": bool(receipt.get("credentials")),
            "match": matches[0],
            "matches": matches,
            "run_id": matches[0].run_id,
            "template": matches[0].template,
            "model": receipt.get("model"),
            "digital_source_type": receipt.get("digital_source_type"),
        }
    )


def verify_image(
    data: bytes,
    *,
    file: str | None = None,
    session: Session | None = None,
    tenant: str = "default",
    trust_pem: str | None = None,
) -> CredentialReport:
    """Verify one image's credentials; with a ``session``, against ``tenant``'s registry.

    Raises BadInputError when ``data`` is not a PNG, JPEG or WebP image."""
    fmt = image_format(data)
    if fmt is None:
        raise BadInputError(
            f"{shown_name(file) if file else 'the file'} is not a PNG, JPEG or WebP image"
        )
    report = CredentialReport(
        file=file,
        sha256=sha256_hex(data),
        format=fmt,
        status="absent",
        xmp_digital_source_type=read_digital_source_type(data),
    )
    try:
        store = read_manifest_store(data, fmt, trust_pem)
    except c2pa.C2paError as exc:
        report = report.model_copy(
            update={"status": "invalid", "problems": [f"the manifest cannot be read: {exc}"]}
        )
    else:
        if store is None:
            report = _absent(report, session=session, tenant=tenant, data=data)
        else:
            report = _with_manifest(report, store, session=session, tenant=tenant)
    return report.model_copy(update={"summary": summary_line(report)})


def _signer_text(report: CredentialReport) -> str:
    if report.signer is None:  # no manifest could be read, or it names no certificate
        return "no signer could be read"
    if report.development_signer:
        return f'signed by "{report.signer}" (brandloop development CA: UNTRUSTED)'
    if report.trust == "trusted":
        return f'signed by "{report.signer}" (trusted)'
    return f'signed by "{report.signer}" (UNTRUSTED: not on the trust list)'


def _origin(run_id: str | None, template: str | None) -> str:
    if not run_id:
        return "no brandloop run named"
    return f"run {run_id}, template {template or '?'}"


def _matched_how(match: RegistryMatch) -> str:
    if match.matched_by == "sha256":
        return "by sha256"
    if match.matched_by == "manifest":
        return "by its manifest"
    if match.distance is None:
        return "by perceptual hash"
    return f"by perceptual hash ({match.distance}/64 bits apart)"


def _matched_text(matches: list[RegistryMatch]) -> str:
    """Which run a stripped file came from - or, when several runs delivered the same pixels,
    that it is ambiguous, naming each candidate (the best first) rather than one of them."""
    if len(matches) == 1:
        match = matches[0]
        return f"{_origin(match.run_id, match.template)} {_matched_how(match)}"
    runs = len({m.run_id for m in matches})
    count = f"{runs} runs" if runs == len(matches) else f"{len(matches)} images of {runs} run(s)"
    by_sha = matches[0].matched_by == "sha256"
    how = "by sha256, most recent first" if by_sha else "by perceptual hash, nearest first"
    return f"{count} {how}: " + ", ".join(_candidate(m) for m in matches)


def _candidate(match: RegistryMatch) -> str:
    apart = "" if match.distance is None else f", {match.distance}/64 bits apart"
    return f"{match.run_id} (template {match.template or '?'}{apart})"


def shown_name(name: str) -> str:
    """A file name as a one-line report prints it: as it is, or, when it holds a line break
    or another character that does not print, quoted with that character escaped
    (``'two\\nlines.png'``), as the CLI quotes any other odd name (``{name!r}``)."""
    return name if name.isprintable() else repr(name)


def summary_line(report: CredentialReport) -> str:
    """One line: valid/unverified/invalid/absent, who signed it, which run and template made
    it."""
    name = shown_name(report.file) if report.file else report.sha256[:16]
    if report.status == "absent":
        if report.match is None:
            return f"{name}: absent - no Content Credentials, and no run in this registry matches"
        what = "credentials removed" if report.credentials_removed else "never signed"
        return f"{name}: absent - {what}; matches {_matched_text(report.matches or [report.match])}"
    status: str = report.status
    failed = [
        text
        for check, text in (
            (report.hard_binding == "failed", "hard binding does not match the file's bytes"),
            (report.signature == "failed", "claim signature does not verify"),
            (report.receipt == "differs", "receipt differs from the registry"),
            (report.registry_bytes == "failed", "bytes differ from the registry's image"),
        )
        if check
    ]
    if failed:
        status = f"{status} ({'; '.join(failed)})"
    parts = [_signer_text(report), _origin(report.run_id, report.template)]
    if report.receipt == "matches" and report.registry_bytes != "failed":
        parts.append("receipt matches the registry")
    elif report.receipt == "not_in_registry":
        parts.append("run not in this registry, which cannot vouch for it")
    if report.problems:
        parts.append("problems: " + "; ".join(report.problems))
    return f"{name}: {status} - " + "; ".join(parts)
