"""Agent protocol version 1 (docs/agent-protocol.md): parsing and checking frames, building replies."""

from __future__ import annotations

import json
from typing import Any

VERSION = 1

# Fields every frame of a type must carry, with their JSON types.
_FIELDS: dict[str, dict[str, type]] = {
    "hello": {"host": str, "agent_version": str, "protocol": int},
    "snapshot": {"seq": int, "state": dict},
    "delta": {"seq": int, "events": list},
    "result": {"id": str, "ok": bool},
    "pong": {"id": str},
}
_JSON_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "a list"}
_STATE_FRAMES = {"snapshot", "delta"}  # a bad one leaves the host's state unknown: ask for a snapshot


class ProtocolError(Exception):
    """A frame that breaks the protocol; `resync` when the host's state must be fetched again."""

    def __init__(self, message: str, *, resync: bool = False) -> None:
        super().__init__(message)
        self.resync = resync


def frame(kind: str, **fields: Any) -> dict[str, Any]:
    """A web app → agent frame."""
    return {"v": VERSION, "type": kind, **fields}


def error_frame(message: str) -> dict[str, Any]:
    """The reply to a frame that breaks the protocol."""
    return frame("error", error={"error": "ProtocolError", "message": message})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def frame_parse(text: str | None) -> dict[str, Any]:
    """Parse one agent → web app text frame (None: a binary frame) and check its envelope and fields."""
    if text is None:
        raise ProtocolError("frames must be JSON text, not binary")
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:
        raise ProtocolError(f"not JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise ProtocolError(f"a frame must be a JSON object, not {_json_type(parsed)}")
    kind = parsed.get("type")
    fields = _FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ProtocolError(f"unknown frame type {kind!r}")
    if parsed.get("v") != VERSION:
        raise ProtocolError(f'{kind}: a frame must carry "v": {VERSION}', resync=kind in _STATE_FRAMES)
    for name, expected in fields.items():
        if name not in parsed:
            raise ProtocolError(f"{kind}: missing field {name!r}", resync=kind in _STATE_FRAMES)
        if not _is(parsed[name], expected):
            raise ProtocolError(
                f"{kind}: field {name!r} must be {_JSON_NAMES[expected]}, not {_json_type(parsed[name])}",
                resync=kind in _STATE_FRAMES,
            )
    if parsed.get("seq", 0) < 0:
        raise ProtocolError(f"{kind}: seq must not be negative", resync=True)
    if kind == "result":
        _result_check(parsed)
    return parsed


def _result_check(result: dict[str, Any]) -> None:
    if result["ok"]:
        if not isinstance(result.get("result"), dict):
            raise ProtocolError("result: ok is true, so field 'result' must be an object")
        return
    error = result.get("error")
    if not (
        isinstance(error, dict)
        and isinstance(error.get("error"), str)
        and isinstance(error.get("message"), str)
    ):
        raise ProtocolError("result: ok is false, so 'error' must be an object with 'error' and 'message'")
