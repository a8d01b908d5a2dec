"""Sign-in and sign-out: an API key, or a one-time link from ``brandloop studio link``,
exchanged for a session cookie (HttpOnly; Secure behind https; SameSite=Lax).

A failed sign-in counts in the same per-address throttle as a failed /v1 authentication
(``Service.auth_throttle``): past its burst, sign-ins from the address are a 429 page with
``Retry-After`` before any key or link is looked up, and so are its /v1 requests with a key.
Each lookup runs under a failure reserved ahead of it and given back when the key or link was
good, so sign-ins sent at once cannot all slip past a bucket with room for a few."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from anyio import from_thread
from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from brandloop.api.deps import SessionDep
from brandloop.api.studio.sessions import (
    SESSION_HOURS,
    StudioUser,
    link_pending,
    sign_in_with_key,
    sign_in_with_link,
    sign_out,
)
from brandloop.api.studio.web import (
    SESSION_COOKIE,
    Csrf,
    StudioRoute,
    Viewer,
    current_user,
    error_page,
    presession_token,
    render,
    see_other,
    set_cookie,
)

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
T = TypeVar("T")


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/chat"
    return target


def _address(request: Request) -> str:
    """The client address, as the service middleware and ``get_principal`` count it."""
    return request.client.host if request.client else "?"


def _reserve(request: Request) -> str | Response:
    """A failure reserved ahead of the lookup (``FailedAuthThrottle.reserve``), so sign-ins
    arriving at once cannot all pass a bucket with room for a few; or the 429 page while the
    address has failed too often (studio sign-ins or /v1 keys)."""
    throttle = request.app.state.service.auth_throttle
    ticket: str | None
    wait: float | None
    ticket, wait = from_thread.run(throttle.reserve, _address(request))
    if ticket is not None:
        return ticket
    retry = str(max(1, math.ceil(wait or 1.0)))
    response = error_page(
        request, 429, f"too many failed sign-ins from this address; try again in {retry} s"
    )
    response.headers["Retry-After"] = retry
    return response


def _settle(request: Request, ticket: str, *, failed: bool) -> None:
    """The reservation ends: a failure, or given back (the key or link was good)."""
    throttle = request.app.state.service.auth_throttle
    from_thread.run(functools.partial(throttle.settle, _address(request), ticket, failed=failed))


def _attempt(request: Request, ticket: str, sign_in: Callable[[], T]) -> T:
    """``sign_in()`` under the reservation ``ticket``: given back unless it made nothing."""
    try:
        made = sign_in()
    except BaseException:
        _settle(request, ticket, failed=False)
        raise
    _settle(request, ticket, failed=made is None)
    return made


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A sign-in page: its form carries the presession token even for a signed-in user (a
    second tab, a link opened while signed in), which is what ``check_csrf`` expects there."""
    return render(
        request, template, {**context, "signin_csrf": presession_token(request)}, status=status
    )


def _signed_in(
    request: Request, session: Session, token: str, user: StudioUser, target: str
) -> Response:
    """The new session's cookie; a session the browser was signed in with ends (it is replaced,
    never left alive behind a cookie the browser no longer holds)."""
    before: StudioUser | None = getattr(request.state, "studio_user", None)
    if before is not None:
        sign_out(session, before.session_id)
    session.commit()
    response = see_other(safe_next(target))
    set_cookie(response, request, SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600)
    request.state.studio_user = user
    return response


@router.get("/")
async def home(request: Request) -> Response:
    user = await current_user(request)
    return see_other("/chat" if user is not None else "/signin")


@router.get("/signin")
def signin_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=500)] = None,
    expired: bool = False,
) -> Response:
    """The sign-in form; ``expired``: the browser came here because its session ended (the
    studio's redirect says so), which the page tells the user."""
    context: dict[str, Any] = {"title": "Sign in", "next": safe_next(next)}
    if expired:
        context["expired"] = True
    return _page(request, "signin.html", context)


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    _: Csrf,
    key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=500)] = "/chat",
) -> Response:
    ticket = _reserve(request)
    if isinstance(ticket, Response):
        return ticket
    made = _attempt(request, ticket, lambda: sign_in_with_key(session, key))
    if made is None:
        return _page(
            request,
            "signin.html",
            {"title": "Sign in", "next": safe_next(next), "error": "that API key is not valid"},
            status=401,
        )
    return _signed_in(request, session, *made, next)


@router.get("/signin/link")
def link_page(
    request: Request, session: SessionDep, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Show who the link signs in as; the exchange is a POST, so a link preview or prefetch
    never uses it up."""
    row = link_pending(session, token)
    if row is None:
        return _page(
            request,
            "signin.html",
            {"title": "Sign in", "next": "/chat", "error": "that sign-in link is used or expired"},
            status=401,
        )
    context = {"title": "Sign in", "token": token, "principal": row.principal, "tenant": row.tenant}
    return _page(request, "signin_link.html", context)


@router.post("/signin/link")
def link_signin(
    request: Request,
    session: SessionDep,
    _: Csrf,
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    ticket = _reserve(request)
    if isinstance(ticket, Response):
        return ticket
    made = _attempt(request, ticket, lambda: sign_in_with_link(session, token))
    if made is None:
        return _page(
            request,
            "signin.html",
            {"title": "Sign in", "next": "/chat", "error": "that sign-in link is used or expired"},
            status=401,
        )
    return _signed_in(request, session, *made, "/chat")


@router.post("/signout")
def signout(request: Request, user: Viewer, session: SessionDep, _: Csrf) -> Response:
    sign_out(session, user.session_id)
    response = see_other("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
