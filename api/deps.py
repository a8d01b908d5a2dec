"""Every dependency the routers use, as ``Annotated`` aliases (tests swap them through
``app.dependency_overrides``): settings, the service state, a registry session, the caller and
the role it needs.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute, APIRouter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
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
    stored_keys,
)
from brandloop.api.config import ApiSettings
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.observability import Metrics
from brandloop.api.problems import ApiProblem
from brandloop.api.reader import BatchedReader
from brandloop.api.warmup import Warmup
from brandloop.registry.db import Database
from brandloop.settings import Settings


@dataclass
class Service:
    """What one running app holds: its settings, database, worker pool, key cache and metrics,
    the throttle on failed authentications (none by default) and the threads of the hottest
    reads."""

    settings: Settings
    db: Database
    api: ApiSettings
    pool: WorkerPool
    keys: KeyCache
    metrics: Metrics
    auth_throttle: FailedAuthThrottle = field(default_factory=NoThrottle)
    writer: PromptWriter | None = None  # revises thread briefs when configured
    # the models loading at start (``brandloop serve``); None: they load on first use
    warmup: Warmup | None = None
    # the hottest registry reads, off the loop in batches (closed with the app)
    reader: BatchedReader = field(default_factory=BatchedReader)

    def __post_init__(self) -> None:
        # one sessionmaker for the app's life: making one per request costs more than the query
        self.sessions = self.db.sessions

    @staticmethod
    def _bearer(authorization: str | None) -> str | None:
        if not authorization or authorization[:7].lower() != "bearer ":
            return None
        key = authorization[7:].strip()
        return key if key and len(key) <= 200 else None

    def known_principal(self, authorization: str | None) -> Principal | None:
        """The caller, when its key is in the cache of keys known good (no lookup), or None:
        such a key is not a guess, so the middleware takes no reservation of a failure for it
        (``FailedAuthThrottle``)."""
        key = self._bearer(authorization)
        return self.keys.get(hash_key(key)) if key is not None else None

    async def principal_for(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization: Bearer <key>`` header, or None. A cached key
        costs a hash and a dictionary lookup on the loop; a miss reads the key row in the
        threadpool, so a slow database never stalls the other requests on the loop."""
        key = self._bearer(authorization)
        if key is None:
            return None
        digest = hash_key(key)
        principal = self.keys.get(digest)
        if principal is not None:
            return principal
        principal = await run_in_threadpool(self._authenticate, key)
        if principal is not None:  # misses are never cached: they would evict good keys
            self.keys.put(digest, principal)
        return principal

    def _authenticate(self, key: str) -> Principal | None:
        with self.sessions() as session:
            return authenticate(session, key)

    def stored_keys(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` that are API keys brandloop made (any tenant, live or revoked):
        what the input guard refuses in typed text."""
        with self.sessions() as session:
            return stored_keys(session, keys)


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


def get_session(request: Request) -> Iterator[Session]:
    """A registry session that commits when the endpoint returns and rolls back on error.

    A plain generator, so FastAPI opens and commits it in the threadpool; the routes that take
    one are plain ``def`` functions and run there too (see ``docs/architecture.md``, "No
    blocking on the event loop")."""
    service: Service = request.app.state.service
    with service.db.session() as session:
        yield session


#: committed before the answer is sent ("function" scope): a client that reads its write back
#: right after the answer always finds it
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


#: where the service middleware leaves the caller it looked up (``scope["state"]``)
PRINCIPAL_STATE = "principal"
#: present (False) when the middleware looked a key up under a reserved failure and it was no
#: good; set True here when the request is answered 401, so the reservation stays a failure
AUTH_FAILED_STATE = "auth_failed"


async def get_principal(request: Request) -> Principal:
    """The caller: the one the service middleware already looked up for this request's
    ``Authorization`` header, or looked up here. A throttled address never gets here: the
    middleware answers 429 before any key is looked up (``Service.auth_throttle``); a failure
    is counted here (as the failure the middleware reserved ahead of the lookup, if it did)."""
    service: Service = request.app.state.service
    state = request.scope.get("state") or {}
    if PRINCIPAL_STATE in state:
        principal: Principal | None = state[PRINCIPAL_STATE]
    else:
        principal = await service.principal_for(request.headers.get("authorization"))
    if principal is None:
        if AUTH_FAILED_STATE in state:
            state[AUTH_FAILED_STATE] = True
        else:
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


#: a route's endpoint, as ``requires`` wraps it
Endpoint = Callable[..., Awaitable[Any]]


def requires(role: Role) -> Callable[[Endpoint], Endpoint]:
    """The check a ``Viewer`` (``Creator``, ...) parameter makes, as a decorator, for the hottest
    reads: FastAPI then solves no dependency per request (an async dependency cost ``GET
    /v1/runs/{id}`` about 0.08 ms of CPU per request, a fifth of the route's, measured in
    process; ``docs/http-api.md``). The endpoint is async and takes ``request: Request``;
    it reads the checked caller with ``caller(request)``. Schema, 401/403 answers and the role
    the middleware checks before an idempotent replay are the same as with the parameter."""
    check = require(role)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def checked(*args: Any, **kwargs: Any) -> Any:
            await check(kwargs["request"])
            return await endpoint(*args, **kwargs)

        checked.required_role = role  # type: ignore[attr-defined]
        return checked

    return decorate


def caller(request: Request) -> Principal:
    """The caller a ``requires`` check let through (the service middleware looked it up)."""
    principal: Principal = request.scope["state"][PRINCIPAL_STATE]
    return principal


def required_role(route: APIRoute) -> Role | None:
    """The role a route's ``require(...)`` dependency (or ``requires`` decorator) asks for."""
    marked: Role | None = getattr(route.endpoint, "required_role", None)
    if marked is not None:
        return marked
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


def needs_credentials(route: APIRoute) -> bool:
    """Whether a route answers 401 without a key (or the metrics token): it asks for a role,
    or it is ``/metrics``."""
    if required_role(route) is not None:
        return True
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is metrics_reader:
            return True
        pending.extend(dependency.dependencies)
    return False


Viewer = Annotated[Principal, Depends(require("viewer"))]
Creator = Annotated[Principal, Depends(require("creator"))]
Approver = Annotated[Principal, Depends(require("approver"))]
Admin = Annotated[Principal, Depends(require("admin"))]
