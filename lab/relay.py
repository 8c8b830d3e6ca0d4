"""The dashboard relay: each host's agent reaches the dashboard at 127.0.0.1:PORT of its own namespace.

The dashboard listens on 127.0.0.1:PORT of the supervisor's network namespace only. For each host
the supervisor makes a listening socket inside the host's namespace (on netcore's namespace
worker: a socket belongs for its whole life to the namespace it was made in) bound to
127.0.0.1:PORT there, and serves it on its own event loop. Every connection accepted there gets
a new connection to 127.0.0.1:PORT made on the supervisor's thread, so in the supervisor's
namespace, and bytes are copied both ways until either side ends; then both are closed.

Nothing is routed or NATed: the host's namespace has no route anywhere but its underlay subnet,
and the dashboard stays unreachable from the underlay and from everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from netcore.netns import netns_run

log = logging.getLogger("lab.relay")
_CHUNK = 256 * 1024


def relay_listener(*, netns: str, port: int) -> socket.socket:
    """A non-blocking TCP socket listening on 127.0.0.1:port inside the namespace at path `netns`
    (its `lo` must be up)."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    return netns_run(path=netns, fn=make)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()


class Relay:
    """Relays of every host to 127.0.0.1:port of the namespace of the loop's thread."""

    def __init__(self, *, port: int) -> None:
        self.port = port
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self._open: set[asyncio.StreamWriter] = set()

    async def serve(self, listener: socket.socket, *, host: str) -> None:
        """Accept connections on `listener` (made by relay_listener) and relay each one."""

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await self._relay(reader, writer, host=host)
            finally:
                self._tasks.discard(task)

        self._servers.append(await asyncio.start_server(accepted, sock=listener))

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, host: str) -> None:
        upstream_writer = None
        self._open.add(writer)
        try:
            up_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.port)
            self._open.add(upstream_writer)
        except OSError as exc:
            log.warning("%s: cannot reach the dashboard at 127.0.0.1:%d: %s", host, self.port, exc)
        else:
            both = [
                asyncio.create_task(_copy(reader, upstream_writer)),
                asyncio.create_task(_copy(up_reader, writer)),
            ]
            try:
                await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in both:
                    task.cancel()
                for task in both:
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await task
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    self._open.discard(w)
                    w.close()
                    with contextlib.suppress(OSError):
                        await w.wait_closed()

    async def close(self) -> None:
        """Stop listening (the listening sockets are closed, so they hold no host namespace any
        more) and end every relayed connection (aborted: its copies end as they would on a reset,
        rather than being cancelled, which asyncio's servers log as an error)."""
        for server in self._servers:
            server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()
