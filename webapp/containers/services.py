"""Requests to a host's Docker engine, checked here and queued as operations its agent runs.

A request is checked twice over before it is queued: its fields by netcore.docker.requests (the same
code the agent runs), then against what the host's agent last reported of its engine, so unknown
names answer 404, clashes (a name taken, an overlapping subnet, an address in use) 409 and bad
fields 400, each naming the field, and nothing is queued. What the engine still refuses (a race
with someone at the docker CLI) fails the operation with the engine's words.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from netcore.docker.compose import compose_plan
from netcore.docker.requests import request_check
from netcore.errors import InvalidSpec
from webapp.containers.selectors import HostDocker, docker_get, find
from webapp.errors import Conflict, InvalidInput, NotFound
from webapp.hosts.selectors import host_get
from webapp.operations.models import Operation
from webapp.operations.services import operation_create

PREDEFINED = ("bridge", "host", "none")  # Docker's own networks: never removed


def _subnets(network: dict[str, Any]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(s["subnet"], strict=False) for s in network["subnets"] if s["subnet"]]


def _used_addresses(docker: HostDocker, network: dict[str, Any]) -> dict[str, str]:
    """Addresses taken on a network: its containers' and its gateways, with who holds them."""
    used = {s["gateway"]: "the gateway" for s in network["subnets"] if s["gateway"]}
    for container in docker.containers:
        for endpoint in container["endpoints"]:
            if endpoint["network_id"] != network["id"]:
                continue
            for address in (endpoint["ipv4"], endpoint.get("ipv6")):
                if address:
                    used[address.split("/")[0]] = f"container {container['name']}"
    return used


def _address_check(docker: HostDocker, network: dict[str, Any], address: str | None, field: str) -> None:
    if address is None:
        return
    ip = ipaddress.ip_address(address)
    subnets = [s for s in _subnets(network) if s.version == ip.version]
    if not any(ip in s for s in subnets):
        shown = ", ".join(map(str, subnets)) or "none"
        raise InvalidInput(f"{address} is outside network {network['name']}'s subnets ({shown})", field=field)
    holder = _used_addresses(docker, network).get(address)
    if holder:
        raise Conflict(f"{address} on network {network['name']} is taken by {holder}", field=field)


def _network_create(docker: HostDocker, req: dict[str, Any]) -> None:
    if any(n["name"] == req["name"] for n in docker.networks):
        raise Conflict(f"a network named {req['name']!r} exists", field="name")
    if req["driver"] == "overlay" and not docker.engine["swarm_manager"]:
        raise Conflict(
            "an overlay network needs a Swarm manager: run `docker swarm init` on this host first",
            field="driver",
        )
    for i, pool in enumerate(req["subnets"]):
        subnet = ipaddress.ip_network(pool["subnet"])
        for network in docker.networks:
            for other in _subnets(network):
                if other.version == subnet.version and other.overlaps(subnet):  # type: ignore[arg-type]
                    raise Conflict(
                        f"{subnet} overlaps network {network['name']}'s subnet {other}",
                        field=f"subnets[{i}].subnet",
                    )


def _network_remove(docker: HostDocker, req: dict[str, Any]) -> None:
    network = find(docker.networks, req["network"], what="network", field="network")
    if network["name"] in PREDEFINED:
        raise Conflict(
            f"{network['name']} is one of Docker's predefined networks and cannot be removed", field="network"
        )
    if network["containers"]:
        names = ", ".join(network["containers"])
        raise Conflict(
            f"network {network['name']} still has containers ({names}): disconnect or remove them first",
            field="network",
        )


def _network_connect(docker: HostDocker, req: dict[str, Any]) -> None:
    network = find(docker.networks, req["network"], what="network", field="network")
    container = find(docker.containers, req["container"], what="container", field="container")
    if container["mode"] in ("host", "none", "container"):
        raise Conflict(
            f"container {container['name']} runs in {container['mode']} mode and joins no networks",
            field="container",
        )
    if any(e["network_id"] == network["id"] for e in container["endpoints"]):
        raise Conflict(
            f"container {container['name']} is already on network {network['name']}", field="container"
        )
    _address_check(docker, network, req.get("ipv4"), "ipv4")
    _address_check(docker, network, req.get("ipv6"), "ipv6")


def _network_disconnect(docker: HostDocker, req: dict[str, Any]) -> None:
    network = find(docker.networks, req["network"], what="network", field="network")
    container = find(docker.containers, req["container"], what="container", field="container")
    if not any(e["network_id"] == network["id"] for e in container["endpoints"]):
        raise Conflict(
            f"container {container['name']} is not on network {network['name']}", field="container"
        )


