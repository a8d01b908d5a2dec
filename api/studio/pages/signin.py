"""Sign-in and sign-out: an API key, or a one-time link from ``brandloop studio link``,
exchanged for a session cookie (HttpOnly; Secure behind https; SameSite=Lax).

A failed sign-in counts in the same per-address throttle as a failed /v1 authentication
(``Service.auth_throttle``): past its burst, sign-ins from the address are a 429 page with
``Retry-After`` before any key or link is looked up, and so are its /v1 requests with a key."""

from __future__ import annotations

import math
from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Form, Query, Request, Response

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
    render,
    see_other,
    set_cookie,
)

router = APIRouter(route_class=StudioRoute, include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/chat"
    return target


def _address(request: Request) -> str:
    """The client address, as the service middleware and ``get_principal`` count it."""
    return request.client.host if request.client else "?"


def _throttled(request: Request) -> Response | None:
    """A 429 page while the address has failed too often (studio sign-ins or /v1 keys)."""
    throttle = request.app.state.service.auth_throttle
    wait: float | None = from_thread.run(throttle.retry_after, _address(request))
    if wait is None:
        return None
    retry = str(max(1, math.ceil(wait)))
    response = error_page(
        request, 429, f"too many failed sign-ins from this address; try again in {retry} s"
    )
    response.headers["Retry-After"] = retry
    return response


def _failed(request: Request) -> None:
    from_thread.run(request.app.state.service.auth_throttle.failed, _address(request))


def _signed_in(request: Request, token: str, user: StudioUser, target: str) -> Response:
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
    request: Request, next: Annotated[str | None, Query(max_length=500)] = None
) -> Response:
    return render(request, "signin.html", {"title": "Sign in", "next": safe_next(next)})


@router.post("/signin")
def signin(
    request: Request,
    session: SessionDep,
    _: Csrf,
    key: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=500)] = "/chat",
) -> Response:
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    made = sign_in_with_key(session, key)
    if made is None:
        _failed(request)
        return render(
            request,
            "signin.html",
            {"title": "Sign in", "next": safe_next(next), "error": "that API key is not valid"},
            status=401,
        )
    session.commit()
    return _signed_in(request, *made, next)


@router.get("/signin/link")
def link_page(
    request: Request, session: SessionDep, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """Show who the link signs in as; the exchange is a POST, so a link preview or prefetch
    never uses it up."""
    row = link_pending(session, token)
    if row is None:
        return render(
            request,
            "signin.html",
            {"title": "Sign in", "next": "/chat", "error": "that sign-in link is used or expired"},
            status=401,
        )
    context = {"title": "Sign in", "token": token, "principal": row.principal, "tenant": row.tenant}
    return render(request, "signin_link.html", context)


@router.post("/signin/link")
def link_signin(
    request: Request,
    session: SessionDep,
    _: Csrf,
    token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    throttled = _throttled(request)
    if throttled is not None:
        return throttled
    made = sign_in_with_link(session, token)
    if made is None:
        _failed(request)
        return render(
            request,
            "signin.html",
            {"title": "Sign in", "next": "/chat", "error": "that sign-in link is used or expired"},
            status=401,
        )
    session.commit()
    return _signed_in(request, *made, "/chat")


@router.post("/signout")
def signout(request: Request, user: Viewer, session: SessionDep, _: Csrf) -> Response:
    sign_out(session, user.session_id)
    response = see_other("/signin")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
