"""The provider clients' HTTP/1.1 transport (``tools/providers/http11.py``), against local
servers: every request of the concurrency limit on the wire at once, keep-alive and its limits,
timeouts and failures as httpx's error types (their billing meaning depends on it), https, the
framings of a body both ways, and what it refuses to write."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from brandloop.agent.outages import failure_words
from brandloop.providers import ImageRequest
from brandloop.settings import Settings
from brandloop.tools.providers._http import CERTIFICATE_REFUSED
from brandloop.tools.providers.errors import TerminalProviderError
from brandloop.tools.providers.factory import AnswerCookies, http_client
from brandloop.tools.providers.http11 import READ_HIGH_WATER, Http11Transport
from brandloop.tools.providers.openai import OpenAIImagesProvider
from brandloop.tools.providers.resilience import ProviderLimits, ResilientProvider


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
    transport = Http11Transport(64)
    async with _Server(64) as server, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(64))), timeout=20
        )
        assert [a.text for a in answers] == ["ok"] * 64
        assert len(server.connections) == 64  # 64 requests on the wire at once, one per connection
        assert transport.in_flight == 0  # every answer read: none in flight
        assert transport.open_connections() == 64  # all kept alive


async def test_more_requests_than_connections_queue_and_all_finish() -> None:
    transport = Http11Transport(20)
    async with _Server(20) as server, httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(server.url) for _ in range(60))), timeout=20
        )
    assert all(a.status_code == 200 for a in answers)
    assert len(server.connections) == 20  # the pool's 20 connections, reused


def test_the_factory_client_has_as_many_connections_as_the_limit() -> None:
    client = http_client(Settings(), ProviderLimits(concurrency=40))
    transport = client._transport
    assert isinstance(transport, Http11Transport)
    assert transport.connections == 40
    with pytest.raises(ValueError, match="at least 1"):
        Http11Transport(0)


# ---------------------------------------------------------------- connections


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


async def test_connections_are_kept_alive_and_reused() -> None:
    async with _Plain() as server, httpx.AsyncClient(transport=Http11Transport(4)) as client:
        url = f"http://127.0.0.1:{server.port}/"
        first = await client.get(url)
        second = await client.get(url)
    assert (first.text, second.text) == ("ok", "ok")
    assert (first.http_version, first.reason_phrase) == ("HTTP/1.1", "OK")
    assert first.extensions["network_stream"].get_extra_info("server_addr")[1] == server.port
    assert server.connections == 1  # kept alive and reused


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async with (
        _Plain(close_idle=True) as server,
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        assert (await client.get(url)).text == "ok"  # no ReadError / RemoteProtocolError
    assert server.connections == 2


async def test_a_connection_idle_past_the_keepalive_expiry_is_replaced() -> None:
    transport = Http11Transport(1, keepalive_expiry=0.05)
    async with _Plain() as server, httpx.AsyncClient(transport=transport) as client:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.get(url)).text == "ok"
        assert (await client.get(url)).text == "ok"  # within the expiry: reused
        await asyncio.sleep(0.1)
        assert (await client.get(url)).text == "ok"
    assert server.connections == 2


async def test_https_with_a_trusted_certificate_and_hostname_checks(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with _Plain(server_context) as server:
        async with httpx.AsyncClient(transport=Http11Transport(2, trusting)) as client:
            answer = await client.get(f"https://localhost:{server.port}/")
            assert answer.text == "ok"
            assert answer.extensions["network_stream"].get_extra_info("ssl_object") is not None
            again = await client.get(f"https://localhost:{server.port}/")
            assert again.text == "ok"
        assert server.connections == 1
        # the default trust store does not know this certificate: a connect error, as httpx's
        async with httpx.AsyncClient(transport=Http11Transport(2)) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"https://localhost:{server.port}/")
        # a name the certificate does not hold: refused too
        async with httpx.AsyncClient(transport=Http11Transport(2, trusting)) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(
                    f"https://localhost:{server.port}/",
                    extensions={"sni_hostname": "provider.example"},
                )


async def test_a_refused_certificate_is_one_try_and_says_how_to_trust_a_private_ca(
    tmp_path: Path,
) -> None:
    """A provider behind a certificate the trust store does not hold: the call is not retried
    (it would be refused again), and the error names the certificate and SSL_CERT_FILE. It was
    ``could not be reached (ConnectError)``, tried four times, with nothing about TLS."""
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    async with _Plain(server_context) as server:
        client = httpx.AsyncClient(transport=Http11Transport(2))
        inner = OpenAIImagesProvider(
            client, api_key="sk-test-0123456789abcdef", base_url=f"https://localhost:{server.port}"
        )
        provider = ResilientProvider(inner, ProviderLimits(backoff_initial_s=0.01))
        with pytest.raises(TerminalProviderError) as caught:
            await provider.generate(ImageRequest(model="gpt-image-1", prompt="a cup"))
        await client.aclose()
    assert caught.value.tries == 1
    assert CERTIFICATE_REFUSED in str(caught.value) and "SSL_CERT_FILE" in str(caught.value)
    assert failure_words(f"TerminalProviderError: {caught.value}") == "TLS certificate not accepted"


async def test_transport_failures_map_to_httpx_errors() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with httpx.AsyncClient(transport=Http11Transport(2)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{closed_port}/")
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/")
    async with (
        _Plain() as server,
        httpx.AsyncClient(transport=Http11Transport(2), timeout=httpx.Timeout(0.2)) as client,
    ):
        server.silent = True
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_connect_that_hangs_is_a_connect_timeout() -> None:
    # a listening socket with a full accept queue: the handshake is never completed
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            transport = Http11Transport(1)
            async with httpx.AsyncClient(
                transport=transport, timeout=httpx.Timeout(5, connect=0.2)
            ) as client:
                with pytest.raises((httpx.ConnectTimeout, httpx.ReadTimeout)) as caught:
                    await client.get(f"http://127.0.0.1:{port}/")
        finally:
            for filler in fillers:
                filler.close()
    # Linux completes the handshake into the backlog and the wait becomes the answer's;
    # either way nothing hangs past its timeout and the connection is not kept
    assert isinstance(caught.value, httpx.TimeoutException)
    assert transport.open_connections() == 0


async def test_a_request_waits_its_turn_on_a_busy_connection_up_to_the_pool_timeout() -> None:
    async with _Plain() as server:
        url = f"http://127.0.0.1:{server.port}/"
        timeout = httpx.Timeout(5, pool=0.2)
        async with httpx.AsyncClient(transport=Http11Transport(1), timeout=timeout) as client:
            async with client.stream("GET", url) as held:  # its answer holds the connection
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(url)
                assert await held.aread() == b"ok"
            assert (await client.get(url)).text == "ok"  # the turn came back with the close
    assert server.connections == 1


async def test_a_cancelled_request_gives_its_connection_back() -> None:
    transport = Http11Transport(1)
    async with _Plain() as server, httpx.AsyncClient(transport=transport) as client:
        url = f"http://127.0.0.1:{server.port}/"
        server.silent = True
        waiting = asyncio.create_task(client.get(url))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        server.silent = False
        answer = await asyncio.wait_for(client.get(url), timeout=5)
        assert transport.in_flight == 0
    assert answer.text == "ok"
    assert server.connections == 2  # the half-used connection was not reused


async def test_a_request_to_another_origin_gets_a_connection_of_its_own() -> None:
    transport = Http11Transport(1)
    async with (
        _Plain() as first,
        _Plain() as second,
        httpx.AsyncClient(transport=transport) as client,
    ):
        for server in (first, second, first):
            assert (await client.get(f"http://127.0.0.1:{server.port}/")).text == "ok"
        assert transport.open_connections() == 1  # the pool stays within its size
    assert (first.connections, second.connections) == (2, 1)


# ---------------------------------------------------------------- framing, both ways


Answer = Callable[[bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def _scripted(answer: Answer) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server that reads each request whole (head, and a body by its length or chunks) and
    lets ``answer`` write the reply; yields its URL and the requests it read."""
    seen: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lowered = head.lower()
                body = b""
                if b"content-length:" in lowered:
                    length = int(lowered.split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                elif b"transfer-encoding: chunked" in lowered:
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        body += (await reader.readexactly(size + 2))[:-2]
                        if size == 0:
                            break
                seen.append(head + body)
                await answer(head, reader, writer)
                if writer.is_closing():
                    return
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", seen
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def _reply(raw: bytes, *, close: bool = False) -> Answer:
    async def answer(
        head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(raw)
        await writer.drain()
        if close:
            writer.close()

    return answer


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(chunked)) as (url, seen),
        httpx.AsyncClient(transport=transport) as client,
    ):
        assert (await client.get(url)).content == b"abcde"
        assert (await client.get(url)).content == b"abcde"
        assert transport.open_connections() == 1
    assert len(seen) == 2


