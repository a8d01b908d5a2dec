"""One provider's connections as several small httpx pools behind one client.

httpx 0.28 (httpcore 1.x) slows down sharply when one connection pool carries more than about
32 requests at once to a host: each request's turn through the pool walks every queued request
and connection under one lock, so the work per request grows with the load. At 64 calls at
once against a 200 ms server a single pool ran at 0.15-0.25 of the ideal rate
(``benchmarks/providers_throughput.py``). Splitting the same number of connections into pools
of at most :data:`POOL_CONNECTIONS` keeps each pool well below that cliff (16 measured better
than 32 at 64 calls at once); each request goes to the pool with the fewest requests in flight.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable

import httpx

__all__ = ["POOL_CONNECTIONS", "ShardedTransport"]

#: connections per pool: the most one httpx pool carries without slowing down
POOL_CONNECTIONS = 16


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


class ShardedTransport(httpx.AsyncBaseTransport):
    """``connections`` connections in ``ceil(connections / POOL_CONNECTIONS)`` pools, one
    keep-alive pool each; least busy pool first."""

    def __init__(self, connections: int, **options: object) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        count = math.ceil(connections / POOL_CONNECTIONS)
        sizes = [connections // count + (1 if i < connections % count else 0) for i in range(count)]
        self._pools = [
            httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                **options,  # type: ignore[arg-type]
            )
            for size in sizes
        ]
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
