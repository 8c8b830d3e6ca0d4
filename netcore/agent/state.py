"""The agent's view of its host as keyed mappings, and the coalescing of changes into deltas.

State is `{kind: {key: object-json}}` (docs/agent-protocol.md, "State"). Changes from the live
model are collected per key; a flush compares each with what was last sent, so only real
differences leave the host, and a burst of thousands of kernel events becomes a few deltas.
"""

from __future__ import annotations

from collections.abc import Iterable

from netcore.docker.read import KINDS as DOCKER_KINDS
from netcore.live import Event
from netcore.model import Snapshot
from netcore.services.catalog import HEALTH_KIND
from netcore.traffic.edges import KIND as TRAFFIC_KIND

KINDS = {
    "namespace": "namespaces",
    "link": "links",
    "address": "addresses",
    "route": "routes",
    "neighbour": "neighbours",
    "fdb": "fdb",
}
State = dict[str, dict[str, dict]]


def object_key(kind: str, obj) -> str:
    """The protocol key of a netcore object (its identity, not its contents)."""
    if kind == "namespace":
        return obj.name
    return "|".join(str(part) for part in obj.key)


def state_of(snapshot: Snapshot) -> State:
    """A netcore snapshot as protocol state."""
    groups: Iterable[tuple[str, tuple]] = (
        ("namespace", snapshot.namespaces),
        ("link", snapshot.links),
        ("address", snapshot.addresses),
        ("route", snapshot.routes),
        ("neighbour", snapshot.neighbours),
        ("fdb", snapshot.fdb),
    )
    return {KINDS[kind]: {object_key(kind, o): o.to_dict() for o in objs} for kind, objs in groups}


class Changes:
    """Changes not yet sent, and the state the receiver holds (as of the last frame sent)."""

    def __init__(self) -> None:
        self.sent: State = {kind: {} for kind in (*KINDS.values(), *DOCKER_KINDS, HEALTH_KIND, TRAFFIC_KIND)}
        self._pending: dict[tuple[str, str], dict | None] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, event: Event) -> None:
        """Remember the newest version of the object an event is about (None: deleted)."""
        kind = KINDS[event.kind]
        self._pending[(kind, object_key(event.kind, event.obj))] = (
            event.obj.to_dict() if event.action == "new" else None
        )

    def replace(self, state: State) -> None:
        """The kinds of `state` now hold exactly its objects (a whole read of them, such as Docker's)."""
        for kind, objects in state.items():
            pending = {key for k, key in self._pending if k == kind}
            for key in (self.sent[kind].keys() | pending) - objects.keys():
                self._pending[(kind, key)] = None
            for key, obj in objects.items():
                self._pending[(kind, key)] = obj

    def reset(self, state: State) -> None:
        """The receiver now holds `state` (a snapshot was sent); nothing is pending."""
        self.sent = {kind: {} for kind in self.sent} | state
        self._pending.clear()

    def take(self) -> list[dict]:
        """The protocol events that turn the sent state into the current one; marks them sent."""
        events = []
        for (kind, key), obj in self._pending.items():
            held = self.sent[kind].get(key)
            if obj == held:
                continue
            if obj is None:
                del self.sent[kind][key]
                events.append({"kind": kind, "action": "del", "key": key, "object": held})
            else:
                self.sent[kind][key] = obj
                events.append({"kind": kind, "action": "set", "key": key, "object": obj})
        self._pending.clear()
        return events
