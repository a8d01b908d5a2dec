"""Errors raised before a studio page's own code, answered as a page to a browser.

A studio route turns its own errors, the unexpected ones too, into pages (``StudioRoute``); a
405 (the router refuses the method before any route runs) reaches the app's problem handler
instead. On a studio path, a client that does not ask for JSON (a browser) gets an HTML
page with the same status; one whose ``Accept`` names JSON keeps the problem+json answer.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from brandloop.api.problems import allowed_methods
from brandloop.api.studio.web import error_page

__all__ = ["answer_browsers_with_pages"]


def answer_browsers_with_pages(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Wrap the app's handler for HTTP errors (installed before): a page for a browser on a
    path of one of the studio's ``routers``, the problem+json answer otherwise."""
    api_http = app.exception_handlers[StarletteHTTPException]
    routes = [route for router in routers for route in router.routes]

    def _wants_page(request: Request) -> bool:
        """A studio path, asked for by a client that does not name JSON in ``Accept``."""
        if "json" in request.headers.get("accept", "").lower():
            return False
        return any(route.matches(request.scope)[0] != Match.NONE for route in routes)

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