async def test_an_answer_arriving_a_byte_at_a_time_is_read_whole() -> None:
    raw = (
        b"HTTP/1.1 201 Created Here\r\nx-long-header-name: a value that is long\r\n"
        b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )

    async def bytewise(
        head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for byte in raw:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0)

    async with (
        _scripted(bytewise) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        for _ in range(2):  # and the connection carries the next request
            answer = await asyncio.wait_for(client.get(url), timeout=10)
            assert (answer.status_code, answer.reason_phrase) == (201, "Created Here")
            assert answer.headers["x-long-header-name"] == "a value that is long"
            assert answer.text == "hello world"


async def test_an_answer_without_a_length_runs_to_the_end_of_the_connection() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(raw, close=True)) as (url, _),
        httpx.AsyncClient(transport=transport) as client,
    ):
        assert (await client.get(url)).text == "until the end"
        assert (await client.get(url)).text == "until the end"  # on a new connection
        assert transport.open_connections() == 0


async def test_informational_answers_are_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone"
    async with (
        _scripted(_reply(raw)) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        answer = await client.post(url, content=b"x")
    assert (answer.status_code, answer.text, answer.reason_phrase) == (201, "done", "Created")


async def test_a_head_answer_has_no_body_and_the_next_request_still_works() -> None:
    async def answer(
        head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        await writer.drain()

    async with (
        _scripted(answer) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        head = await asyncio.wait_for(client.head(url), timeout=5)
        assert (head.status_code, head.content, head.headers["content-length"]) == (
            200,
            b"",
            "5",
        )
        assert (await asyncio.wait_for(client.get(url), timeout=5)).text == "hello"


async def test_a_server_that_asks_to_close_gets_a_new_connection_next_time() -> None:
    raw = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(raw)) as (url, seen),
        httpx.AsyncClient(transport=transport) as client,
    ):
        assert (await client.get(url)).text == "ok"
        assert transport.open_connections() == 0
        assert (await client.get(url)).text == "ok"
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "complete answer"),
        (b"", "without sending an answer"),
        (b"NOT HTTP AT ALL\r\n\r\n", "not valid HTTP"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok", "not valid"),
    ],
    ids=["cut short", "nothing", "not http", "two lengths"],
)
async def test_a_broken_answer_is_a_remote_protocol_error(raw: bytes, message: str) -> None:
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(raw, close=True)) as (url, _),
        httpx.AsyncClient(transport=transport) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await asyncio.wait_for(client.get(url), timeout=5)
        assert (transport.in_flight, transport.open_connections()) == (0, 0)


