"""A host's state as the protocol carries it: kind → {key: object}, changed by snapshots and deltas."""

from __future__ import annotations

from typing import Any

KINDS = ("namespaces", "links", "addresses", "routes", "neighbours", "fdb")
SNAPSHOT_VERSION = 1

State = dict[str, dict[str, dict[str, Any]]]


class InvalidState(ValueError):
    """A state or event list that does not follow the protocol; nothing was changed."""


def state_check(state: Any) -> State:
    """A checked copy of a protocol state with every kind present."""
    if not isinstance(state, dict):
        raise InvalidState("state must be an object")
    unknown = set(state) - set(KINDS)
    if unknown:
        raise InvalidState(f"state: unknown kinds {sorted(unknown)} (known: {', '.join(KINDS)})")
    checked: State = {}
    for kind in KINDS:
        objects = state.get(kind, {})
        if not isinstance(objects, dict) or not all(isinstance(o, dict) for o in objects.values()):
            raise InvalidState(f"state.{kind} must be an object mapping keys to objects")
        checked[kind] = dict(objects)
    return checked


def events_check(events: Any) -> list[dict[str, Any]]:
    """The events of a delta, checked: each {kind, action: set|del, key, object (an object for set)}."""
    if not isinstance(events, list):
        raise InvalidState("events must be a list")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidState(f"events[{i}] must be an object")
        if event.get("kind") not in KINDS:
            raise InvalidState(f"events[{i}].kind must be one of {', '.join(KINDS)}")
        if event.get("action") not in ("set", "del"):
            raise InvalidState(f"events[{i}].action must be 'set' or 'del'")
        if not isinstance(event.get("key"), str):
            raise InvalidState(f"events[{i}].key must be a string")
        if event["action"] == "set" and not isinstance(event.get("object"), dict):
            raise InvalidState(f"events[{i}].object must be an object for action 'set'")
    return events


def snapshot_lists(state: State) -> dict[str, Any]:
    """The netcore snapshot form of a state: {"version": 1, kind: [objects]}."""
    return {"version": SNAPSHOT_VERSION, **{kind: list(state.get(kind, {}).values()) for kind in KINDS}}


class LiveState:
    """One host's state at `seq`, kept in memory by its agent's connection."""

    def __init__(self) -> None:
        self.seq = 0
        self.known = False  # True once a snapshot arrived
        self._state: State = {kind: {} for kind in KINDS}

    def replace(self, *, seq: int, state: Any) -> None:
        """Take a snapshot (checked first)."""
        self._state = state_check(state)
        self.seq = seq
        self.known = True

    def apply(self, *, seq: int, events: Any) -> None:
        """Apply a delta's events in order (all checked first, so a bad delta changes nothing)."""
        if not self.known:
            raise InvalidState("delta before any snapshot")
        for event in events_check(events):
            objects = self._state[event["kind"]]
            if event["action"] == "set":
                objects[event["key"]] = event["object"]
            else:
                objects.pop(event["key"], None)
        self.seq = seq

    def copy(self) -> State:
        """A copy safe to hand to another task or thread (objects are replaced, never changed in place)."""
        return {kind: dict(objects) for kind, objects in self._state.items()}
