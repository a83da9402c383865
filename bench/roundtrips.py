"""Round trips to PostgreSQL, counted on the wire the same way for careloop and the baseline.

A TCP proxy on 127.0.0.1 in front of PostgreSQL reads what clients send (the frontend protocol) and counts
every message after which a client waits for the server: Sync (the end of an extended-query exchange:
Parse/Bind/Execute pipelined, asyncpg's statements, prepared or not, and executemany) and Query (the simple
protocol: BEGIN, COMMIT, a pool's reset). Each is answered by one ReadyForQuery, so the count is round trips,
whatever the driver or ORM, including what a statement counter at the ORM does not see. Used only while
counting (sequential requests); the load runs connect to PostgreSQL directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import urlsplit, urlunsplit

SSL_REQUEST, GSS_REQUEST = 80877103, 80877104
WAITS_FOR_SERVER = {ord("S"), ord("Q")}  # Sync, Query


class RoundTripProxy:
    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self.dsn, self.target = dsn, (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.round_trips = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def proxied_dsn(self) -> str:
        """The DSN with this proxy as host and port. The bench's PostgreSQL has SSL off (a client's SSL request
        is refused with one byte, forwarded as it is): the proxy reads the messages in clear."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.dsn)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    async def __aenter__(self) -> RoundTripProxy:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connect(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        pumps = [asyncio.create_task(self._client_to_server(client_reader, server_writer)),
                 asyncio.create_task(_pipe(server_reader, client_writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, server_writer):
                writer.close()

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # untyped start-up messages: SSL or GSS requests (answered with one byte), then start-up
                head = await reader.readexactly(8)
                length, code = struct.unpack("!ii", head)
                writer.write(head + await reader.readexactly(length - 8))
                await writer.drain()
                if code not in (SSL_REQUEST, GSS_REQUEST):
                    break
            while True:  # typed messages: one type byte, then a length that counts itself
                head = await reader.readexactly(5)
                (length,) = struct.unpack("!i", head[1:])
                writer.write(head + await reader.readexactly(length - 4))
                if head[0] in WAITS_FOR_SERVER:
                    self.round_trips += 1
                    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