async def test_bytes_after_an_answer_are_not_read_into_it_and_end_the_connection() -> None:
    extra = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        + b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nbad"
    )
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(extra)) as (url, seen),
        httpx.AsyncClient(transport=transport) as client,
    ):
        assert (await client.get(url)).text == "ok"
        assert (await client.get(url)).text == "ok"  # on a new connection, not "bad"
        assert transport.open_connections() == 0
    assert len(seen) == 2


async def test_request_bodies_by_length_chunked_and_multipart_arrive_whole() -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one ", b"", b"two ", b"three"):
            yield piece

    async with (
        _scripted(_reply(ok)) as (url, seen),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        await client.post(url, json={"prompt": "a cup"})
        await client.post(url, content=pieces())
        await client.post(url, data={"prompt": "a cup"}, files={"image": ("a.png", b"PNG")})
    assert seen[0].endswith(b'\r\n\r\n{"prompt":"a cup"}')
    assert b"transfer-encoding: chunked" in seen[1].lower()
    assert seen[1].endswith(b"\r\n\r\none two three")
    assert b"multipart/form-data; boundary=" in seen[2]
    assert b'name="image"; filename="a.png"' in seen[2] and b"\r\n\r\nPNG\r\n" in seen[2]


async def test_a_large_answer_is_read_whole_through_paused_reading() -> None:
    size = 3 * READ_HIGH_WATER + 12345
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size
    async with (
        _scripted(_reply(raw)) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        async with client.stream("GET", url) as answer:
            await asyncio.sleep(0.2)  # nothing read: the connection stops reading
            received = b"".join([piece async for piece in answer.aiter_raw()])
        assert len(received) == size
        assert (await client.get(url)).status_code == 200  # the connection carried on


async def test_a_server_that_does_not_read_a_large_body_is_a_write_timeout() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # reads nothing: the socket buffers fill

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    transport = Http11Transport(1)

    async def big() -> AsyncIterator[bytes]:
        for _ in range(256):
            yield b"x" * (256 * 1024)

    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(5, write=0.3)
        ) as client:
            with pytest.raises(httpx.WriteTimeout):
                await asyncio.wait_for(client.post(url, content=big()), timeout=10)
            assert (transport.in_flight, transport.open_connections()) == (0, 0)
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer sk\r\nX-Injected: 1"},
        {"x-note": "a\nb"},
        {"x-note": "a\x00b"},
    ],
    ids=["CR LF", "LF", "NUL"],
)
async def test_a_header_that_would_split_the_request_is_refused_before_sending(
    headers: dict[str, str],
) -> None:
    ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    transport = Http11Transport(1)
    async with (
        _scripted(_reply(ok)) as (url, seen),
        httpx.AsyncClient(transport=transport) as client,
    ):
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(url, headers=headers)
        assert (await client.get(url)).text == "ok"  # the pool is whole
    assert len(seen) == 1 and b"Injected" not in seen[0]


