"""``Idempotency-Key`` on POSTs: the key is claimed before the request runs, answered once.

The record is inserted first, ``pending``; the primary key (tenant, key) lets exactly one of any
number of concurrent requests insert it, on any replica. That one runs; its first 2xx JSON
answer is stored and the record becomes ``done``. Every other request with the same key:

* a different method, path, query or body → 422 ``idempotency-key-reused``;
* the first is done → its answer again, with ``Idempotent-Replayed: true`` (an image it
  linked that was deleted since shown deleted, as a fresh GET shows it);
* the first is still in flight → waits for it up to ``wait_s``, then gets its answer, or 409
  ``idempotency-in-flight`` with ``Retry-After`` if it is still running.

A request that fails (any non-2xx answer, an error, a dropped connection) removes its pending
record, so a retry runs afresh. Records are kept ``ttl_s`` (24 h by default); a pending record
older than ``pending_s`` belongs to a request that died and is taken over.

An answer that shows a secret once (a new API key) is never stored: its route calls
:func:`withhold_from_replays`, and the record keeps, and every repeat gets, the problem the
route named instead (409 ``secret-not-replayed``, naming what was made) - the secret stays
in the one answer that showed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brandloop.api.jobs import store
from brandloop.api.problems import PROBLEM_MEDIA_TYPE, ProblemKind, problem_body
from brandloop.api.replayed_images import ARTIFACT_PATH, with_deleted_images
from brandloop.domain import utcnow
from brandloop.registry.db import Database

#: sends a problem answer: (status, kind, detail, extra headers)
ProblemSender = Callable[[int, str, str, list[tuple[bytes, bytes]]], Awaitable[None]]
_KEPT_HEADERS = (b"content-type", b"location")
#: where, in ``scope["state"]``, a route leaves what to keep instead of its answer
_WITHHELD_STATE = "idempotency_withheld"


@dataclass(frozen=True)
class _Withheld:
    """The problem kept, and replayed, in place of an answer that showed a secret."""

    status: int
    kind: ProblemKind
    detail: str


def withhold_from_replays(
    request: Request, *, detail: str, kind: ProblemKind = "secret-not-replayed", status: int = 409
) -> None:
    """This request's answer shows a secret once: with an ``Idempotency-Key``, store and
    replay this problem instead of the answer (the answer itself still goes to this caller)."""
    request.scope.setdefault("state", {})[_WITHHELD_STATE] = _Withheld(status, kind, detail)


@dataclass(frozen=True)
class _Found:
    """The record another request holds, as read."""

    request_sha256: str
    state: str
    status_code: int | None
    body: str | None
    headers: list[Any] | None


def request_digest(scope: Scope, body: bytes) -> str:
    """What makes two requests the same one: method, path, query and the body, a JSON body
    as its content (its members in any order, any spacing: a client that serialises a dict
    again on its retry sends the same request; outside tester: such a retry was a 422)."""
    return _digest(scope, _canonical(body))


def _digest(scope: Scope, body: bytes) -> str:
    method_path = f"{scope['method']} {scope['path']}"
    return hashlib.sha256(
        method_path.encode() + b"\0" + scope.get("query_string", b"") + b"\0" + body
    ).hexdigest()


def _canonical(body: bytes) -> bytes:
    """A JSON object's members sorted and spaced one way; any other body as it came (one
    that is not JSON, or names a member twice: the route refuses it anyway)."""
    try:  # ASCII out: a lone surrogate escape ("\\ud800") stays an escape, never text
        pairs = json.loads(body, object_pairs_hook=_no_repeats)  # that cannot be encoded
        return json.dumps(pairs, sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's stack too
        return body


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise ValueError("a member named twice")
    return dict(pairs)


def request_digests(scope: Scope, body: bytes) -> tuple[str, str]:
    """The request's digest, and the one records claimed before JSON bodies were compared
    by content hold (its bytes as sent): either names the same request."""
    return request_digest(scope, body), _digest(scope, body)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Idempotency:
    """The claim, the wait and the replay; the middleware calls :meth:`handle`."""

    def __init__(
        self,
        db: Database,
        *,
        ttl_s: float,
        wait_s: float,
        pending_s: float,
        poll_s: float = 0.05,
    ) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)
        self.wait_s = wait_s
        self.pending = timedelta(seconds=pending_s)
        self.poll_s = poll_s

    async def handle(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        tenant: str,
        key: str,
        body: bytes,
        problem: ProblemSender,
    ) -> None:
        method_path = f"{scope['method']} {scope['path']}"[:255]
        digests = request_digests(scope, body)
        deadline = time.monotonic() + self.wait_s
        while True:
            claimed, found = await asyncio.to_thread(self._claim, tenant, key, method_path, digests)
            if claimed:
                break
            if found is None:  # it vanished between our insert and our read: claim again
                continue
            if found.request_sha256 not in digests:
                await problem(
                    422,
                    "idempotency-key-reused",
                    "this Idempotency-Key was used with a different request",
                    [],
                )
                return
            if found.state == "done":
                await _replay(send, await asyncio.to_thread(self._current, tenant, found))
                return
            if time.monotonic() >= deadline:
                await problem(
                    409,
                    "idempotency-in-flight",
                    "a request with this Idempotency-Key is still in flight; retry to get its answer",
                    [(b"retry-after", b"1")],
                )
                return
            await asyncio.sleep(self.poll_s)
        await self._run_once(app, scope, receive, send, tenant=tenant, key=key)

    async def _run_once(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, tenant: str, key: str
    ) -> None:
        captured: dict[str, Any] = {"status": 0, "body": [], "headers": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() in _KEPT_HEADERS
                ]
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        completed = False
        try:
            await app(scope, receive, capture)
            content_type = dict(captured["headers"]).get("content-type", "")
            if 200 <= captured["status"] < 300 and content_type.startswith("application/json"):
                status, body, headers = captured["status"], b"", captured["headers"]
                withheld = scope.get("state", {}).get(_WITHHELD_STATE)
                if isinstance(withheld, _Withheld):  # the answer shows a secret: never kept
                    status, headers = withheld.status, [["content-type", PROBLEM_MEDIA_TYPE]]
                    problem = problem_body(
                        status, withheld.kind, withheld.detail, instance=scope["path"]
                    )
                    body = json.dumps(problem).encode()
                else:
                    body = b"".join(captured["body"])
                await asyncio.to_thread(self._complete, tenant, key, status, body.decode(), headers)
                completed = True
        finally:
            if not completed:  # failed, refused or dropped: a retry runs afresh
                await asyncio.to_thread(self._forget, tenant, key)

    # ------------------------------------------------------------------ database (in a thread)

    def _claim(
        self, tenant: str, key: str, method_path: str, digests: tuple[str, str]
    ) -> tuple[bool, _Found | None]:
        digest = digests[0]
        with self.db.session() as session:
            if store.claim_idempotency(
                session, tenant=tenant, key=key, method_path=method_path, request_sha256=digest
            ):
                return True, None
            session.rollback()
            row = store.get_idempotency(session, tenant=tenant, key=key)
            if row is None:
                return False, None
            now = utcnow()
            created = _aware(row.created_at)
            expired = created < now - self.ttl
            abandoned = row.state == "pending" and created < now - self.pending
            if expired or (abandoned and row.request_sha256 in digests):
                taken = store.take_over_idempotency(
                    session,
                    tenant=tenant,
                    key=key,
                    state=row.state,
                    older_than=now - (self.ttl if expired else self.pending),
                    method_path=method_path,
                    request_sha256=digest,
                )
                if taken:
                    return True, None
                session.rollback()
                row = store.get_idempotency(session, tenant=tenant, key=key)
                if row is None:
                    return False, None
            return False, _Found(
                row.request_sha256, row.state, row.status_code, row.body, row.headers
            )

    def _current(self, tenant: str, found: _Found) -> _Found:
        """The stored answer as replayed now: an image it links that the tenant deleted
        since is shown deleted, as a fresh GET shows it (:mod:`brandloop.api.replayed_images`)."""
        if found.body is None or ARTIFACT_PATH not in found.body:
            return found
        with self.db.session() as session:
            body = with_deleted_images(session, tenant=tenant, body=found.body)
        return replace(found, body=body)

    def _complete(
        self, tenant: str, key: str, status: int, body: str, headers: list[list[str]]
    ) -> None:
        with self.db.session() as session:
            store.complete_idempotency(
                session, tenant=tenant, key=key, status_code=status, body=body, headers=headers
            )

    def _forget(self, tenant: str, key: str) -> None:
        with self.db.session() as session:
            store.forget_idempotency(session, tenant=tenant, key=key)

    def purge(self) -> int:
        """Drop the records past their time to live."""
        with self.db.session() as session:
            return store.purge_idempotency(session, before=utcnow() - self.ttl)


async def _replay(send: Send, found: _Found) -> None:
    payload = (found.body or "").encode()
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in found.headers or []]
    if not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", b"application/json"))
    headers += [
        (b"content-length", str(len(payload)).encode()),
        (b"idempotent-replayed", b"true"),
    ]
    await send(
        {"type": "http.response.start", "status": found.status_code or 200, "headers": headers}
    )
    await send({"type": "http.response.body", "body": payload})
