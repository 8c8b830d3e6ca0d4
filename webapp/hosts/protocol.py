"""Agent protocol version 1 (docs/agent-protocol.md): parsing and checking frames, building replies.

An agent is authenticated but not trusted: every frame is bounded before it is parsed (size,
nesting), while it is parsed (integers, numbers) and after (fields, types, lengths). The objects
of snapshots and deltas are then checked against netcore's schema by webapp.topology.state.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from typing import Any

from webapp.captures import limits as capture_limits
from webapp.topology.schema import MAX_SAFE_INTEGER, SchemaError, json_type, text_check

VERSION = 1
MAX_FRAME = 64 * 2**20  # characters of one frame (a 1000-endpoint snapshot is ~4 MiB)
MAX_DEPTH = 32  # nesting of arrays and objects (a snapshot needs 5, a delta 6)
MAX_EVENTS = 5000  # events of one delta (the agent sends at most 500)
MAX_RESULT_STRING = 256 * 2**10  # characters of one string in a result or error frame
MAX_ID = 128  # characters of a command or ping id
MAX_STEP = 64  # characters of a progress frame's step

_STATE_FRAMES = {"snapshot", "delta"}  # a bad one leaves the host's state unknown: ask for a snapshot


class _Text:
    """A string field of at most `limit` printable characters."""

    def __init__(self, limit: int, *, empty: bool = False) -> None:
        self.limit = limit
        self.empty = empty

    def problem(self, value: str) -> str | None:
        if not (self.empty or value) or len(value) > self.limit:
            return f"must be {0 if self.empty else 1} to {self.limit} characters long"
        if not value.isprintable():
            return "must hold only printable characters"
        return None


# Fields every frame of a type must carry, with their JSON types; a frame may carry no others.
_FIELDS: dict[str, dict[str, type | _Text]] = {
    "hello": {"host": _Text(255), "agent_version": _Text(64, empty=True), "protocol": int},
    "snapshot": {"seq": int, "state": dict},
    "delta": {"seq": int, "events": list},
    "result": {"id": _Text(MAX_ID), "ok": bool},
    "progress": {"id": _Text(MAX_ID), "done": int, "total": int},
    "settled": {"id": _Text(MAX_ID)},
    "pong": {"id": _Text(MAX_ID)},
    "error": {"error": dict},
    "catalog.applied": {"ok": bool},
    "resolved": {"id": _Text(MAX_ID), "ok": bool},
    "explained": {"id": _Text(MAX_ID), "ok": bool},
    "capture.started": {"id": _Text(MAX_ID)},
    "capture.data": {"id": _Text(MAX_ID), "offset": int, "data": str},
    "capture.packets": {"id": _Text(MAX_ID), "seen": int, "rows": list},
    "capture.done": {"id": _Text(MAX_ID), "ok": bool, "packets": int, "dropped": int, "reason": _Text(16)},
}
_OPTIONAL: dict[str, set[str]] = {
    "result": {"result", "error", "settling"},
    "progress": {"step"},
    "catalog.applied": {"version", "error", "problems"},
    "hello": {"catalog"},
    "resolved": {"answers", "error"},
    "explained": {"answer", "error"},
    "capture.done": {"error"},
}
_ENVELOPE = {"v", "type"}

_DELETE_ALL_BUT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')


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


class _Unreadable(ValueError):
    """Raised by the parse hooks: a literal the protocol does not carry."""


def _reject_constant(name: str) -> None:
    raise _Unreadable(f"{name} is not JSON")


def _integer(literal: str) -> int:
    # checked before int(): Python refuses more than 4300 digits with a ValueError of its own
    if len(literal) <= 17:
        value = int(literal)
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    shown = literal if len(literal) <= 24 else f"{literal[:20]}... ({len(literal)} digits)"
    raise _Unreadable(f"integer {shown} is outside ±(2**53 - 1)")


def _number(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Unreadable(f"number {literal[:24]} is not finite")
    return value


def _nesting_check(text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before json parses it (its parser recurses per level).

    Works on bytes at C speed (~5 ms for 4 MiB): escaped backslashes and quotes are dropped, then
    everything but brackets and quotes, then the strings; of valid JSON that leaves the brackets
    outside strings, from which balanced pairs are peeled one level per round.
    """
    raw = text.encode(errors="surrogatepass")
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = raw.translate(None, _DELETE_ALL_BUT_STRUCTURE).replace(b'""', b"")
    if b'"' in brackets:  # strings holding brackets (removing "" pairs kept the quotes paired)
        brackets = _STRING.sub(b"", brackets)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    for _ in range(MAX_DEPTH):
        if not brackets:
            return
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            raise ProtocolError("not JSON: brackets do not balance")
        brackets = peeled
    if brackets:
        raise ProtocolError(f"a frame must not nest deeper than {MAX_DEPTH} levels")