async def test_a_header_name_that_is_not_a_token_is_refused() -> None:
    transport = Http11Transport(1)
    request = httpx.Request("GET", "http://127.0.0.1:9/", headers={"x bad": "1"})
    with pytest.raises(httpx.LocalProtocolError, match="not a token"):
        await transport.handle_async_request(request)
    assert transport.in_flight == 0


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


async def test_each_loop_the_hook_names_is_the_one_running(request: pytest.FixtureRequest) -> None:
    # conftest.py's hook: the uvloop run of every test above is really on uvloop
    module = type(asyncio.get_running_loop()).__module__
    assert module.startswith("uvloop") == request.node.name.endswith("[uvloop]")


# ---------------------------------------------------------------- an outside review's cases


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.asynccontextmanager
async def _raw(handle: Callable[..., Awaitable[None]]) -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await handle(reader, writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


EARLY_413 = b'HTTP/1.1 413 Payload Too Large\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{"error":"big"}'
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def _answer_early_and_half_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if b"/big" not in head.split(b"\r\n", 1)[0]:
        writer.write(OK)
        await writer.drain()
        return
    writer.write(EARLY_413)
    await writer.drain()
    writer.write_eof()  # done sending; the rest of the upload is read and dropped
    while await reader.read(1 << 16):
        pass


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "streamed"])
async def test_an_early_answer_to_a_large_upload_is_the_outcome_and_the_pool_stays_whole(
    streamed: bool,
) -> None:
    # a server that answers 413 and half-closes while the upload is still being written: the
    # answer is what httpcore returns; the transport once crashed (asyncio's loop) and lost
    # the pool slot for good, or reported a WriteError with the 413 already read
    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(128):
            yield b"x" * (64 * 1024)
            await asyncio.sleep(0)

    transport = Http11Transport(1)
    async with (
        _raw(_answer_early_and_half_close) as url,
        httpx.AsyncClient(transport=transport, timeout=10) as client,
    ):
        for _ in range(2):
            content = pieces() if streamed else b"x" * (8 << 20)
            answer = await asyncio.wait_for(client.post(url + "big", content=content), 20)
            assert (answer.status_code, answer.json()) == (413, {"error": "big"})
        assert (await client.get(url)).text == "ok"
        assert transport.in_flight == 0


