"""Studio sign-in: an API key or a one-time link is exchanged for a session.

Only the sha256 of a session's or a link's token is stored. A session carries the principal
and role it was made for and its own CSRF secret; it lasts ``SESSION_HOURS`` unless the person
signs out, or the API key it came from is revoked (checked on every request, through the same
key cache the API uses). A link is used once, within ``LINK_MINUTES``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from brandloop.api.auth import (
    ROLES,
    Principal,
    Role,
    authenticate,
    check_principal_name,
    check_tenant,
    holds_key,
)
from brandloop.domain import utcnow
from brandloop.errors import BadInputError
from brandloop.registry.crud import audit
from brandloop.registry.models_service import ApiKeyRow
from brandloop.registry.models_studio import StudioLinkRow, StudioSessionRow

SESSION_HOURS = 12
LINK_MINUTES = 15


@dataclass(frozen=True)
class StudioUser:
    """Who is signed in: the tenant, the principal (a person), the role, and the session's
    CSRF secret. ``api_principal`` is the caller as the /v1 routers see it, so pages call the
    very functions the API calls."""

    session_id: str
    tenant: str
    principal: str
    role: Role
    csrf: str
    key_id: str | None = None
    #: the signed-in key's stored prefix and sha256 (never the key): a form's text holding
    #: that key is refused as the API refuses a body holding the key the request carries
    key_prefix: str | None = None
    key_sha256: str | None = None

    def can(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def holds_own_key(self, text: str) -> bool:
        """Whether ``text`` holds the API key this session was signed in with."""
        if self.key_prefix is None or self.key_sha256 is None:
            return False
        return holds_key(text, prefix=self.key_prefix, secret_sha256=self.key_sha256)

    @property
    def api_principal(self) -> Principal:
        """The caller as the /v1 routers see it: the person (review rules compare principals),
        and the key they signed in with, or their studio session for a link sign-in."""
        return Principal(
            key_id=self.key_id or f"studio-session-{self.session_id[:12]}",
            tenant=self.tenant,
            role=self.role,
            name=self.principal,
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _role(role: str) -> Role:
    if role not in ROLES:
        raise BadInputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return ROLES[ROLES.index(role)]  # type: ignore[arg-type,unused-ignore]


def create_link(
    session: Session, *, tenant: str, principal: str, role: str, actor: str = "cli"
) -> str:
    """A one-time sign-in token for ``principal`` of ``tenant``; only its digest is stored."""
    check_principal_name(principal)
    check_tenant(tenant)
    checked = _role(role)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        StudioLinkRow(
            id=_digest(token),
            tenant=tenant,
            principal=principal,
            role=checked,
            created_at=now,
            expires_at=now + timedelta(minutes=LINK_MINUTES),
        )
    )
    audit(
        session,
        tenant=tenant,
        actor=actor,
        action="studio.link_created",
        subject_type="principal",
        subject_id=principal,
        detail={"role": checked},
    )
    return token


def _new_session(
    session: Session, *, tenant: str, principal: str, role: str, key_id: str | None
) -> tuple[str, StudioUser]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = StudioSessionRow(
        id=_digest(token),
        tenant=tenant,
        principal=principal,
        key_id=key_id,
        role=role,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    )
    session.add(row)
    audit(
        session,
        tenant=tenant,
        actor=principal,
        action="studio.signed_in",
        subject_type="principal",
        subject_id=principal,
        detail={"via": "api_key" if key_id else "link"},
    )
    return token, _user(row)


def _user(row: StudioSessionRow, key: ApiKeyRow | None = None) -> StudioUser:
    return StudioUser(
        session_id=row.id,
        tenant=row.tenant,
        principal=row.principal,
        role=_role(row.role),
        csrf=row.csrf,
        key_id=row.key_id,
        key_prefix=key.prefix if key is not None else None,
        key_sha256=key.secret_sha256 if key is not None else None,
    )


def sign_in_with_key(session: Session, key: str) -> tuple[str, StudioUser] | None:
    """A session for a valid API key (its tenant and role), or None."""
    key = key.strip()
    if not key or len(key) > 200:
        return None
    principal = authenticate(session, key)
    if principal is None:
        return None
    return _new_session(
        session,
        tenant=principal.tenant,
        principal=principal.name,
        role=principal.role,
        key_id=principal.key_id,
    )


def link_pending(session: Session, token: str) -> StudioLinkRow | None:
    """The unused, unexpired link of ``token``, or None."""
    if not token or len(token) > 200:
        return None
    row = session.get(StudioLinkRow, _digest(token))
    if row is None or row.used_at is not None or _aware(row.expires_at) <= utcnow():
        return None
    return row


def sign_in_with_link(session: Session, token: str) -> tuple[str, StudioUser] | None:
    """Use a one-time link: at most one session ever comes of it, even under concurrent use."""
    row = link_pending(session, token)
    if row is None:
        return None
    used = session.execute(
        update(StudioLinkRow)
        .where(StudioLinkRow.id == row.id, StudioLinkRow.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return _new_session(
        session, tenant=row.tenant, principal=row.principal, role=row.role, key_id=None
    )


def session_user(session: Session, token: str) -> StudioUser | None:
    """The signed-in user of a session cookie, or None (unknown, expired, signed out, or made
    from an API key that has since been revoked)."""
    if not token or len(token) > 200:
        return None
    row = session.get(StudioSessionRow, _digest(token))
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= utcnow():
        return None
    key = None
    if row.key_id is not None:
        key = session.get(ApiKeyRow, row.key_id)
        if key is None or key.revoked_at is not None:
            return None
    return _user(row, key)


def session_still_valid(session_id: str) -> Callable[[Session], bool]:
    """A check, for a long answer (an event stream), that the studio session it was opened in
    still holds: not signed out, not expired, and its key (a sign-in with a key) not revoked."""

    def check(session: Session) -> bool:
        row = session.get(StudioSessionRow, session_id)
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= utcnow():
            return False
        if row.key_id is None:
            return True
        key = session.get(ApiKeyRow, row.key_id)
        return key is not None and key.revoked_at is None

    return check


def sign_out(session: Session, session_id: str) -> None:
    row = session.get(StudioSessionRow, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
