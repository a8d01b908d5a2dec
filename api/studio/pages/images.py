"""Images for the studio: resized thumbnails (cached, with ETags) and the full PNG, each only
for the signed-in tenant (another tenant's sha256 is a 404, as under ``/v1/artifacts``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import FileResponse

from brandloop.api.deps import SessionDep, SettingsDep
from brandloop.api.routers.artifacts import etag_matches, tenant_artifact
from brandloop.api.studio.thumbs import WIDTHS, thumbnail
from brandloop.api.studio.web import StudioError, StudioRoute, Viewer

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
Sha = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]
IfNoneMatch = Annotated[str | None, Header(max_length=200)]


@router.api_route("/thumbs/{width}/{sha256}", methods=["GET", "HEAD"])
def thumb(
    width: int,
    sha256: Sha,
    user: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    if width not in WIDTHS:
        raise StudioError(404, f"thumbnails come in widths {', '.join(map(str, WIDTHS))}")
    _, source = tenant_artifact(session, settings, tenant=user.tenant, sha256=sha256)
    etag = f'"{sha256}-w{width}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    path = thumbnail(source, settings.thumbs_dir, sha256, width)
    return FileResponse(path, media_type="image/webp", headers=headers)


@router.api_route("/images/{sha256}", methods=["GET", "HEAD"])
def image(
    sha256: Sha,
    user: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    row, path = tenant_artifact(session, settings, tenant=user.tenant, sha256=sha256)
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=row.media_type, headers=headers)
