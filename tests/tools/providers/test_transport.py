"""The provider client's connections, split into pools small enough for httpx: every request
of the concurrency limit is on the wire at once, each pool carries at most its share, and the
in-flight counts return to zero once the answers are read."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from brandloop.settings import Settings
from brandloop.tools.providers.factory import http_client
from brandloop.tools.providers.resilience import ProviderLimits
from brandloop.tools.providers.transport import POOL_CONNECTIONS, ShardedTransport


class _Server:
    """A local HTTP/1.1 server that answers no request before ``expected`` are in flight."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.release = asyncio.Event()
        self.connections: set[object] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def __aenter__(self) -> _Server:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connections.add(writer.get_extra_info("peername"))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive: one request after another on this connection
                await reader.readuntil(b"\r\n\r\n")
                self.arrived += 1
                if self.arrived >= self.expected:
                    self.release.set()
                await self.release.wait()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()


async def test_every_connection_of_the_limit_is_used_at_once() -> None:
    transport = ShardedTransport(64)
    assert transport.pools == 64 // POOL_CONNECTIONS
    async with _Server(64) as server, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(64))), timeout=20
        )
        assert [a.text for a in answers] == ["ok"] * 64
        assert len(server.connections) == 64  # 64 requests on the wire at once, one per connection
        assert transport._busy == [0] * transport.pools  # every answer read: nothing in flight


async def test_more_requests_than_connections_queue_and_all_finish() -> None:
    async with _Server(20) as server, httpx.AsyncClient(transport=ShardedTransport(20)) as client:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(60))), timeout=20
        )
    assert all(a.status_code == 200 for a in answers)
    assert len(server.connections) == 20  # the pools' 20 connections, reused


def test_the_factory_client_has_as_many_connections_as_the_limit() -> None:
    client = http_client(Settings(), ProviderLimits(concurrency=40))
    transport = client._transport
    assert isinstance(transport, ShardedTransport)
    assert transport.pools == 3  # 14 + 13 + 13
    with pytest.raises(ValueError, match="at least 1"):
        ShardedTransport(0)
