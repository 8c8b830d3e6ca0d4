"""A host's state as the protocol carries it: kind → {key: object}, changed by snapshots and deltas.

Every object is checked against netcore's schema (webapp.topology.schema) before it is kept, and
seq numbers must follow on exactly, so what is kept is always a state the agent really had.
"""

from __future__ import annotations

from typing import Any

from webapp.topology.schema import KINDS, SNAPSHOT_KINDS, SchemaError, object_check, text_check

SNAPSHOT_VERSION = 1
MAX_KEY = 512  # characters of an object's key
EVENT_FIELDS = frozenset(("kind", "action", "key", "object"))

State = dict[str, dict[str, dict[str, Any]]]


class InvalidState(ValueError):
    """A state or event list that does not follow the protocol; nothing was changed."""


class OutOfOrder(InvalidState):
    """A frame whose seq does not follow on from the state held; nothing was changed."""


def _key_check(key: Any) -> None:
    if type(key) is not str or not 0 < len(key) <= MAX_KEY:
        raise SchemaError(f"a key must be a string of 1 to {MAX_KEY} characters")
    text_check(key)


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
        if not isinstance(objects, dict):
            raise InvalidState(f"state.{kind} must be an object mapping keys to objects")
        for key, obj in objects.items():
            try:
                _key_check(key)
                object_check(kind, obj)
            except SchemaError as err:
                raise InvalidState(f"state.{kind}[{key[:80]!r}]: {err}") from None
        checked[kind] = dict(objects)
    return checked


def state_clean(state: Any) -> State:
    """What of a stored state follows the protocol: every kind, holding only its valid objects."""
    clean: State = {kind: {} for kind in KINDS}
    for kind in KINDS:
        objects = state.get(kind) if isinstance(state, dict) else None
        for key, obj in objects.items() if isinstance(objects, dict) else ():
            try:
                _key_check(key)
                object_check(kind, obj)
            except SchemaError:
                continue
            clean[kind][key] = obj
    return clean


def events_check(events: Any) -> list[dict[str, Any]]:
    """The events of a delta, checked: each exactly {kind, action: set|del, key, object}, where the
    object of a `set` (and of a `del`, unless null) is a valid object of that kind."""
    if not isinstance(events, list):
        raise InvalidState("events must be a list")
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidState(f"events[{i}] must be an object")
        if event.keys() != EVENT_FIELDS:
            raise InvalidState(f"events[{i}] must have exactly the fields {', '.join(sorted(EVENT_FIELDS))}")
        kind, action = event["kind"], event["action"]
        if kind not in KINDS:
            raise InvalidState(f"events[{i}].kind must be one of {', '.join(KINDS)}")
        if action not in ("set", "del"):
            raise InvalidState(f"events[{i}].action must be 'set' or 'del'")
        try:
            _key_check(event["key"])
        except SchemaError as err:
            raise InvalidState(f"events[{i}].key: {err}") from None
        if action == "set" and not isinstance(event["object"], dict):
            raise InvalidState(f"events[{i}].object must be an object for action 'set'")
        if event["object"] is not None:
            try:
                object_check(kind, event["object"])
            except SchemaError as err:
                raise InvalidState(f"events[{i}].object ({kind} {event['key'][:80]!r}): {err}") from None
    return events


def snapshot_lists(state: State) -> dict[str, Any]:
    """The netcore snapshot form of a state's kernel objects: {"version": 1, kind: [objects]} (the
    Docker kinds are not a snapshot's: /api/v1/docker/ serves them)."""
    return {
        "version": SNAPSHOT_VERSION,
        **{kind: list(state.get(kind, {}).values()) for kind in SNAPSHOT_KINDS},
    }


class LiveState:
    """One host's state at `seq`, kept in memory by its agent's connection.

    `known` once a snapshot arrived; `stale` from a refused snapshot or delta until the next good
    snapshot: the state kept is then an older one than the agent's, and deltas cannot follow on.
    """

    def __init__(self) -> None:
        self.seq = 0
        self.known = False
        self.stale = False
        self._state: State = {kind: {} for kind in KINDS}

    def replace(self, *, seq: int, state: Any) -> None:
        """Take a snapshot (checked first); its seq must be above every seq taken before."""
        if self.known and seq <= self.seq:
            raise OutOfOrder(f"snapshot seq {seq} is not after {self.seq}")
        self._state = state_check(state)
        self.seq = seq
        self.known = True
        self.stale = False

    def apply(self, *, seq: int, events: Any) -> None:
        """Apply a delta's events in order (all checked first, so a bad delta changes nothing);
        its seq must be exactly one more than the state's."""
        if not self.known:
            raise InvalidState("delta before any snapshot")
        if self.stale:
            raise OutOfOrder(f"delta seq {seq}: waiting for a snapshot after a refused frame")
        if seq != self.seq + 1:
            raise OutOfOrder(f"delta seq {seq} does not follow {self.seq}")
        for event in events_check(events):
            objects = self._state[event["kind"]]
            if event["action"] == "set":
                objects[event["key"]] = event["object"]
            else:
                objects.pop(event["key"], None)
        self.seq = seq

    def refused(self) -> None:
        """A snapshot or delta was refused: the agent has moved on, so the state kept is stale."""
        self.stale = self.known

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        """A copy of the objects of one kind."""
        return dict(self._state[kind])

    def copy(self) -> State:
        """A copy safe to hand to another task or thread (objects are replaced, never changed in place)."""
        return {kind: dict(objects) for kind, objects in self._state.items()}
