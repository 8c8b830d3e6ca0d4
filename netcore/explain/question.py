"""An explain question as the agent protocol carries it (docs/agent-protocol.md, `explain`): checked
field by field, without touching anything (the web app checks its form with the same limits)."""

from __future__ import annotations

from dataclasses import dataclass

from netcore.errors import InvalidSpec

PROTOCOLS = ("tcp", "udp", "icmp")
PORTED = ("tcp", "udp")  # protocols whose question needs a port
MAX_COUNT = 10  # probes one question may send
MAX_TIMEOUT = 5.0  # seconds each probe may wait
MIN_TIMEOUT = 0.05
SIZE_RANGE = (68, 65535)  # bytes of an IP packet an ICMP probe may be


@dataclass(frozen=True)
class Question:
    source: str
    destination: str
    protocol: str | None = None
    probe: bool = True
    count: int = 3
    timeout: float = 1.0
    size: int | None = None


def question_parse(data: object) -> Question:
    """A Question from the protocol's object; InvalidSpec names the field that is wrong."""
    if not isinstance(data, dict):
        raise InvalidSpec("request: expected an object", obj="request")
    for key in ("source", "destination"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InvalidSpec(f"{key}: a namespace's name or an address", obj=key)
    protocol = data.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        raise InvalidSpec(f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}", obj="protocol")
    count, timeout, probe = data.get("count", 3), data.get("timeout", 1.0), data.get("probe", True)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
        raise InvalidSpec(f"count: 1 to {MAX_COUNT} probes", obj="count")
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT
    ):
        raise InvalidSpec(f"timeout: {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} seconds", obj="timeout")
    if not isinstance(probe, bool):
        raise InvalidSpec("probe: true or false", obj="probe")
    size = data.get("size")
    if size is not None:
        low, high = SIZE_RANGE
        if not isinstance(size, int) or isinstance(size, bool) or not low <= size <= high:
            raise InvalidSpec(f"size: {low} to {high} bytes", obj="size")
        if protocol in PORTED:
            raise InvalidSpec(
                f"size: for ICMP questions ({protocol.upper()} sizes its packets itself)", obj="size"
            )
    return Question(data["source"], data["destination"], protocol, probe, count, float(timeout), size)
