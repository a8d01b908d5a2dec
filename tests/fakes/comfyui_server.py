"""A fake ComfyUI server: a queue that runs one job at a time, taking ``run_s`` seconds each.

It speaks the parts of ComfyUI's HTTP API brandloop uses: ``POST /prompt`` (answers the job's
``prompt_id``: its own, as servers before v0.3.45 do, unless ``own_ids=False``), ``GET /queue``
(``queue_running`` and ``queue_pending`` items ``[number, prompt_id, prompt, extra_data,
outputs]``), ``GET /history`` (``?max_items=``), ``GET /history/{prompt_id}`` and ``GET /view``.
Inspect ``posts`` (every queued body), ``history_reads`` (the ids asked for) and ``views``.

Serve it with :func:`tests.fakes.provider_server.serve`.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

from PIL import Image

from tests.fakes.provider_server import Receive, Scope, Send, _send


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeComfyApp:
    def __init__(
        self,
        *,
        run_s: float = 0.0,
        own_ids: bool = True,
        fail_with: str | None = None,
        reject: dict[str, Any] | None = None,
        side: int = 64,
    ) -> None:
        self.run_s = run_s
        self.own_ids = own_ids
        self.fail_with = fail_with
        self.reject = reject
        self.side = side
        self.posts: list[dict[str, Any]] = []
        self.history_reads: list[str] = []
        self.views: list[dict[str, str]] = []
        self.pending: list[list[Any]] = []
        self.running: list[Any] | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self._worker: asyncio.Task[None] | None = None

    def enqueue(self, prompt_id: str, prompt: dict[str, Any], extra: dict[str, Any]) -> None:
        self.pending.append([len(self.posts) + len(self.history), prompt_id, prompt, extra, ["9"]])

    async def _run(self) -> None:
        while self.pending:
            self.running = self.pending.pop(0)
            await asyncio.sleep(self.run_s)
            number, prompt_id, prompt, extra, outputs = self.running
            if self.fail_with:
                status = {
                    "status_str": "error",
                    "completed": False,
                    "messages": [["execution_error", {"exception_message": self.fail_with}]],
                }
                produced: dict[str, Any] = {}
            else:
                status = {"status_str": "success", "completed": True, "messages": []}
                produced = {
                    "9": {
                        "images": [
                            {"filename": f"{prompt_id}.png", "subfolder": "", "type": "output"}
                        ]
                    }
                }
            # into the history and out of the queue at once, as ComfyUI does under its mutex
            self.history[prompt_id] = {
                "prompt": [number, prompt_id, prompt, extra, outputs],
                "outputs": produced,
                "status": status,
            }
            self.running = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message: MutableMapping[str, Any] = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        query = {
            k: v[0]
            for k, v in parse_qs(
                scope.get("query_string", b"").decode(), keep_blank_values=True
            ).items()
        }
        if path == "/prompt" and method == "POST":
            await self._post(send, json.loads(body))
        elif path == "/queue":
            running = [self.running] if self.running is not None else []
            answer = {"queue_running": running, "queue_pending": self.pending}
            await _send(send, 200, json.dumps(answer).encode())
        elif path == "/history":
            items = list(self.history.items())[-int(query.get("max_items", "10000")) :]
            await _send(send, 200, json.dumps(dict(items)).encode())
        elif path.startswith("/history/"):
            prompt_id = path.rsplit("/", 1)[1]
            self.history_reads.append(prompt_id)
            entry = self.history.get(prompt_id)
            await _send(send, 200, json.dumps({prompt_id: entry} if entry else {}).encode())
        elif path == "/view":
            self.views.append(query)
            await _send(send, 200, _png(self.side, self.side), {"content-type": "image/png"})
        else:
            await _send(send, 404, b"{}")

    async def _post(self, send: Send, request: dict[str, Any]) -> None:
        self.posts.append(request)
        if self.reject is not None:
            await _send(send, 400, json.dumps(self.reject).encode())
            return
        prompt_id = str(uuid.uuid4()) if self.own_ids else str(request.get("prompt_id"))
        extra = dict(request.get("extra_data") or {})
        extra["client_id"] = request.get("client_id")
        self.enqueue(prompt_id, request["prompt"], extra)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        answer = {"prompt_id": prompt_id, "number": len(self.posts), "node_errors": {}}
        await _send(send, 200, json.dumps(answer).encode())
