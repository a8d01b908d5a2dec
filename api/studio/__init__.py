"""brandloop studio: the web app served by ``brandloop serve`` at ``/``, in the same process
and over the same services as ``/v1``.

Server-rendered Jinja2 pages, htmx vendored under ``static/`` (no build step), a session cookie
from an API key or a one-time link, CSRF tokens on every form, a CSP without inline script.
Each page module calls the functions the /v1 routers call; none of its routes is in the
OpenAPI schema. See ``docs/studio.md``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from brandloop.api.studio.browser_errors import answer_browsers_with_pages
from brandloop.api.studio.pages import (
    chat,
    evals,
    images,
    overview,
    review,
    runs,
    signin,
    templates,
)
from brandloop.api.studio.web import STATIC

__all__ = ["mount_studio"]

PAGES = (signin, images, runs, chat, review, templates, overview, evals)


def mount_studio(app: FastAPI) -> None:
    """Add the studio's pages and its static files to the API's app."""
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # pages name an inline icon; a browser that asks for /favicon.ico anyway (a report served
    # on its own, say) gets "nothing here", not a 404 in its console
    app.add_api_route("/favicon.ico", _no_icon, methods=["GET", "HEAD"], include_in_schema=False)
    answer_browsers_with_pages(
        app, [m.router for m in PAGES]
    )  # a 405 or a 500 on a studio path: a page for a browser


def _no_icon() -> Response:
    return Response(status_code=204)
