"""One provider's connections as several small httpx pools behind one client.

httpx 0.28 (httpcore 1.x) slows down sharply when one connection pool carries more than about
32 requests at once to a host: each request's turn through the pool (on the way in, and again
when its answer is closed) walks every queued request and every connection under one lock,
counting the idle connections once per idle connection, so the work per request grows with the
square of the pool's size. At 64 calls at once against a 200 ms server a single pool ran at
0.15-0.25 of the ideal rate (``benchmarks/providers_throughput.py``). So each connection is a
pool of its own (:class:`OneConnectionPool`): a request's turn walks one connection, and each
request goes to the pool with the fewest requests in flight. Pools of 16 cost the client
1.26-1.59 ms of CPU per call, pools of 4 0.93-1.12, pools of 1 0.84-1.01 (concurrency 16 and
64, ``docs/providers.md``). Under the resilience layer's concurrency limit (as many calls at
once as connections) every request finds an idle pool, so none waits behind another.
Each pool opens its connection with :class:`asyncio_backend.AsyncioBackend` (plain asyncio
streams) instead of httpcore's anyio backend, which cost more client CPU than the HTTP itself.
A pool of one connection needs none of httpcore's pool machinery (a queue of requests, an anyio
event per request, a walk over the connections and a cancel scope on each request's way in and
out: about a tenth of a call's client CPU), so it is :class:`OneConnectionPool`: one
``httpcore.AsyncHTTP11Connection``, opened by the pool itself (not through
``httpcore.AsyncHTTPConnection``, whose anyio lock is a turn of the event loop per request), and
an ``asyncio.Lock`` held from a request until its answer is closed.
"""

from __future__ import annotations

import asyncio
import operator
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable

import httpcore
import httpx

from brandloop.tools.providers.asyncio_backend import AsyncioBackend

__all__ = ["OneConnectionPool", "ShardedTransport"]


