"""The agent connection's side of captures (webapp.hosts.consumers calls these): each capture frame
stored through the services, what changed sent to the browsers watching that capture, and the
frames to answer the agent with (a `capture.stop`, an `error` for a refused frame) returned.

The frames were checked by webapp.hosts.protocol (capture.data's `data` is decoded there to bytes).
A database failure is logged and the frame dropped: the connection carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import DatabaseError

from webapp.captures import events, services
from webapp.captures.api.serializers import CaptureSerializer
from webapp.captures.models import Capture
from webapp.hosts import protocol

log = logging.getLogger(__name__)
Frames = list[dict[str, Any]]


async def _watchers(capture: Capture, *, rows: list[dict[str, Any]] | None = None) -> None:
    layer = get_channel_layer()
    group = events.capture_group(str(capture.id))
    if rows:
        await layer.group_send(group, events.rows_message(rows))
    await layer.group_send(group, events.status_message(CaptureSerializer(capture).data))


async def _handle(
    service: Callable[..., services.Handled], frame: dict[str, Any], **arguments: Any
) -> Frames:
    try:
        handled = await database_sync_to_async(service)(capture_id=frame["id"], **arguments)
    except DatabaseError:
        log.exception("capture %s: could not store its %s frame", frame["id"], frame["type"])
        return []
    if handled.capture is not None:
        await _watchers(handled.capture, rows=handled.rows)
    replies = [protocol.error_frame(handled.refused)] if handled.refused else []
    if handled.stop:
        replies.append(protocol.frame("capture.stop", id=frame["id"]))
    return replies


async def on_started(*, host_id: int, frame: dict[str, Any]) -> Frames:
    return await _handle(services.capture_started, frame, host_id=host_id)


async def on_data(*, host_id: int, frame: dict[str, Any]) -> Frames:
    return await _handle(
        services.capture_data, frame, host_id=host_id, offset=frame["offset"], data=frame["data"]
    )


async def on_packets(*, host_id: int, frame: dict[str, Any]) -> Frames:
    return await _handle(
        services.capture_rows_add, frame, host_id=host_id, seen=frame["seen"], rows=frame["rows"]
    )


async def on_done(*, host_id: int, frame: dict[str, Any]) -> Frames:
    fields = {name: frame.get(name) for name in ("ok", "packets", "dropped", "reason", "error")}
    return await _handle(services.capture_done, frame, host_id=host_id, **fields)


async def agent_gone(*, host_id: int, ids: Collection[str] | None = None, keep: Collection[str] = ()) -> None:
    """The host's agent connection closed (ids: the captures it ran), or a new one said hello (keep:
    the captures it already runs): the others end, their watchers are told."""
    try:
        ended = await database_sync_to_async(services.captures_agent_gone)(
            host_id=host_id, ids=ids, keep=keep
        )
    except DatabaseError:  # they stay live until the agent's next hello ends them
        log.exception("host %s: could not end the captures of its agent's connection", host_id)
        return
    for capture in ended:
        await _watchers(capture)
