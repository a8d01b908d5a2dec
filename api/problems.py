"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

Each kind of error has a stable ``type`` (``urn:brandloop:problem:<kind>``) that clients may
switch on; ``detail`` is for people. No stack trace or secret ever reaches a response: an
unexpected exception becomes a bare ``internal`` problem naming only the request id.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from brandloop.api.pattern_words import pattern_message
from brandloop.errors import (
    BadInputError,
    BrandloopError,
    BudgetExhaustedError,
    ConflictError,
    NotFoundError,
    ProvidersUnavailableError,
    RefusedError,
)
from brandloop.memory.store import MemoryUnavailableError
from brandloop.storage import StorageFailedError

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:brandloop:problem:"

ProblemKind = Literal[
    "bad-input",
    "validation",
    "not-found",
    "unauthorized",
    "forbidden",
    "conflict",
    "method-not-allowed",
    "payload-too-large",
    "unsupported-media-type",
    "range-not-satisfiable",
    "rate-limited",
    "quota-exceeded",
    "idempotency-key-reused",
    "idempotency-in-flight",
    "secret-not-replayed",
    "refused",
    "budget-exhausted",
    "providers-unavailable",
    "memory-unavailable",
    "signing-failed",
    "storage-failed",
    "not-ready",
    "internal",
]

_TITLES: dict[str, str] = {
    "bad-input": "Bad input",
    "validation": "The request did not validate",
    "not-found": "Not found",
    "unauthorized": "Missing or invalid API key",
    "forbidden": "The key's role does not allow this",
    "conflict": "Conflict with the current state",
    "method-not-allowed": "Method not allowed",
    "payload-too-large": "Request body too large",
    "unsupported-media-type": "Unsupported media type",
    "range-not-satisfiable": "Range not satisfiable",
    "rate-limited": "Too many requests",
    "quota-exceeded": "Daily spend quota exceeded",
    "idempotency-key-reused": "Idempotency-Key reused with a different request",
    "idempotency-in-flight": "A request with this Idempotency-Key is still in flight",
    "secret-not-replayed": "The first answer showed a secret once; it is not shown again",
    "refused": "Refused by policy",
    "budget-exhausted": "Budget exhausted",
    "providers-unavailable": "No usable image provider",
    "memory-unavailable": "Brand memory (Chroma) unavailable",
    "signing-failed": "The C2PA signer failed",
    "storage-failed": "The run's storage could not be written",
    "not-ready": "Not ready",
    "internal": "Internal error",
}

_STATUS_KINDS: dict[int, str] = {
    400: "bad-input",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    416: "range-not-satisfiable",
    422: "validation",
    429: "rate-limited",
    503: "not-ready",
}

log = logging.getLogger("brandloop.api")


class FieldError(BaseModel):
    """Where a request failed validation and why (the input itself is never echoed)."""

    loc: list[str] = Field(examples=[["body", "brief"]])
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:brandloop:problem:not-found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "no job job_4f1c",
                    "instance": "/v1/jobs/job_4f1c",
                }
            ]
        }
    )

    type: str = Field(
        pattern=r"^urn:brandloop:problem:[a-z][a-z-]*$",
        description="stable URI naming the kind of error, `urn:brandloop:problem:<kind>`; "
        "the kinds (docs/http-api.md, Errors): "
        + ", ".join(f"`{kind}`" for kind in get_args(ProblemKind))
        + ". A client switches on the kinds it knows and treats any other as its status says "
        "(a kind may be added; none is renamed)",
        examples=[TYPE_PREFIX + kind for kind in get_args(ProblemKind)],
    )
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="for validation problems: where and what"
    )
    request_id: str | None = None


class ApiProblem(Exception):
    """Raised by the API layer to answer with a problem of a given kind."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail, self.headers = status, kind, detail, headers


def problem_body(
    status: int,
    kind: str,
    detail: str = "",
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": _TITLES.get(kind, kind),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    if request_id is not None:
        body["request_id"] = request_id
    return body


def problem_response(
    request: Request | None,
    status: int,
    kind: str,
    detail: str = "",
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    return JSONResponse(
        problem_body(status, kind, detail, instance=instance, errors=errors, request_id=request_id),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def status_for(exc: BrandloopError) -> tuple[int, str]:
    """The HTTP status and problem kind of each of brandloop's own errors."""
    if isinstance(exc, NotFoundError):
        return 404, "not-found"
    if isinstance(exc, ConflictError):
        return 409, "conflict"
    if isinstance(exc, BadInputError):
        return 422, "bad-input"
    if isinstance(exc, RefusedError):
        return 422, "refused"
    if isinstance(exc, BudgetExhaustedError):
        return 402, "budget-exhausted"
    if isinstance(exc, ProvidersUnavailableError):
        return 503, "providers-unavailable"
    if isinstance(exc, MemoryUnavailableError):
        return 503, "memory-unavailable"
    if isinstance(exc, StorageFailedError):
        return 503, "storage-failed"
    return 500, "internal"