class _Turn(AsyncIterable[bytes]):
    """An answer's body that ends its request's turn on the connection when it is closed (or
    fails while being read), as httpcore's pool does."""

    def __init__(self, stream: AsyncIterable[bytes], release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._release is None:
            return
        release, self._release = self._release, None
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            release()


class OneConnectionPool:
    """httpcore's connection pool for one connection: what ``httpcore.AsyncConnectionPool``
    does with ``max_connections=1``, without its per-request queue, events and walks.

    One request at a time holds the connection, from sending until its answer is closed; others
    wait their turn (up to the ``pool`` timeout: ``httpcore.PoolTimeout``). Before each request
    a connection that is closed, has expired (idle past ``keepalive_expiry``, or the server
    closed or wrote to it while idle) or serves another origin is closed and replaced, as the
    pool does; a connection is opened on first use (:meth:`_open`)."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        keepalive_expiry: float | None,
        network_backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._backend = network_backend
        self._connection: httpcore.AsyncHTTP11Connection | None = None
        self._turn = asyncio.Lock()
        #: requests holding or waiting for the connection (for the transport's least busy pool)
        self.in_flight = 0

    @property
    def connections(self) -> list[httpcore.AsyncConnectionInterface]:
        return [] if self._connection is None else [self._connection]

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        scheme = request.url.scheme.decode()
        if scheme == "":
            raise httpcore.UnsupportedProtocol(
                "Request URL is missing an 'http://' or 'https://' protocol."
            )
        if scheme not in ("http", "https", "ws", "wss"):
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme}://'."
            )
        self.in_flight += 1
        try:
            await self._wait_turn(request.extensions.get("timeout", {}).get("pool"))
        except BaseException:
            self.in_flight -= 1
            raise
        try:
            connection = await self._connection_for(request)
            response = await connection.handle_async_request(request)
        except BaseException:
            self._end_turn()
            raise
        if not isinstance(response.stream, AsyncIterable):  # httpcore's async connections'
            self._end_turn()
            raise TypeError("an async connection answered with a sync body")
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Turn(response.stream, self._end_turn),
            extensions=response.extensions,
        )

    def _end_turn(self) -> None:
        self.in_flight -= 1
        self._turn.release()

    async def _wait_turn(self, timeout: float | None) -> None:
        if not self._turn.locked():
            await self._turn.acquire()  # free: taken without waiting
            return
        try:
            async with asyncio.timeout(timeout):
                await self._turn.acquire()
        except TimeoutError as exc:
            raise httpcore.PoolTimeout("no connection was free in time") from exc

    async def _connection_for(self, request: httpcore.Request) -> httpcore.AsyncHTTP11Connection:
        connection = self._connection
        if connection is not None and (
            connection.is_closed()
            or connection.has_expired()
            or not connection.can_handle_request(request.url.origin)
        ):
            self._connection = None
            await connection.aclose()
            connection = None
        if connection is None:
            connection = self._connection = await self._open(request)
        return connection

    async def _open(self, request: httpcore.Request) -> httpcore.AsyncHTTP11Connection:
        """A new HTTP/1.1 connection to the request's origin, as ``httpcore.AsyncHTTPConnection``
        opens it (TCP, then TLS for https with ALPN ``http/1.1``; no retries), without that
        wrapper's own lock per request."""
        origin = request.url.origin
        host = origin.host.decode("ascii")
        timeout = request.extensions.get("timeout", {}).get("connect")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme in (b"https", b"wss"):
            self._ssl_context.set_alpn_protocols(["http/1.1"])
            stream = await stream.start_tls(
                self._ssl_context,
                server_hostname=request.extensions.get("sni_hostname") or host,
                timeout=timeout,
            )
        connection = httpcore.AsyncHTTP11Connection(
            origin=origin, stream=stream, keepalive_expiry=self._keepalive_expiry
        )
        # httpcore guards the connection's state with an anyio lock, whose every acquisition
        # is a checkpoint (a turn of the event loop, in a cancel scope): twice per request. One
        # request at a time holds this connection (the pool's turn), so asyncio's lock, taken
        # without waiting, does the same job; httpcore 1.x keeps it in ``_state_lock``
        connection._state_lock = asyncio.Lock()  # type: ignore[assignment]
        return connection

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def __aenter__(self) -> OneConnectionPool:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class AsyncioPoolTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request and response mapping, httpcore errors mapped to httpx's)
    over a :class:`OneConnectionPool` on :class:`AsyncioBackend`.

    httpx 0.28 (pinned ``<0.29``) takes no network backend or pool, keeps its pool in
    ``_pool`` and calls only its ``handle_async_request`` and ``aclose``;
    ``tests/tools/providers/test_transport.py`` checks that the connections are ours."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        # not super().__init__(): that would build a second pool (and SSL context) on anyio
        self._pool = OneConnectionPool(  # type: ignore[assignment]
            ssl_context=ssl_context or httpx.create_ssl_context(),
            keepalive_expiry=5.0,
            network_backend=AsyncioBackend(),
        )

    @property
    def in_flight(self) -> int:
        pool: OneConnectionPool = self._pool  # type: ignore[assignment]
        return pool.in_flight


_IN_FLIGHT = operator.attrgetter("in_flight")


class ShardedTransport(httpx.AsyncBaseTransport):
    """``connections`` connections, each a pool of its own; least busy pool first."""

    def __init__(self, connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        context = ssl_context or httpx.create_ssl_context()  # one per client: loading it is slow
        self._pools = [AsyncioPoolTransport(context) for _ in range(connections)]

    @property
    def pools(self) -> int:
        return len(self._pools)

    def in_flight(self) -> list[int]:
        """Requests each pool holds or queues (an answer holds its pool until it is closed)."""
        return [pool.in_flight for pool in self._pools]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await min(self._pools, key=_IN_FLIGHT).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
