"""A capture request as the agent protocol carries it (docs/agent-protocol.md, "Packet capture"):
checked field by field before anything runs, every error naming its field."""

from __future__ import annotations

from dataclasses import dataclass

from netcore.errors import InvalidSpec
from netcore.names import validate_ifname

MAX_INTERFACES = 8
MAX_FILTER = 1024  # characters of a BPF capture filter
COUNT_RANGE = (1, 1_000_000)  # packets
DURATION_RANGE = (1, 3600)  # seconds
SNAPLEN_RANGE = (64, 262144)  # bytes kept of each packet
DEFAULT_SNAPLEN = 262144
MAX_NAMESPACE = 255  # bytes of a namespace's name (a file name)
FIELDS = ("namespace", "interfaces", "filter", "count", "duration", "snaplen")


@dataclass(frozen=True)
class CaptureRequest:
    """What to capture: `interfaces` of namespace `namespace` (a name as netns_list gives it),
    packets matching `filter` (BPF, "" = all), until `count` packets or `duration` seconds."""

    namespace: str
    interfaces: tuple[str, ...]
    filter: str
    count: int
    duration: float
    snaplen: int = DEFAULT_SNAPLEN


def _integer(data: dict, key: str, bounds: tuple[int, int], unit: str) -> int:
    value = data.get(key)
    low, high = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidSpec(f"{key}: {low:,} to {high:,} {unit}, not {value!r}", obj=key)
    return value


def capture_request_parse(data: object) -> CaptureRequest:
    """A CaptureRequest from the protocol's object; InvalidSpec names the field that is wrong."""
    if not isinstance(data, dict):
        raise InvalidSpec("request: expected an object", obj="request")
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise InvalidSpec(
            f"{unknown[0]}: not a field of a capture request ({', '.join(FIELDS)})", obj=unknown[0]
        )
    for key in ("namespace", "interfaces", "filter", "count", "duration"):
        if key not in data:
            raise InvalidSpec(f"{key}: missing", obj=key)
    namespace = data["namespace"]
    if (
        not isinstance(namespace, str)
        or not namespace
        or len(namespace.encode("utf-8", "replace")) > MAX_NAMESPACE
        or "/" in namespace
        or not namespace.isprintable()
    ):
        raise InvalidSpec(
            f"namespace: a namespace's name as the host names it (1 to {MAX_NAMESPACE} bytes, printable, "
            "no '/')",
            obj="namespace",
        )
    interfaces = data["interfaces"]
    if not isinstance(interfaces, list) or not 1 <= len(interfaces) <= MAX_INTERFACES:
        raise InvalidSpec(f"interfaces: a list of 1 to {MAX_INTERFACES} interface names", obj="interfaces")
    for name in interfaces:
        validate_ifname(name, field="interfaces")
    if len(set(interfaces)) != len(interfaces):
        raise InvalidSpec("interfaces: an interface is named twice", obj="interfaces")
    bpf = data["filter"]
    if not isinstance(bpf, str) or len(bpf) > MAX_FILTER:
        raise InvalidSpec(f"filter: a BPF capture filter of at most {MAX_FILTER} characters", obj="filter")
    if not bpf.isprintable():
        raise InvalidSpec("filter: printable characters on one line only", obj="filter")
    count = _integer(data, "count", COUNT_RANGE, "packets")
    duration = data["duration"]
    low, high = DURATION_RANGE
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not low <= duration <= high:
        raise InvalidSpec(f"duration: {low} to {high} seconds, not {duration!r}", obj="duration")
    snaplen = _integer(data, "snaplen", SNAPLEN_RANGE, "bytes") if "snaplen" in data else DEFAULT_SNAPLEN
    return CaptureRequest(namespace, tuple(interfaces), bpf, count, float(duration), snaplen)
