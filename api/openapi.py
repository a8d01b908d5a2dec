"""The app's OpenAPI document: what FastAPI derives from the routers, plus what no single route
can say of itself. Every route's own statuses are declared at the route (``problems(...)``).

- Every route that needs a key says so (``security: bearer``), so a client, and a tool that
  checks the contract, knows a call without one is a 401.
- Every POST may answer 409: a request with an ``Idempotency-Key`` whose first use is still in
  flight (``api/idempotency.py``, in the service middleware, before any route).
- Every POST that needs a key takes the optional ``Idempotency-Key`` header (1-255 characters,
  sent as UTF-8; the same key with another request is a 422 ``idempotency-key-reused``, one
  outside that length or not UTF-8 a 400), declared on the operation so a client generated from
  the document can send it.
- A parameter that may be left out is left out, never sent as ``null``: a query, path or header
  value is text, so the ``anyOf [X, null]`` that FastAPI writes for an optional parameter
  is ``X``.
- Every error is declared as it is sent: ``Problem`` under ``application/problem+json`` only
  (FastAPI would put it under ``application/json``, which the server never sends for one), with
  the headers a status carries (``WWW-Authenticate``, ``Allow``, ``Retry-After``).
- Every route may answer 400 (the input guard), 413 (the body limit), 429 (rate limits and the
  failed-login throttle, also on ``/healthz``, ``/readyz`` and ``/metrics``) and 500
  ``internal``; every answer of a POST that takes an Idempotency-Key may be a replay
  (``Idempotent-Replayed: true``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from brandloop.api.deps import needs_credentials
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problems

__all__ = ["install_openapi"]

BEARER = "bearer"


def install_openapi(app: FastAPI, routers: Sequence[tuple[str, APIRouter]]) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request);
    ``routers`` are the app's routers with the prefixes they are mounted at."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, routers)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_openapi(app: FastAPI, routers: Sequence[tuple[str, APIRouter]]) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schema.setdefault("components", {})["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key: `brandloop keys create`, or POST /v1/keys by an admin",
        }
    }
    guarded = {
        (method.lower(), prefix + route.path_format)
        for prefix, router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and needs_credentials(route)
        for method in route.methods or ()
    }
    in_flight = problems(409)
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "answer a repeat of this request (same method, path, query and body) "
        "with the first answer instead of running it again; 24 h by default. Sent as UTF-8 "
        "(a value whose bytes are not UTF-8 is a 400 `bad-input`); keys are compared exactly",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    }
    everywhere = problems(400, 413, 429, 500)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            if (method, path) in guarded:
                operation["security"] = [{BEARER: []}]
            if method == "post" and (method, path) in guarded:
                operation.setdefault("parameters", []).append(dict(idempotency_key))
                for answer in responses.values():
                    answer.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED
            if method == "post":
                for status, answer in in_flight.items():
                    responses.setdefault(str(status), _problem_answer(answer))
                responses["409"].setdefault("headers", {})["Retry-After"] = _retry_after(False)
            for status, answer in everywhere.items():
                responses.setdefault(str(status), _problem_answer(answer))
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
                    if status in _PROBLEM_HEADERS:
                        response.setdefault("headers", {}).update(_PROBLEM_HEADERS[status])
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _never_null(parameter.get("schema", {}))
    return schema


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

#: ``Idempotent-Replayed: true`` on the answer to a repeat of a POST with an Idempotency-Key
REPLAYED = {
    "description": "`true` on the stored answer to a repeat (same Idempotency-Key, same "
    "request); absent on a first answer",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}


def _retry_after(required: bool) -> dict[str, Any]:
    return {
        "description": "seconds to wait before trying again",
        "required": required,
        "schema": {"type": "integer", "minimum": 0},
    }


#: the headers a problem of a status always carries (``Retry-After`` of a 409 only for an
#: Idempotency-Key in flight: added on POSTs above)
_PROBLEM_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "`Bearer`: send an API key",
            "required": False,
            "schema": {"type": "string"},
        }
    },
    "405": {
        "Allow": {
            "description": "every method the path serves",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    "429": {"Retry-After": _retry_after(True)},
}


def _problem_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A problem answer as the document writes one (``Problem`` is in the components: every
    ``/v1`` route answers problems): ``application/problem+json``, the only media type the
    server sends an error in."""
    return {
        "description": answer["description"],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }


def _never_null(parameter_schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, {type: null}]`` (an optional parameter, as FastAPI writes it) becomes X,
    keeping the title, description, default and pattern written beside the ``anyOf``."""
    options = parameter_schema.get("anyOf")
    if not isinstance(options, list):
        return parameter_schema
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(options):
        return parameter_schema
    rest = {key: value for key, value in parameter_schema.items() if key != "anyOf"}
    return {**kept[0], **rest}
