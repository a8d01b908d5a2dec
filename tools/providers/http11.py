"""The provider clients' HTTP/1.1 transport: keep-alive connections on asyncio protocols, each
answer parsed by llhttp (Node.js's HTTP parser, through ``httptools``, as uvicorn parses).

httpx's own transport sends through httpcore, whose HTTP/1.1 is h11: a pure-Python state
machine that validates every header with regular expressions, wrapped in httpcore's request
and response models, its pool, and a stream of reads. At a provider call's scale (a small JSON
request, one answer) that was most of the client's CPU per call: 0.73 ms on httpcore alone
against 0.20 ms for the bare bytes on the same machine (``benchmarks/providers_throughput.py
--floors``), and with 16 calls landing together each call waits for the others' CPU.
This transport takes ``httpx.Request`` and answers ``httpx.Response`` directly: the request is
written with one ``write`` (head and body together), llhttp calls back per header and per body
piece, and no layer of models sits in between. httpx still builds the request (headers,
cookies, auth, redirects are off) and reads the answer, so adapters see the same client.

What it keeps from httpx's transport, and tests for (``tests/tools/providers/test_http11.py``):
- Up to ``connections`` requests on the wire at once, each on a connection of its own; more
  wait for a free one up to the ``pool`` timeout (``httpx.PoolTimeout``). An answer holds its
  connection until it is read or closed.
- Keep-alive: a connection goes back to the pool once its answer has been read whole, unless
  the server asked to close, it is idle past ``keepalive_expiry``, the server closed it or wrote
  to it while idle, or the answer was cut short (then it is closed, never reused).
- Timeouts as httpx means them: ``connect`` (TCP and TLS), ``read`` (each wait for the
  server's next bytes), ``write`` (each wait for the socket to take more), ``pool``.
- httpx's error types, and their meaning for billing (``_http._NOT_SENT``): ``ConnectError``
  and ``ConnectTimeout`` before any byte of the request is written; ``ReadError`` (a reset),
  ``ReadTimeout``, ``WriteError``, ``WriteTimeout`` and ``RemoteProtocolError`` (an answer
  cut short or not HTTP/1.1) after. ``LocalProtocolError`` for a header that cannot be written
  (a line break, a NUL, a name that is not a token): nothing is sent; and for a body that is
  longer or shorter than its declared ``Content-Length`` (the connection is closed, so no byte
  of it is read as the next request).
- An answer the server sends before it has read the whole request (an early 413) is the
  outcome, as httpcore reads it, even when the server then stops reading the upload.
- What h11 reads, this reads too (a bare LF ending a line, blanks after a chunk size,
  ``Transfer-Encoding: chunked`` beside a ``Content-Length``: the chunks win); trailers are not
  the answer's headers; an answer's head past :data:`MAX_HEAD_BYTES` is refused.
- https with the client's SSL context (ALPN ``http/1.1``, SNI from the ``sni_hostname``
  extension or the host), closed without a close_notify exchange as httpcore closes TLS.
- Bodies: ``Content-Length`` or chunked both ways; an answer without either runs to the end of
  the connection; 1xx informational answers are skipped; ``HEAD`` answers have no body.
  A streamed request body (multipart, an async iterator) is written as it comes, chunked when
  httpx said so. Reading pauses while more than :data:`READ_HIGH_WATER` bytes wait unread.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools
import httpx

__all__ = ["READ_HIGH_WATER", "Http11Transport"]

#: unread answer bytes at which the connection stops reading from the socket until they are read
READ_HIGH_WATER = 1 << 20

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: a header value may hold any byte but CR, LF and NUL (RFC 9110 field-value, as h11 checks)
_UNSENDABLE_VALUE = re.compile(rb"[\r\n\x00]")
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

Origin = tuple[bytes, str, int]


class _Closed(Exception):
    """The connection ended before the answer was whole, or the answer is not HTTP/1.1
    (mapped to an httpx error by the waiter, who knows which request it was): ``reset`` when
    the network failed (``httpx.ReadError``, as httpcore says), else the answer is at fault
    (``httpx.RemoteProtocolError``)."""

    def __init__(self, message: str, *, reset: bool = False) -> None:
        super().__init__(message)
        self.reset = reset

    def for_request(self, request: httpx.Request) -> httpx.TransportError:
        kind = httpx.ReadError if self.reset else httpx.RemoteProtocolError
        return kind(str(self), request=request)


#: the most an answer's status line and headers may take (h11's default is 16 KiB; a server
#: that never ends its headers is cut off here, not read into memory without end)
MAX_HEAD_BYTES = 1 << 20


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request written whole, then its answer parsed as
    it arrives. One request at a time (the transport hands it out)."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.origin = origin
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        # what h11 (httpx's own parser) reads too: a bare LF ending a line, blanks after a
        # chunk size, and Transfer-Encoding beside Content-Length (the chunks win, RFC 9112 6.3)
        self._parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
            lenient_chunked_length=True,
        )
        self.closed = False
        #: the peer has gone (``connection_lost``): the transport must not be touched again
        self._lost = False
        #: the connection cannot carry another request (cut short, asked to close, spoke idle)
        self.spent = False
        self.idle_since = time.monotonic()
        self._writable: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._reading_paused = False
        # the answer being read
        self._expecting = False
        self._head_only = False
        self._reason = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        #: the answer's headers, kept apart from the trailers llhttp reports after them
        self._answer_headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0
        self._informational = False
        self._head: asyncio.Future[None] | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._complete = False
        self._until_close = False
        self._error: Exception | None = None
        self._wake: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self._expecting:  # a server that writes to an idle connection: not reusable
            self.spent = True
            self.close()
            return
        if self._head is not None and not self._head.done():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(_Closed(f"the answer's head is larger than {MAX_HEAD_BYTES} bytes"))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_Closed("the server switched protocols, which this client does not speak"))
        except httptools.HttpParserError as exc:
            self._fail(_Closed(f"the server's answer is not valid HTTP/1.1: {exc}"))

    def eof_received(self) -> None:
        """The server closed its side: the end of an answer that runs to it, else a cut."""
        self._ended(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._ended(exc)
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(_Closed("the connection closed while writing"))

    def _ended(self, exc: Exception | None) -> None:
        """The stream ended: cleanly (``exc`` None: the server closed it) or by a failure."""
        self.closed = True
        self.spent = True
        if not self._expecting:
            return
        head_read = self._head is not None and self._head.done()
        if head_read and self._until_close and exc is None:
            self._complete = True  # an answer without a length ends with the connection
            self._expecting = False
            self._signal()
        elif exc is not None:  # a reset: httpcore says ReadError
            self._fail(_Closed(f"the connection failed: {exc}", reset=True))
        else:
            self._fail(
                _Closed(
                    "the server closed the connection without sending a complete answer"
                    if head_read
                    else "the server disconnected without sending an answer"
                )
            )

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # ------------------------------------------------------------------ llhttp callbacks

    def on_message_begin(self) -> None:
        if self._complete:  # bytes after the answer, in the same read: never parsed into it
            raise _Closed("the server sent more than one answer")

    def on_status(self, status: bytes) -> None:
        self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational (100 Continue, 103 Early Hints): skipped
            self._informational = True
            self._reason.clear()
            self._headers.clear()
            return
        self._until_close = self._runs_to_close(status)
        # trailers after a chunked body come as headers too: they are not the answer's
        self._answer_headers, self._headers = self._headers, []
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if self._head_only:  # HEAD: the length describes a body that is not sent
            self._complete = True
            self._expecting = False
            self.spent = True  # llhttp waits for that body: the connection is not reused
            self._signal()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > READ_HIGH_WATER and not self._reading_paused and self._transport:
            self._reading_paused = True
            self._transport.pause_reading()
        self._signal()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self._head_only:
            return
        self._complete = True
        self._expecting = False
        if not self._parser.should_keep_alive():
            self.spent = True
        self._signal()

    # ------------------------------------------------------------------ helpers

    def _runs_to_close(self, status: int) -> bool:
        if status in (204, 304) or self._head_only:
            return False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and value.lower().endswith(b"chunked"):
                return False
        return True

    def _signal(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._error = error
        self.spent = True
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: the waiter may have gone (cancelled)
        self._signal()
        self.close()

    def close(self) -> None:
        """Close at once (TLS without close_notify: a peer that never answers it would hold
        the close, as httpcore's anyio backend avoids too). A transport the peer already
        closed is left alone (asyncio's has dropped its loop by then)."""
        self.closed = True
        self.spent = True
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def extra(self, name: str) -> Any:
        return None if self._transport is None else self._transport.get_extra_info(name)

    def reusable(self, expiry: float | None, now: float) -> bool:
        return not (
            self.closed
            or self.spent
            or (self._transport is not None and self._transport.is_closing())
            or (expiry is not None and now - self.idle_since > expiry)
        )

    # ------------------------------------------------------------------ one exchange

    async def send(
        self, request: httpx.Request, head: bytes, timeouts: dict[str, float | None]
    ) -> None:
        """Write ``request`` (``head``: its request line and headers) and wait for its answer's
        head (status and headers)."""
        if self._transport is None:  # never: the transport connects before it sends
            raise httpx.WriteError("the connection is not open", request=request)
        self._expecting = True
        self._head_only = request.method == "HEAD"
        self._head = self._loop.create_future()
        try:
            await self._send_request(request, head, timeouts.get("write"))
        except httpx.WriteError as failed:
            # the server may have answered before it stopped reading (an early 413, say): its
            # answer is the outcome, as httpcore reads it; without one, the write's failure is
            self.spent = True
            if self._head is None or (self.closed and not self._head.done()):
                raise  # closed before this request: no answer can come
            try:
                await self._wait(self._head, request, timeouts.get("read"))
            except httpx.TransportError:
                raise failed from None
            return
        await self._wait(self._head, request, timeouts.get("read"))

    async def _send_request(
        self, request: httpx.Request, head: bytes, timeout: float | None
    ) -> None:
        chunked, declared = False, None
        for name, value in request.headers.raw:
            lowered = name.lower()
            if lowered == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
            elif lowered == b"content-length" and value.isdigit():
                declared = int(value)
        if chunked:
            declared = None
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None  # streamed: written as it comes
        if body is None:
            await self._write(head, request, timeout)
            sent = 0
            async for piece in request.stream:  # type: ignore[union-attr]
                if not piece:
                    continue
                sent += len(piece)
                if declared is not None and sent > declared:
                    self.close()  # what was written would be read as the next request
                    raise httpx.LocalProtocolError(
                        "Too much data for declared Content-Length", request=request
                    )
                await self._write(
                    b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece, request, timeout
                )
            if declared is not None and sent < declared:
                self.close()
                raise httpx.LocalProtocolError(
                    "Too little data for declared Content-Length", request=request
                )
            if chunked:
                await self._write(b"0\r\n\r\n", request, timeout)
            return
        if declared is not None and declared != len(body):
            raise httpx.LocalProtocolError(
                f"Too {'much' if len(body) > declared else 'little'} data for declared "
                "Content-Length",
                request=request,
            )
        if chunked:
            body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
        await self._write(head + body, request, timeout)

    async def _write(self, data: bytes, request: httpx.Request, timeout: float | None) -> None:
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise httpx.WriteError("the connection is closed", request=request)
        transport.write(data)
        if not self._writing_paused:
            return
        self._writable = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._writable
        except TimeoutError as exc:
            self.close()
            raise httpx.WriteTimeout(
                "the server did not take the request in time", request=request
            ) from exc
        except _Closed as exc:
            raise httpx.WriteError(str(exc), request=request) from exc

    async def _wait(
        self, future: asyncio.Future[None], request: httpx.Request, timeout: float | None
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError as exc:
            self.close()
            raise httpx.ReadTimeout("the server did not answer in time", request=request) from exc
        except _Closed as exc:
            raise exc.for_request(request) from exc

    def answer(self) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytes]:
        """Status, headers, reason phrase and HTTP version of the answer whose head was read."""
        version = b"HTTP/" + self._parser.get_http_version().encode("ascii")
        return (
            self._parser.get_status_code(),
            self._answer_headers,
            bytes(self._reason).strip(),
            version,
        )

    async def body(self, request: httpx.Request, timeout: float | None) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                piece = self._chunks.popleft()
                self._buffered -= len(piece)
                if self._reading_paused and self._buffered <= READ_HIGH_WATER // 2:
                    self._reading_paused = False
                    if self._transport is not None and not self.closed:
                        self._transport.resume_reading()
                yield piece
                continue
            if self._complete:
                return
            if isinstance(self._error, _Closed):
                raise self._error.for_request(request)
            if self._error is not None:
                raise httpx.RemoteProtocolError(str(self._error), request=request)
            self._wake = self._loop.create_future()
            await self._wait(self._wake, request, timeout)

    def finish(self) -> bool:
        """End the exchange; whether the connection may carry another request."""
        whole = self._complete and not self._chunks
        self._expecting = False
        self._head = self._wake = None
        self._chunks.clear()
        self._buffered = 0
        self._headers, self._answer_headers = [], []
        self._head_bytes = 0
        self._reason = bytearray()
        self._complete = self._until_close = self._head_only = False
        self._error = None
        if not whole:
            self.spent = True
        if self.spent:
            self.close()
            return False
        self.idle_since = time.monotonic()
        return True


def _head_bytes(request: httpx.Request) -> bytes:
    """The request line and headers; refuses what would split or smuggle a request."""
    method, target = request.method.encode("ascii"), request.url.raw_path
    if not _TOKEN.fullmatch(method) or _UNSENDABLE_VALUE.search(target) or b" " in target:
        raise httpx.LocalProtocolError("the request line cannot be written", request=request)
    lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
    for name, value in request.headers.raw:
        if name not in _CHECKED_NAMES:
            if not _TOKEN.fullmatch(name):
                raise httpx.LocalProtocolError("a header name is not a token", request=request)
            if len(_CHECKED_NAMES) < 256:
                _CHECKED_NAMES.add(name)
        if _UNSENDABLE_VALUE.search(value):
            raise httpx.LocalProtocolError(
                "a header value holds a line break or a NUL", request=request
            )
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


#: header names already checked to be tokens (the few a provider client sends)
_CHECKED_NAMES: set[bytes] = set()


class _Answer(httpx.AsyncByteStream):
    """An answer's body: read from its connection; closing it gives the connection back (or
    closes it when the body was not read whole)."""

    def __init__(
        self, transport: Http11Transport, connection: _Connection, request: httpx.Request
    ) -> None:
        self._transport: Http11Transport | None = transport
        self._connection = connection
        self._request = request
        self._timeout = request.extensions.get("timeout", {}).get("read")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._connection.body(self._request, self._timeout):
                yield piece
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        if transport is None:
            return
        reusable = False
        try:
            reusable = self._connection.finish()
        finally:  # whatever finishing did, the slot comes back
            transport._give_back(self._connection, reusable)


class _StreamInfo:
    """``response.extensions["network_stream"]``: the connection's socket details."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    def get_extra_info(self, info: str) -> Any:
        names = {"client_addr": "sockname", "server_addr": "peername"}
        if info == "is_readable":
            return self._connection.closed
        return self._connection.extra(names.get(info, info))


class Http11Transport(httpx.AsyncBaseTransport):
    """Up to ``connections`` keep-alive HTTP/1.1 connections, one request on each at a time."""

    def __init__(
        self,
        connections: int,
        ssl_context: ssl.SSLContext | None = None,
        *,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self.connections = connections
        self._ssl_context = ssl_context or httpx.create_ssl_context()  # loading it is slow
        self._ssl_context.set_alpn_protocols(["http/1.1"])
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self.in_flight = 0

    def open_connections(self) -> int:
        return len(self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{request.url.scheme}://'."
                if scheme
                else "Request URL is missing an 'http://' or 'https://' protocol.",
                request=request,
            )
        head = _head_bytes(request)  # before any connection: what cannot be written is not sent
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        self.in_flight += 1
        try:
            await self._take_slot(timeouts.get("pool"), request)
        except BaseException:
            self.in_flight -= 1
            raise
        origin = (scheme, request.url.host, request.url.port or _DEFAULT_PORTS[scheme])
        connection: _Connection | None = None
        try:
            connection = self._reuse(origin) or await self._connect(origin, request, timeouts)
            await connection.send(request, head, timeouts)
        except BaseException:
            if connection is not None:
                connection.close()
                self._open.discard(connection)
            self._release()
            raise
        status, headers, reason, version = connection.answer()
        return httpx.Response(
            status,
            headers=headers,
            stream=_Answer(self, connection, request),
            extensions={
                "http_version": version,
                "reason_phrase": reason,
                "network_stream": _StreamInfo(connection),
            },
        )

    async def _take_slot(self, timeout: float | None, request: httpx.Request) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken without waiting
            return
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no connection was free in time", request=request) from exc

    def _release(self) -> None:
        self.in_flight -= 1
        self._slots.release()

    def _reuse(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable(self._keepalive_expiry, now):
                return connection
            connection.close()
            self._open.discard(connection)
        return None

    async def _connect(
        self, origin: Origin, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        self._make_room()
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        connection = _Connection(origin, loop)
        secure = scheme == b"https"
        sni = request.extensions.get("sni_hostname") or host
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                await loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    ssl=self._ssl_context if secure else None,
                    server_hostname=sni if secure else None,
                )
        except TimeoutError as exc:  # before OSError: a TimeoutError is an OSError too
            connection.close()
            raise httpx.ConnectTimeout(str(exc) or "connecting timed out", request=request) from exc
        except OSError as exc:  # ssl.SSLError included
            connection.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        self._open.add(connection)
        return connection

    def _make_room(self) -> None:
        """Close idle connections to other origins while the pool is full."""
        if len(self._open) < self.connections:
            return
        for idle in self._idle.values():
            while idle and len(self._open) >= self.connections:
                stale = idle.pop(0)
                stale.close()
                self._open.discard(stale)

    def _give_back(self, connection: _Connection, reusable: bool) -> None:
        if reusable:
            self._idle.setdefault(connection.origin, []).append(connection)
        else:
            self._open.discard(connection)
        self._release()

    async def aclose(self) -> None:
        for connection in self._open:
            connection.close()
        self._open.clear()
        self._idle.clear()
