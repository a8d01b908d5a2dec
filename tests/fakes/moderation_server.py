"""A fake OpenAI moderation server on 127.0.0.1, for tests.

It answers ``POST /v1/moderations`` with the documented response shape of
``omni-moderation-latest``: ``{"id", "model", "results": [{"flagged", "categories",
"category_scores", "category_applied_input_types"}]}`` with all 13 categories, one result for
the whole (text and image) input. Scores come from coded markers in the text (codes, so the
offline layers never read a category's name): ``score("sexual", 0.8)`` writes the marker that
sets a score and ``flag("violence/graphic")`` the one that flags a category (score 0.9); an
image whose red channel is over 200 in its top-left pixel flags ``sexual`` (score 0.95). OpenAI's error shapes,
a queue of faults (``429`` with ``retry-after-ms``, ``500``, ``401``, ``400``, ``malformed``,
``no_results``), a key check, and every request kept in ``requests``.

    app = FakeModerationApp(api_key="sk-test-mod-0001")
    with serve(app) as base_url:   # http://127.0.0.1:PORT/v1
        ...
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections import deque
from typing import Any

from PIL import Image

from tests.fakes.provider_server import (
    Receive,
    Scope,
    Send,
    _error,
    _send,
    key_refusal,
    read_body,
    serve,
)

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_TYPES = {"sexual", "violence", "violence/graphic", "self-harm", "self-harm/intent",
               "self-harm/instructions"}  # fmt: skip
_SCORE = re.compile(r"\[s([0-9]{2}) ([0-9.]+)\]")
_FLAG = re.compile(r"\[f([0-9]{2})\]")

__all__ = ["CATEGORIES", "FakeModerationApp", "flag", "score", "serve"]


def flag(category: str) -> str:
    """The marker that makes the fake flag ``category``."""
    return f"[f{CATEGORIES.index(category):02d}]"


def score(category: str, value: float) -> str:
    """The marker that gives ``category`` the score ``value``."""
    return f"[s{CATEGORIES.index(category):02d} {value}]"


class FakeModerationApp:
    """An ASGI app that plays OpenAI's moderation endpoint."""

    def __init__(self, *, api_key: str = "sk-test-mod-0001") -> None:
        self.api_key = api_key
        self.faults: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] != "/v1/moderations" or scope["method"] != "POST":
            await _send(send, 404, _error("not found", "invalid_request_error", None))
            return
        status, extra, payload = self._answer(headers, body)
        await _send(send, status, payload, extra)

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        fault = self.faults.popleft() if self.faults else None
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        self.requests.append({"headers": headers, "body": request, "fault": fault})
        denied = key_refusal(headers, self.api_key, fault)
        if denied is not None:
            return denied
        if fault == "429":
            return (
                429,
                {"retry-after-ms": "20"},
                _error("Rate limit reached", "requests", "rate_limit_exceeded"),
            )
        if fault == "500":
            return 500, {}, _error("The server had an error", "server_error", None)
        if fault == "400" or not isinstance(request, dict) or "input" not in request:
            return 400, {}, _error("Invalid input", "invalid_request_error", None)
        if fault == "malformed":
            return 200, {}, b"<html>not json</html>"
        scores = dict.fromkeys(CATEGORIES, 0.0001)
        flags = dict.fromkeys(CATEGORIES, False)
        for part in self._parts(request["input"]):
            if part.get("type") == "text":
                text = str(part.get("text", ""))
                for code, value in _SCORE.findall(text):
                    scores[CATEGORIES[int(code)]] = float(value)
                for code in _FLAG.findall(text):
                    name = CATEGORIES[int(code)]
                    flags[name], scores[name] = True, max(scores[name], 0.9)
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                data = base64.b64decode(url.split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as image:
                    red = image.convert("RGB").getpixel((0, 0))[0]
                if red > 200:
                    flags["sexual"], scores["sexual"] = True, 0.95
        result = {
            "flagged": any(flags.values()),
            "categories": flags,
            "category_scores": scores,
            "category_applied_input_types": {
                c: ["text", "image"] if c in IMAGE_TYPES else ["text"] for c in CATEGORIES
            },
        }
        answer = {
            "id": f"modr-{len(self.requests):04d}",
            "model": "omni-moderation-2024-09-26",
            "results": [] if fault == "no_results" else [result],
        }
        return (
            200,
            {"x-request-id": f"req_mod_{len(self.requests):04d}"},
            json.dumps(answer).encode(),
        )

    @staticmethod
    def _parts(value: Any) -> list[dict[str, Any]]:
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        return [p if isinstance(p, dict) else {"type": "text", "text": str(p)} for p in value]
