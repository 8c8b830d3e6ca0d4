"""Compose files, the way most people describe their Docker networks: parsed into the requests that
bring a project up (networks, then containers in dependency order), and the labels that group them.

What is supported, as in the Compose specification:

    name: shop                           # optional; else the project named with the request
    services:
      web:
        image: switchboard/busybox       # required: a local image
        command: httpd -f -p 80          # a string or a list
        container_name: shop-web         # optional; default <project>-<service>-1
        networks:                        # a list of names, or a map with per-network settings:
          front: {ipv4_address: 198.18.1.10, aliases: [www]}
        network_mode: host               # or none, "container:<name>", "service:<service>"
        ports: ["127.0.0.1:8080:80/tcp", "9000-9001:9000-9001", "53/udp",
                {target: 80, published: 8081, host_ip: 127.0.0.1, protocol: tcp}]
        labels: {tier: front}            # or ["tier=front"]
        depends_on: [db]                 # start order only
    networks:
      front:
        driver: bridge                   # bridge (default) or overlay
        name: shop-front                 # optional; default <project>_<key>
        ipam: {config: [{subnet: 198.18.1.0/24, gateway: 198.18.1.1, ip_range: ..., aux_addresses: {..}}]}
        internal: false
        attachable: false
        enable_ipv6: false
        labels: {..}
        driver_opts: {..}
      outside:
        external: true                   # an existing network (name: its name, if not the key)

Every other key is refused by name ("services.web.volumes: not supported"), never ignored. A service
with neither networks nor network_mode joins <project>_default, made for it as Compose does.
"""

from __future__ import annotations

import re
from typing import Any

from netcore.docker import spec
from netcore.errors import InvalidSpec
from netcore.topology.spec import load_data, parse_port_item

PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # Compose's own rule for project names
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NETWORK_LABEL = "com.docker.compose.network"
NUMBER_LABEL = "com.docker.compose.container-number"
TOP_KEYS = {"name", "services", "networks", "version"}
SERVICE_KEYS = {
    "image",
    "command",
    "container_name",
    "networks",
    "network_mode",
    "ports",
    "labels",
    "depends_on",
}
NETWORK_KEYS = {
    "driver",
    "name",
    "ipam",
    "internal",
    "attachable",
    "enable_ipv6",
    "labels",
    "driver_opts",
    "external",
}
ATTACH_KEYS = {"ipv4_address", "aliases"}
PORT_KEYS = {"target", "published", "host_ip", "protocol"}


def _fail(path: str, message: str) -> InvalidSpec:
    return InvalidSpec(f"{path}: {message}", obj=path)


