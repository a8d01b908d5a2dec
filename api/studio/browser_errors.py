"""Errors raised before a studio page's own code, answered as a page to a browser.

A studio route turns its own errors, the unexpected ones too, into pages (``StudioRoute``); a
405 (the router refuses the method before any route runs), a 404 for a path no route serves,
and the input guard's 400 for a path of bytes no store can keep reach the app's problem
handler (or the guard's own answer) instead. On a studio path - one a studio route serves, or
any path outside the API's (``/v1``, health, metrics, the schema and its docs) asked for by a
browser, whose ``Accept`` names HTML - a client that does not ask for JSON gets an HTML page
with the same status; one whose ``Accept`` names JSON keeps the problem+json answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from brandloop.api.problems import allowed_methods
from brandloop.api.studio.web import error_page

__all__ = ["answer_browsers_with_pages", "page_for_a_browser"]

#: the API's own paths: a client there is answered problem+json, whatever it accepts
API_PATHS = ("/v1", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")


def _api_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in API_PATHS)


def _browser(accept: str) -> bool:
    """Does ``Accept`` ask for a page (HTML) and not for JSON?"""
    accept = accept.lower()
    return "json" not in accept and "text/html" in accept


async def page_for_a_browser(
    scope: Scope, receive: Receive, send: Send, status: int, message: str
) -> bool:
    """Answer with an error page when a browser asked for a path outside the API's; False
    (nothing sent) otherwise. For answers made before any route runs (the input guard's)."""
    request = Request(scope, receive)
    if _api_path(request.url.path) or not _browser(request.headers.get("accept", "")):
        return False
    await error_page(request, status, message)(scope, receive, send)
    return True


def answer_browsers_with_pages(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Wrap the app's handler for HTTP errors (installed before): a page for a browser on a
    path of one of the studio's ``routers``, the problem+json answer otherwise."""
    api_http = app.exception_handlers[StarletteHTTPException]
    routes = [route for router in routers for route in router.routes]

    def _wants_page(request: Request) -> bool:
        """A studio path, asked for by a client that does not name JSON in ``Accept``; or a
        path outside the API's no route serves, asked for by a browser."""
        accept = request.headers.get("accept", "")
        if "json" in accept.lower():
            return False
        if any(route.matches(request.scope)[0] != Match.NONE for route in routes):
            return True
        return not _api_path(request.url.path) and _browser(accept)

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StarletteHTTPException) or not _wants_page(request):
            answer = api_http(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        message = exc.detail if isinstance(exc.detail, str) else ""
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        page = error_page(request, exc.status_code, message)
        page.headers.update(headers)
        return page

    app.add_exception_handler(StarletteHTTPException, on_http)
