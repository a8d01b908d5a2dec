"""A fake OpenAI-compatible image server on 127.0.0.1, for tests and benchmarks.

It speaks the OpenAI Images wire format (``POST /v1/images/generations``: JSON in, ``data[]``
of ``b64_json`` PNGs and ``usage`` out, OpenAI's error shapes), with a configurable latency and
a queue of injected faults, and keeps a ledger of paid calls by ``Idempotency-Key``.

In a test::

    app = FakeImagesApp(api_key="sk-test-123", latency_s=0.01)
    app.faults.extend(["429", "500"])          # the next two calls fail, then succeed
    with serve(app) as base_url:               # e.g. http://127.0.0.1:54321/v1
        ...
    assert app.ledger == {"bl-...": 1}

Standalone (for benchmarks or manual runs)::

    python -m tests.fakes.provider_server --port 8199 --latency 0.2

Faults (each used once, in order): ``429`` (``retry-after-ms``), ``429s`` (``Retry-After: 1``),
``500``, ``503``, ``timeout`` (sleeps ``timeout_s`` - past a client's read timeout - and then
generates and bills anyway, as OpenAI does with a request whose answer the client gave up on),
``malformed`` (HTTP 200, not
JSON), ``bad_image`` (base64 that is not an image), ``refuse`` (HTTP 400
``moderation_blocked``), ``401`` (a bad key, echoed back in the message as some servers do),
``echo_url`` (HTTP 400 whose message repeats the request's path and query, as some gateways
do). With ``echo_url=True`` every answer repeats them too: in the revised prompt and the
request id. A prompt containing ``REFUSE-ME`` is always refused. ``GET /_ledger`` and ``POST /_faults``
let another process read the ledger and queue faults.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from PIL import Image

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

FAULTS = {
    "429", "429s", "500", "503", "timeout", "malformed", "bad_image", "refuse", "401", "echo_url"
}  # fmt: skip
_SIZES = {"1024x1024", "1536x1024", "1024x1536", "256x256", "512x512", "64x64", "auto"}


class FakeImagesApp:
    """An ASGI app that plays an OpenAI Images server; inspect ``ledger`` and ``requests``."""

    def __init__(
        self,
        *,
        api_key: str = "sk-test-fake-key-0001",
        latency_s: float = 0.0,
        timeout_s: float = 5.0,
        image_side: int | None = None,
        sizes: set[str] | None = None,
        render: bool = False,
        revised_prompt: str | None = None,
        echo_url: bool = False,
    ) -> None:
        self.api_key = api_key
        #: what every image's ``revised_prompt`` says (default: the prompt's first 40 chars)
        self.revised_prompt = revised_prompt
        #: repeat each request's path and query in its revised prompt and request id
        self.echo_url = echo_url
        self.latency_s = latency_s
        self.timeout_s = timeout_s
        self.image_side = image_side
        self.sizes = sizes or _SIZES
        self.render = render
        self.faults: deque[str] = deque()
        self.ledger: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self._pngs: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path, method = scope["path"], scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/_ledger" and method == "GET":
            await _send(send, 200, json.dumps({"ledger": dict(self.ledger)}).encode())
        elif path == "/_faults" and method == "POST":
            self.faults.extend(json.loads(body))
            await _send(send, 204, b"")
        elif path.endswith("/images/generations") and method == "POST":
            target = f"{path}?{scope['query_string'].decode()}" if scope["query_string"] else path
            status, extra, payload = await self._generate(headers, body, target)
            await _send(send, status, payload, extra)
        else:
            await _send(send, 404, _error("not found", "invalid_request_error", None))

    # ------------------------------------------------------------------ the endpoint

    async def _generate(
        self, headers: dict[str, str], body: bytes, target: str = "/v1/images/generations"
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        self.requests.append(
            {"headers": headers, "body": request, "fault": fault, "target": target}
        )
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        request_id = f"req_{len(self.requests):06d}"
        if self.echo_url:
            request_id += f"_{target}"
        denied = key_refusal(headers, self.api_key, fault)
        if denied is not None:
            return denied
        if fault == "429":
            return (
                429,
                {"retry-after-ms": "50"},
                _error("Rate limit reached", "requests", "rate_limit_exceeded"),
            )
        if fault == "429s":
            return (
                429,
                {"retry-after": "1"},
                _error("Rate limit reached", "requests", "rate_limit_exceeded"),
            )
        if fault == "echo_url":
            return 400, {}, _error(f"bad url {target}", "invalid_request_error", None)
        if fault in {"500", "503"}:
            return int(fault), {}, _error("The server had an error", "server_error", None)
        if fault == "timeout":
            await asyncio.sleep(self.timeout_s)
        if fault == "malformed":
            return 200, {"content-type": "application/json"}, b"{not json at all"
        if fault == "refuse" or "REFUSE-ME" in str(request.get("prompt", "")):
            return (
                400,
                {"x-request-id": request_id},
                _error(
                    "Your request was rejected as a result of our safety system.",
                    "image_generation_user_error",
                    "moderation_blocked",
                ),
            )
        size = str(request.get("size", "1024x1024"))
        prompt = request.get("prompt")
        if not isinstance(prompt, str) or not prompt or size not in self.sizes:
            return (
                400,
                {},
                _error(f"Invalid size '{size}' or prompt", "invalid_request_error", None),
            )
        n = int(request.get("n", 1))
        if fault == "bad_image":
            images = [base64.b64encode(b"this is not an image").decode()] * n
        else:
            images = [self._png(size, prompt, i) for i in range(n)]
        key = headers.get("idempotency-key", "")
        with self._lock:
            self.ledger[key] += 1
        revised = self.revised_prompt or f"revised: {prompt[:40]}"
        if self.echo_url:
            revised += f" (sent to {target})"
        answer = {
            "created": int(time.time()),
            "data": [{"b64_json": b, "revised_prompt": revised} for b in images],
            "usage": {
                "total_tokens": 50 + 1056 * n,
                "input_tokens": 50,
                "output_tokens": 1056 * n,
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            },
        }
        return 200, {"x-request-id": request_id}, json.dumps(answer).encode()

    def _png(self, size: str, prompt: str, index: int) -> str:
        width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
        if self.image_side:
            width = height = self.image_side
        if self.render:  # on-brand pictures: brandloop's own preview renderer plays the model
            from brandloop.tools.providers.procedural import render_preview

            wanted, _, avoid = prompt.partition("\nAvoid: ")
            seed = len(self.requests) * 16 + index
            png = render_preview(
                prompt=wanted,
                negative_prompt=avoid,
                seed=seed,
                width=width,
                height=height,
                model="studio",
            )
            return base64.b64encode(png).decode()
        key = (width, height)
        if key not in self._pngs:
            image = Image.new("RGB", key, (200, 120, 40))
            for x in range(0, width, 16):  # some structure, so scoring sees edges
                image.paste((40, 60, 120), (x, 0, min(x + 8, width), height))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            self._pngs[key] = base64.b64encode(buffer.getvalue()).decode()
        return self._pngs[key]


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def key_refusal(
    headers: dict[str, str], api_key: str, fault: str | None
) -> tuple[int, dict[str, str], bytes] | None:
    """OpenAI's 401 for a wrong key (or the ``401`` fault), echoing the key as OpenAI does."""
    if headers.get("authorization") == f"Bearer {api_key}" and fault != "401":
        return None
    given = headers.get("authorization", "").removeprefix("Bearer ")
    return (
        401,
        {},
        _error(f"Incorrect API key provided: {given}.", "invalid_request_error", "invalid_api_key"),
    )


def _error(message: str, kind: str, code: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


async def _send(
    send: Send, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items() if k != "content-type"]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- running it


@contextmanager
def serve(
    app: Callable[[Scope, Receive, Send], Awaitable[None]], *, prefix: str = "/v1"
) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread on 127.0.0.1; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", http="h11", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake provider server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}{prefix}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8199)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api-key", default="sk-test-fake-key-0001")
    parser.add_argument("--image-side", type=int, default=None)
    args = parser.parse_args()
    import uvicorn

    app = FakeImagesApp(api_key=args.api_key, latency_s=args.latency, image_side=args.image_side)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