def _image_check(docker: HostDocker, ref: str) -> None:
    wanted = {ref, f"{ref}:latest"}
    if not any(
        i["id"] == ref or i["id"] == f"sha256:{ref}" or wanted & set(i["tags"]) for i in docker.images
    ):
        raise NotFound(
            f"image {ref!r} is not in the engine's local store (no registry is reachable):"
            " build or import it first",
            field="image",
        )


def _container_run(docker: HostDocker, req: dict[str, Any]) -> None:
    _image_check(docker, req["image"])
    if req["name"] and any(c["name"] == req["name"] for c in docker.containers):
        raise Conflict(f"a container named {req['name']!r} exists", field="name")
    if req["network"]:
        network = find(docker.networks, req["network"], what="network", field="network")
        if network["driver"] != req["mode"]:
            raise InvalidInput(
                f"network {network['name']} is a {network['driver']} network, not {req['mode']}",
                field="network",
            )
        if req["mode"] == "overlay" and not network["attachable"]:
            raise InvalidInput(
                f"overlay network {network['name']} is not attachable: standalone containers cannot join it",
                field="network",
            )
        _address_check(docker, network, req["ipv4"], "ipv4")
    if req["container"]:
        target = find(docker.containers, req["container"], what="container", field="container")
        if target["state"] != "running":
            raise Conflict(
                f"container {target['name']} is {target['state']}:"
                " only a running container's namespace can be joined",
                field="container",
            )
    published = {
        (p["protocol"], p["host_port"])
        for c in docker.containers
        if c["state"] == "running"
        for p in c["ports"]
        if p["host_port"]
    }
    for i, port in enumerate(req["ports"]):
        if (port["protocol"], port["host_port"]) in published:
            raise Conflict(
                f"host port {port['host_port']}/{port['protocol']} is published by another container",
                field=f"ports[{i}].host_port",
            )


def _container_ref(docker: HostDocker, req: dict[str, Any]) -> None:
    find(docker.containers, req["container"], what="container", field="container")


def _compose_up(docker: HostDocker, req: dict[str, Any]) -> None:
    """Every piece of the project checked in the order it would be made, each against the engine as
    the pieces before it leave it (a network of the file exists for the services after it)."""
    plan = compose_plan(req["file"], project=req["project"])
    if any(c.get("project") == plan["project"] for c in docker.containers):
        raise Conflict(f"project {plan['project']} is up already: bring it down first", field="project")
    for name in plan["external"]:
        find(docker.networks, name, what="external network", field="file")
    future = dataclasses.replace(docker, networks=list(docker.networks), containers=list(docker.containers))
    for request in plan["networks"]:
        _network_create(future, request)
        future.networks.append({**request, "id": request["name"], "containers": [], "subnets": [
            {"subnet": s["subnet"], "gateway": s.get("gateway")} for s in request["subnets"]]})  # fmt: skip
    for service in plan["services"]:
        run = service["request"]
        _container_run(future, run)
        network = next((n for n in future.networks if n["name"] == run["network"]), None)
        endpoints = [{"network_id": network["id"], "ipv4": run["ipv4"]}] if network and run["ipv4"] else []
        ports = [{**p, "host_port": p.get("host_port")} for p in run["ports"]]
        made = {"id": run["name"], "name": run["name"], "state": "running", "mode": run["mode"]}
        future.containers.append({**made, "endpoints": endpoints, "ports": ports, "project": plan["project"]})
        for connect in service["connect"]:
            _network_connect(future, connect)


def _compose_down(docker: HostDocker, req: dict[str, Any]) -> None:
    owned = [c for c in docker.containers if c.get("project") == req["project"]]
    if not owned and not any(n.get("project") == req["project"] for n in docker.networks):
        raise NotFound(f"no container or network belongs to project {req['project']}", field="project")


CHECKS: dict[str, Callable[[HostDocker, dict[str, Any]], None]] = {
    "network.create": _network_create,
    "network.remove": _network_remove,
    "network.connect": _network_connect,
    "network.disconnect": _network_disconnect,
    "container.run": _container_run,
    "container.stop": _container_ref,
    "container.remove": _container_ref,
    "compose.up": _compose_up,
    "compose.down": _compose_down,
}


def docker_request_queue(
    *,
    host: str,
    action: str,
    body: Any,
    user: AbstractBaseUser | AnonymousUser | None,
    source: str | None = None,
) -> Operation:
    """Check a request to the host's engine (see the module) and queue it as a docker operation."""
    try:
        request = request_check(action, body)
    except InvalidSpec as exc:
        raise InvalidInput(str(exc), field=exc.obj) from None
    docker = docker_get(host=host)
    CHECKS[action](docker, request)
    return operation_create(
        host=host_get(name=host),
        kind=Operation.Kind.DOCKER,
        topology_text=json.dumps({"action": action, "request": request}),
        user=user,
        source=source,
    )
