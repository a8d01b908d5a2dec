"""The provider client's connections, each a pool of its own (an httpx pool's work per request
grows with its size): every request of the concurrency limit is on the wire at once, each pool
carries one connection, and the in-flight counts return to zero once the answers are read."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from brandloop.settings import Settings
from brandloop.tools.providers.asyncio_backend import FLUSH_BYTES, AsyncioBackend, AsyncioStream
from brandloop.tools.providers.factory import AnswerCookies, http_client
from brandloop.tools.providers.resilience import ProviderLimits
from brandloop.tools.providers.transport import OneConnectionPool, ShardedTransport


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
    assert transport.pools == 64
    async with _Server(64) as server, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(64))), timeout=20
        )
        assert [a.text for a in answers] == ["ok"] * 64
        assert len(server.connections) == 64  # 64 requests on the wire at once, one per connection
        assert transport.in_flight() == [0] * transport.pools  # every answer read: none in flight


async def test_each_connection_is_a_pool_of_its_own() -> None:
    # httpcore walks every connection of a pool (and counts its idle ones once per idle one)
    # on each request's way in and out: one connection per pool keeps that walk to one
    transport = ShardedTransport(64)
    async with _Server(64) as server, httpx.AsyncClient(transport=transport) as client:
        await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(64))), timeout=20
        )
        assert [len(pool._pool.connections) for pool in transport._pools] == [1] * 64
        assert all(isinstance(pool._pool, OneConnectionPool) for pool in transport._pools)


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
    assert transport.pools == 40  # one connection each
    with pytest.raises(ValueError, match="at least 1"):
        ShardedTransport(0)


# ---------------------------------------------------------------- the asyncio network backend


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and 127.0.0.1, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Plain:
    """A keep-alive HTTP/1.1 server (TLS when given a context) that answers ``ok``; with
    ``close_idle`` it closes each connection right after answering, as servers do when their
    keep-alive timer runs out; with ``silent`` it never answers."""

    def __init__(
        self, ssl_context: ssl.SSLContext | None = None, *, close_idle: bool = False
    ) -> None:
        self.ssl_context = ssl_context
        self.close_idle = close_idle
        self.silent = False
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> _Plain:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if self.silent:
                    await asyncio.sleep(30)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if self.close_idle:
                    writer.close()
                    return


async def test_requests_go_over_the_asyncio_backend_and_reuse_connections() -> None:
    async with _Plain() as server, httpx.AsyncClient(transport=ShardedTransport(4)) as client:
        url = f"http://127.0.0.1:{server.port}/"
        first = await client.get(url)
        second = await client.get(url)
    assert (first.text, second.text) == ("ok", "ok")
    assert isinstance(first.extensions["network_stream"], AsyncioStream)
    assert server.connections == 1  # kept alive and reused


async def test_a_request_goes_out_in_one_piece_once_it_is_complete() -> None:
    # httpcore writes a request's head and its body separately: each its own send() and
    # wake-up of the server, unless the stream holds them until the request is complete
    pieces: asyncio.Queue[bytes] = asyncio.Queue()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while piece := await reader.read(1 << 20):
            pieces.put_nowait(piece)
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
    head = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 4\r\n\r\n"
    try:
        await stream.write(head, timeout=5)
        await stream.write(b"body", timeout=5)
        await asyncio.sleep(0.2)
        assert pieces.empty()  # the head waits for the rest of the request
        reading = asyncio.create_task(stream.read(1024, timeout=5))
        assert await asyncio.wait_for(pieces.get(), timeout=5) == head + b"body"
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        # a large body is not held whole: what passes FLUSH_BYTES goes out as it is written
        await stream.write(b"x" * (FLUSH_BYTES + 1), timeout=5)
        arrived = 0
        while arrived < FLUSH_BYTES + 1:
            arrived += len(await asyncio.wait_for(pieces.get(), timeout=5))
    finally:
        await stream.aclose()
        server.close()
        await server.wait_closed()


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with (
        _Plain(close_idle=True) as server,
        httpx.AsyncClient(transport=ShardedTransport(1)) as client,
    ):
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        assert (await client.get(url)).text == "ok"  # no ReadError / RemoteProtocolError
    assert server.connections == 2


async def test_https_with_a_trusted_certificate_and_hostname_checks(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with _Plain(server_context) as server:
        async with httpx.AsyncClient(transport=ShardedTransport(2, trusting)) as client:
            answer = await client.get(f"https://localhost:{server.port}/")
            assert answer.text == "ok"
            assert answer.extensions["network_stream"].get_extra_info("ssl_object") is not None
        # the default trust store does not know this certificate: a connect error, as httpx's
        async with httpx.AsyncClient(transport=ShardedTransport(2)) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://localhost:{server.port}/")


async def test_transport_failures_map_to_httpx_errors() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with httpx.AsyncClient(transport=ShardedTransport(2)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{closed_port}/")
    async with (
        _Plain() as server,
        httpx.AsyncClient(transport=ShardedTransport(2), timeout=httpx.Timeout(0.2)) as client,
    ):
        server.silent = True
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_request_waits_its_turn_on_a_busy_connection_up_to_the_pool_timeout() -> None:
    async with _Plain() as server:
        url = f"http://127.0.0.1:{server.port}/"
        timeout = httpx.Timeout(5, pool=0.2)
        async with httpx.AsyncClient(transport=ShardedTransport(1), timeout=timeout) as client:
            async with client.stream("GET", url) as held:  # its answer holds the connection
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(url)
                assert await held.aread() == b"ok"
            assert (await client.get(url)).text == "ok"  # the turn came back with the close
    assert server.connections == 1


async def test_a_cancelled_request_gives_its_connection_back() -> None:
    async with _Plain() as server, httpx.AsyncClient(transport=ShardedTransport(1)) as client:
        url = f"http://127.0.0.1:{server.port}/"
        server.silent = True
        waiting = asyncio.create_task(client.get(url))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        server.silent = False
        answer = await asyncio.wait_for(client.get(url), timeout=5)
    assert answer.text == "ok"
    assert server.connections == 2  # the half-used connection was not reused


async def test_a_request_to_another_origin_gets_a_connection_of_its_own() -> None:
    async with (
        _Plain() as first,
        _Plain() as second,
        httpx.AsyncClient(transport=ShardedTransport(1)) as client,
    ):
        for server in (first, second, first):
            assert (await client.get(f"http://127.0.0.1:{server.port}/")).text == "ok"
    assert (first.connections, second.connections) == (2, 1)


# ---------------------------------------------------------------- the cookie jar


async def test_the_factory_client_keeps_a_cookie_an_answer_sets_and_sends_it_back() -> None:
    # the jar skips answers that set no cookie (httpx would parse each one); those that do set
    # one are read as before
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        if request.url.path == "/login":
            return httpx.Response(200, headers={"Set-Cookie": "affinity=node-2; Path=/"})
        return httpx.Response(200, text="ok")

    client = http_client(Settings(), ProviderLimits(concurrency=2))
    assert isinstance(client.cookies, AnswerCookies)  # httpx 0.28 keeps the jar in _cookies
    await client._transport.aclose()
    client._transport = httpx.MockTransport(answer)
    async with client:
        await client.get("http://provider.test/images")
        await client.get("http://provider.test/login")
        await client.get("http://provider.test/images")
    assert seen == [None, None, "affinity=node-2"]
    assert dict(client.cookies) == {"affinity": "node-2"}
