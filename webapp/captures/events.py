"""The channel-layer side of captures: the group of the browsers watching one capture and the
messages they get (see webapp.captures.consumers), and the messages a host's agent connection gets
to start or stop a capture (webapp.hosts.consumers: `capture.request`, `capture.stop`)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from webapp import layer


def capture_group(capture_id: str) -> str:
    """Group of the browser sockets watching one capture."""
    return f"capture.{capture_id}"


def status_message(summary: dict[str, Any]) -> dict[str, Any]:
    """`capture.status`: the capture as the API shows it (status, counts, error) changed."""
    return {"type": "capture.status", "capture": summary}


def rows_message(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`capture.rows`: new rows of the table, in frame order."""
    return {"type": "capture.rows", "rows": rows}


def deleted_message() -> dict[str, Any]:
    """`capture.deleted`: the capture is gone; its sockets close."""
    return {"type": "capture.deleted"}


def request_message(capture_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """`capture.request` to a host's agent connection: send the agent this `capture` frame."""
    return {"type": "capture.request", "id": capture_id, "request": request}


def stop_message(capture_id: str) -> dict[str, Any]:
    """`capture.stop` to a host's agent connection: send the agent a `capture.stop` frame."""
    return {"type": "capture.stop", "id": capture_id}


def send_to_agent(host_id: int, message: dict[str, Any]) -> None:
    """From sync code (a service, after its transaction commits): to the host's agent connection."""
    async_to_sync(get_channel_layer().group_send)(layer.agent_group(host_id), message)


def send_to_watchers(capture_id: str, message: dict[str, Any]) -> None:
    """From sync code: to the browsers watching the capture."""
    async_to_sync(get_channel_layer().group_send)(capture_group(capture_id), message)
