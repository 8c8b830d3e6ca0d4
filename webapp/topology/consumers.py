"""The browser websocket (/ws/topology/): every host's snapshot, then deltas and status as they happen.

A host is shown online while its agent's connection holds its presence lease; when the lease runs
out without a disconnect (the worker holding the connection died), this worker's presence watch
(webapp.topology.presence) makes the socket send the `host.status` offline.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from webapp import layer
from webapp.accounts.identity import identity_of, identity_watch
from webapp.hosts.protocol import VERSION, error_frame
from webapp.topology.presence import presence_watch
from webapp.topology.selectors import HostTopology, topology_list

STATE_REPLY_TIMEOUT = 2.0  # seconds to wait for a live agent's state before sending the stored one
RESYNC_INTERVAL = 1.0  # seconds: a browser's resync is answered at most this often
MAX_FRAME = 256  # characters of a browser frame (the only one is {"type": "resync"})


class TopologyConsumer(AsyncWebsocketConsumer):
    """Streams topology to one logged-in browser; delta seq numbers never go backwards per host."""

    fallback: asyncio.Task | None = None
    resync_task: asyncio.Task | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=layer.CLOSE_FORBIDDEN)  # before accept: HTTP 403
            return
        self.sent: dict[str, int] = {}  # host → seq of the last frame sent for it
        self.online: dict[str, bool] = {}  # host → online as last told to the browser
        self.awaiting: set[str] = set()  # online hosts whose live state was asked for
        identity_watch().join(self.channel_name, await database_sync_to_async(identity_of)(self.scope))
        await self.channel_layer.group_add(layer.TOPOLOGY, self.channel_name)
        presence_watch().join(self.channel_name)
        await self.accept()
        self.answered_at = asyncio.get_running_loop().time()  # the first snapshots answer a resync
        await self._snapshots()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Forward the high-rate group messages straight to their handler.

        Channels' dispatch first closes stale database connections on the one database
        thread, for every message; these handlers never touch the database, and with
        hundreds of browsers that hop per message doubled the fan-out latency.
        """
        if message["type"] in ("topology.delta", "host.status", "host.presence", "operation.status"):
            await getattr(self, message["type"].replace(".", "_"))(message)
        else:
            await super().dispatch(message)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(layer.TOPOLOGY, self.channel_name)
        presence_watch().leave(self.channel_name)
        identity_watch().leave(self.channel_name)
        for task in (self.fallback, self.resync_task):
            if task:
                task.cancel()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:  # short, so json's recursive parser cannot nest deep
            message = json.loads(text_data) if text_data is not None and len(text_data) <= MAX_FRAME else None
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "resync":
            await self._resync()
        else:
            await self._send(error_frame('the only frame a browser may send is {"type": "resync"}'))

    # Group and reply messages (see webapp.layer)

    async def topology_snapshot(self, event: dict[str, Any]) -> None:
        self.awaiting.discard(event["host"])
        self.sent[event["host"]] = event["seq"]
        self.online[event["host"]] = event["online"]
        await self._send(event)

    async def topology_delta(self, event: dict[str, Any]) -> None:
        host, seq = event["host"], event["seq"]
        last = self.sent.get(host)
        if last is None or seq <= last:
            return  # no snapshot sent yet (it will contain this), or already contained in it
        if seq > last + 1:  # a frame was lost on the way: start this host over from a snapshot
            del self.sent[host]
            await self._ask_states([host], host=host)
            return
        self.sent[host] = seq
        await self._send(event)

    async def host_status(self, event: dict[str, Any]) -> None:
        self.online[event["host"]] = event["online"]
        await self._send(event)

    async def operation_status(self, event: dict[str, Any]) -> None:
        await self._send(event)

    async def desired_changed(self, event: dict[str, Any]) -> None:
        await self._send(event)

    async def identity_revoked(self, event: dict[str, Any]) -> None:
        """This worker's identity watch: the user or credential of this socket no longer stands
        (webapp.accounts.identity). Say why, then close with 4003: the browser does not reconnect."""
        await self._send({"type": "session.ended", "reason": event["reason"]})
        await self.close(code=layer.CLOSE_FORBIDDEN)

    async def host_presence(self, event: dict[str, Any]) -> None:
        """This worker's presence watch: `offline` holds a `host.status` for every host without a
        lease now; tell the browser of those it was last told were online."""
        for status in event["offline"]:
            if self.online.get(status["host"]):
                await self.host_status(status)

    # Helpers

    async def _resync(self) -> None:
        """Answer a resync at most once per RESYNC_INTERVAL: requests that come sooner are
        coalesced into one later answer, so a browser cannot queue work or memory on the server."""
        if self.resync_task is not None and not self.resync_task.done():
            return  # an answer is already due: it covers this request too
        wait = self.answered_at + RESYNC_INTERVAL - asyncio.get_running_loop().time()
        if wait > 0:
            self.resync_task = asyncio.create_task(self._resync_after(wait))
            return
        self.answered_at = asyncio.get_running_loop().time()
        await self._snapshots()

    async def _resync_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.answered_at = asyncio.get_running_loop().time()
        await self._snapshots()

    async def _snapshots(self) -> None:
        """Send every host's snapshot: live ones from their agents, the others as stored."""
        online = []
        for record in await database_sync_to_async(topology_list)():
            if record.online:
                online.append(record.host)
            else:
                await self._send_stored(record)
        if online:
            await self._ask_states(online)

    async def _ask_states(self, hosts: list[str], *, host: str | None = None) -> None:
        """Ask agents (all, or the one of `host`) for their live state; fall back to the stored one."""
        self.awaiting.update(hosts)
        request = {"type": "state.request", "reply_channel": self.channel_name}
        if host is not None:
            request["host"] = host
        await self.channel_layer.group_send(layer.AGENTS, request)
        if self.fallback:
            self.fallback.cancel()
        self.fallback = asyncio.create_task(self._fallback_after(STATE_REPLY_TIMEOUT))

    async def _fallback_after(self, delay: float) -> None:
        """Send the stored state of hosts whose agent did not answer (not connected after all)."""
        await asyncio.sleep(delay)
        if not self.awaiting:
            return
        for record in await database_sync_to_async(topology_list)(hosts=sorted(self.awaiting)):
            if record.host in self.awaiting:
                await self._send_stored(record)

    async def _send_stored(self, record: HostTopology) -> None:
        if record.online:  # by its lease, yet its agent did not answer: maybe its worker died
            presence_watch().recheck(self.channel_name)
        await self.topology_snapshot(
            layer.snapshot_message(
                host=record.host,
                online=record.online,
                seq=record.seq,
                state=record.state,
                last_seen=record.last_seen,
            )
        )

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"v": VERSION, **message}))
