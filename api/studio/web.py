"""What every studio page shares: the Jinja2 environment (autoescaping on), the response with
its Content-Security-Policy, the signed-in user and the role a page needs, CSRF checks, and
errors shown as HTML pages instead of problem+json.

Pages call the same functions as the /v1 routers; an ``ApiProblem`` they raise becomes an
error page with the same status, so another tenant's resource is the same 404 here as there.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Message

from brandloop.api.auth import HOLDS_API_KEY, Role, key_shaped
from brandloop.api.deps import Service
from brandloop.api.input_guard import HOLDS_CREDENTIAL, UNSTORABLE, holds_credential, unstorable
from brandloop.api.problems import ApiProblem, status_for
from brandloop.api.studio.sessions import StudioUser, session_user
from brandloop.api.studio.wording import field_named, field_problem
from brandloop.domain import is_blank
from brandloop.errors import BrandloopError
from brandloop.registry.types import usd

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

SESSION_COOKIE = "bl_session"
#: the forms whose field is a key or a link's token by design (to sign in with, never stored)
SIGN_IN_FORMS = frozenset({"/signin", "/signin/link"})
PRESESSION_COOKIE = "bl_presession"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
NAV: tuple[tuple[str, str], ...] = (
    ("/chat", "Chat"),
    ("/runs", "Runs"),
    ("/review", "Review"),
    ("/agreement", "Agreement"),
    ("/templates", "Templates"),
    ("/campaigns", "Campaigns"),
    ("/brands", "Brands"),
    ("/evals", "Evals"),
    ("/costs", "Costs"),
)
#: the pages of :data:`NAV` that need more than the viewer role (anyone lower gets a 403 there)
NAV_ROLES: dict[str, Role] = {"/review": "approver"}


def nav_for(user: StudioUser | None) -> list[tuple[str, str]]:
    """The header's links this user may follow: none they would get a 403 page from."""
    return [
        (href, label)
        for href, label in NAV
        if user is None or user.can(NAV_ROLES.get(href, "viewer"))
    ]


#: rows a studio list shows a page (runs, campaigns, threads)
PAGE_SIZE = 24
#: the ``?page=`` a studio list takes
PageNumber = Annotated[int, Query(ge=1, le=100_000)]


def page_count(total: int) -> int:
    """How many pages ``total`` rows fill (one, empty, when there are none)."""
    return max(1, math.ceil(total / PAGE_SIZE))


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["usd"] = lambda value: usd(float(value or 0))
env.filters["pct"] = lambda value: "not measured" if value is None else f"{float(value):.0%}"
env.filters["short"] = lambda value, n=12: str(value)[:n]
#: user text, or ``fallback`` when it shows nothing (a name or title stored blank before the
#: API took blank as absent: never an empty, unclickable link)
env.filters["or_else"] = lambda value, fallback: fallback if is_blank(str(value or "")) else value