_MEMORY_UNAVAILABLE = (
    "the brand memory store (Chroma) cannot be reached or read; try again later "
    "(generation runs go on without memory meanwhile)"
)


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, without echoing the input back (it may hold a secret), and a pattern's
    mismatch in words (:func:`pattern_message`), never the pattern."""
    out = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", ""))
        if err.get("type") == "string_pattern_mismatch":
            msg = pattern_message(loc, err.get("ctx"))
        elif err.get("type") == "value_error":  # pydantic's prefix says nothing to a reader
            msg = msg.removeprefix("Value error, ")
        out.append(
            {"loc": [str(part) for part in loc], "msg": msg, "type": str(err.get("type", ""))}
        )
    return out


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. (Starlette names only the first
    route matching the path, while one path may be several routes: GET and POST apart; each
    method is tried against the whole routing table, included routers too.)"""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # every GET answers HEAD (api/head.py)
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error, framework or ours, a problem+json answer."""

    async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, ApiProblem):  # registered for ApiProblem only
            raise exc
        return problem_response(request, exc.status, exc.kind, exc.detail, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(
            exc, RequestValidationError
        ):  # registered for RequestValidationError only
            raise exc
        errors = _safe_errors(exc)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem_response(request, 422, "validation", detail, errors=errors)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(
            exc, StarletteHTTPException
        ):  # registered for StarletteHTTPException only
            raise exc
        kind = _STATUS_KINDS.get(
            exc.status_code, "bad-input" if exc.status_code < 500 else "internal"
        )
        detail = exc.detail if isinstance(exc.detail, str) else ""
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return problem_response(request, exc.status_code, kind, detail, headers=headers)

    async def on_brandloop(request: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, BrandloopError):  # registered for BrandloopError only
            raise exc
        status, kind = status_for(exc)
        detail = str(exc) if status < 500 else ""
        if kind == "memory-unavailable":  # the cause (a host, a path) stays in the log
            log.error("memory unavailable: %s", exc)
            detail = _MEMORY_UNAVAILABLE
        elif status >= 500:
            log.error("unhandled %s", type(exc).__name__)
        return problem_response(request, status, kind, detail)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return problem_response(request, 500, "internal", "an internal error occurred")

    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(BrandloopError, on_brandloop)
    app.add_exception_handler(Exception, on_unexpected)


#: What each status a route may answer means, for its OpenAPI ``responses`` (every one is a
#: problem+json body)
_ANSWERS: dict[int, str] = {
    400: "Bad input: a NUL character or bytes that are not UTF-8 in the path or query, or a "
    "malformed header",
    401: "Missing or invalid API key",
    402: "The tenant's daily spend quota would be exceeded",
    403: "The key's role does not allow this",
    404: "Not found (or belongs to another tenant)",
    405: "Method not allowed; `Allow` names the methods the path serves",
    409: "Conflict with the current state (or an Idempotency-Key still in flight)",
    413: "Request body too large",
    416: "Range not satisfiable (`range-not-satisfiable`): no requested byte range starts "
    "within the image; `Content-Range: bytes */<size>`",
    422: "Validation error",
    429: "Rate limited (`rate-limited`: per key, per tenant, or failed authentications from "
    "the address); see Retry-After",
    500: "Internal error (`internal`): no detail but the request id",
    503: "Not ready: a service this needs is unavailable or misconfigured",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these problem statuses (a route adds the ones its own
    rules answer to the ones every route may answer, ``PROBLEM_RESPONSES``)."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": _ANSWERS[status],
        }
        for status in statuses
    }


#: What any ``/v1`` route may answer before or beside its own rules: the input guard (400),
#: authentication (401), roles (403), another tenant's or a missing resource (404), the body
#: limit (413), validation (422) and rate limits (429); creating POSTs also 409 (an
#: Idempotency-Key in flight)
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = problems(400, 401, 403, 404, 413, 422, 429)
