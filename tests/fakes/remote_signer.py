"""A fake remote C2PA signer on 127.0.0.1 (what a small service in front of a KMS would be):
``POST /sign`` with the bytes to sign answers the ECDSA P-256 signature in DER, as cloud KMSes
do. It checks a bearer token, can be told to fail, and records every request.

Also a fake time-stamping authority that records the RFC 3161 queries it gets and answers
something that is not a time-stamp token (enough to show the TSA URL is used).

Use with ``tests.fakes.provider_server.serve(app, prefix="")``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, kind: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


async def _seen(scope: Scope, receive: Receive) -> Seen:
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    return Seen(scope["path"], headers, await _body(receive))


@dataclass
class FakeRemoteSigner:
    """Signs with ``key_pem`` (an EC P-256 private key); ``fail_with`` makes it answer that
    HTTP status instead."""

    key_pem: str
    token: str = "signer-token-0001"
    fail_with: int | None = None
    requests: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        seen = await _seen(scope, receive)
        self.requests.append(seen)
        body, headers = seen.body, seen.headers
        if scope["method"] != "POST" or scope["path"] != "/sign":
            await _answer(send, 404, b"not found", b"text/plain")
            return
        if headers.get("authorization") != f"Bearer {self.token}":
            await _answer(send, 401, b"bad token", b"text/plain")
            return
        if self.fail_with is not None:
            await _answer(send, self.fail_with, b"signer unavailable", b"text/plain")
            return
        key = serialization.load_pem_private_key(self.key_pem.encode(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(body, ec.ECDSA(hashes.SHA256()))  # DER, as KMSes answer
        await _answer(send, 200, signature, b"application/octet-stream")


@dataclass
class FakeTimestampAuthority:
    """Records time-stamp queries and answers garbage (not a TimeStampResp)."""

    queries: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.queries.append(await _seen(scope, receive))
        await _answer(send, 200, b"not a time-stamp response", b"application/timestamp-reply")
