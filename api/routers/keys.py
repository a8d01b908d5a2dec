"""API keys of the caller's tenant: admins make, list and revoke them; any key asks whose it is."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.convertors import StringConvertor, register_url_convertor

from brandloop.api.auth import create_key, get_key, list_keys, revoke_key
from brandloop.api.deps import Admin, ServiceDep, SessionDep, Viewer
from brandloop.api.idempotency import withhold_from_replays
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import KeyCreate, KeyCreated, KeyPublic, WhoAmI
from brandloop.registry.models_service import ApiKeyRow

router = APIRouter(prefix="/keys", tags=["keys"], responses=PROBLEM_RESPONSES)


class _KeyId(StringConvertor):
    """A key id in a path: any segment but ``me`` (``/v1/keys/me`` is whose the calling key is,
    so a DELETE there is a 405 naming GET, never an attempt to revoke a key called ``me``)."""

    regex = r"(?!me(?:/|$))[^/]+"


register_url_convertor("key_id", _KeyId())


def key_public(row: ApiKeyRow) -> KeyPublic:
    return KeyPublic(
        id=row.id,
        tenant=row.tenant,
        principal=row.principal,
        role=row.role,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@router.get("", response_model=list[KeyPublic], summary="The tenant's keys (never their secrets)")
def list_tenant_keys(principal: Admin, session: SessionDep) -> list[KeyPublic]:
    return [key_public(r) for r in list_keys(session, tenant=principal.tenant)]


@router.get("/me", response_model=WhoAmI, summary="Who the calling key belongs to")
def who_am_i(principal: Viewer) -> WhoAmI:
    return WhoAmI(
        key_id=principal.key_id,
        tenant=principal.tenant,
        principal=principal.name,
        role=principal.role,
    )


@router.post(
    "",
    status_code=201,
    response_model=KeyCreated,
    summary="Make a key for a principal (the caller's own by default); the secret is shown once",
    description="The answer is the only place the secret ever appears (`Cache-Control: "
    "no-store`; only its sha256 is stored). A repeat with the same `Idempotency-Key` is a 409 "
    "`secret-not-replayed` naming the key that was made, never the secret again: if the first "
    "answer was lost, revoke that key and make another.",
    responses={
        201: {
            "description": "the key, with its secret (shown this once)",
            "headers": {
                "Cache-Control": {
                    "description": "`no-store`: the secret is kept by no cache",
                    "required": True,
                    "schema": {"type": "string", "enum": ["no-store"]},
                }
            },
        },
        409: {
            **problems(409)[409],
            "description": "An Idempotency-Key in flight, or a repeat of a request that made a "
            "key (`secret-not-replayed`: the key is named, its secret is not shown again)",
        },
    },
)
def make_key(
    body: KeyCreate, principal: Admin, session: SessionDep, request: Request, response: Response
) -> KeyCreated:
    row, secret = create_key(
        session,
        tenant=principal.tenant,
        role=body.role,
        principal=principal.name if body.principal is None else body.principal,
        name=body.name,
        actor=principal.name,
    )
    response.headers["Cache-Control"] = "no-store"
    withhold_from_replays(
        request,
        detail=f"this request made key {row.id} ({row.role} of principal {row.principal}); its "
        "secret was shown once, in that answer, and is not kept: if the answer was lost, "
        f"revoke it (DELETE /v1/keys/{row.id}) and make another",
    )
    return KeyCreated(**key_public(row).model_dump(), key=secret)


@router.delete(
    "/{key_id:key_id}",
    response_model=KeyPublic,
    summary="Revoke a key",
    description="`me` is never a key id: `DELETE /v1/keys/me` is a 405 naming GET.",
    responses={
        405: {
            **problems(405)[405],
            "description": "`key_id` is `me`: `/v1/keys/me` is whose the calling key is, and "
            "only GET serves it",
        }
    },
)
def delete_key(
    key_id: str, principal: Admin, session: SessionDep, service: ServiceDep
) -> KeyPublic:
    row = get_key(session, tenant=principal.tenant, key_id=key_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no key {key_id}")
    revoke_key(session, row=row, actor=principal.name)
    session.commit()
    service.keys.forget_key(row.id)
    return key_public(row)