def _moment(value: datetime | str | None) -> datetime | None:
    """A moment as a result stores it (ISO text in JSON, or a datetime), in UTC."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


@pass_context
def _typed(context: Context, action: str, name: str, default: Any = "") -> Any:
    """What was typed into field ``name`` of the form posted to ``action`` when the page is
    shown again for a refused form (:class:`FormPage`), else ``default``."""
    error = context.get("form_error")
    if error is not None and error["action"] == action:
        return error["values"].get(name, default)
    return default


env.globals["typed"] = _typed

#: the most of a brief an image's alt text repeats (a screen reader reads all of it)
ALT_BRIEF_CHARS = 100


def image_alt(brief: object, which: str) -> str:
    """An image's alt text: which image it is and the brief it was made for, cut at a word
    within :data:`ALT_BRIEF_CHARS` ("Image 1 of 2: a steaming mug on a wooden table"), never
    its hash or run id, which describe nothing a person sees."""
    text = " ".join(str(brief or "").split())
    if is_blank(text):
        return which
    if len(text) > ALT_BRIEF_CHARS:
        cut = text[: ALT_BRIEF_CHARS + 1].rsplit(" ", 1)[0]
        text = (cut if 0 < len(cut) <= ALT_BRIEF_CHARS else text[:ALT_BRIEF_CHARS]).rstrip() + "…"
    return f"{which}: {text}"


env.globals["image_alt"] = image_alt
env.filters["utc"] = lambda value: m.strftime("%Y-%m-%d %H:%M UTC") if (m := _moment(value)) else ""
env.filters["iso"] = lambda value: m.isoformat() if (m := _moment(value)) else ""


class StudioError(Exception):
    """Answer with an error page of this status; ``field``, when given, is the form field the
    message is about (the message then says what it takes, and the field is named before it:
    by its label on the form's page, :class:`FormPage`). ``withheld``: what was typed into
    it is never shown again (it holds a credential, or text no page may hold)."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, withheld: bool = False
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.withheld = status, message, field, withheld


@dataclass(frozen=True)
class FormPage:
    """Where a form is shown, so that a form refused with a 422 is that page again (status
    422) with the message beside the field and what was typed kept, never a page of its own.

    ``page`` is the path of the page the form is on, with the POST route's path parameters
    (``/chat/{thread_id}``); ``labels`` the form's fields by the labels the page shows them
    with (``message`` is "Brief"), which every message about a field names; ``ids`` the
    elements' ids where they are not the field's name; ``field`` the field a refusal that
    names none is about (a follow-up that "asks for no change")."""

    page: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ids: Mapping[str, str] = field(default_factory=dict)
    field: str | None = None

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def at(self, path_params: Mapping[str, Any]) -> FormPage:
        """This form as a request to ``path_params`` shows it: a label or id may name a path
        parameter (``reject-note-{version}``: one form per version on one page)."""
        params = {k: str(v) for k, v in path_params.items()}
        return FormPage(
            self.page,
            labels={k: v.format(**params) for k, v in self.labels.items()},
            ids={k: v.format(**params) for k, v in self.ids.items()},
            field=self.field,
        )


def form_on(page: FormPage) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a POST route's endpoint with the page its form is on (:class:`FormPage`)."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.studio_form = page  # type: ignore[attr-defined]
        return endpoint

    return mark


def _form_of(request: Request) -> FormPage | None:
    endpoint = request.scope.get("endpoint")
    form = getattr(endpoint, "studio_form", None)
    return form.at(request.path_params) if isinstance(form, FormPage) else None


def _label(request: Request, name: str) -> str:
    """A form field as its page labels it (its name on a form with no :class:`FormPage`)."""
    form = _form_of(request)
    return form.label(name) if form is not None else name


class SignInRequired(Exception):
    """Not signed in: send the browser to the sign-in page."""


def secure_request(request: Request) -> bool:
    """Served over https, directly or behind a proxy that says so."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure_request(request),
        samesite="lax",
    )


def presession_token(request: Request) -> str:
    """The double-submit token of the sign-in forms (:data:`SIGN_IN_FORMS`), signed in or not:
    those forms carry it even for a signed-in user, so signing in again (another key, a link)
    replaces the session instead of meeting a CSRF refusal no reload could mend."""
    token = getattr(request.state, "presession", None)
    if token is None:
        token = request.cookies.get(PRESESSION_COOKIE) or ""
        if not 20 <= len(token) <= 64:
            token = secrets.token_urlsafe(24)
            request.state.new_presession = token
        request.state.presession = token
    return str(token)


def csrf_token(request: Request) -> str:
    user: StudioUser | None = getattr(request.state, "studio_user", None)
    return user.csrf if user is not None else presession_token(request)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page (or an htmx fragment) with the studio's CSP; never cached by the browser."""
    user: StudioUser | None = getattr(request.state, "studio_user", None)
    html = env.get_template(template).render(
        request=request,
        user=user,
        csrf=csrf_token(request),
        nav=nav_for(user),
        path=request.url.path,
        form_error=getattr(request.state, "form_error", None),
        **(context or {}),
    )
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["Content-Security-Policy"] = CSP
    response.headers.setdefault("Cache-Control", "no-store")
    new = getattr(request.state, "new_presession", None)
    if new is not None:
        set_cookie(response, request, PRESESSION_COOKIE, new, max_age=3600)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {
        400: "Bad request",
        402: "Over the quota",
        403: "Not allowed",
        404: "Not found",
        409: "Not now",
        422: "That did not work",
        429: "Too many requests",
    }
    title = titles.get(status, "Something went wrong")
    if status >= 500:
        message = "an internal error occurred"
    return render(
        request, "error.html", {"title": title, "status": status, "message": message}, status=status
    )


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class StudioRoute(APIRoute):
    """A studio route: errors become HTML pages; not signed in becomes a sign-in redirect; a
    form refused with a 422 is its page again (:class:`FormPage`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            if request.method == "POST":
                await request.body()  # kept whole, for check_csrf: the form is parsed from it
            try:
                return await handler(request)
            except SignInRequired:
                return see_other(_sign_in_url(request))
            except Exception as exc:  # each kind is answered below
                status, message, name = _problem(request, exc)
                withheld = isinstance(exc, StudioError) and exc.withheld
            if status == 422 and request.method == "POST" and (form := _form_of(request)):
                again = await _form_again(request, form, message, name, withheld=withheld)
                if again is not None:
                    return again
            return error_page(request, status, message)

        self.studio_handler = route
        return route


def _sign_in_url(request: Request) -> str:
    """The sign-in page for a request with no session, and where signing in goes next: the
    page asked for (a GET); for a form (any other method) the page it was posted from, never
    its action (a POST-only path, which a GET after sign-in answers 405), and the sign-in page
    says the session ended (``expired=1``). What was typed into that form is not kept."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        ended = bool(request.cookies.get(SESSION_COOKIE))  # a session it no longer has
    else:
        target, ended = _form_origin(request), True
    return "/signin?" + ("expired=1&" if ended else "") + "next=" + quote(target, safe="")


def _form_origin(request: Request) -> str:
    """The page a form was posted from: the same-origin ``Referer`` when that is a page (a path
    the studio answers GET at), else the page the route's :class:`FormPage` names, else Chat."""
    referer = urlsplit(request.headers.get("referer", ""))
    path = unquote(referer.path)
    if (
        referer.netloc == request.url.netloc
        and path not in SIGN_IN_FORMS
        and _answers_get(request, path)
    ):
        return referer.path + ("?" + referer.query if referer.query else "")
    endpoint = request.scope.get("endpoint")
    form = getattr(endpoint, "studio_form", None)
    if isinstance(form, FormPage):
        params = {k: quote(str(v), safe="") for k, v in request.path_params.items()}
        return form.page.format(**params)
    return "/chat"


def _answers_get(request: Request, path: str) -> bool:
    """Whether a GET of ``path`` (on this site) reaches a route that serves it."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
    routes = getattr(request.app.router, "routes", [])
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


def _problem(request: Request, exc: Exception) -> tuple[int, str, str | None]:
    """The status, the message and the form field (if any) an exception answers with; an
    exception no page expected is logged (and re-raised for a client that asks for JSON)."""
    labels = form.labels if (form := _form_of(request)) is not None else {}
    if isinstance(exc, StudioError):
        if exc.field is None:
            return exc.status, exc.message, None
        return exc.status, f"{_label(request, exc.field)}: {exc.message}", exc.field
    if isinstance(exc, ApiProblem):
        return exc.status, exc.detail, None
    if isinstance(exc, BrandloopError):
        return status_for(exc)[0], str(exc), None
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        return 422, field_problem(errors, skip=1, labels=labels), field_named(errors, skip=1)
    if isinstance(exc, ValidationError):  # a form the API's body schema refuses
        errors = exc.errors()
        return 422, field_problem(errors, labels=labels), field_named(errors)
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail or ""), None
    log.exception("internal error", exc_info=exc)  # a page that says no more
    if "json" in request.headers.get("accept", "").lower():
        raise exc  # a client that asks for JSON gets the API's problem+json
    return 500, "", None


async def _form_again(
    request: Request, form: FormPage, message: str, name: str | None, *, withheld: bool
) -> Response | None:
    """The page ``form`` is on, shown as a GET of it shows it, with status 422, the message
    beside the field (or above the form when it names none) and every field as it was typed
    (but a ``withheld`` field's: a credential is never repeated; none, when a field's name is
    what was refused); None when that page cannot be shown (it answers an error itself)."""
    path = form.page.format(**request.path_params)
    raw = form.page.format(**{k: quote(str(v), safe="") for k, v in request.path_params.items()})
    # a GET of the page through the app's routes, as a browser's would be: none of what the
    # POST's route matched (its route, endpoint, parameters) is carried over
    matched = ("route", "endpoint", "path_params", "fastapi", "router")
    scope = {k: v for k, v in request.scope.items() if k not in matched}
    scope |= {"method": "GET", "path": path, "raw_path": raw.encode(), "query_string": b""}
    posted = await request.form()
    values = {k: v for k, v in posted.multi_items() if k != "csrf" and isinstance(v, str)}
    if withheld:
        values = {k: v for k, v in values.items() if k != name} if name in posted else {}
    if name is None or name not in posted:
        if form.field is not None and name is None:  # the form's field it is about
            message = f"{form.label(form.field)}: {message}"
        name = form.field
    request.state.form_error = {
        "action": request.url.path,
        "field": name,
        "id": form.ids.get(name, name) if name is not None else None,
        "message": message,
        "values": values,
    }
    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    async def nothing_more() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    try:
        await request.app.router(scope, nothing_more, keep)
    finally:
        request.state.form_error = None
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    if start is None or start["status"] != 200:
        return None  # the page itself answers an error (its thread is gone, say)
    page = Response(
        b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
        status_code=422,
    )
    page.raw_headers = list(start.get("headers", []))
    return page


def _session_user(service: Service, token: str) -> StudioUser | None:
    with service.sessions() as session:
        return session_user(session, token)


async def current_user(request: Request) -> StudioUser | None:
    """The signed-in user of the session cookie, or None."""
    cached = getattr(request.state, "studio_user", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = await run_in_threadpool(_session_user, request.app.state.service, token)
    request.state.studio_user = user
    return user


def signed_in(role: Role) -> Callable[..., Coroutine[Any, Any, StudioUser]]:
    async def dependency(request: Request) -> StudioUser:
        user = await current_user(request)
        if user is None:
            raise SignInRequired
        if not user.can(role):
            raise StudioError(403, f"this needs the {role} role; you are signed in as {user.role}")
        return user

    dependency.__name__ = f"studio_{role}"
    return dependency


async def check_csrf(request: Request) -> None:
    """Every state-changing form carries the token of its page: the session's CSRF secret, or
    on a sign-in form (before sign-in, or signing in again) the double-submit cookie's value.

    Every such form also passes the rules the API's input guard applies to JSON bodies: no field
    (name or text) may hold a NUL or a lone surrogate, no text a configured credential, and no
    text an API key brandloop made (any tenant's, live or revoked).
    Checked here, before the page's own code
    runs, so such a form is a 422 page and stores nothing."""
    raw = await request.body()  # the bytes the form was parsed from (StudioRoute keeps them)
    form = await request.form()
    given = form.get("csrf")
    user = await current_user(request)
    signing_in = request.url.path in SIGN_IN_FORMS
    # a sign-in form carries the presession token whether a session exists or not (its page
    # shows it so, :func:`presession_token`); every other form its session's own secret
    if user is not None and not signing_in:
        expected = user.csrf
    else:
        expected = request.cookies.get(PRESESSION_COOKIE, "")
    if (
        not isinstance(given, str)
        or not expected
        or not hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise StudioError(403, "the form's CSRF token is missing or wrong; reload the page")
    if _is_urlencoded(request) and (field := _not_utf8_field(raw)) is not None:
        raise StudioError(422, NOT_UTF8, field=field, withheld=True)
    credentials: tuple[str, ...] = getattr(request.app.state, "credentials", ())
    own = user if not signing_in else None
    if own is not None:  # what this request carries: its session, and the key behind it
        credentials = (*credentials, request.cookies.get(SESSION_COOKIE, ""))

    def holds(text: str) -> bool:
        return holds_credential(text, credentials) or (own is not None and own.holds_own_key(text))

    for name, value in form.multi_items():
        if unstorable(name) or (isinstance(value, str) and unstorable(value)):
            if unstorable(name):
                raise StudioError(422, f"a field name: {UNSTORABLE}", withheld=True)
            raise StudioError(422, UNSTORABLE, field=name, withheld=True)
        if holds(name) or (isinstance(value, str) and holds(value)):
            if holds(name):
                raise StudioError(422, f"a field name: {HOLDS_CREDENTIAL}", withheld=True)
            raise StudioError(422, HOLDS_CREDENTIAL, field=name, withheld=True)
    # a signed-in user's forms only: the sign-in form carries a key by design, and is looked
    # up under the failed sign-in throttle instead
    service = getattr(request.app.state, "service", None) if own is not None else None
    for name, value in form.multi_items():
        shaped = key_shaped(value) if isinstance(value, str) else []
        if shaped and service is not None and await run_in_threadpool(service.stored_keys, shaped):
            raise StudioError(422, HOLDS_API_KEY, field=name, withheld=True)


#: a form field whose bytes are not UTF-8: the JSON API refuses such text, and the form parser
#: would otherwise store it as U+FFFD
NOT_UTF8 = "holds bytes that are not UTF-8 text, which is never stored: send the form as UTF-8"


def _is_urlencoded(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/x-www-form-urlencoded"


def _not_utf8_field(raw: bytes) -> str | None:
    """The name of the first field of a url-encoded form whose name or value, percent-decoded,
    is not UTF-8 ("a field name" when its name is not)."""
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            field = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return "a field name"
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return "a field name" if unstorable(field) else field
    return None


Viewer = Annotated[StudioUser, Depends(signed_in("viewer"))]
Creator = Annotated[StudioUser, Depends(signed_in("creator"))]
Approver = Annotated[StudioUser, Depends(signed_in("approver"))]
Admin = Annotated[StudioUser, Depends(signed_in("admin"))]
Csrf = Annotated[None, Depends(check_csrf)]
