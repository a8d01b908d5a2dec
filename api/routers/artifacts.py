"""Artifacts: the image bytes by sha256, immutable, so cached for good, and what their Content
Credentials say (the same report as ``brandloop verify``). Each tenant owns its own copy of
identical bytes: it reads it, and deletes it, without touching another tenant's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from brandloop.api.deps import Admin, SessionDep, SettingsDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.artifacts import ArtifactStore
from brandloop.registry import crud
from brandloop.registry.artifact_owners import release_artifact
from brandloop.registry.models import ArtifactRow
from brandloop.settings import Settings
from brandloop.tools.credentials import (
    CredentialReport,
    SignerConfigError,
    trust_anchors_pem,
    verify_image,
)

router = APIRouter(prefix="/artifacts", tags=["artifacts"], responses=PROBLEM_RESPONSES)
Sha256 = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")]

#: what an artifact's answer is: the bytes in one of these types (a generated client gets them
#: as a file), with its sha256 as a strong ETag and cached for good (its bytes never change)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
IMAGE_BYTES = {"type": "string", "format": "binary"}
CACHE_HEADERS = {
    "ETag": {
        "description": 'the sha256 in quotes, `"<sha256>"`',
        "required": True,
        "schema": {"type": "string", "pattern": '^"[0-9a-f]{64}"$'},
    },
    "Cache-Control": {
        "description": "`private, max-age=31536000, immutable`",
        "required": True,
        "schema": {"type": "string"},
    },
}


#: a part of the image (a ``Range: bytes=...`` request, RFC 9110 14)
RANGE_HEADERS = {
    **CACHE_HEADERS,
    "Content-Range": {
        "description": "the part sent, `bytes <first>-<last>/<size>` (one range only)",
        "required": False,
        "schema": {"type": "string"},
    },
}


class ArtifactFile(FileResponse):
    """Starlette's file answer (``Range`` requests, HEAD), with RFC 9110's reading of ``Range``:
    a header naming another unit than ``bytes``, or none, is ignored (the whole image, 200,
    RFC 9110 14.2), and a byte range that is malformed or past the end is a problem+json
    (400 ``bad-input``; 416 ``range-not-satisfiable`` with ``Content-Range: bytes */<size>``)
    instead of Starlette's plain-text answer. (Raised before the answer starts, so the app's
    problem handlers write it.)"""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        unit, equals, _ = http_range.partition("=")
        if not equals or unit.strip().lower() != "bytes":
            return []  # a unit we do not understand: the whole representation
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader as exc:
            reason = exc.content.removeprefix("Range header: ")
            if reason == "range must be requested":  # bytes=abc, bytes=-, bytes=
                reason = "it names no byte range (bytes=<first>-<last>)"
            raise ApiProblem(400, "bad-input", f"malformed Range header: {reason}") from None
        except RangeNotSatisfiable:
            raise ApiProblem(
                416,
                "range-not-satisfiable",
                f"no requested byte range starts within the image's {file_size} bytes",
                headers={"Content-Range": f"bytes */{file_size}"},
            ) from None


@router.head("/{sha256}", include_in_schema=False)  # RFC 9110 9.3.2: GET's headers, no body
@router.get(
    "/{sha256}",
    summary="The image; accepted ones carry their receipt, XMP and signed C2PA manifest",
    response_class=FileResponse,
    responses={
        200: {
            "content": {media_type: {"schema": IMAGE_BYTES} for media_type in IMAGE_TYPES},
            "description": "the image",
            "headers": CACHE_HEADERS,
        },
        206: {
            "content": {
                **{media_type: {"schema": IMAGE_BYTES} for media_type in IMAGE_TYPES},
                "multipart/byteranges": {"schema": IMAGE_BYTES},
            },
            "description": "part of the image, for a `Range: bytes=...` request (several "
            "ranges: `multipart/byteranges`); a range of another unit is ignored (200)",
            "headers": RANGE_HEADERS,
        },
        304: {"description": "not modified", "headers": CACHE_HEADERS},
        416: {
            **problems(416)[416],
            "headers": {
                "Content-Range": {
                    "description": "`bytes */<size>`",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^bytes \\*/[0-9]+$"},
                }
            },
        },
    },
)
def get_artifact(
    sha256: Sha256,
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    row, path = tenant_artifact(session, settings, tenant=principal.tenant, sha256=sha256)
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return ArtifactFile(path, media_type=row.media_type, headers=headers)


def tenant_artifact(
    session: Session, settings: Settings, *, tenant: str, sha256: str
) -> tuple[ArtifactRow, Path]:
    """The tenant's artifact and its file; another tenant's is as absent as a missing one."""
    row = crud.get_artifact(session, tenant=tenant, sha256=sha256)
    if row is None:
        raise ApiProblem(404, "not-found", f"no artifact {sha256}")
    path = ArtifactStore(settings.artifacts_dir).locate(sha256)
    if not path.is_file():
        raise ApiProblem(404, "not-found", f"artifact {sha256} is recorded but its file is missing")
    return row, path


_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names the current representation (``etag``, a strong tag):
    RFC 9110 13.1.2 compares weakly, so ``W/"x"`` matches ``"x"``, and ``*`` matches any
    representation that exists (the caller answers only for one that does)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag in (m.group(1) for m in _ENTITY_TAG.finditer(if_none_match))


@router.delete(
    "/{sha256}",
    status_code=204,
    summary="Delete the tenant's copy of an image; other tenants' copies of the same bytes stay",
    description="Allowed for an image a run waiting for review holds (that run can then only "
    "be rejected: an approval of it is a 409 naming the image). While an approval is "
    "delivering the image (its verdict has claimed the run) the delete is a 409: delete it "
    "once the run has finished.",
    responses=problems(404, 409),
)
def delete_artifact(
    sha256: Sha256, principal: Admin, session: SessionDep, settings: SettingsDep
) -> Response:
    store = ArtifactStore(settings.artifacts_dir, settings.thumbs_dir)
    if not release_artifact(session, store, tenant=principal.tenant, sha256=sha256):
        raise ApiProblem(404, "not-found", f"no artifact {sha256}")
    crud.audit(
        session,
        tenant=principal.tenant,
        actor=principal.name,
        action="artifact.deleted",
        subject_type="artifact",
        subject_id=sha256,
        detail={"key_id": principal.key_id},
    )
    return Response(status_code=204)


@router.get(
    "/{sha256}/credentials",
    summary="Verify the image's Content Credentials (C2PA): signature, trust, hard binding, receipt",
    response_model=CredentialReport,
    responses={
        503: {
            **problems(503)[503],
            "description": "`not-ready`: the server's C2PA trust list is misconfigured",
        }
    },
)
def get_credentials(
    sha256: Sha256, principal: Viewer, session: SessionDep, settings: SettingsDep
) -> CredentialReport:
    _, path = tenant_artifact(session, settings, tenant=principal.tenant, sha256=sha256)
    try:
        trust = trust_anchors_pem(settings)
    except SignerConfigError:
        raise ApiProblem(
            503, "not-ready", "the server's C2PA trust list is misconfigured"
        ) from None
    return verify_image(
        path.read_bytes(), session=session, tenant=principal.tenant, trust_pem=trust
    )
