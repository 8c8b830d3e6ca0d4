"""Reads of each host's Docker engine, from the state its agent reports (webapp.topology): the
engine, networks with their members, containers tied to the kernel objects under them, images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netcore.docker.plumbing import plumber
from webapp.errors import HostOffline, NotFound
from webapp.topology.selectors import HostTopology, topology_get, topology_list


@dataclass(frozen=True)
class HostDocker:
    """One host's Docker objects as reported: engine (None before its agent said anything)."""

    host: str
    online: bool
    engine: dict[str, Any] | None
    networks: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    images: list[dict[str, Any]]


def _host_docker(topology: HostTopology) -> HostDocker:
    state = topology.state
    plumbed = plumber(state["links"].values())
    containers = [
        {**c, "endpoints": plumbed(c)}
        for c in sorted(state["docker_containers"].values(), key=lambda c: c["name"])
    ]
    members: dict[str, list[str]] = {}
    for container in containers:
        for endpoint in container["endpoints"]:
            members.setdefault(endpoint["network_id"], []).append(container["name"])
    networks = [
        {**n, "containers": members.get(n["id"], [])}
        for n in sorted(state["docker_networks"].values(), key=lambda n: n["name"])
    ]
    images = sorted(state["docker_images"].values(), key=lambda i: (i["tags"] or ["~"])[0])
    return HostDocker(
        host=topology.host,
        online=topology.online,
        engine=state["docker_engine"].get("engine"),
        networks=networks,
        containers=containers,
        images=images,
    )


def docker_list(*, host: str | None = None) -> list[HostDocker]:
    """Every active host's Docker objects (or one host's), by host name."""
    found = [topology_get(host=host)] if host else topology_list()
    return sorted((_host_docker(t) for t in found), key=lambda d: d.host)


def docker_get(*, host: str) -> HostDocker:
    """One host's Docker objects; HostOffline when its agent reports no engine it could reach."""
    docker = _host_docker(topology_get(host=host))
    if docker.engine is None:
        raise HostOffline(f"host {host!r} has not reported a Docker engine yet (is its agent connected?)")
    if not docker.engine["available"]:
        raise HostOffline(f"host {host!r} has no Docker engine: {docker.engine['error']}")
    return docker


def find(objects: list[dict[str, Any]], ref: str, *, what: str, field: str) -> dict[str, Any]:
    """The object named `ref` (by name, full id or an id prefix of 12 or more), else NotFound."""
    for obj in objects:
        if obj["name"] == ref or obj["id"] == ref or (len(ref) >= 12 and obj["id"].startswith(ref)):
            return obj
    raise NotFound(f"{what} {ref!r} does not exist on this host", field=field)
