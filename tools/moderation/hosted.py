"""The hosted moderation layer: OpenAI's moderation endpoint (``POST {base}/moderations``,
``omni-moderation-latest``, text and image inputs), mapped onto brandloop's categories.

It runs *in addition to* the offline layers when ``BRANDLOOP_MODERATION_PROVIDER=openai``, never
instead of them: intake sends the brief once the offline gate has passed it, the moderate node
sends every image NudeNet passed, ``brandloop moderate`` sends what it checks. It fails like an
image provider does (``tools/providers/errors.py``): 429/5xx/timeouts are retryable (retried
here, honouring Retry-After), 4xx are terminal, an answer of the wrong shape is malformed. What a
run does when the service cannot answer is the policy's ``hosted.on_error``.

The service's 13 categories map onto ours (``CATEGORY_MAP``): a category blocks when the service
flags any category mapped to it, or when the highest score mapped to it reaches the policy's
threshold for it (``hosted.thresholds``). ``sexual/minors`` also blocks at a score of 0.5 or
more, whatever the policy says.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import httpx
from pydantic import SecretStr

from brandloop.domain import ModerationFinding, ModerationVerdict
from brandloop.errors import BadInputError, ProviderError
from brandloop.settings import Settings, credentials_to_redact, url_credentials
from brandloop.tools.moderation.categories import SEXUAL_MINORS
from brandloop.tools.moderation.policy import HostedPolicy
from brandloop.tools.providers._http import (
    inspect_image,
    json_body,
    raise_for_status,
    redact,
    transport_error,
)
from brandloop.tools.providers.errors import MalformedResponseError, RetryableProviderError
from brandloop.tools.providers.urls import join_url

DEFAULT_MODEL: Final = "omni-moderation-latest"
PROVIDER: Final = "openai-moderation"
#: The service's categories (as documented for omni-moderation) → brandloop's.
CATEGORY_MAP: Final[Mapping[str, str]] = {
    "sexual": "sexual",
    "sexual/minors": SEXUAL_MINORS,
    "violence": "violence",
    "violence/graphic": "violence",
    "harassment/threatening": "violence",
    "hate": "hate",
    "hate/threatening": "hate",
    "harassment": "hate",
    "self-harm": "self_harm",
    "self-harm/intent": "self_harm",
    "self-harm/instructions": "self_harm",
    "illicit": "drugs",
    "illicit/violent": "weapons",
}
#: The score at which ``sexual/minors`` blocks even when the service does not flag it.
MINORS_SCORE: Final = 0.5
MAX_ATTEMPTS: Final = 3
MAX_WAIT_S: Final = 10.0

Sleep = Callable[[float], Awaitable[None]]


class HostedModerator(Protocol):
    """What the agent and the CLI call: one verdict for a text, images, or both."""

    async def moderate(
        self, *, text: str | None = None, images: Sequence[bytes] = (), source: str
    ) -> ModerationVerdict: ...


class OpenAIModeration:
    """:class:`HostedModerator` over OpenAI's moderation endpoint (or a server that speaks it).

    ``client`` is used as given (tests hand a local fake server's); without one each call opens
    a short-lived client with ``timeout_s``. What the service says back (an error, its request
    id) is cleaned of the key, the base URL's credentials and ``secrets`` (every credential the
    process configures: :func:`build_hosted_moderator`).
    """

    def __init__(
        self,
        *,
        api_key: SecretStr | str,
        base_url: str = "https://api.openai.com/v1",
        model: str = DEFAULT_MODEL,
        policy: HostedPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
        max_attempts: int = MAX_ATTEMPTS,
        sleep: Sleep = asyncio.sleep,
        secrets: Sequence[str] = (),
    ) -> None:
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._secrets = tuple(secrets)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.policy = policy or HostedPolicy()
        self._client = client
        self._timeout = timeout_s
        self._attempts = max(1, max_attempts)
        self._sleep = sleep

    def with_policy(self, policy: HostedPolicy) -> OpenAIModeration:
        """The same service read with another brand's thresholds."""
        return OpenAIModeration(
            api_key=self._key,
            base_url=self.base_url,
            model=self.model,
            policy=policy,
            client=self._client,
            timeout_s=self._timeout,
            max_attempts=self._attempts,
            sleep=self._sleep,
            secrets=self._secrets,
        )

    def body(self, *, text: str | None, images: Sequence[bytes]) -> dict[str, Any]:
        """The JSON body (public so tests can check the wire format)."""
        parts: list[dict[str, Any]] = []
        if text is not None:
            parts.append({"type": "text", "text": text})
        for data in images:
            try:
                fmt, _, _ = inspect_image(data, provider=PROVIDER)
            except MalformedResponseError as exc:
                raise BadInputError("hosted moderation: the image does not decode") from exc
            encoded = base64.b64encode(data).decode()
            parts.append(
                {"type": "image_url", "image_url": {"url": f"data:image/{fmt};base64,{encoded}"}}
            )
        return {"model": self.model, "input": parts}

    async def moderate(
        self, *, text: str | None = None, images: Sequence[bytes] = (), source: str
    ) -> ModerationVerdict:
        """The service's verdict on ``text`` and ``images`` in brandloop's categories.

        Raises the providers' errors: ``RetryableProviderError`` after the last retry,
        ``TerminalProviderError`` (bad key, bad request), ``MalformedResponseError``.
        """
        if text is None and not images:
            raise BadInputError("hosted moderation needs a text or an image")
        body = self.body(text=text, images=images)
        for attempt in range(1, self._attempts + 1):
            try:
                answer = await self._post(body)
            except RetryableProviderError as exc:
                exc.tries = attempt
                if attempt == self._attempts:
                    raise
                wait = exc.retry_after_s if exc.retry_after_s is not None else 0.5 * 2**attempt
                await self._sleep(min(wait, MAX_WAIT_S))
                continue
            return self._verdict(answer, source)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        secret = self._key.get_secret_value()
        headers = {"Authorization": f"Bearer {secret}"}
        url = join_url(self.base_url, "/moderations")
        try:
            if self._client is not None:
                response = await self._client.post(url, json=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise transport_error(exc, provider=PROVIDER) from exc
        secrets = [secret, *url_credentials(self.base_url), *self._secrets]
        raise_for_status(response, provider=PROVIDER, secrets=secrets)
        answer = json_body(response, provider=PROVIDER)
        request_id = response.headers.get("x-request-id")
        answer["_request_id"] = None if request_id is None else redact(request_id, secrets)
        return answer

    def _verdict(self, answer: dict[str, Any], source: str) -> ModerationVerdict:
        results = answer.get("results")
        if not isinstance(results, list) or not results:
            raise MalformedResponseError("the moderation answer has no results", provider=PROVIDER)
        flagged: dict[str, bool] = {}
        scores: dict[str, float] = {}
        for result in results:
            categories = result.get("categories") if isinstance(result, dict) else None
            category_scores = result.get("category_scores") if isinstance(result, dict) else None
            if not isinstance(categories, dict) or not isinstance(category_scores, dict):
                raise MalformedResponseError(
                    "a moderation result lacks categories or category_scores", provider=PROVIDER
                )
            for theirs, ours in CATEGORY_MAP.items():
                score = category_scores.get(theirs)
                if score is not None and not isinstance(score, int | float):
                    raise MalformedResponseError(
                        f"category score {theirs!r} is not a number", provider=PROVIDER
                    )
                if score is not None:
                    scores[ours] = max(scores.get(ours, 0.0), float(score))
                if categories.get(theirs) is True:
                    flagged[ours] = True
        findings: list[ModerationFinding] = []
        reasons: list[str] = []
        model = str(answer.get("model") or self.model)
        for category in dict.fromkeys(CATEGORY_MAP.values()):
            score = scores.get(category)
            threshold = (
                MINORS_SCORE if category == SEXUAL_MINORS else self.policy.thresholds.get(category)
            )
            over = score is not None and threshold is not None and score >= threshold
            if not (flagged.get(category) or over):
                continue
            why = "flagged" if flagged.get(category) else f"score {score:.2f} ≥ {threshold:.2f}"
            findings.append(
                ModerationFinding(
                    layer="hosted",
                    category=category,
                    rule=f"{model} {category}",
                    score=round(score, 4) if score is not None else None,
                )
            )
            reasons.append(f"{category}: hosted moderation ({model}) {why}")
        request_id = answer.get("_request_id")
        return ModerationVerdict(
            allowed=not findings,
            source=source,
            categories=[f.category for f in findings],
            reasons=reasons
            or [
                f"hosted moderation ({model}) found nothing"
                + (f", request {request_id}" if request_id else "")
            ],
            scores={f"hosted:{c}": round(s, 4) for c, s in scores.items()},
            findings=findings,
        )


HOSTED_UNAVAILABLE: Final = "hosted_unavailable"


async def ask(
    service: HostedModerator,
    policy: HostedPolicy,
    *,
    source: str,
    text: str | None = None,
    images: Sequence[bytes] = (),
) -> tuple[ModerationVerdict | None, str | None]:
    """The service's verdict, and a note when it could not answer. Unanswered, the policy's
    ``on_error`` decides: ``continue`` gives no verdict (the offline layers' stands),
    ``refuse`` a blocking one in category ``hosted_unavailable``."""
    try:
        return await service.moderate(text=text, images=images, source=source), None
    except ProviderError as exc:
        note = f"hosted moderation could not answer ({exc})"
        if policy.on_error == "continue":
            return None, note + "; the offline layers' verdict stands"
        refusal = ModerationVerdict(
            allowed=False,
            source=source,
            categories=[HOSTED_UNAVAILABLE],
            reasons=[f"{HOSTED_UNAVAILABLE}: {note}; the policy refuses without it"],
            findings=[
                ModerationFinding(layer="hosted", category=HOSTED_UNAVAILABLE, rule=str(exc)[:200])
            ],
        )
        return refusal, note


def combined(
    offline: ModerationVerdict, hosted: ModerationVerdict | None, note: str | None = None
) -> ModerationVerdict:
    """The offline layers' verdict with the hosted service's added: blocked if either blocks;
    ``note`` (the service could not answer) is kept among the reasons."""
    if hosted is None:
        if note is None:
            return offline
        return offline.model_copy(update={"reasons": [*offline.reasons, note]})
    return ModerationVerdict(
        allowed=offline.allowed and hosted.allowed,
        source=offline.source,
        categories=list(dict.fromkeys([*offline.categories, *hosted.categories])),
        reasons=[*offline.reasons, *hosted.reasons],
        scores={**offline.scores, **hosted.scores},
        findings=[*offline.findings, *hosted.findings],
    )


def build_hosted_moderator(settings: Settings) -> OpenAIModeration | None:
    """The configured hosted layer, or None (the default: offline layers only)."""
    if settings.moderation_provider is None:
        return None
    key = settings.moderation_api_key or settings.openai_api_key
    if key is None:
        raise BadInputError(
            "BRANDLOOP_MODERATION_PROVIDER=openai needs BRANDLOOP_MODERATION_API_KEY "
            "(or BRANDLOOP_OPENAI_API_KEY)"
        )
    return OpenAIModeration(
        api_key=key,
        base_url=settings.moderation_base_url or settings.openai_base_url,
        model=settings.moderation_model,
        timeout_s=settings.provider_timeout_s,
        secrets=credentials_to_redact(settings),
    )
