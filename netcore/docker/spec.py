"""What may be asked of the Docker engine through Switchboard, checked before the engine is asked.

Pure Python (no SDK, no kernel): the web app checks requests with the same code the agent runs, so
a bad field is refused with its name at the API, and again by the agent whoever sends it. Each
checker answers a normalised copy of its request or raises InvalidSpec naming the field.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from netcore.errors import InvalidSpec

NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")  # Docker's own rule for names
REFERENCE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$")  # a name, an id or an image reference
LABEL_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./-]{0,254}$")
NETWORK_DRIVERS = ("bridge", "overlay")
RUN_MODES = ("bridge", "host", "none", "container", "overlay")
PROTOCOLS = ("tcp", "udp", "sctp")
MAX_ITEMS = 64


def _fail(field: str, message: str) -> InvalidSpec:
    return InvalidSpec(f"{field}: {message}", obj=field)


def _object(body: Any, field: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _fail(field, "must be an object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _fail(f"{field}.{unknown[0]}" if field != "request" else unknown[0], "is not a known field")
    return body


def _string(
    body: dict[str, Any], field: str, *, pattern: re.Pattern[str], what: str, required: bool = True
) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise _fail(field, f"{value!r} is not {what}")
    return value


def _bool(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise _fail(field, "must be true or false")
    return value


def _network(value: Any, field: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    with contextlib.suppress(ValueError, TypeError):
        if isinstance(value, str):
            return ipaddress.ip_network(value, strict=True)
    raise _fail(field, f"{value!r} is not a subnet in CIDR form (its host bits zero), e.g. 198.18.10.0/24")


def _address(value: Any, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    with contextlib.suppress(ValueError, TypeError):
        if isinstance(value, str):
            return ipaddress.ip_address(value)
    raise _fail(field, f"{value!r} is not an IP address")


def _mapping(
    body: dict[str, Any], field: str, *, value_check: Callable[[Any, str], Any] | None = None
) -> dict[str, str]:
    value = body.get(field) or {}
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        raise _fail(field, f"must be an object of at most {MAX_ITEMS} names and values")
    for key, item in value.items():
        if not LABEL_KEY.match(key):
            raise _fail(f"{field}.{key}", "is not a valid name (letters, digits, _ . / -)")
        if not isinstance(item, str) or len(item) > 1024:
            raise _fail(f"{field}.{key}", "must be a string of at most 1024 characters")
        if value_check:
            value_check(item, f"{field}.{key}")
    return dict(value)


def _names(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field) or []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise _fail(field, f"must be a list of at most {MAX_ITEMS} names")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not NAME.match(item):
            raise _fail(f"{field}[{i}]", f"{item!r} is not a valid name (letters, digits, _ . -)")
    return list(value)


def _subnet(pool: Any, where: str) -> dict[str, Any]:
    pool = _object(pool, where, {"subnet", "gateway", "ip_range", "aux_addresses"})
    subnet = _network(pool.get("subnet"), f"{where}.subnet")
    out: dict[str, Any] = {"subnet": str(subnet)}
    if pool.get("gateway"):
        gateway = _address(pool["gateway"], f"{where}.gateway")
        if gateway not in subnet:
            raise _fail(f"{where}.gateway", f"{gateway} is outside the subnet {subnet}")
        out["gateway"] = str(gateway)
    if pool.get("ip_range"):
        ip_range = _network(pool["ip_range"], f"{where}.ip_range")
        if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):  # type: ignore[arg-type]
            raise _fail(f"{where}.ip_range", f"{ip_range} is not inside the subnet {subnet}")
        out["ip_range"] = str(ip_range)

    def inside(value: Any, field: str) -> None:
        if _address(value, field) not in subnet:
            raise _fail(field, f"{value} is outside the subnet {subnet}")

    out["aux_addresses"] = _mapping(pool, "aux_addresses", value_check=lambda v, f: inside(v, f"{where}.{f}"))
    return out


def network_create(body: Any) -> dict[str, Any]:
    """{name, driver, subnets: [{subnet, gateway, ip_range, aux_addresses}], ipv6, internal,
    attachable, labels, options}: subnets must not overlap each other, gateways and ranges lie inside."""
    fields = {"name", "driver", "subnets", "ipv6", "internal", "attachable", "labels", "options"}
    body = _object(body, "request", fields)
    name = _string(body, "name", pattern=NAME, what="a valid name (letters, digits, _ . -, at most 128)")
    driver = body.get("driver") or "bridge"
    if driver not in NETWORK_DRIVERS:
        raise _fail("driver", f"{driver!r} is not one of {', '.join(NETWORK_DRIVERS)}")
    raw = body.get("subnets") or []
    if not isinstance(raw, list) or len(raw) > 8:
        raise _fail("subnets", "must be a list of at most 8 subnets")
    subnets = [_subnet(pool, f"subnets[{i}]") for i, pool in enumerate(raw)]
    nets = [ipaddress.ip_network(s["subnet"]) for s in subnets]
    for i, a in enumerate(nets):
        for j, b in enumerate(nets[:i]):
            if a.version == b.version and a.overlaps(b):
                raise _fail(f"subnets[{i}].subnet", f"{a} overlaps subnets[{j}] ({b})")
    ipv6 = _bool(body, "ipv6")
    if any(n.version == 6 for n in nets) and not ipv6:
        raise _fail("ipv6", "must be true for an IPv6 subnet")
    return {
        "name": name,
        "driver": driver,
        "subnets": subnets,
        "ipv6": ipv6,
        "internal": _bool(body, "internal"),
        "attachable": _bool(body, "attachable"),
        "labels": _mapping(body, "labels"),
        "options": _mapping(body, "options"),
    }


def _ref(body: dict[str, Any], field: str) -> str:
    value = _string(body, field, pattern=REFERENCE, what="a name or id")
    assert value is not None, "required"
    return value


def network_remove(body: Any) -> dict[str, Any]:
    """{network}: a network's name or id."""
    return {"network": _ref(_object(body, "request", {"network"}), "network")}


