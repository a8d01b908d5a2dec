"""Text every store can keep: a request whose path, query or JSON body holds a NUL character or
a lone UTF-16 surrogate is refused before any route sees it.

PostgreSQL refuses NUL in text and neither database can encode a lone surrogate, so such input
would otherwise fail deep inside a query (a 500) on one database and pass on the other. Here it
gets one answer on both: 400 ``bad-input`` for the path or query, 422 ``validation`` for the
body, naming where.

A JSON body any of whose texts holds a credential the settings configure, the API key the
request itself carries, or any other API key brandloop made (live or revoked, of any tenant:
found by its shape, confirmed by the key table's hash) is refused the same way (422
``validation``, naming where, never the value): a brief, a thread message, a template body, a
note or a campaign brief is stored, sent to providers and written into receipts, signed images
and brand memory, so a key typed into one would reach them all.

So is a JSON object that names a member twice (``{"weights": {"1": 1, "1": 2}}``): JSON
parsers keep one of the two values, silently, so the body is not strict; 422 ``validation``
naming the member.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brandloop.api.auth import HOLDS_API_KEY, key_shaped
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from brandloop.domain import UNSTORABLE, unstorable
from brandloop.settings import MIN_CREDENTIAL_CHARS

__all__ = [
    "HOLDS_API_KEY",
    "HOLDS_CREDENTIAL",
    "UNSTORABLE",
    "InputGuard",
    "StoredKeys",
    "holds_credential",
    "unstorable",
]

#: Those of the given key-shaped tokens that are API keys brandloop made (``Service.stored_keys``).
StoredKeys = Callable[[Sequence[str]], set[str]]
#: answers a browser with an error page (status, message); False when it sent nothing
BrowserPage = Callable[[Scope, Receive, Send, int, str], Awaitable[bool]]

HOLDS_CREDENTIAL = (
    "holds a configured credential or this request's API key, which is never stored or sent "
    "to a provider: remove it"
)


def _bad_bytes(raw: bytes) -> bool:
    """Percent-decoded URL bytes that hold a NUL or are not UTF-8."""
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return True
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


#: a member an object of the body names more than once
TWICE = "appears more than once in this object; JSON keeps only the last, so say it once"


class _Members(dict[str, Any]):
    """A JSON object as parsed, with the members its text named more than once."""

    twice: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members(pairs)
    if len(members) < len(pairs):
        seen: set[str] = set()
        twice: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                twice[key] = None
            seen.add(key)
        members.twice = tuple(twice)
    return members


#: no request schema nests deeper than a few levels; a body past this is refused before any
#: walk over it (a thousand nested lists once ended in a RecursionError: a 500)
MAX_DEPTH = 32


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((child, level + 1) for child in item)
    return deepest


def _twice_places(value: Any, where: list[str]) -> Iterator[list[str]]:
    """Where an object of the body names a member twice (``{"1": 1, "1": 2}``): a strict
    body has one value per member, as the CLI's ``1=1,1=2`` is refused."""
    if isinstance(value, dict):
        for key in getattr(value, "twice", ()):
            yield [*where, key]
        for key, item in value.items():
            yield from _twice_places(item, [*where, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _twice_places(item, [*where, str(index)])


def _bad_places(value: Any, where: list[str]) -> Iterator[list[str]]:
    if isinstance(value, str):
        if unstorable(value):
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            if unstorable(key):
                yield [*where, "(key)"]
            yield from _bad_places(item, [*where, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_places(item, [*where, str(index)])


def _texts(value: Any, where: list[str]) -> Iterator[tuple[list[str], str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield [*where, "(key)"], key
            yield from _texts(item, [*where, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _texts(item, [*where, str(index)])


def holds_credential(text: str, credentials: Iterable[str]) -> bool:
    """Whether ``text`` holds one of ``credentials`` whole (only whole: a refusal for a part
    would let a caller find a key a few characters at a time); one shorter than
    ``MIN_CREDENTIAL_CHARS`` is not looked for. The studio's forms pass it too."""
    return any(len(c) >= MIN_CREDENTIAL_CHARS and c in text for c in credentials)


def _credential_places(value: Any, credentials: Iterable[str]) -> list[list[str]]:
    """Where a text of ``value`` holds one of ``credentials`` whole."""
    known = [c for c in credentials if len(c) >= MIN_CREDENTIAL_CHARS]
    if not known:
        return []
    return [where for where, text in _texts(value, ["body"]) if holds_credential(text, known)]


def _key_shaped_places(value: Any) -> list[tuple[list[str], list[str]]]:
    """Each text of ``value`` holding tokens shaped like an API key, with those tokens."""
    return [
        (where, found) for where, text in _texts(value, ["body"]) if (found := key_shaped(text))
    ]


def _bearer(scope: Scope) -> list[str]:
    """The API key the request carries (``Authorization: Bearer KEY``), if any."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return [token.strip()]
    return []


class InputGuard:
    """ASGI middleware: refuse unstorable text in the path, the query and JSON bodies, and a
    JSON body text holding a configured credential, the request's own API key or any API key
    ``stored_keys`` confirms."""

    def __init__(
        self,
        app: ASGIApp,
        credentials: Sequence[str] = (),
        stored_keys: StoredKeys | None = None,
        browser_page: BrowserPage | None = None,
    ) -> None:
        """``browser_page`` answers a browser's request for a page with an error page (the
        studio's, ``page_for_a_browser``), saying whether it did; problem+json otherwise."""
        self.app = app
        self.credentials = tuple(credentials)
        self.stored_keys = stored_keys
        self.browser_page = browser_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
        if _bad_bytes(raw_path) or _bad_bytes(scope.get("query_string", b"")):
            said = "the path or query holds a NUL character or bytes that are not UTF-8"
            if self.browser_page is None or not await self.browser_page(
                scope, receive, send, 400, said
            ):
                await _problem(scope, send, 400, "bad-input", said)
            return
        if scope["method"] not in ("POST", "PUT", "PATCH") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:  # bad JSON like any other: the 422 the docs name, not a 400
            said = "the body is not UTF-8 text (JSON is)"
            errors = [{"loc": ["body"], "msg": said, "type": "json_invalid"}]
            await _problem(scope, send, 422, "validation", f"body: {said}", errors=errors)
            return
        try:
            parsed = json.loads(body, object_pairs_hook=_object) if body else None
            deep = _depth(parsed) > MAX_DEPTH
        except ValueError:  # not JSON at all: the route's own validation answers
            parsed, deep = None, False
        except RecursionError:  # deeper than the parser goes: deeper than MAX_DEPTH too
            parsed, deep = None, True
        if deep:
            said = f"the body is nested more than {MAX_DEPTH} levels deep"
            errors = [{"loc": ["body"], "msg": said, "type": "json_too_deep"}]
            await _problem(scope, send, 422, "validation", f"body: {said}", errors=errors)
            return
        twice = list(_twice_places(parsed, ["body"]))
        if twice:
            errors = [
                {"loc": loc, "msg": TWICE, "type": "json_duplicate_key"} for loc in twice[:20]
            ]
            detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
            await _problem(scope, send, 422, "validation", detail, errors=errors)
            return
        places = list(_bad_places(parsed, ["body"]))
        if places:
            errors = [
                {
                    "loc": loc,
                    "msg": UNSTORABLE,
                    "type": "string_unstorable",
                }
                for loc in places[:20]
            ]
            detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
            await _problem(scope, send, 422, "validation", detail, errors=errors)
            return
        holding = [
            (loc, HOLDS_CREDENTIAL)
            for loc in _credential_places(parsed, [*self.credentials, *_bearer(scope)])
        ]
        if not holding:
            holding = [(loc, HOLDS_API_KEY) for loc in await self._api_key_places(parsed)]
        if holding:
            errors = [
                {"loc": loc, "msg": msg, "type": "string_holds_credential"}
                for loc, msg in holding[:20]
            ]
            detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
            await _problem(scope, send, 422, "validation", detail, errors=errors)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _api_key_places(self, parsed: Any) -> list[list[str]]:
        """Where a text of the body holds an API key brandloop made; the key table is read
        (off the loop) only for a body holding a token of a key's shape."""
        shaped = _key_shaped_places(parsed)
        if not shaped or self.stored_keys is None:
            return []
        tokens = sorted({token for _, found in shaped for token in found})
        stored = await run_in_threadpool(self.stored_keys, tokens)
        return [where for where, found in shaped if stored.intersection(found)]


def _is_json(scope: Scope) -> bool:
    """A JSON body, or one without a content type (FastAPI reads those as JSON too)."""
    for key, value in scope["headers"]:
        if key == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


async def _problem(
    scope: Scope,
    send: Send,
    status: int,
    kind: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(
        problem_body(
            status,
            kind,
            detail,
            instance=scope["path"].encode("utf-8", "replace").decode(),
            errors=errors,
            request_id=request_id,
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
