"""One provider's connections as several small httpx pools behind one client.

httpx 0.28 (httpcore 1.x) slows down sharply when one connection pool carries more than about
32 requests at once to a host: each request's turn through the pool (on the way in, and again
when its answer is closed) walks every queued request and every connection under one lock,
counting the idle connections once per idle connection, so the work per request grows with the
square of the pool's size. At 64 calls at once against a 200 ms server a single pool ran at
0.15-0.25 of the ideal rate (``benchmarks/providers_throughput.py``). So each connection is a
pool of its own (:data:`POOL_CONNECTIONS`): a request's turn walks one connection, and each
request goes to the pool with the fewest requests in flight. Pools of 16 cost the client
1.26-1.59 ms of CPU per call, pools of 4 0.93-1.12, pools of 1 0.84-1.01 (concurrency 16 and
64, ``docs/providers.md``). Under the resilience layer's concurrency limit (as many calls at
once as connections) every request finds an idle pool, so none waits behind another.
Each pool opens its connection with :class:`asyncio_backend.AsyncioBackend` (plain asyncio
streams) instead of httpcore's anyio backend, which cost more client CPU than the HTTP itself.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Callable

import httpcore
import httpx

from brandloop.tools.providers.asyncio_backend import AsyncioBackend

__all__ = ["POOL_CONNECTIONS", "ShardedTransport"]

#: connections per pool: one, so no request's turn through a pool walks other connections
POOL_CONNECTIONS = 1


class _Released(httpx.AsyncByteStream):
    """A response body that tells its pool's counter when it is closed (the connection is
    busy until then)."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                self._release()
                self._release = None


class AsyncioPoolTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request and response mapping, httpcore errors mapped to httpx's)
    over an ``httpcore.AsyncConnectionPool`` on :class:`AsyncioBackend`.

    httpx 0.28 (pinned ``<0.29``) takes no network backend, and keeps its pool in ``_pool``;
    ``tests/tools/providers/test_transport.py`` checks that the connections are ours."""

    def __init__(self, connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        # not super().__init__(): that would build a second pool (and SSL context) on anyio
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=5.0,
            network_backend=AsyncioBackend(),
        )


class ShardedTransport(httpx.AsyncBaseTransport):
    """``connections`` connections in ``ceil(connections / POOL_CONNECTIONS)`` pools, one
    keep-alive pool each; least busy pool first."""

    def __init__(self, connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        count = math.ceil(connections / POOL_CONNECTIONS)
        sizes = [connections // count + (1 if i < connections % count else 0) for i in range(count)]
        context = ssl_context or httpx.create_ssl_context()  # one per client: loading it is slow
        self._pools = [AsyncioPoolTransport(size, context) for size in sizes]
        self._busy = [0] * count

    @property
    def pools(self) -> int:
        return len(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[index] += 1

        def release() -> None:
            self._busy[index] -= 1

        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        if isinstance(response.stream, httpx.AsyncByteStream):
            response.stream = _Released(response.stream, release)
        else:  # not a stream this transport can watch: count the request as done
            release()
        return response

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
