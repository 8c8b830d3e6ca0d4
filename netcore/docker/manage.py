"""Change the engine: networks created, removed, connected and disconnected; containers run, stopped
and removed, Compose projects brought up and down. Each request is checked first
(netcore.docker.requests); a run that fails after the engine
created something removes it again, so nothing half-made is left behind."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import docker
import docker.types

from netcore.docker import compose
from netcore.docker.engine import engine_call, engine_error
from netcore.docker.requests import request_check
from netcore.errors import InvalidSpec, NotFound

Handler = Callable[[docker.DockerClient, dict[str, Any]], dict[str, Any]]


def _network_create(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    pools = [
        docker.types.IPAMPool(
            subnet=s["subnet"],
            gateway=s.get("gateway"),
            iprange=s.get("ip_range"),
            aux_addresses=s["aux_addresses"] or None,
        )
        for s in req["subnets"]
    ]
    with engine_call(obj=f"network {req['name']}", action="create"):
        network = client.networks.create(
            req["name"],
            driver=req["driver"],
            ipam=docker.types.IPAMConfig(pool_configs=pools) if pools else None,
            enable_ipv6=req["ipv6"],
            internal=req["internal"],
            attachable=req["attachable"] or None,
            labels=req["labels"] or None,
            options=req["options"] or None,
            check_duplicate=True,
        )
    return {"network": network.id, "name": req["name"]}


def _network(client: docker.DockerClient, ref: str) -> Any:
    with engine_call(obj=f"network {ref}", action="find"):
        return client.networks.get(ref)


def _container(client: docker.DockerClient, ref: str) -> Any:
    with engine_call(obj=f"container {ref}", action="find"):
        return client.containers.get(ref)


def _network_remove(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    network = _network(client, req["network"])
    with engine_call(obj=f"network {req['network']}", action="remove"):
        network.remove()
    return {"network": network.id}


def _network_connect(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    network, container = _network(client, req["network"]), _container(client, req["container"])
    with engine_call(obj=f"container {req['container']} on network {req['network']}", action="connect"):
        network.connect(
            container,
            ipv4_address=req.get("ipv4"),
            ipv6_address=req.get("ipv6"),
            aliases=req["aliases"] or None,
        )
    return {"network": network.id, "container": container.id}


def _network_disconnect(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    network, container = _network(client, req["network"]), _container(client, req["container"])
    with engine_call(obj=f"container {req['container']} from network {req['network']}", action="disconnect"):
        network.disconnect(container, force=req["force"])
    return {"network": network.id, "container": container.id}


def _network_mode(client: docker.DockerClient, req: dict[str, Any]) -> tuple[str | None, Any]:
    """Docker's network mode for a run request, and the networking config of its network (if any)."""
    mode = req["mode"]
    if mode in ("host", "none"):
        return mode, None
    if mode == "container":
        return f"container:{_container(client, req['container']).id}", None
    if not req["network"]:
        return None, None  # Docker's default bridge
    network = _network(client, req["network"])
    driver = network.attrs.get("Driver")
    if driver != mode:
        raise InvalidSpec(f"network: {req['network']} is a {driver} network, not {mode}", obj="network")
    endpoint = client.api.create_endpoint_config(ipv4_address=req["ipv4"], aliases=req["aliases"] or None)
    # the SDK takes {network: endpoint config} here, whatever its type stubs say
    return network.name, client.api.create_networking_config({network.name: endpoint})  # type: ignore[arg-type]


def _container_run(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    try:
        client.images.get(req["image"])
    except docker.errors.ImageNotFound:
        message = f"image: {req['image']} is not in the engine's local store (no registry is reachable here)"
        raise NotFound(message, obj="image") from None
    except Exception as exc:
        raise engine_error(exc, obj=f"image {req['image']}", action="find") from None
    network_mode, networking = _network_mode(client, req)
    bindings: dict[int | str, Any] = {
        f"{p['container_port']}/{p['protocol']}": (p["host_ip"], p["host_port"])
        if p["host_ip"]
        else p["host_port"]
        for p in req["ports"]
    }
    what = f"container {req['name'] or 'from ' + req['image']}"
    with engine_call(obj=what, action="create"):
        created = client.api.create_container(
            req["image"],
            command=req["command"],
            name=req["name"],
            labels=req["labels"] or None,
            ports=[(p["container_port"], p["protocol"]) for p in req["ports"]] or None,
            host_config=client.api.create_host_config(
                network_mode=network_mode, port_bindings=bindings or None
            ),
            networking_config=networking,
        )
    container_id = created["Id"]
    try:
        client.api.start(container_id)
    except Exception as exc:
        with contextlib.suppress(Exception):  # nothing half-made: the created container goes again
            client.api.remove_container(container_id, force=True)
        raise engine_error(exc, obj=what, action="start") from None
    return {"container": container_id, "name": client.api.inspect_container(container_id)["Name"].lstrip("/")}


def _container_stop(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    container = _container(client, req["container"])
    with engine_call(obj=f"container {req['container']}", action="stop"):
        container.stop(timeout=5)
    return {"container": container.id}


def _container_remove(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    container = _container(client, req["container"])
    with engine_call(obj=f"container {req['container']}", action="remove"):
        container.remove(force=req["force"])
    return {"container": container.id}


def _compose_up(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    """Networks, then each service's container in start order, then its further networks; on any
    failure what this run made is removed again (containers first) and the error stands."""
    plan = compose.compose_plan(req["file"], project=req["project"])
    for name in plan["external"]:
        _network(client, name)
    made_networks: list[str] = []
    made_containers: list[str] = []
    try:
        for request in plan["networks"]:
            made_networks.append(_network_create(client, request)["network"])
        for service in plan["services"]:
            made_containers.append(_container_run(client, service["request"])["container"])
            for connect in service["connect"]:
                _network_connect(client, connect)
    except Exception:
        for container_id in reversed(made_containers):
            with contextlib.suppress(Exception):
                client.api.remove_container(container_id, force=True)
        for network_id in reversed(made_networks):
            with contextlib.suppress(Exception):
                client.api.remove_network(network_id)
        raise
    return {"project": plan["project"], "networks": made_networks, "containers": made_containers}


def _compose_down(client: docker.DockerClient, req: dict[str, Any]) -> dict[str, Any]:
    """Every container, then every network, labelled with the project (whoever made them)."""
    label = f"{compose.PROJECT_LABEL}={req['project']}"
    with engine_call(obj=f"project {req['project']}", action="list"):
        containers = client.containers.list(all=True, filters={"label": label})
        networks = client.networks.list(filters={"label": label})
    if not containers and not networks:
        raise NotFound(f"project: no container or network belongs to project {req['project']}", obj="project")
    for container in containers:
        with engine_call(obj=f"container {container.name}", action="remove"):
            container.remove(force=True)
    for network in networks:
        with engine_call(obj=f"network {network.name}", action="remove"):
            network.remove()
    return {
        "project": req["project"],
        "containers": [c.id for c in containers],
        "networks": [n.id for n in networks],
    }


HANDLERS: dict[str, Handler] = {
    "network.create": _network_create,
    "network.remove": _network_remove,
    "network.connect": _network_connect,
    "network.disconnect": _network_disconnect,
    "container.run": _container_run,
    "container.stop": _container_stop,
    "container.remove": _container_remove,
    "compose.up": _compose_up,
    "compose.down": _compose_down,
}


def docker_request(client: docker.DockerClient, *, action: str, body: Any) -> dict[str, Any]:
    """Check and carry out one request; answers what it made or touched (ids), or raises NetcoreError."""
    request = request_check(action, body)
    return HANDLERS[action](client, request)
