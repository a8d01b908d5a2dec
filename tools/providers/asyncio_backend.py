"""An httpcore network backend on plain asyncio streams, for the provider connection pools.

httpcore's default backend on asyncio goes through anyio. Under load most of a provider call's
client-side CPU went there rather than into HTTP: every request's turn through the pool asks
each idle connection ``get_extra_info("is_readable")``, which anyio answers by building a dict
of attribute getters and polling the raw socket, and every read and write opens an anyio cancel
scope. This backend answers the same interface with asyncio's own streams and
``asyncio.timeout``: ``is_readable`` is two flag checks on the stream. Measured with
``benchmarks/providers_throughput.py`` (see ``docs/providers.md``).

httpcore writes a request's head and its body separately; each write would be a ``send()`` of
its own (a system call, a packet and a wake-up of the server). The stream holds what is written
until the request is complete - the first read after it - or until :data:`FLUSH_BYTES` are held,
and sends it in one piece.

It raises httpcore's exception types, so httpx maps them exactly as before (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``, ``ReadError``, ``WriteError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore

__all__ = ["FLUSH_BYTES", "AsyncioBackend", "AsyncioStream"]

#: the most a stream holds back before sending it (a large body goes out as it is written)
FLUSH_BYTES = 64 * 1024

#: (level, option, value) as httpcore passes socket options
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


@contextlib.contextmanager
def _mapped(mapping: dict[type[BaseException], type[Exception]]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        raise


#: how a failed connect reads to httpcore (and so to httpx): a timeout first, it is an OSError too
_CONNECT_ERRORS: dict[type[BaseException], type[Exception]] = {
    TimeoutError: httpcore.ConnectTimeout,
    OSError: httpcore.ConnectError,
}


def _deadline(timeout: float | None) -> asyncio.Timeout:
    return asyncio.timeout(timeout)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS over TCP) connection as an asyncio reader/writer pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._send_unsent()  # the request is complete: its head and body go out together
        # errors mapped inline, not with _mapped: this runs once or twice per request
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:  # before OSError: a TimeoutError is an OSError too
            raise httpcore.ReadTimeout(str(exc) or type(exc).__name__) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hold ``buffer`` until the next read, or send what is held once it reaches
        :data:`FLUSH_BYTES` (waiting, up to ``timeout``, while the peer is not reading)."""
        if not buffer:
            return
        if self._writer.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._unsent.append(buffer)
        self._unsent_bytes += len(buffer)
        if self._unsent_bytes < FLUSH_BYTES:
            return
        try:
            self._send_unsent()
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or type(exc).__name__) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    def _send_unsent(self) -> None:
        """Hand what is held to the transport, which sends it at once or as the socket allows
        (it never blocks; at most :data:`FLUSH_BYTES` wait there for a read's turn). On a
        connection already closing it is dropped: the read that follows reports the end."""
        if not self._unsent:
            return
        data = b"".join(self._unsent)
        self._unsent.clear()
        self._unsent_bytes = 0
        if not self._writer.is_closing():
            self._writer.write(data)

    async def aclose(self) -> None:
        self._unsent.clear()
        if self._writer.get_extra_info("ssl_object") is not None:
            # as httpcore's anyio backend closes TLS (standard_compatible=False): no
            # close_notify exchange, which waits up to 30 s on a peer that never answers it,
            # and httpcore closes expired connections inside a request
            self._writer.transport.abort()
            return
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        mapping: dict[type[BaseException], type[Exception]] = {
            TimeoutError: httpcore.ConnectTimeout,
            ssl.SSLError: httpcore.ConnectError,
            OSError: httpcore.ConnectError,
        }
        try:
            with _mapped(mapping):
                async with _deadline(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except BaseException:
            await self.aclose()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # an idle keep-alive connection the server closed (or wrote to): not reusable
            return self._reader.at_eof() or self._writer.is_closing()
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections for an ``httpcore.AsyncConnectionPool`` opened with asyncio streams."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _mapped(_CONNECT_ERRORS):
            async with _deadline(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None
                )
        sock: socket.socket | None = writer.get_extra_info("socket")
        for option in socket_options or ():
            if sock is not None:
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with _mapped(_CONNECT_ERRORS):
            async with _deadline(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
