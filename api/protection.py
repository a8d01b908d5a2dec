"""The service's outer layer, as one plain ASGI middleware (cheap on the hot path):

request ids, security headers, the body size limit (413), throttling of failed authentications
per client address and rate limits per key and per tenant (429 with ``Retry-After``; shared
through Redis across replicas, see ``api/ratelimit.py``), ``Idempotency-Key`` on POSTs (``api/idempotency.py``; the caller's
role is checked before anything is replayed), latency metrics, one JSON access-log line per
request and, when enabled, an OpenTelemetry span per request.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brandloop.api.auth import FailedAuthThrottle, Principal, Role
from brandloop.api.deps import AUTH_FAILED_STATE, PRINCIPAL_STATE
from brandloop.api.idempotency import Idempotency
from brandloop.api.observability import AccessLog, Metrics
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from brandloop.api.ratelimit import Buckets
from brandloop.logs import request_id_var

log = logging.getLogger("brandloop.api.access")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
FAILED_AUTHENTICATIONS = "too many failed authentications"
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/redoc")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _as_text(header: str) -> str | None:
    """A header value as the characters the client sent: it arrives as bytes (read here as
    Latin-1), and a UTF-8 "é" is two of them; the schema's ``maxLength`` counts characters, and
    so does the key's column. None when the bytes are not UTF-8: read any other way, two
    different byte strings could be one key (UTF-8 "é" and Latin-1 "é")."""
    try:
        return header.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return None


def _new_request_id() -> str:
    """32 random hex digits, like a uuid4's, from the process's pseudo-random generator
    (reseeded in each forked child). A request id is a label, not a secret: ``uuid4`` reads
    ``os.urandom``, a system call that lets go of the interpreter lock, and on a loop shared
    with the threadpool that hands the lock to a worker thread for up to a switch interval on
    every request."""
    return f"{random.getrandbits(128):032x}"


def _route_template(scope: Scope) -> str:
    """The matched route's full template (``/v1/runs/{run_id}``): a bounded metrics label."""
    fastapi_scope = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context") if isinstance(fastapi_scope, dict) else None
    )
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    return str(template) if template else "unmatched"


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        buckets: Buckets,
        auth_throttle: FailedAuthThrottle,
        idempotency: Idempotency,
        role_for: Callable[[Scope], Role | None],
        principal_for: Callable[[str | None], Awaitable[Principal | None]],
        known_principal: Callable[[str | None], Principal | None],
        metrics: Metrics,
        tracer: Any | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.max_body_bytes = max_body_bytes
        self.buckets = buckets
        self.auth_throttle = auth_throttle
        self.idempotency = idempotency
        self.role_for = role_for
        self.principal_for = principal_for
        self.known_principal = known_principal
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or _new_request_id()
        if len(request_id) > 64 or not request_id.replace("-", "").isalnum():
            request_id = _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        status_holder = [500]
        started_holder = [False]
        extra_headers = list(SECURITY_HEADERS)
        if not path.startswith(_DOCS_PATHS):
            extra_headers.append(API_CSP)
        extra_headers.append((b"x-request-id", request_id.encode()))

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                started_holder[0] = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers.extend(h for h in extra_headers if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        span = None
        if self.tracer is not None:
            span = self.tracer.start_span(f"{scope['method']} {path}")
            span.set_attribute("http.request_id", request_id)
        try:
            await self._handle(scope, receive, send_wrapped, request_id)
        except Exception:  # answer here, inside the security headers, and never with a trace
            log.exception("internal error")
            if not started_holder[0]:
                await self._problem(
                    send_wrapped, scope, 500, "internal", "an internal error occurred"
                )
        finally:
            route_path = _route_template(scope)
            self.metrics.observe(scope["method"], route_path, status_holder[0], started)
            if span is not None:
                span.set_attribute("http.route", route_path)
                span.set_attribute("http.status_code", status_holder[0])
                span.end()
            if self.access_log is not None:
                self.access_log.record(
                    method=scope["method"],
                    path=path,
                    status=status_holder[0],
                    ms=round((time.perf_counter() - started) * 1000, 2),
                    request_id=request_id,
                )
            request_id_var.reset(token)

    async def _problem(
        self,
        send: Send,
        scope: Scope,
        status: int,
        kind: str,
        detail: str,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = json.dumps(
            problem_body(
                status,
                kind,
                detail,
                instance=scope["path"],
                request_id=scope["state"]["request_id"],
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _limited(self, send: Send, scope: Scope, wait: float, what: str) -> None:
        retry = str(max(1, math.ceil(wait)))
        await self._problem(
            send,
            scope,
            429,
            "rate-limited",
            f"{what}; retry in {retry} s",
            [(b"retry-after", retry.encode())],
        )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        # ---- body size: refuse early on Content-Length, and count what actually arrives
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                await self._problem(send, scope, 400, "bad-input", "invalid Content-Length")
                return
            if int(length) > self.max_body_bytes:
                await self._problem(
                    send,
                    scope,
                    413,
                    "payload-too-large",
                    f"the body limit is {self.max_body_bytes} bytes",
                )
                return

        # ---- failed authentications per client address: a key not known good is looked up
        # only under a failure reserved ahead of the lookup (so requests arriving at once
        # cannot all pass a bucket with room for a few); a good key gives it back at once, any
        # other request when it is answered without a 401 (``deps.get_principal`` makes them).
        # Then rate limits per key and per tenant (so minting keys does not multiply them);
        # callers without a valid key share their address's bucket (so made-up keys cannot
        # mint fresh buckets)
        client = scope.get("client")
        address = str(client[0]) if client else "?"
        authorization = _header(scope, b"authorization")
        principal = None
        ticket: str | None = None
        if authorization:
            principal = self.known_principal(authorization)
            if principal is not None:
                throttled = await self.auth_throttle.retry_after(address)
                if throttled is not None:
                    await self._limited(send, scope, throttled, FAILED_AUTHENTICATIONS)
                    return
            else:
                ticket, throttled = await self.auth_throttle.reserve(address)
                if ticket is None:
                    await self._limited(send, scope, throttled or 1.0, FAILED_AUTHENTICATIONS)
                    return
                try:
                    principal = await self.principal_for(authorization)
                except BaseException:  # no answer about the key: nothing failed
                    await self.auth_throttle.settle(address, ticket, failed=False)
                    raise
                if principal is not None:
                    await self.auth_throttle.settle(address, ticket, failed=False)
                    ticket = None
                else:
                    scope["state"][AUTH_FAILED_STATE] = False  # True once a 401 is made
            scope["state"][PRINCIPAL_STATE] = principal  # the route's dependency reuses it
        if ticket is None:
            await self._admitted(scope, receive, send, principal, address)
            return
        reservation = ticket
        settled = False

        async def settle() -> None:
            nonlocal settled
            if not settled:
                settled = True
                failed = bool(scope["state"].get(AUTH_FAILED_STATE))
                await self.auth_throttle.settle(address, reservation, failed=failed)

        async def send_settling(message: Message) -> None:
            if message["type"] == "http.response.start":
                await settle()  # a stream's reservation ends when its answer starts
            await send(message)

        try:
            await self._admitted(scope, receive, send_settling, principal, address)
        finally:
            await settle()

    async def _admitted(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal | None,
        address: str,
    ) -> None:
        if principal is not None:
            wait = await self.buckets.take(
                [("key", principal.key_id), ("tenant", principal.tenant)]
            )
        else:
            wait = await self.buckets.take([("ip", address)])
        if wait > 0:
            await self._limited(send, scope, wait, "rate limit reached")
            return

        body_chunks: list[bytes] = []
        received = 0
        too_large = False
        if scope["method"] in ("POST", "PUT", "PATCH"):
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    too_large = True
                    break
                body_chunks.append(chunk)
                more = message.get("more_body", False)
        if too_large:
            await self._problem(
                send,
                scope,
                413,
                "payload-too-large",
                f"the body limit is {self.max_body_bytes} bytes",
            )
            return
        body = b"".join(body_chunks)
        replay_sent = False

        async def replay_receive() -> Message:
            nonlocal replay_sent
            if not replay_sent:
                replay_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        idem_key = _header(scope, b"idempotency-key") if scope["method"] == "POST" else None
        if idem_key is None or principal is None:
            await self.app(
                scope,
                replay_receive if scope["method"] in ("POST", "PUT", "PATCH") else receive,
                send,
            )
            return
        if sum(1 for name, _ in scope["headers"] if name == b"idempotency-key") > 1:
            await self._problem(  # which one would it be? Neither is taken over the other
                send, scope, 400, "bad-input", "send one Idempotency-Key header, not several"
            )
            return
        idem_text = _as_text(idem_key)
        if idem_text is None or not 1 <= len(idem_text) <= 255:
            await self._problem(
                send, scope, 400, "bad-input", "Idempotency-Key must be 1-255 characters of UTF-8"
            )
            return
        needed = self.role_for(scope)
        if needed is not None and not principal.can(needed):  # 403 from the route, never a replay
            await self.app(scope, replay_receive, send)
            return

        async def problem(
            status: int, kind: str, detail: str, headers: list[tuple[bytes, bytes]]
        ) -> None:
            await self._problem(send, scope, status, kind, detail, headers)

        await self.idempotency.handle(
            self.app,
            scope,
            replay_receive,
            send,
            tenant=principal.tenant,
            key=idem_text,
            body=body,
            problem=problem,
        )
