"""The Docker networks services live on (`Service.topology` empty; webapp.catalog.docker makes them
from container labels): their names in DNS, their catalog documents from the Docker state the host's
agent reports, and the check of a VIP on one.

A Docker network is served as the agent serves a managed one, on its Linux bridge and IPv4 gateway,
under its name made a DNS label (`shop_default` → `shop-default`). It lists no nodes: Docker's own DNS
names the containers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from netcore.services.catalog import LABEL
from webapp.catalog.models import Service
from webapp.errors import Conflict, InvalidInput
from webapp.topology.models import HostState

DOCKER = ""  # Service.topology of a service on a Docker network of its host

Objects = Mapping[str, Mapping[str, Any]]  # a Docker kind of a host's state: key → object


def dns_label(name: str) -> str:
    """A Docker name as DNS names carry it: lowercase, '_' and '.' made '-' (LABEL tells whether the
    result is a DNS label)."""
    return name.lower().replace("_", "-").replace(".", "-")


def served_network(service: Service) -> str:
    """The network's name in the service's DNS names."""
    return dns_label(service.network) if service.topology == DOCKER else service.network


def network_text(service: Service) -> str:
    """Where a service lives, in words: "network front of topology shop", "Docker network shop_default"."""
    if service.topology == DOCKER:
        return f"Docker network {service.network}"
    return f"network {service.network} of topology {service.topology}"


def docker_state(host_id: int, kind: str) -> dict[str, dict[str, Any]]:
    """One Docker kind (docker_networks, docker_containers) of the host's stored state, by key."""
    found = HostState.objects.filter(host_id=host_id).values_list(f"state__{kind}", flat=True).first()
    return found if isinstance(found, dict) else {}


def network_named(networks: Objects, name: str) -> Mapping[str, Any] | None:
    """The Docker network of that name (the lowest id, should the engine hold two)."""
    return next((n for _, n in sorted(networks.items()) if n["name"] == name), None)


def ipv4_pools(network: Mapping[str, Any]) -> list[tuple[ipaddress.IPv4Network, str | None]]:
    """The network's IPv4 IPAM pools: (subnet, gateway or None)."""
    pools = []
    for pool in network["subnets"]:
        try:
            subnet = ipaddress.ip_network(pool["subnet"])
        except ValueError:
            continue
        if isinstance(subnet, ipaddress.IPv4Network):
            pools.append((subnet, pool["gateway"]))
    return pools


def network_document(network: Mapping[str, Any], services: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The catalog document of a Docker network serving `services` (netcore.services.catalog's form);
    None when it cannot be served: no Linux bridge, or a name that makes no DNS label."""
    name = dns_label(network["name"])
    if not network["bridge"] or not LABEL.match(name):
        return None
    pools = ipv4_pools(network)
    return {
        "name": name,
        "bridge": network["bridge"],
        "gateways": [gateway for _, gateway in pools if gateway],
        "subnets": [str(subnet) for subnet, _ in pools],
        "nodes": [],
        "services": services,
    }


def docker_vip_check(service: Service, vip: str) -> None:
    """A VIP for a service on a Docker network: an IPv4 host address of one of the network's subnets
    that is not its gateway, no container's address on it and no other service's VIP."""
    network = network_named(docker_state(service.host_id, "docker_networks"), service.network)
    if network is None:
        raise Conflict(
            f"host {service.host.name}'s agent has not reported Docker network {service.network}", field="vip"
        )
    try:
        address = ipaddress.ip_address(vip)
    except ValueError:
        raise InvalidInput(f"{vip!r} is not an IP address", field="vip") from None
    if address.version != 4:
        raise InvalidInput("service addresses are IPv4 for now", field="vip")
    pools = ipv4_pools(network)
    pool = next(((s, g) for s, g in pools if address in s), None)
    if pool is None or address in (pool[0].network_address, pool[0].broadcast_address):
        subnets = ", ".join(str(s) for s, _ in pools) or "no IPv4 subnet"
        raise InvalidInput(
            f"{vip} is not a host address of Docker network {service.network} ({subnets})", field="vip"
        )
    if vip == pool[1]:
        raise Conflict(f"{vip} is Docker network {service.network}'s gateway", field="vip")
    for container in docker_state(service.host_id, "docker_containers").values():
        for endpoint in container["endpoints"]:
            if endpoint["network_id"] == network["id"] and (endpoint["ipv4"] or "").split("/")[0] == vip:
                raise Conflict(f"{vip} is container {container['name']}'s address", field="vip")
    other = Service.objects.filter(host_id=service.host_id, vip=vip).exclude(pk=service.pk).first()
    if other is not None:
        raise Conflict(f"{vip} is service {other.name}'s address", field="vip")
