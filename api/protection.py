"""The service's outer layer, as one plain ASGI middleware (cheap on the hot path):

request ids, security headers, the body size limit (413), per-key rate limits (429 with
``Retry-After``), ``Idempotency-Key`` replay on POSTs, latency metrics, one JSON access-log line
per request and, when enabled, an OpenTelemetry span per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brandloop.api.auth import Principal
from brandloop.api.jobs import store
from brandloop.api.observability import AccessLog, Metrics
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from brandloop.logs import request_id_var
from brandloop.registry.db import Database

log = logging.getLogger("brandloop.api.access")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PATHS = ("/docs", "/redoc")


class TokenBuckets:
    """Per-key token buckets: ``rate`` tokens a minute, up to ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed; else the seconds to wait before the next token."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


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
        db: Database,
        max_body_bytes: int,
        buckets: TokenBuckets,
        principal_for: Callable[[str | None], Principal | None],
        metrics: Metrics,
        tracer: Any | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.db = db
        self.max_body_bytes = max_body_bytes
        self.buckets = buckets
        self.principal_for = principal_for
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        if len(request_id) > 64 or not request_id.replace("-", "").isalnum():
            request_id = uuid.uuid4().hex
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

        # ---- rate limit per key (or per client address without one)
        # per key; callers without a valid key share their address's bucket (so made-up keys
        # cannot mint fresh buckets)
        authorization = _header(scope, b"authorization")
        principal = self.principal_for(authorization) if authorization else None
        if principal is not None:
            bucket = principal.key_id
        else:
            client = scope.get("client")
            bucket = f"ip:{client[0] if client else '?'}"
        wait = self.buckets.take(bucket)
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await self._problem(
                send,
                scope,
                429,
                "rate-limited",
                f"rate limit reached; retry in {retry} s",
                [(b"retry-after", retry.encode())],
            )
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
        if not 1 <= len(idem_key) <= 255:
            await self._problem(
                send, scope, 400, "bad-input", "Idempotency-Key must be 1-255 characters"
            )
            return
        await self._idempotent(scope, replay_receive, send, principal, idem_key, body)

    async def _idempotent(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal,
        key: str,
        body: bytes,
    ) -> None:
        method_path = f"{scope['method']} {scope['path']}"
        digest = hashlib.sha256(
            method_path.encode() + b"\0" + scope.get("query_string", b"") + b"\0" + body
        ).hexdigest()
        with self.db.session() as session:
            row = store.get_idempotency(session, tenant=principal.tenant, key=key)
            stored = (row.request_sha256, row.status_code, row.body) if row is not None else None
        if stored is not None:
            if stored[0] != digest:
                await self._problem(
                    send,
                    scope,
                    422,
                    "idempotency-key-reused",
                    "this Idempotency-Key was used with a different request",
                )
                return
            payload = stored[2].encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": stored[1],
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return

        captured: dict[str, Any] = {"status": 0, "body": [], "json": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                captured["json"] = content_type.startswith(b"application/json")
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if 200 <= captured["status"] < 300 and captured["json"]:
            try:
                with self.db.session() as session:
                    store.save_idempotency(
                        session,
                        tenant=principal.tenant,
                        key=key,
                        method_path=method_path[:255],
                        request_sha256=digest,
                        status_code=captured["status"],
                        body=b"".join(captured["body"]).decode(),
                    )
            except IntegrityError:  # a concurrent retry stored it first; both answers agree
                pass
