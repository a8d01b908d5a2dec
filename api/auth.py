"""Principals, API keys and roles: who is calling, for which tenant, allowed to do what.

A principal is a named person (or service) of a tenant; every key belongs to one. Review rules
and the audit log use the principal, never the key, so minting a second key does not make a
second reviewer. Names and tenant ids are exact: ``ana`` and ``Ana`` are two principals, and
``acme_co`` and ``acme-co`` two tenants.

A key is ``bl_<id>_<secret>``; only the sha256 of the whole key is stored, and the key is shown
once, when it is made. Roles belong to keys and are ordered: viewer < creator < approver <
admin; each role may do what the roles below it may. Every lookup of a tenant's data goes
through the caller's tenant, so another tenant's things answer 404 as if they did not exist.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from brandloop.domain import utcnow
from brandloop.errors import BadInputError
from brandloop.registry.crud import audit
from brandloop.registry.models_service import ApiKeyRow, PrincipalRow
from brandloop.registry.models_studio import StudioSessionRow
from brandloop.settings import TENANT_PATTERN, TENANT_RULE
from brandloop.templates.governance import ACTOR_PATTERN, RESERVED_ACTORS

Role = Literal["viewer", "creator", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "creator", "approver", "admin")
KEY_PREFIX = "bl_"
#: A key as :func:`create_key` makes it: the prefix, 12 hex digits of its id, ``_`` and 43
#: URL-safe characters (``secrets.token_urlsafe(32)``); no boundaries, so a key typed against
#: other characters is still found.
KEY_SHAPE = re.compile(r"bl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
#: What a refusal of an API key typed into text says: never whose key, nor which tenant's.
HOLDS_API_KEY = "holds an API key, which is never stored or sent to a provider: remove it"
_KEY_ID_HEX_BYTES = 6
_KEY_SECRET_BYTES = 32
#: every key's length: the prefix, the id's hex, ``_``, and the url-safe base64 of the secret
KEY_LENGTH = len(KEY_PREFIX) + 2 * _KEY_ID_HEX_BYTES + 1 + -(-_KEY_SECRET_BYTES * 4 // 3)


@dataclass(frozen=True)
class Principal:
    """The caller, as the API sees it: the key used, its tenant and role, and whose it is."""

    key_id: str
    tenant: str
    role: Role
    name: str

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_tenant(tenant: str) -> str:
    """A tenant id as given: 1-64 ASCII letters, digits, '-' or '_' (case and all kept)."""
    if not TENANT_PATTERN.fullmatch(tenant):
        raise BadInputError(f"tenant {tenant!r} must be {TENANT_RULE}")
    return tenant


#: the names brandloop writes in the audit log itself, lower-cased
_RESERVED = frozenset(actor.lower() for actor in RESERVED_ACTORS)


def check_principal_name(name: str) -> str:
    """A principal's name as given: the user names template review accepts (``--as``)."""
    if not ACTOR_PATTERN.fullmatch(name):
        raise BadInputError(
            f"principal {name!r} must be 1-120 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    if name.lower() in _RESERVED:  # in every case: review compares names ignoring case
        raise BadInputError(
            f"principal {name!r} is reserved for brandloop itself (in any case: "
            f"{', '.join(sorted(_RESERVED))})"
        )
    return name


# --------------------------------------------------------------------------- principals


def get_principal(session: Session, *, tenant: str, name: str) -> PrincipalRow | None:
    return session.get(PrincipalRow, (tenant, name))


def list_principals(session: Session, *, tenant: str) -> list[PrincipalRow]:
    query = select(PrincipalRow).where(PrincipalRow.tenant == tenant)
    return list(session.scalars(query.order_by(PrincipalRow.name)))


def ensure_principal(session: Session, *, tenant: str, name: str, actor: str) -> PrincipalRow:
    """The tenant's principal ``name``, created (and audited) if it does not exist yet.

    Two callers creating the same principal at once both get it: the loser of the insert
    race reads the winner's row.
    """
    check_tenant(tenant)
    check_principal_name(name)
    row = get_principal(session, tenant=tenant, name=name)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = PrincipalRow(tenant=tenant, name=name, created_at=utcnow())
            session.add(row)
    except IntegrityError:
        found = get_principal(session, tenant=tenant, name=name)
        if found is None:  # pragma: no cover - the row that won the race is committed
            raise
        return found
    audit(
        session,
        tenant=tenant,
        actor=actor,
        action="principal.created",
        subject_type="principal",
        subject_id=name,
    )
    return row


# --------------------------------------------------------------------------- keys


def create_key(
    session: Session,
    *,
    tenant: str,
    role: str,
    principal: str | None = None,
    name: str = "",
    actor: str = "cli",
) -> tuple[ApiKeyRow, str]:
    """Make a key for ``principal`` (created if new); returns its row and the secret key,
    which is never stored.

    Without ``principal`` (None) the key gets a principal of its own, named after the key id,
    as keys made before principals existed did: it shares no review rights with any other key.
    An empty or blank name is not "no principal": it is refused like any other bad name.
    """
    if role not in ROLES:
        raise BadInputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    check_tenant(tenant)
    key_id = secrets.token_hex(_KEY_ID_HEX_BYTES)
    row_id = f"key_{key_id}"
    owner = ensure_principal(
        session, tenant=tenant, name=row_id if principal is None else principal, actor=actor
    )
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_KEY_SECRET_BYTES)}"
    row = ApiKeyRow(
        id=row_id,
        tenant=tenant,
        principal=owner.name,
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
        detail={"role": role, "principal": owner.name},
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
    """Revoke the key and, in the same transaction, the studio sessions signed in with it (they
    are refused at once anyway; marked so, no reader takes them as proof of the key's role)."""
    if row.revoked_at is None:
        now = utcnow()
        row.revoked_at = now
        session.execute(
            update(StudioSessionRow)
            .where(StudioSessionRow.key_id == row.id, StudioSessionRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        audit(
            session,
            tenant=row.tenant,
            actor=actor,
            action="key.revoked",
            subject_type="api_key",
            subject_id=row.id,
            detail={"principal": row.principal},
        )


def key_shaped(text: str) -> list[str]:
    """The tokens of ``text`` that have the shape of an API key (not yet known to be one)."""
    return KEY_SHAPE.findall(text) if KEY_PREFIX in text else []


def stored_keys(session: Session, keys: Iterable[str]) -> set[str]:
    """Those of ``keys`` that are API keys brandloop made: live or revoked, of any tenant (a
    caller learns only that a text holds *an* API key, never whose). Looked up by hash, as
    :func:`authenticate` looks a key up."""
    by_digest = {hash_key(key): key for key in keys}
    if not by_digest:
        return set()
    found = session.scalars(
        select(ApiKeyRow.secret_sha256).where(ApiKeyRow.secret_sha256.in_(list(by_digest)))
    )
    return {by_digest[digest] for digest in found}


def holds_key(text: str, *, prefix: str, secret_sha256: str) -> bool:
    """Whether ``text`` holds, whole, the key whose stored ``prefix`` and digest are given (only
    the digest is kept, so each place the prefix appears is hashed and compared)."""
    start = text.find(prefix)
    while start != -1:
        candidate = text[start : start + KEY_LENGTH]
        if len(candidate) == KEY_LENGTH and secrets.compare_digest(
            hash_key(candidate), secret_sha256
        ):
            return True
        start = text.find(prefix, start + 1)
    return False


def authenticate(session: Session, key: str) -> Principal | None:
    """The principal behind ``key``, or None for an unknown, revoked or broken key."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_sha256 == hash_key(key)))
    if row is None or row.revoked_at is not None or row.role not in ROLES:
        return None
    role: Role = ROLES[ROLES.index(row.role)]  # type: ignore[arg-type,unused-ignore]
    return Principal(key_id=row.id, tenant=row.tenant, role=role, name=row.principal)


def key_still_valid(key_id: str) -> Callable[[Session], bool]:
    """A check, for a long answer (an event stream), that the key it was opened with is still
    stored and not revoked: a revocation anywhere ends the stream at its next poll."""

    def check(session: Session) -> bool:
        revoked = session.execute(
            select(ApiKeyRow.revoked_at).where(ApiKeyRow.id == key_id)
        ).one_or_none()
        return revoked is not None and revoked[0] is None

    return check


# --------------------------------------------------------------------------- the hot path


class KeyCache:
    """sha256(key) -> principal of a *valid* key, least recently used evicted first.

    Only keys that authenticated are held, so a flood of bogus keys neither fills the cache
    nor pushes good keys out; a miss always reads the key row. An entry lives ``ttl``
    seconds: a revocation made through this process is seen at once (``forget_key``), one
    made elsewhere within ``ttl``.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            self._entries[digest] = (time.monotonic() + self.ttl, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget_key(self, key_id: str) -> None:
        with self._lock:
            for digest, (_, principal) in list(self._entries.items()):
                if principal.key_id == key_id:
                    del self._entries[digest]


class FailedAuthThrottle(Protocol):
    """The seam for throttling failed authentications per client address.

    Asked first thing, before a key is looked up (by the service middleware and the studio's
    sign-in, so a throttled address costs no key lookup); an answer in seconds is how long the
    client must wait (the API answers 429 with ``Retry-After``). A key that is not known good
    is looked up only under a ``reserve``d failure, taken ahead of the lookup so that requests
    arriving at once cannot all slip past a bucket that has room for a few; ``settle`` ends it,
    as a failure or given back (the key was good, or no 401 was made). ``retry_after`` is asked
    for a key known good (no lookup), ``failed`` told of a failure nothing was reserved for.
    The API's throttle is ``api/ratelimit.py``'s ``AddressThrottle`` (shared through Redis
    across replicas).
    """

    async def retry_after(self, client: str) -> float | None: ...

    async def reserve(self, client: str) -> tuple[str | None, float | None]:
        """``(ticket, None)`` when reserved, or ``(None, seconds to wait)``."""

    async def settle(self, client: str, ticket: str, *, failed: bool) -> None: ...

    async def failed(self, client: str) -> None: ...


class NoThrottle:
    """Failed authentications are not throttled."""

    async def retry_after(self, client: str) -> float | None:
        return None

    async def reserve(self, client: str) -> tuple[str | None, float | None]:
        return "", None

    async def settle(self, client: str, ticket: str, *, failed: bool) -> None:
        return None

    async def failed(self, client: str) -> None:
        return None
