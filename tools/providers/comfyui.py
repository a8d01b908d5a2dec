"""ComfyUI: queue a workflow graph with ``POST {base}/prompt``, poll ``/history/{id}`` until it
is done (or a deadline passes), then fetch each output with ``/view``.

The job is followed by the ``prompt_id`` the server answers the POST with: servers before
v0.3.45 ignore a client-chosen id and assign their own. The idempotency key travels in the
job's ``extra_data``, so before queueing, a retried or resumed call looks for its job first -
in ``/queue`` (pending or running), then in ``/history`` - and waits for it or reuses its
outputs instead of queueing (and paying for) it again. That makes a repeated call safe
(``replay_safe``): a call that gave up waiting is an unknown outcome the resilience layer may
try again. The graph is an API-format workflow template whose string values ``$prompt``,
``$negative_prompt``, ``$seed``, ``$width``, ``$height``, ``$batch_size``, ``$checkpoint``,
``$steps`` and ``$cfg`` are filled in.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from brandloop.domain import ModelSpec
from brandloop.policies.catalog import image_price
from brandloop.providers import GeneratedImage, ImageRequest, ImageResult
from brandloop.settings import url_credentials
from brandloop.tools.providers._http import (
    inspect_image,
    json_body,
    raise_for_status,
    reading_answer,
    redact,
    send,
)
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    StillRunningError,
    TerminalProviderError,
)
from brandloop.tools.providers.urls import join_url

DEFAULT_WORKFLOW = Path(__file__).with_name("comfyui_txt2img.json")
DEFAULTS: dict[str, Any] = {"steps": 25, "cfg": 7.0}
_NAMESPACE = uuid.UUID("6f1c3e1e-4b53-4c0e-9a55-62726e646c6f")
KEY_FIELD = "brandloop_key"  # where the idempotency key rides in a job's extra_data
HISTORY_SCAN = 256  # how far back /history is searched for an earlier job of the same key


def load_workflow(path: Path = DEFAULT_WORKFLOW) -> dict[str, Any]:
    graph = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(graph, dict) or not graph:
        raise ValueError(f"{path} is not an API-format ComfyUI workflow (an object of nodes)")
    return graph


def fill(template: Any, values: dict[str, Any]) -> Any:
    """A copy of ``template`` with every string ``$name`` replaced by ``values[name]``."""
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str) and template.startswith("$") and template[1:] in values:
        return values[template[1:]]
    return template


class ComfyUIProvider:
    """``ImageProvider`` over a ComfyUI server's HTTP API."""

    name = "comfyui"
    #: a repeated call finds its job (queue, history) instead of queueing it again
    replay_safe = True

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        workflow: dict[str, Any] | None = None,
        poll_interval_s: float = 1.0,
        deadline_s: float = 600.0,
        models: Sequence[ModelSpec] = (),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        #: what every error is cleaned of: a credential in the base URL's query
        self._secrets = url_credentials(self.base_url)
        self.workflow = workflow or load_workflow()
        self.poll_interval_s, self.deadline_s = poll_interval_s, deadline_s
        self._specs = {m.model: m for m in models if m.provider == self.name}
        self._sleep = sleep

    @staticmethod
    def prompt_id(request: ImageRequest) -> str:
        if request.idempotency_key:
            return str(uuid.uuid5(_NAMESPACE, request.idempotency_key))
        return str(uuid.uuid4())

    def graph(self, request: ImageRequest, seed: int) -> dict[str, Any]:
        values = {
            **DEFAULTS,
            **request.params,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "seed": seed,
            "width": request.width,
            "height": request.height,
            "batch_size": request.count,
            "checkpoint": request.model,
        }
        graph: dict[str, Any] = fill(self.workflow, values)
        return graph

    async def generate(self, request: ImageRequest) -> ImageResult:
        seed = request.seed if request.seed is not None else int(uuid.uuid4().int % 2**32)
        key = request.idempotency_key
        found = await self._find(key, self.prompt_id(request)) if key else None
        entry: dict[str, Any] | None = None
        if found is None:
            prompt_id = await self._queue(request, self.prompt_id(request), seed)
        else:  # queued, running or done already: never queue it again
            prompt_id, entry = found
        with reading_answer(self.name):  # the job is queued: a failure now may have cost
            if entry is None:
                entry = await self._wait(prompt_id)
            images = await self._outputs(entry)
            if not images:
                raise MalformedResponseError("comfyui finished with no images", provider=self.name)
        images = [
            img.model_copy(update={"seed": seed if i == 0 else None})
            for i, img in enumerate(images)
        ]
        spec = self._specs.get(request.model)
        price = image_price(spec, width=request.width, height=request.height) if spec else 0.0
        return ImageResult(
            images=images,
            seed=seed,
            provider_request_id=prompt_id,
            usage={"images": len(images)},
            cost_usd=round(price * len(images), 6),
            finish_reason="success",
        )

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        response = await send(
            self._client, "GET", join_url(self.base_url, path, params), provider=self.name
        )
        raise_for_status(response, provider=self.name, secrets=self._secrets)
        return response

    async def _find(self, key: str, client_id: str) -> tuple[str, dict[str, Any] | None] | None:
        """An earlier job of this call: (its prompt id, its history entry or None while it is
        queued or running), or None if the server has none. The queue is read before the
        history: a job leaves the queue only once it is in the history."""
        queue = json_body(await self._get("/queue"), provider=self.name)
        for lane in ("queue_running", "queue_pending"):
            for item in queue.get(lane) or []:
                prompt_id = _item_prompt_id(item)
                if prompt_id is not None and (prompt_id == client_id or _item_key(item) == key):
                    return prompt_id, None
        present, entry = await self._history(client_id)
        if present:
            return client_id, entry
        history = json_body(
            await self._get("/history", {"max_items": str(HISTORY_SCAN)}), provider=self.name
        )
        for prompt_id, item in history.items():
            if isinstance(item, dict) and _item_key(item.get("prompt")) == key:
                present, entry = self._finished(item)
                return prompt_id, entry
        return None

    async def _queue(self, request: ImageRequest, prompt_id: str, seed: int) -> str:
        """Queue the job; the prompt id the server answers with (its own, on older servers)."""
        payload = {
            "prompt": self.graph(request, seed),
            "client_id": "brandloop",
            "prompt_id": prompt_id,
            "extra_data": {KEY_FIELD: request.idempotency_key},
        }
        response = await send(
            self._client,
            "POST",
            join_url(self.base_url, "/prompt"),
            provider=self.name,
            json=payload,
        )
        if response.status_code == 400:
            body = json_body(response, provider=self.name)
            error = body.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            raise TerminalProviderError(
                redact(
                    f"comfyui rejected the workflow: {str(message)[:200]} "
                    f"(node errors: {json.dumps(body.get('node_errors', {}))[:200]})",
                    self._secrets,
                ),
                provider=self.name,
                status_code=400,
            )
        raise_for_status(response, provider=self.name, secrets=self._secrets)
        with reading_answer(self.name):
            answered = json_body(response, provider=self.name).get("prompt_id")
            if not isinstance(answered, str) or not answered:
                raise MalformedResponseError(
                    "comfyui queued the job but answered no prompt_id", provider=self.name
                )
            return answered

    async def _history(self, prompt_id: str) -> tuple[bool, dict[str, Any] | None]:
        """Whether the history holds the job, and its entry once it has finished."""
        body = json_body(await self._get(f"/history/{prompt_id}"), provider=self.name)
        entry = body.get(prompt_id)
        if entry is None:
            return False, None
        if not isinstance(entry, dict):
            raise MalformedResponseError(
                "comfyui history entry is not an object", provider=self.name
            )
        return self._finished(entry)

    def _finished(self, entry: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        reported = entry.get("status")
        status = reported if isinstance(reported, dict) else {}
        if status.get("status_str") == "error":
            raise TerminalProviderError(
                f"comfyui failed to run the workflow: {_execution_error(status)}",
                provider=self.name,
                billing="billed",  # it ran (and used the GPU) before it failed
            )
        if status and not status.get("completed", True):
            return True, None
        return True, entry

    async def _wait(self, prompt_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.deadline_s
        while True:
            _, entry = await self._history(prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() >= deadline:
                raise StillRunningError(
                    f"comfyui did not finish prompt {prompt_id} within {self.deadline_s:g}s; "
                    "it is still queued or running",
                    provider=self.name,
                )
            await self._sleep(self.poll_interval_s)

    async def _outputs(self, entry: dict[str, Any]) -> list[GeneratedImage]:
        outputs = entry.get("outputs")
        if not isinstance(outputs, dict):
            raise MalformedResponseError("comfyui history has no outputs", provider=self.name)
        images: list[GeneratedImage] = []
        for node in outputs.values():
            for ref in (node or {}).get("images", []) if isinstance(node, dict) else []:
                if not isinstance(ref, dict) or ref.get("type", "output") != "output":
                    continue
                params = {
                    "filename": str(ref.get("filename", "")),
                    "subfolder": str(ref.get("subfolder", "")),
                    "type": "output",
                }
                raw = (await self._get("/view", params)).content
                fmt, width, height = inspect_image(raw, provider=self.name)
                images.append(GeneratedImage(data=raw, format=fmt, width=width, height=height))
        return images


def _item_prompt_id(item: object) -> str | None:
    """A queue item is ``[number, prompt_id, prompt, extra_data, outputs, ...]``."""
    if isinstance(item, list) and len(item) > 1 and isinstance(item[1], str):
        return item[1]
    return None


def _item_key(item: object) -> str | None:
    if isinstance(item, list) and len(item) > 3 and isinstance(item[3], dict):
        key = item[3].get(KEY_FIELD)
        return key if isinstance(key, str) else None
    return None


def _execution_error(status: dict[str, Any]) -> str:
    for message in status.get("messages", []):
        if isinstance(message, list) and len(message) == 2 and message[0] == "execution_error":
            detail = message[1] if isinstance(message[1], dict) else {}
            return str(detail.get("exception_message", "execution error"))[:200]
    return "execution error"