async def test_a_body_that_runs_to_the_close_cut_by_a_reset_is_a_read_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"data": [')
        await writer.drain()
        await asyncio.sleep(0.1)
        _reset(writer)

    async with _raw(cut) as url, httpx.AsyncClient(transport=Http11Transport(1)) as client:
        with pytest.raises(httpx.ReadError):
            await asyncio.wait_for(client.get(url), 10)


async def test_a_reset_before_the_answer_is_a_read_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        _reset(writer)

    async with _raw(reset) as url, httpx.AsyncClient(transport=Http11Transport(1)) as client:
        with pytest.raises(httpx.ReadError):
            await asyncio.wait_for(client.get(url), 10)


async def test_trailers_are_not_the_answers_headers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n"
        b'trailer: x-checksum\r\n\r\nc\r\n{"data":[1]}\r\n0\r\nx-checksum: abc\r\n'
        b"content-encoding: gzip\r\n\r\n"
    )
    async with (
        _scripted(_reply(raw)) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        answer = await client.get(url)
    assert answer.headers["content-type"] == "application/json"
    assert "x-checksum" not in answer.headers and "content-encoding" not in answer.headers
    assert answer.json() == {"data": [1]}


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    ],
    ids=["bare LF", "blank after a chunk size", "chunked beside a length"],
)
async def test_answers_httpx_own_parser_reads_are_read(raw: bytes) -> None:
    async with (
        _scripted(_reply(raw, close=True)) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        assert (await asyncio.wait_for(client.get(url), 10)).content == b"ok"


async def test_an_answer_head_past_the_limit_is_refused_not_read_without_end() -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nx-endless: ")
        for _ in range(40):  # 2.5 MiB of one header value, never ended
            writer.write(b"a" * (64 * 1024))
            await writer.drain()
        await asyncio.sleep(5)

    transport = Http11Transport(1)
    async with _raw(endless) as url, httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="head is larger than"):
            await asyncio.wait_for(client.get(url), 10)
        assert (transport.in_flight, transport.open_connections()) == (0, 0)


async def test_a_streamed_body_must_match_its_declared_length() -> None:
    async def body(size: int) -> AsyncIterator[bytes]:
        yield b"x" * size

    transport = Http11Transport(1)
    async with (
        _scripted(_reply(OK)) as (url, seen),
        httpx.AsyncClient(transport=transport) as client,
    ):
        for size, word in ((18, "much"), (4, "little")):
            with pytest.raises(httpx.LocalProtocolError, match=f"Too {word} data"):
                await client.post(url, content=body(size), headers={"content-length": "10"})
        assert (await client.get(url)).text == "ok"  # nothing smuggled into the next request
        assert transport.in_flight == 0
    assert [s.split(b"\r\n", 1)[0] for s in seen][-1] == b"GET / HTTP/1.1"


async def test_the_answers_http_version_is_reported() -> None:
    raw = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
    async with (
        _scripted(_reply(raw, close=True)) as (url, _),
        httpx.AsyncClient(transport=Http11Transport(1)) as client,
    ):
        answer = await client.get(url)
    assert (answer.http_version, answer.text) == ("HTTP/1.0", "ok")
