"""Docker's networks, containers and images as plain data: frozen dataclasses that serialise to the
JSON netcore/schema/docker.schema.json documents.

Each object carries what ties it to netcore's objects: a container its namespace (as netcore names
it) and its endpoints' MAC addresses, a network its bridge or overlay namespace. Maps such as labels
are lists of name/value pairs, so every field has one checkable shape.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        """This object as JSON-ready data."""
        return _plain(self)


@dataclass(frozen=True, slots=True)
class DockerPair(_Serialisable):
    """One entry of a label, option or address map."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class DockerSubnet(_Serialisable):
    """One IPAM pool of a network."""

    subnet: str
    gateway: str | None
    ip_range: str | None
    aux_addresses: tuple[DockerPair, ...]


@dataclass(frozen=True, slots=True)
class DockerNetwork(_Serialisable):
    """A Docker network and the kernel objects under it."""

    id: str
    name: str
    driver: str
    scope: str
    internal: bool
    attachable: bool
    ingress: bool
    ipv6: bool
    ipam_driver: str
    subnets: tuple[DockerSubnet, ...]
    options: tuple[DockerPair, ...]
    labels: tuple[DockerPair, ...]
    bridge: str | None
    netns: str | None
    peers: tuple[DockerPair, ...]
    project: str | None
    created: str


@dataclass(frozen=True, slots=True)
class DockerEndpoint(_Serialisable):
    """A container's attachment to a network."""

    network: str
    network_id: str
    ipv4: str | None
    ipv6: str | None
    gateway: str | None
    mac: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DockerPort(_Serialisable):
    """A container port, published on the host or not, with the NAT rule that publishes it."""

    container_port: int
    protocol: str
    host_ip: str | None
    host_port: int | None
    nat: str | None


@dataclass(frozen=True, slots=True)
class DockerDns(_Serialisable):
    """A container's resolver configuration (its /etc/resolv.conf)."""

    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DockerContainer(_Serialisable):
    """A container with its network mode and where it lives in the kernel."""

    id: str
    name: str
    image: str
    state: str
    network_mode: str
    mode: str
    shares: str | None
    netns: str | None
    pid: int | None
    hostname: str
    command: str
    endpoints: tuple[DockerEndpoint, ...]
    ports: tuple[DockerPort, ...]
    dns: DockerDns | None
    project: str | None
    service: str | None
    labels: tuple[DockerPair, ...]
    created: str


@dataclass(frozen=True, slots=True)
class DockerImage(_Serialisable):
    """An image in the engine's local store."""

    id: str
    tags: tuple[str, ...]
    size: int
    created: str


@dataclass(frozen=True, slots=True)
class DockerEngine(_Serialisable):
    """The engine (or why there is none) and the host firewall it sets up."""

    available: bool
    error: str | None
    version: str | None
    api_version: str | None
    swarm: str
    swarm_manager: bool
    node_addr: str | None
    forward_policy: str | None
    bridge_nf_call_iptables: bool | None
    accepted_bridges: tuple[str, ...]