def _field_problem(value: Any, expected: type | _Text) -> str | None:
    if isinstance(expected, _Text):
        if type(value) is not str:
            return f"must be a string, not {json_type(value)}"
        return expected.problem(value)
    if type(value) is not expected:
        return f"must be {json_type(expected())}, not {json_type(value)}"
    return None


def _payload_check(value: Any, where: str) -> None:
    """A result's or error's free-form JSON: bounded strings that any store can keep."""
    if isinstance(value, dict):
        for key, item in value.items():
            _payload_check(key, where)
            _payload_check(item, where)
    elif isinstance(value, list):
        for item in value:
            _payload_check(item, where)
    elif isinstance(value, str):
        if len(value) > MAX_RESULT_STRING:
            raise ProtocolError(f"{where}: a string is longer than {MAX_RESULT_STRING} characters")
        try:
            text_check(value)
        except SchemaError as err:
            raise ProtocolError(f"{where}: a string {err}") from None


def frame_parse(text: str | None) -> dict[str, Any]:
    """Parse one agent → web app text frame (None: a binary frame) and check its envelope and fields."""
    if text is None:
        raise ProtocolError("frames must be JSON text, not binary")
    if len(text) > MAX_FRAME:
        raise ProtocolError(f"a frame must not be longer than {MAX_FRAME} characters")
    _nesting_check(text)
    try:
        parsed = json.loads(text, parse_constant=_reject_constant, parse_int=_integer, parse_float=_number)
    except _Unreadable as err:
        raise ProtocolError(f"not acceptable JSON: {err}") from None
    except ValueError as err:
        raise ProtocolError(f"not JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise ProtocolError(f"a frame must be a JSON object, not {json_type(parsed)}")
    kind = parsed.get("type")
    fields = _FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        shown = repr(kind)
        raise ProtocolError(f"unknown frame type {shown if len(shown) <= 40 else shown[:37] + '...'}")
    resync = kind in _STATE_FRAMES
    if parsed.get("v") != VERSION:
        raise ProtocolError(f'{kind}: a frame must carry "v": {VERSION}', resync=resync)
    for name, expected in fields.items():
        if name not in parsed:
            raise ProtocolError(f"{kind}: missing field {name!r}", resync=resync)
        problem = _field_problem(parsed[name], expected)
        if problem:
            raise ProtocolError(f"{kind}: field {name!r} {problem}", resync=resync)
    unknown = set(parsed) - set(fields) - _OPTIONAL.get(kind, set()) - _ENVELOPE
    if unknown:
        raise ProtocolError(f"{kind}: unknown fields {sorted(unknown)[:5]}", resync=resync)
    if kind in _STATE_FRAMES and parsed["seq"] < 0:
        raise ProtocolError(f"{kind}: seq must not be negative", resync=True)
    if kind == "delta" and len(parsed["events"]) > MAX_EVENTS:
        raise ProtocolError(f"delta: more than {MAX_EVENTS} events in one frame", resync=True)
    if kind == "result":
        _result_check(parsed)
    if kind == "progress":
        _progress_check(parsed)
    if kind == "error":
        _payload_check(parsed["error"], "error")
    if kind.startswith("capture."):
        _capture_check(parsed)
    return parsed


def _progress_check(progress: dict[str, Any]) -> None:
    if not 0 <= progress["done"] <= progress["total"]:
        raise ProtocolError("progress: 'done' must be from 0 to 'total'")
    if "step" in progress:
        problem = _field_problem(progress["step"], _Text(MAX_STEP))
        if problem:
            raise ProtocolError(f"progress: field 'step' {problem}")


def _result_check(result: dict[str, Any]) -> None:
    if "settling" in result and not isinstance(result["settling"], bool):
        kind = json_type(result["settling"])
        raise ProtocolError(f"result: field 'settling' must be a boolean, not {kind}")
    if result["ok"]:
        if not isinstance(result.get("result"), dict):
            raise ProtocolError("result: ok is true, so field 'result' must be an object")
        _payload_check(result["result"], "result")
        return
    error = result.get("error")
    if not (
        isinstance(error, dict)
        and isinstance(error.get("error"), str)
        and isinstance(error.get("message"), str)
    ):
        raise ProtocolError("result: ok is false, so 'error' must be an object with 'error' and 'message'")
    _payload_check(error, "result")


_CAPTURE_REASONS = {"count", "duration", "stopped", "error"}
_ROW_STRINGS = ("interface", "source", "destination", "protocol", "info")
_ROW_FIELDS = {"number", "time", "length", *_ROW_STRINGS}


def _capture_check(frame: dict[str, Any]) -> None:
    """The capture frames' bounds (webapp.captures.limits). capture.data's `data` is decoded here:
    the frame carries its bytes from then on."""
    kind = frame["type"]
    if kind == "capture.data":
        if frame["offset"] < 0:
            raise ProtocolError("capture.data: offset must not be negative")
        if len(frame["data"]) > capture_limits.MAX_DATA_TEXT:
            raise ProtocolError(f"capture.data: data must be at most {capture_limits.MAX_DATA_BYTES} bytes")
        try:
            frame["data"] = binascii.a2b_base64(frame["data"], strict_mode=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("capture.data: data must be base64 (RFC 4648, padded)") from None
    elif kind == "capture.packets":
        if frame["seen"] < 0:
            raise ProtocolError("capture.packets: seen must not be negative")
        most = capture_limits.MAX_ROWS_PER_FRAME
        if len(frame["rows"]) > most:
            raise ProtocolError(f"capture.packets: at most {most} rows in one frame")
        for i, row in enumerate(frame["rows"]):
            _capture_row_check(row, f"capture.packets: rows[{i}]")
    elif kind == "capture.done":
        if frame["packets"] < 0 or frame["dropped"] < 0:
            raise ProtocolError("capture.done: packets and dropped must not be negative")
        if frame["reason"] not in _CAPTURE_REASONS:
            raise ProtocolError(f"capture.done: reason must be one of {sorted(_CAPTURE_REASONS)}")
        error = frame.get("error")
        if frame["ok"] and error is not None:
            raise ProtocolError("capture.done: ok is true, so 'error' must be null")
        named = isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("error", "message"))
        if not frame["ok"] and not named:
            raise ProtocolError("capture.done: ok is false, so 'error' must name an error and a message")
        if error is not None:
            _payload_check(error, "capture.done")


def _capture_row_check(row: Any, where: str) -> None:
    if not isinstance(row, dict) or set(row) != _ROW_FIELDS:
        raise ProtocolError(f"{where} must be an object with exactly {sorted(_ROW_FIELDS)}")
    if type(row["number"]) is not int or row["number"] < 1:
        raise ProtocolError(f"{where}: number must be an integer from 1")
    if type(row["length"]) is not int or row["length"] < 0:
        raise ProtocolError(f"{where}: length must be an integer from 0")
    if type(row["time"]) not in (int, float) or row["time"] < 0:
        raise ProtocolError(f"{where}: time must be epoch seconds")
    limit = capture_limits.MAX_ROW_TEXT
    for name in _ROW_STRINGS:
        value = row[name]
        if type(value) is not str or len(value) > limit:
            raise ProtocolError(f"{where}: {name} must be a string of at most {limit} characters")
        try:
            text_check(value)
        except SchemaError as err:
            raise ProtocolError(f"{where}: {name} {err}") from None