def _map(value: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise _fail(path, f"key {key!r} must be a string")
        if allowed is not None and key not in allowed:
            raise _fail(
                f"{path}.{key}", f"not supported by Switchboard (supported: {', '.join(sorted(allowed))})"
            )
    return value


def _labels(value: Any, path: str) -> dict[str, str]:
    """Compose's labels: a mapping, or a list of "name=value"."""
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            if not isinstance(item, str) or "=" not in item:
                raise _fail(f"{path}[{i}]", 'must be "name=value"')
            name, _, text = item.partition("=")
            out[name] = text
        return out
    return {k: "" if v is None else str(v) for k, v in _map(value, path).items()}


def _ports(value: Any, path: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(path, "must be a list")
    ports: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if isinstance(item, int) or (isinstance(item, str) and re.fullmatch(r"\d+(/\w+)?", item)):
            number, _, protocol = str(item).partition("/")
            ports.append({"container_port": int(number), "protocol": protocol or "tcp"})
        elif isinstance(item, str):
            try:
                parsed = parse_port_item(item, where)
            except InvalidSpec as exc:
                raise _fail(where, str(exc)) from None
            host_ip = str(parsed.host_ip) if parsed.host_ip is not None else None
            for host_port, container_port in zip(parsed.host_ports, parsed.container_ports, strict=True):
                ports.append({"container_port": container_port, "protocol": parsed.protocol,
                              "host_port": host_port, "host_ip": host_ip})  # fmt: skip
        else:
            long = _map(item, where, PORT_KEYS)
            if "target" not in long:
                raise _fail(f"{where}.target", "is required")
            ports.append({"container_port": long["target"], "protocol": long.get("protocol") or "tcp",
                          "host_port": long.get("published"), "host_ip": long.get("host_ip")})  # fmt: skip
    return ports


def _network_request(project: str, key: str, net: dict[str, Any], path: str) -> dict[str, Any]:
    ipam = _map(net.get("ipam"), f"{path}.ipam", {"driver", "config"})
    if ipam.get("driver") not in (None, "default"):
        raise _fail(f"{path}.ipam.driver", "only the default IPAM driver is supported")
    pools = ipam.get("config") or []
    if not isinstance(pools, list):
        raise _fail(f"{path}.ipam.config", "must be a list")
    subnets = [
        _map(p, f"{path}.ipam.config[{i}]", {"subnet", "gateway", "ip_range", "aux_addresses"})
        for i, p in enumerate(pools)
    ]
    body = {
        "name": net.get("name") or f"{project}_{key}",
        "driver": net.get("driver") or "bridge",
        "subnets": subnets,
        "ipv6": net.get("enable_ipv6", False),
        "internal": net.get("internal", False),
        "attachable": net.get("attachable", False),
        "labels": {
            **_labels(net.get("labels"), f"{path}.labels"),
            PROJECT_LABEL: project,
            NETWORK_LABEL: key,
        },
        "options": {k: str(v) for k, v in _map(net.get("driver_opts"), f"{path}.driver_opts").items()},
    }
    try:
        return spec.network_create(body)
    except InvalidSpec as exc:
        raise _fail(f"{path}.{_compose_network_key(exc.obj)}", str(exc).split(": ", 1)[-1]) from None


def _attachments(service: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    value = service.get("networks")
    if value is None:
        return {}
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise _fail(f"{path}.networks", "must be a list of network names, or a mapping")
        return {name: {} for name in value}
    return {
        k: _map(v, f"{path}.networks.{k}", ATTACH_KEYS) for k, v in _map(value, f"{path}.networks").items()
    }


def _order(services: dict[str, dict[str, Any]], after: dict[str, set[str]]) -> list[str]:
    """Services in an order that starts each after those it depends on; InvalidSpec on a cycle."""
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: list[str]) -> None:
        if name in done:
            return
        if name in visiting:
            raise _fail(f"services.{name}", f"depends on itself through {' → '.join([*chain, name])}")
        visiting.add(name)
        for other in sorted(after[name]):
            visit(other, [*chain, name])
        visiting.discard(name)
        done.append(name)

    for name in services:
        visit(name, [])
    return done


def compose_up(body: Any) -> dict[str, Any]:
    """The compose.up request {project, file}, checked (its plan is made again where it runs)."""
    if not isinstance(body, dict) or set(body) - {"project", "file"}:
        raise _fail("request", "must be {project, file}")
    plan = compose_plan(body.get("file"), project=body.get("project"))
    return {"project": plan["project"], "file": body["file"]}


def compose_down(body: Any) -> dict[str, Any]:
    """The compose.down request {project}."""
    if not isinstance(body, dict) or set(body) != {"project"} or not PROJECT.match(str(body["project"])):
        raise _fail("project", "a project name (lower-case letters, digits, _ and -) is required")
    return {"project": body["project"]}


def compose_plan(text: Any, *, project: Any) -> dict[str, Any]:
    """A compose file's text as {project, networks: [network.create requests], external: [names],
    services: [{service, request: container.run request, network: first network or None,
    connect: [network.connect requests after start]}]}, in start order; InvalidSpec names the key."""
    if not isinstance(text, str) or not text.strip():
        raise _fail("file", "the compose file's text is required")
    data = _map(load_data(text, source="file"), "file", TOP_KEYS)
    project = data.get("name") or project
    if not isinstance(project, str) or not PROJECT.match(project):
        raise _fail("project", f"{project!r} is not a project name (lower-case letters, digits, _ and -)")
    services = _map(data.get("services"), "services")
    if not services:
        raise _fail("services", "a compose file needs at least one service")
    declared = _map(data.get("networks"), "networks")
    networks: dict[str, str] = {}  # compose key -> engine name
    creates, external = [], []
    for key, raw in declared.items():
        net = _map(raw, f"networks.{key}", NETWORK_KEYS)
        if net.get("external"):
            networks[key] = net.get("name") or key
            external.append(networks[key])
            continue
        request = _network_request(project, key, net, f"networks.{key}")
        networks[key] = request["name"]
        creates.append(request)
    parsed: dict[str, dict[str, Any]] = {}
    after: dict[str, set[str]] = {}
    for name, raw in services.items():
        path = f"services.{name}"
        service = _map(raw, path, SERVICE_KEYS)
        if not spec.NAME.match(name):
            raise _fail(path, "is not a valid service name (letters, digits, _ . -)")
        depends = service.get("depends_on") or []
        if isinstance(depends, dict):
            depends = list(depends)
        if not isinstance(depends, list) or any(d not in services for d in depends):
            raise _fail(f"{path}.depends_on", f"must list services of this file ({', '.join(services)})")
        after[name] = set(depends)
        parsed[name] = service
    if (
        any(not (s.get("networks") or s.get("network_mode")) for s in parsed.values())
        and "default" not in networks
    ):
        default = _network_request(project, "default", {}, "networks.default")
        creates.append(default)
        networks["default"] = default["name"]
    names = {n: parsed[n].get("container_name") or f"{project}-{n}-1" for n in parsed}
    plans = {}
    for name, service in parsed.items():
        path = f"services.{name}"
        mode_text = service.get("network_mode")
        attached = _attachments(service, path)
        body: dict[str, Any] = {
            "image": service.get("image"),
            "name": names[name],
            "command": service.get("command"),
            "ports": _ports(service.get("ports"), f"{path}.ports"),
            "labels": {
                **_labels(service.get("labels"), f"{path}.labels"),
                PROJECT_LABEL: project,
                SERVICE_LABEL: name,
                NUMBER_LABEL: "1",
            },  # fmt: skip
        }
        connect = []
        if mode_text is not None:
            if attached:
                raise _fail(f"{path}.network_mode", "cannot be given with networks")
            if mode_text in ("host", "none", "bridge"):
                body["mode"] = mode_text
            elif isinstance(mode_text, str) and mode_text.startswith(("service:", "container:")):
                kind, _, target = mode_text.partition(":")
                if kind == "service":
                    if target not in parsed:
                        raise _fail(f"{path}.network_mode", f"service {target!r} is not in this file")
                    after[name].add(target)
                    target = names[target]
                body |= {"mode": "container", "container": target}
            else:
                raise _fail(
                    f"{path}.network_mode",
                    f"{mode_text!r} is not host, none, bridge, container:<name> or service:<name>",
                )
        else:
            attached = attached or {"default": {}}
            for i, (key, settings) in enumerate(attached.items()):
                if key not in networks:
                    raise _fail(
                        f"{path}.networks.{key}", "is not a network of this file (declare it under networks:)"
                    )
                joins = {
                    "network": networks[key],
                    "ipv4": settings.get("ipv4_address"),
                    "aliases": [name, *(settings.get("aliases") or [])],
                }
                if i == 0:
                    driver = next((c["driver"] for c in creates if c["name"] == networks[key]), "bridge")
                    body |= {"mode": driver, **joins}
                else:
                    connect.append({"container": names[name], **joins})
        try:
            request = spec.container_run(body)
            connect = [spec.network_connect(c) for c in connect]
        except InvalidSpec as exc:
            raise _fail(f"{path}.{_compose_key(exc.obj)}", str(exc).split(": ", 1)[-1]) from None
        plans[name] = {"service": name, "request": request, "connect": connect}
    return {
        "project": project,
        "networks": creates,
        "external": external,
        "services": [plans[name] for name in _order(parsed, after)],
    }


def _compose_network_key(field: str | None) -> str:
    """The compose key (under networks.<key>) a network.create field came from."""
    field = (field or "").replace("subnets[", "ipam.config[")
    return {"ipv6": "enable_ipv6", "options": "driver_opts"}.get(field, field)


def _compose_key(field: str | None) -> str:
    """The compose key a container.run field came from."""
    return {"ipv4": "networks", "network": "networks", "aliases": "networks", "name": "container_name",
            "container": "network_mode", "mode": "network_mode"}.get(field or "", field or "")  # fmt: skip
