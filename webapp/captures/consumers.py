"""The browser socket of one capture (/ws/captures/<id>/): its status and new rows, live.

Operators and admins only (packets can carry secrets); anyone else is refused before the socket
opens (HTTP 403). On connect the server sends the capture's `capture.status` and its last
INITIAL_ROWS rows (`capture.rows`), then both as the agent's frames arrive. A capture that does not
exist, or is deleted while watched, gets `capture.deleted` and the socket closes with 4004. The
socket ends like /ws/topology/ when its user or credential no longer stands (`session.ended`, 4003).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from webapp import layer
from webapp.accounts.identity import identity_of, identity_watch
from webapp.accounts.selectors import user_can_operate
from webapp.captures import events
from webapp.captures.api.serializers import CapturePacketSerializer, CaptureSerializer
from webapp.captures.selectors import capture_get, capture_rows
from webapp.errors import NotFound
from webapp.hosts.protocol import VERSION, error_frame

INITIAL_ROWS = 1000  # rows sent on connect: the last ones (the page keeps at most this many drawn)
CLOSE_GONE = 4004  # no such capture (or it was deleted)


def _initial(capture_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    try:
        capture = capture_get(capture_id=capture_id)
    except NotFound:
        return None
    rows = capture_rows(capture=capture, limit=INITIAL_ROWS)
    return CaptureSerializer(capture).data, CapturePacketSerializer(rows, many=True).data


class CaptureConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if (
            user is None
            or not user.is_authenticated
            or not await database_sync_to_async(user_can_operate)(user)
        ):
            await self.close(code=layer.CLOSE_FORBIDDEN)  # before accept: HTTP 403
            return
        try:
            capture_id = str(uuid.UUID(self.scope["url_route"]["kwargs"]["id"]))
        except ValueError:  # no capture has that id
            await self.accept()
            await self.capture_deleted(events.deleted_message())
            return
        identity_watch().join(self.channel_name, await database_sync_to_async(identity_of)(self.scope))
        self.group = events.capture_group(capture_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        initial = await database_sync_to_async(_initial)(capture_id)
        if initial is None:
            await self.capture_deleted(events.deleted_message())
            return
        summary, rows = initial
        await self._send(events.status_message(summary))
        await self._send(events.rows_message(rows))

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            identity_watch().leave(self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self._send(error_frame("this socket only sends: a browser may send nothing on it"))

    # Group messages (webapp.captures.events)

    async def capture_status(self, event: dict[str, Any]) -> None:
        await self._send(event)

    async def capture_rows(self, event: dict[str, Any]) -> None:
        await self._send(event)

    async def capture_deleted(self, event: dict[str, Any]) -> None:
        await self._send(event)
        await self.close(code=CLOSE_GONE)

    async def identity_revoked(self, event: dict[str, Any]) -> None:
        """Like /ws/topology/: the user or credential no longer stands; say why, close with 4003."""
        await self._send({"type": "session.ended", "reason": event["reason"]})
        await self.close(code=layer.CLOSE_FORBIDDEN)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"v": VERSION, **message}))
