"""Every dependency the routers use, as ``Annotated`` aliases (tests swap them through
``app.dependency_overrides``): settings, the service state, a registry session, the caller and
the role it needs.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.orm import Session
from starlette.routing import compile_path
from starlette.types import Scope

from brandloop.agent.writer import PromptWriter
from brandloop.api.auth import (
    ROLES,
    FailedAuthThrottle,
    KeyCache,
    NoThrottle,
    Principal,
    Role,
    authenticate,
    hash_key,
)
from brandloop.api.config import ApiSettings
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.observability import Metrics
from brandloop.api.problems import ApiProblem
from brandloop.registry.db import Database
from brandloop.settings import Settings


@dataclass
class Service:
    """What one running app holds: its settings, database, worker pool, key cache and metrics,
    and the throttle on failed authentications (none by default)."""

    settings: Settings
    db: Database
    api: ApiSettings
    pool: WorkerPool
    keys: KeyCache
    metrics: Metrics
    auth_throttle: FailedAuthThrottle = field(default_factory=NoThrottle)
    writer: PromptWriter | None = None  # revises thread briefs when configured

    def __post_init__(self) -> None:
        # one sessionmaker for the app's life: making one per request costs more than the query
        self.sessions = self.db.sessions

    def principal_for(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization: Bearer <key>`` header, or None."""
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        key = authorization[7:].strip()
        if not key or len(key) > 200:
            return None
        digest = hash_key(key)
        principal = self.keys.get(digest)
        if principal is not None:
            return principal
        session = self.sessions()
        try:
            principal = authenticate(session, key)
        finally:
            session.close()
        if principal is not None:  # misses are never cached: they would evict good keys
            self.keys.put(digest, principal)
        return principal


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_settings_dep(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_pool(service: ServiceDep) -> WorkerPool:
    return service.pool


PoolDep = Annotated[WorkerPool, Depends(get_pool)]


async def get_database(service: ServiceDep) -> Database:
    return service.db


DatabaseDep = Annotated[Database, Depends(get_database)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A registry session that commits when the endpoint returns and rolls back on error."""
    service: Service = request.app.state.service
    with service.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_principal(request: Request) -> Principal:
    """The caller. A throttled address never gets here: the service middleware answers 429
    before any key is looked up (``Service.auth_throttle``); a failure is counted here."""
    service: Service = request.app.state.service
    principal = service.principal_for(request.headers.get("authorization"))
    if principal is None:
        await service.auth_throttle.failed(request.client.host if request.client else "?")
        raise ApiProblem(
            401,
            "unauthorized",
            "send a valid API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """The caller, who must hold at least ``role`` (one dependency level: it is on every call)."""

    async def dependency(request: Request) -> Principal:
        principal = await get_principal(request)
        if not principal.can(role):
            raise ApiProblem(
                403, "forbidden", f"this needs the {role} role; the key is {principal.role}"
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def required_role(route: APIRoute) -> Role | None:
    """The role a route's ``require(...)`` dependency asks for, if any."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        name = getattr(dependency.call, "__name__", "")
        role = name.removeprefix("require_")
        if name.startswith("require_") and role in ROLES:
            return ROLES[ROLES.index(role)]  # type: ignore[arg-type,unused-ignore]
        pending.extend(dependency.dependencies)
    return None


def role_lookup(
    routers: Sequence[tuple[str, APIRouter]],
) -> Callable[[Scope], Role | None]:
    """The role the route a request goes to needs, from the routers and the prefixes they are
    mounted at (the middleware checks it before it replays an idempotent answer)."""
    table = [
        (compile_path(prefix + route.path)[0], route.methods or set(), required_role(route))
        for prefix, router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]

    def role_for(scope: Scope) -> Role | None:
        path, method = scope["path"], scope["method"]
        for pattern, methods, role in table:
            if method in methods and pattern.match(path):
                return role
        return None

    return role_for


async def metrics_reader(request: Request) -> None:
    """Who may read ``/metrics`` (every tenant's figures): a scraper sending the metrics token
    (``BRANDLOOP_API_METRICS_TOKEN``) as a bearer token, or an admin key."""
    service: Service = request.app.state.service
    token = service.api.metrics_token
    authorization = request.headers.get("authorization") or ""
    if token is not None and authorization[:7].lower() == "bearer ":
        sent = authorization[7:].strip().encode()
        if hmac.compare_digest(sent, token.get_secret_value().strip().encode()):
            return
    principal = await get_principal(request)
    if not principal.can("admin"):
        raise ApiProblem(
            403,
            "forbidden",
            f"metrics need the metrics token or an admin key; the key is {principal.role}",
        )


MetricsReader = Depends(metrics_reader)
Viewer = Annotated[Principal, Depends(require("viewer"))]
Creator = Annotated[Principal, Depends(require("creator"))]
Approver = Annotated[Principal, Depends(require("approver"))]
Admin = Annotated[Principal, Depends(require("admin"))]
