"""API keys and roles: who is calling, for which tenant, allowed to do what.

A key is ``bl_<id>_<secret>``; only the sha256 of the whole key is stored, and the key is shown
once, when it is made. Roles are ordered: viewer < creator < approver < admin; each role may do
what the roles below it may. Every lookup of a tenant's data goes through the caller's tenant,
so another tenant's things answer 404 as if they did not exist.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.domain import utcnow
from brandloop.errors import BadInputError
from brandloop.registry.crud import audit
from brandloop.registry.models_service import ApiKeyRow

Role = Literal["viewer", "creator", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "creator", "approver", "admin")
KEY_PREFIX = "bl_"


@dataclass(frozen=True)
class Principal:
    """The caller, as the API sees it."""

    key_id: str
    tenant: str
    role: Role

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, *, tenant: str, role: str, name: str = "", actor: str = "cli"
) -> tuple[ApiKeyRow, str]:
    """Make a key; returns its row and the secret key, which is never stored."""
    if role not in ROLES:
        raise BadInputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    tenant = tenant.strip()
    if not tenant or len(tenant) > 64 or not tenant.replace("-", "").replace("_", "").isalnum():
        raise BadInputError("tenant must be 1-64 letters, digits, '-' or '_'")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(
        id=f"key_{key_id}",
        tenant=tenant,
        role=role,
        name=name,
        secret_sha256=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 12],
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    audit(
        session,
        tenant=tenant,
        actor=actor,
        action="key.created",
        subject_type="api_key",
        subject_id=row.id,
        detail={"role": role},
    )
    return row, key


def list_keys(session: Session, *, tenant: str) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).where(ApiKeyRow.tenant == tenant).order_by(ApiKeyRow.created_at)
    return list(session.scalars(query))


def get_key(session: Session, *, tenant: str, key_id: str) -> ApiKeyRow | None:
    return session.scalar(
        select(ApiKeyRow).where(ApiKeyRow.tenant == tenant, ApiKeyRow.id == key_id)
    )


def revoke_key(session: Session, *, row: ApiKeyRow, actor: str) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit(
            session,
            tenant=row.tenant,
            actor=actor,
            action="key.revoked",
            subject_type="api_key",
            subject_id=row.id,
        )


class KeyCache:
    """sha256(key) -> principal for a few seconds, so a hot path reads no key row.

    A revocation made through this process is seen at once; one made elsewhere within
    ``ttl`` seconds.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, principal)

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            for digest, (_, principal) in list(self._entries.items()):
                if principal is not None and principal.key_id == key_id:
                    del self._entries[digest]


def authenticate(session: Session, key: str) -> Principal | None:
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_sha256 == hash_key(key)))
    if row is None or row.revoked_at is not None or row.role not in ROLES:
        return None
    role: Role = ROLES[ROLES.index(row.role)]  # type: ignore[arg-type,unused-ignore]
    return Principal(key_id=row.id, tenant=row.tenant, role=role)