def network_connect(body: Any) -> dict[str, Any]:
    """{network, container, ipv4, ipv6, aliases}: a static address is optional."""
    body = _object(body, "request", {"network", "container", "ipv4", "ipv6", "aliases"})
    out: dict[str, Any] = {"network": _ref(body, "network"), "container": _ref(body, "container")}
    for family, version in (("ipv4", 4), ("ipv6", 6)):
        if body.get(family):
            address = _address(body[family], family)
            if address.version != version:
                raise _fail(family, f"{address} is not an IPv{version} address")
            out[family] = str(address)
    out["aliases"] = _names(body, "aliases")
    return out


def network_disconnect(body: Any) -> dict[str, Any]:
    """{network, container, force}."""
    body = _object(body, "request", {"network", "container", "force"})
    return {
        "network": _ref(body, "network"),
        "container": _ref(body, "container"),
        "force": _bool(body, "force"),
    }


def _ports(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("ports") or []
    if not isinstance(raw, list) or len(raw) > MAX_ITEMS:
        raise _fail("ports", f"must be a list of at most {MAX_ITEMS} ports")
    ports = []
    for i, port in enumerate(raw):
        where = f"ports[{i}]"
        port = _object(port, where, {"container_port", "protocol", "host_port", "host_ip"})
        for field, required in (("container_port", True), ("host_port", False)):
            value = port.get(field)
            if value is None and not required:
                continue
            if type(value) is not int or not 1 <= value <= 65535:
                raise _fail(f"{where}.{field}", f"{value!r} is not a port number from 1 to 65535")
        protocol = port.get("protocol") or "tcp"
        if protocol not in PROTOCOLS:
            raise _fail(f"{where}.protocol", f"{protocol!r} is not one of {', '.join(PROTOCOLS)}")
        host_ip = str(_address(port["host_ip"], f"{where}.host_ip")) if port.get("host_ip") else None
        ports.append({"container_port": port["container_port"], "protocol": protocol,
                      "host_port": port.get("host_port"), "host_ip": host_ip})  # fmt: skip
    return ports


def _command(body: dict[str, Any]) -> list[str] | None:
    value = body.get("command")
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value) or len(value) > 256:
        raise _fail("command", "must be a string or a list of at most 256 strings")
    return list(value)


def container_run(body: Any) -> dict[str, Any]:
    """{image, name, mode, network, container, ipv4, aliases, ports, command, labels}.

    mode bridge or overlay joins `network` (bridge: Docker's default bridge when none is named);
    container joins `container`'s namespace; host and none take neither, nor ports (host: the
    container's ports are the host's) or addresses."""
    fields = {
        "image",
        "name",
        "mode",
        "network",
        "container",
        "ipv4",
        "aliases",
        "ports",
        "command",
        "labels",
    }
    body = _object(body, "request", fields)
    mode = body.get("mode") or "bridge"
    if mode not in RUN_MODES:
        raise _fail("mode", f"{mode!r} is not one of {', '.join(RUN_MODES)}")
    out: dict[str, Any] = {
        "image": _ref(body, "image"),
        "name": _string(
            body, "name", pattern=NAME, what="a valid name (letters, digits, _ . -)", required=False
        ),
        "mode": mode,
        "network": None,
        "container": None,
        "ipv4": None,
        "aliases": _names(body, "aliases"),
        "ports": _ports(body),
        "command": _command(body),
        "labels": _mapping(body, "labels"),
    }
    if mode in ("bridge", "overlay"):
        out["network"] = _string(
            body, "network", pattern=REFERENCE, what="a name or id", required=mode == "overlay"
        )
        if body.get("ipv4"):
            if out["network"] is None:
                raise _fail(
                    "ipv4",
                    "a static address needs a user-defined network (Docker's default bridge takes none)",
                )
            address = _address(body["ipv4"], "ipv4")
            if address.version != 4:
                raise _fail("ipv4", f"{address} is not an IPv4 address")
            out["ipv4"] = str(address)
    else:
        for field in ("network", "ipv4", "ports"):
            if body.get(field):
                raise _fail(field, f"a container in {mode} mode takes no {field}")
        if out["aliases"]:
            raise _fail("aliases", f"a container in {mode} mode takes no aliases")
    if mode == "container":
        out["container"] = _ref(body, "container")
    elif body.get("container"):
        raise _fail("container", "only a container in container mode names another container")
    return out


def container_ref(body: Any) -> dict[str, Any]:
    """{container} (stop), or {container, force} (remove)."""
    body = _object(body, "request", {"container", "force"})
    return {"container": _ref(body, "container"), "force": _bool(body, "force")}


CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "network.create": network_create,
    "network.remove": network_remove,
    "network.connect": network_connect,
    "network.disconnect": network_disconnect,
    "container.run": container_run,
    "container.stop": container_ref,
    "container.remove": container_ref,
}
