"""Text every store can keep: a request whose path, query or JSON body holds a NUL character or
a lone UTF-16 surrogate is refused before any route sees it.

PostgreSQL refuses NUL in text and neither database can encode a lone surrogate, so such input
would otherwise fail deep inside a query (a 500) on one database and pass on the other. Here it
gets one answer on both: 400 ``bad-input`` for the path or query, 422 ``validation`` for the
body, naming where.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brandloop.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from brandloop.domain import UNSTORABLE, unstorable

__all__ = ["UNSTORABLE", "InputGuard", "unstorable"]


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


class InputGuard:
    """ASGI middleware: refuse unstorable text in the path, the query and JSON bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
        if _bad_bytes(raw_path) or _bad_bytes(scope.get("query_string", b"")):
            await _problem(
                scope,
                send,
                400,
                "bad-input",
                "the path or query holds a NUL character or bytes that are not UTF-8",
            )
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
            parsed = json.loads(body) if body else None
        except ValueError:  # not JSON at all: the route's own validation answers
            parsed = None
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
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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
