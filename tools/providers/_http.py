"""What the HTTP adapters share: one error model over status codes, Retry-After, secret
redaction and image decoding. Adapters call these so every backend fails the same way.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import ssl
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

import httpx
from PIL import Image, UnidentifiedImageError
from pydantic import SecretStr

from brandloop.domain import ModelSpec
from brandloop.errors import ProviderError
from brandloop.providers import ImageResult
from brandloop.settings import url_credentials
from brandloop.tools.moderation.keys import redact_key_shaped
from brandloop.tools.moderation.pii import ALL_KINDS, PiiKind
from brandloop.tools.moderation.pii import redact as redact_pii
from brandloop.tools.providers.errors import (
    MalformedResponseError,
    RetryableProviderError,
    TerminalProviderError,
    UnknownOutcomeError,
)
from brandloop.tools.providers.urls import join_url

ImageFormat = Literal["png", "jpeg", "webp"]


class HostedApiProvider:
    """What the adapters of hosted, keyed APIs share: the injected ``httpx.AsyncClient``, the
    account's key (kept a ``SecretStr``), the base URL and the catalog's specs of this provider."""

    name: str
    default_base_url: ClassVar[str]

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: SecretStr | str,
        base_url: str | None = None,
        models: Sequence[ModelSpec] = (),
    ) -> None:
        self._client = client
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self._specs = {m.model: m for m in models if m.provider == self.name}
        self._urls: dict[str, httpx.URL] = {}

    def url(self, path: str) -> httpx.URL | str:
        """``path`` below the base URL, its query kept after it (:func:`join_url`), parsed
        once per path: httpx parses a ``str`` URL again on every request (some 20 microseconds
        of a call's client CPU). One that does not parse is returned as it is, for
        :func:`send` to refuse before anything is sent."""
        url = self._urls.get(path)
        if url is None:
            text = join_url(self.base_url, path)
            try:
                url = self._urls[path] = httpx.URL(text)
            except httpx.InvalidURL:
                return text
        return url

    def _secrets(self) -> list[str]:
        """What this adapter takes out of every error it raises: the key and whatever
        credential the base URL holds (``?api_key=``: a server may echo its request's path)."""
        return [self._key.get_secret_value(), *url_credentials(self.base_url)]


RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
#: a gateway gave up waiting on the backend, which may still have done (and billed) the work
UNKNOWN_OUTCOME_STATUS = frozenset({504, 520, 522, 524})
MAX_RETRY_AFTER_S = 60.0
MAX_MESSAGE_CHARS = 300
#: The most of a successful answer an adapter reads. The largest answer a supported backend
#: documents is OpenAI's ``n=10`` at 1536x1024 as base64 PNGs, some 50 MB; a body past this is
#: a broken or hostile server, and reading it whole would hold it all in memory.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: The most of an error answer kept: enough for any backend's explanation.
MAX_ERROR_BODY_BYTES = 64 * 1024
_FORMATS: dict[str, ImageFormat] = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


#: A run of this many characters of a configured secret counts as the secret: a server that
#: echoes part of a key (its tail, a prefix, a middle run) gives that part away. Eight
#: characters of a random key are some 47 bits, which no ordinary text repeats by chance.
SECRET_FRAGMENT_CHARS = 8
REDACTED = "[redacted]"


def base64_forms(secret: str) -> list[str]:
    """What base64 makes of ``secret`` inside any longer text (a ``Basic`` header, a server
    echoing its request encoded): the characters that depend on the secret alone, at each of
    the three alignments it can fall on."""
    data = secret.encode()
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        forms.append(encoded[-(-8 * shift // 6) : 8 * (shift + len(data)) // 6])
    return forms


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove every secret we know of, any run of 8 or more of its characters (as written and
    as base64 carries it), and anything shaped like an API key from ``text``.

    A secret shorter than 8 characters (but at least 4) is removed only whole, and only as
    written."""
    known = [s for s in secrets if s]
    encoded = [f for s in known if len(s) >= SECRET_FRAGMENT_CHARS for f in base64_forms(s)]
    taken = bytearray(len(text))  # 1 where a secret or a fragment of one was found
    for secret in (*known, *encoded):
        if not secret or len(secret) < 4:
            continue
        size = min(len(secret), SECRET_FRAGMENT_CHARS)
        pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
        for start in range(len(text) - size + 1):
            if text[start : start + size] in pieces:
                taken[start : start + size] = b"\x01" * size
    if any(taken):
        parts: list[str] = []
        for index, char in enumerate(text):
            if not taken[index]:
                parts.append(char)
            elif index == 0 or not taken[index - 1]:
                parts.append(REDACTED)
        text = "".join(parts)
    return redact_key_shaped(text, REDACTED)


def redact_returned(
    result: ImageResult, *, secrets: Iterable[str | None] = (), pii: Sequence[PiiKind] = ALL_KINDS
) -> ImageResult:
    """``result`` with every text the backend returned (the revised prompt, the request id,
    the strings in ``usage``) passed through :func:`redact` and the PII redactor.

    What a backend says back is stored (attempts, receipts, the PNG, the trace), and a server
    may echo the key it was sent or the personal data of a prompt it rewrote."""
    known = [s for s in secrets if s]

    def clean(text: str) -> str:
        return redact_pii(redact(text, known), tuple(pii)).text

    def cleaned(value: Any) -> Any:
        if isinstance(value, str):
            return clean(value)
        if isinstance(value, dict):
            return {key: cleaned(item) for key, item in value.items()}
        if isinstance(value, list):
            return [cleaned(item) for item in value]
        return value

    return result.model_copy(
        update={
            "revised_prompt": None
            if result.revised_prompt is None
            else clean(result.revised_prompt),
            "provider_request_id": None
            if result.provider_request_id is None
            else clean(result.provider_request_id),
            "usage": cleaned(result.usage),
        }
    )


def redact_error(exc: ProviderError, secrets: Iterable[str | None]) -> ProviderError:
    """``exc`` with its message passed through :func:`redact`, in place (its kind, billing and
    tries stay): an adapter knows its own key, the caller every credential configured."""
    if exc.args:
        exc.args = (redact(str(exc.args[0]), secrets), *exc.args[1:])
    return exc


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The wait a server asks for: ``retry-after-ms``, then ``Retry-After`` (seconds or an
    HTTP date), capped at 60 s so a hostile header cannot park a run."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return min(max(float(raw_ms) / 1000, 0.0), MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    now = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def error_message(response: httpx.Response) -> str:
    """The backend's own explanation, from the usual JSON error shapes or the raw text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:MAX_MESSAGE_CHARS].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:MAX_MESSAGE_CHARS]
        if isinstance(error, str):
            return error[:MAX_MESSAGE_CHARS]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)[:MAX_MESSAGE_CHARS]
        for key in ("message", "detail", "name"):
            if body.get(key):
                return str(body[key])[:MAX_MESSAGE_CHARS]
    return json.dumps(body)[:MAX_MESSAGE_CHARS]


def raise_for_status(
    response: httpx.Response, *, provider: str, secrets: Iterable[str | None] = ()
) -> None:
    """Turn a non-2xx answer into retryable or terminal; refusals are the adapter's to spot
    first, because every backend reports them differently."""
    if response.is_success:
        return
    status = response.status_code
    message = redact(f"{provider} HTTP {status}: {error_message(response)}", secrets)
    if status in UNKNOWN_OUTCOME_STATUS:
        raise UnknownOutcomeError(message, provider=provider, status_code=status)
    if status in RETRYABLE_STATUS or status >= 500:
        raise RetryableProviderError(
            message,
            provider=provider,
            status_code=status,
            retry_after_s=retry_after_seconds(response.headers),
        )
    raise TerminalProviderError(message, provider=provider, status_code=status)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL | str,
    *,
    provider: str,
    max_bytes: int = MAX_RESPONSE_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request and read its answer, streamed and at most ``max_bytes`` of it.

    A 2xx body past the cap is a :class:`MalformedResponseError` with ``billing: unknown`` (the
    backend answered, so it likely billed the work); an error body is cut to its first 64 KiB.
    Transport failures become :func:`transport_error`. A request that cannot be built or
    written (a header that does not encode, or holds a line break or another control character)
    fails before any byte is sent: a terminal error, ``not_billed``, naming no header value."""
    try:
        request = client.build_request(method, url, **kwargs)
    except Exception as exc:  # e.g. UnicodeEncodeError: a header that is not ASCII
        raise _not_sent(provider, type(exc).__name__) from exc
    for name, value in request.headers.raw:
        if not _FIELD_NAME.fullmatch(name):
            raise _not_sent(provider, "a header name HTTP does not allow")
        if not _FIELD_VALUE.fullmatch(value):
            raise _not_sent(
                provider, f"header {name.decode()} holds a line break, a NUL or a blank at an end"
            )
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        raise transport_error(exc, provider=provider) from exc
    limit = max_bytes if response.is_success else MAX_ERROR_BODY_BYTES
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                if response.is_success:
                    raise MalformedResponseError(
                        f"{provider} answered HTTP {response.status_code} with a body larger "
                        f"than {max_bytes // (1024 * 1024)} MiB; brandloop stopped reading it",
                        provider=provider,
                        status_code=response.status_code,
                        billing="unknown",
                    )
                break
    except httpx.TransportError as exc:
        raise transport_error(exc, provider=provider) from exc
    finally:
        await response.aclose()
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in {"content-encoding", "content-length", "transfer-encoding"}
    ]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks)[:limit],
        request=request,
    )


#: What HTTP/1.1 lets a header name and value be (RFC 9110 5.1, 5.5, as h11 checks them before
#: writing a request): a value holds no NUL, CR, LF or other line break, and no blank at an end.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")


def _not_sent(provider: str, why: str) -> TerminalProviderError:
    return TerminalProviderError(
        f"{provider}: the request could not be built ({why}); nothing was sent",
        provider=provider,
        billing="not_billed",
    )


@contextmanager
def reading_answer(provider: str) -> Iterator[None]:
    """Around reading a 2xx answer: a failure here comes after the backend did the work, so
    what it cost is ``unknown``, never ``not_billed`` (docs/providers.md): a malformed answer,
    or any unexpected error reading it, keeps its whole reservation until reconciled. Errors
    that know their billing (a filtered image, billed) keep it."""
    try:
        yield
    except ProviderError as exc:
        if isinstance(exc, MalformedResponseError) and exc.billing == "not_billed":
            exc.billing = "unknown"
        raise
    except Exception as exc:
        raise MalformedResponseError(
            f"{provider} answered something brandloop could not read ({type(exc).__name__})",
            provider=provider,
            billing="unknown",
        ) from exc


def json_body(response: httpx.Response, *, provider: str) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(
            f"{provider} answered HTTP {response.status_code} with a body that is not JSON",
            provider=provider,
            status_code=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"{provider} answered JSON that is not an object", provider=provider
        )
    return body


def decode_b64(data: object, *, provider: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise MalformedResponseError(f"{provider} answered no image data", provider=provider)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponseError(
            f"{provider} answered image data that is not base64", provider=provider
        ) from exc


def inspect_image(data: bytes, *, provider: str) -> tuple[ImageFormat, int, int]:
    """Format and size of an image, or MalformedResponseError when it does not decode.

    Checks the header and the file's structure (``verify``: chunk checksums, truncation)
    without decompressing every pixel, so a 1024x1024 answer costs the event loop well under a
    millisecond; scoring decodes the pixels later, off the loop."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = _FORMATS.get(image.format or "")
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MalformedResponseError(
            f"{provider} answered an image that does not decode ({type(exc).__name__})",
            provider=provider,
        ) from exc
    if fmt is None:
        raise MalformedResponseError(
            f"{provider} answered an image in an unsupported format", provider=provider
        )
    return fmt, width, height


#: failures before the request left this process: nothing can have been billed
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


#: What a provider's error says when its TLS certificate was not accepted (``outages.py``)
CERTIFICATE_REFUSED = "its TLS certificate was not accepted"


def _certificate_problem(exc: BaseException) -> str | None:
    """Why the TLS handshake refused the server's certificate, when that is what ``exc`` (or
    an error it wraps) says; None otherwise."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or "verification failed"
        seen = seen.__cause__ or seen.__context__
    return None


def transport_error(
    exc: httpx.TransportError, *, provider: str
) -> RetryableProviderError | UnknownOutcomeError | TerminalProviderError:
    """Connection failures before anything was sent are worth another try; a timeout or a
    reset after the request was sent is an unknown outcome: the backend may have billed it.
    A certificate the handshake refused is not tried again (it will be refused again): the
    error says so, and how a private CA is trusted."""
    problem = _certificate_problem(exc)
    if problem is not None:
        return TerminalProviderError(
            f"{provider} could not be reached: {CERTIFICATE_REFUSED} ({problem}); a private "
            "CA is trusted by naming its PEM file in SSL_CERT_FILE (docs/providers.md)",
            provider=provider,
        )
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "could not be reached"
    if isinstance(exc, _NOT_SENT):
        return RetryableProviderError(
            f"{provider} {kind} ({type(exc).__name__})", provider=provider
        )
    return UnknownOutcomeError(
        f"{provider} sent no answer ({type(exc).__name__}) after the request was sent; "
        "it may have been billed",
        provider=provider,
    )
