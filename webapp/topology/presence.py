"""Each worker's watch over host presence leases, for the browser sockets it serves.

A host whose web worker died while its agent was connected never gets the `host.status` offline
that the connection's disconnect would have sent: no process is left to send it. Instead, every
worker that serves browser sockets looks at the leases every lease_renew_interval() (one query,
whatever the number of sockets) and, when the set of hosts without a lease changed or a socket is
new, sends its own sockets a `host.presence` message; each socket then tells its browser that the
hosts it had shown online are offline. Only the worker's own sockets hear it, so with several
workers no browser is told twice, and no worker needs to know that another one died.

At each look the watch also fails the operations left running on a host without a lease (no
answer can come through the dead connection) and tells every browser (`operation.status` to the
TOPOLOGY group: only the worker that changed the row sends it).

The watch runs in the worker's event loop only while it serves at least one browser socket, and
reads the database through database_sync_to_async.
"""

from __future__ import annotations

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from webapp import layer
from webapp.hosts.models import Host
from webapp.hosts.selectors import hosts_gone, lease_renew_interval
from webapp.operations.services import operation_message, operations_fail_orphaned

log = logging.getLogger(__name__)


def _gone() -> list[dict]:
    """`host.status` offline messages of the hosts without a lease now (see hosts_gone)."""
    return [_offline(host) for host in hosts_gone()]


def _offline(host: Host) -> dict:
    return layer.status_message(
        host=host.name,
        online=False,
        last_seen=host.last_seen.isoformat() if host.last_seen else None,
        agent_version=host.agent_version,
    )


class PresenceWatch:
    """The leases as one worker's browser sockets need to hear about them; one per event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sockets: set[str] = set()  # channel names of the browser sockets served here
        self.due: set[str] = set()  # sockets that have not had the current view yet
        self.seen: frozenset[tuple[str, str | None]] | None = None  # (host, last_seen) at the last look
        self.task: asyncio.Task | None = None

    def join(self, channel: str) -> None:
        self.sockets.add(channel)
        self.due.add(channel)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def recheck(self, channel: str) -> None:
        """Send the socket the view at the next look even if it has not changed: it showed a host
        online from the database (no agent answered for it), maybe from a read older than the view
        it was last sent."""
        if channel in self.sockets:
            self.due.add(channel)

    def leave(self, channel: str) -> None:
        self.sockets.discard(channel)
        self.due.discard(channel)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task, self.seen = None, None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(lease_renew_interval())
            try:
                await self.look()
            except Exception:  # a database hiccup must not end the watch for good
                log.exception("could not look at the hosts' presence leases")

    async def look(self) -> None:
        """Read the leases once; send the view to every socket if it changed, else to new ones."""
        gone = await database_sync_to_async(_gone)()
        channel_layer = get_channel_layer()
        for operation in await database_sync_to_async(operations_fail_orphaned)():
            await channel_layer.group_send(
                layer.TOPOLOGY, operation_message(operation, host=operation.host.name)
            )
        # last_seen moves on every hello and disconnect: a host that came and went between two
        # looks is a change too
        view = frozenset((status["host"], status["last_seen"]) for status in gone)
        targets = set(self.sockets) if view != self.seen else self.due & self.sockets
        self.seen = view
        self.due -= targets
        for channel in targets:
            if channel not in self.sockets:  # it left while a message was on its way
                continue
            try:
                await channel_layer.send(channel, {"type": "host.presence", "offline": gone})
            except ChannelFull:  # that browser is not reading now: try it again at the next look
                self.due.add(channel)


_watch: PresenceWatch | None = None


def presence_watch() -> PresenceWatch:
    """This worker's watch (the running event loop's)."""
    global _watch
    if _watch is None or _watch.loop is not asyncio.get_running_loop():
        _watch = PresenceWatch()
    return _watch
