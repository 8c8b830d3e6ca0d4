"""The channel-layer contract between consumers and services: group names and message types.

Groups:
- TOPOLOGY ("topology"): every browser socket. Messages `topology.snapshot`, `topology.delta`,
  `host.status`, `operation.status`, shaped exactly like the browser frames of
  docs/agent-protocol.md (`stale`: the web app refused a frame of that host's agent and waits for
  a fresh snapshot).
- AGENTS ("agents"): every agent connection. `state.request` {reply_channel, host?}: each agent
  consumer (for `host`, if given) sends its live state to reply_channel as a `topology.snapshot`.
- agent_group(host_id) ("agent.<id>"): the one connection of a host's agent.
  `operation.wake`: an operation of the host was queued; the connection starts the oldest pending
  one unless one is running (webapp.operations). `operation.cancel` {id}: someone cancelled that
  operation; if it is the one the connection runs, it sends the agent a `cancel` frame.
  `agent.revoke`: close with 4003.
  `agent.replace` {channel}: a newer connection of the same host took over; close.
- A browser socket's own channel gets `identity.revoked` {reason} from its worker's identity watch
  (webapp.accounts.identity): its user or credential no longer stands; it closes with 4003.
- A browser socket's own channel also gets `host.presence` {offline: [host.status messages]}
  from its worker's presence watch (webapp.topology.presence): the hosts without a presence lease
  now; the socket sends the browser those it last showed online.
"""

from __future__ import annotations

from typing import Any

TOPOLOGY = "topology"
AGENTS = "agents"

CLOSE_FORBIDDEN = 4003  # refused or revoked: daphne answers 403 when sent before accept
CLOSE_REPLACED = 4009  # a newer connection of the same host took over


def agent_group(host_id: int) -> str:
    """Group holding the live connection of one host's agent."""
    return f"agent.{host_id}"


def snapshot_message(
    *,
    host: str,
    online: bool,
    seq: int,
    state: dict[str, Any],
    stale: bool = False,
    last_seen: str | None = None,
) -> dict[str, Any]:
    """`topology.snapshot`: a host's whole state (`stale`: its agent has moved on, a snapshot is due;
    `last_seen`: when its agent was last heard, ISO 8601, for a stored state)."""
    return {
        "type": "topology.snapshot",
        "host": host,
        "online": online,
        "stale": stale,
        "seq": seq,
        "state": state,
        "last_seen": last_seen,
    }


def delta_message(*, host: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    """`topology.delta`: events to apply in order to the snapshot with seq - 1."""
    return {"type": "topology.delta", "host": host, "seq": seq, "events": events}


def desired_message(*, host: str, topology: str) -> dict[str, Any]:
    """`desired.changed`: the status of a desired topology changed without an operation (its drift,
    seen live): browsers read it again from the API."""
    return {"type": "desired.changed", "host": host, "topology": topology}


def status_message(
    *, host: str, online: bool, last_seen: str | None, agent_version: str, stale: bool = False
) -> dict[str, Any]:
    """`host.status`: a host's agent came or went (last_seen ISO 8601), or its state went stale:
    the web app refused a frame and waits for a fresh snapshot."""
    return {
        "type": "host.status",
        "host": host,
        "online": online,
        "stale": stale,
        "last_seen": last_seen,
        "agent_version": agent_version,
    }


def operation_message(
    *,
    id: str,
    host: str,
    kind: str,
    status: str,
    error: str = "",
    topology: str | None = None,
    progress: str = "",
    done: int | None = None,
    total: int | None = None,
    subject: str = "",
) -> dict[str, Any]:
    """`operation.status`: an operation of a host was queued, started, progressed, ended or was
    cancelled (`error` only when it failed or was cancelled while running, saying why; `topology`,
    the desired topology's name, only when it was queued for one; `subject`, what a docker
    operation does, e.g. "container.run web"; `progress` text and `done` of `total` only while it
    runs and its agent has reported how far it is)."""
    operation: dict[str, Any] = {"id": id, "host": host, "kind": kind, "status": status}
    if topology:
        operation["topology"] = topology
    if subject:
        operation["subject"] = subject
    if error:
        operation["error"] = error
    if progress:
        operation["progress"] = progress
    if done is not None and total is not None:
        operation["done"], operation["total"] = done, total
    return {"type": "operation.status", "operation": operation}
