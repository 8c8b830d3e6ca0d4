"""A topology file's ``services:`` section: the services its nodes offer (static discovery).

Format (YAML)::

    services:
      web:                          # the service's name: a DNS label of at most 62 characters
        network: front              # one of the file's networks; DNS: web.front.<domain>
        port: 80
        protocol: tcp               # optional: tcp (default) | udp
        vip: 198.18.1.100           # optional: an IPv4 service address in the network's subnet
        tags: [http]                # optional
        meta: {team: shop}          # optional: names to text
        check: {kind: http, path: /healthz, interval: 2}   # optional, as the catalog API takes it
        instances:
          - web1                                   # a node on the network (its address there)
          - {node: web2, weight: 2, port: 8080}    # weight 1..100; port: the service's by default
          - {address: 198.18.1.50, name: legacy}   # an address on the network, not a node's

Nothing here touches the kernel: the agent applies the networks and nodes, and the dashboard's
service catalog serves these services (DNS, VIPs, health checks) once the file is recorded there.
Refused, each naming its field: a name that is no DNS label, a network the file does not declare, a
port outside 1..65535, a VIP outside the subnet or equal to the gateway, a node's, a remote node's or
another service's address, a node that is not on the network, two instances of one name or one
address and port, and a check the catalog would refuse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netcore.errors import InvalidSpec
from netcore.ipam import IPAddress
from netcore.names import excerpt
from netcore.services.catalog import LABEL, MAX_WEIGHT, PROTOCOLS, check_parse

SERVICE_KEYS = ("network", "port", "protocol", "vip", "tags", "meta", "check", "instances")
INSTANCE_KEYS = ("node", "address", "name", "port", "weight")
MAX_SERVICE_NAME = 62  # `_<name>` is a label of the SRV name


@dataclass(frozen=True)
class FileInstance:
    """An instance: a node of the file (its address on the service's network) or an address."""

    name: str
    node: str | None = None
    address: IPAddress | None = None
    port: int | None = None
    weight: int = 1


@dataclass(frozen=True)
class FileService:
    """A service of the file; `check` as written (the catalog stores and parses it again)."""

    name: str
    network: str
    port: int
    protocol: str = "tcp"
    vip: IPAddress | None = None
    tags: tuple[str, ...] = ()
    meta: Mapping[str, str] = field(default_factory=dict)
    check: Mapping[str, Any] | None = None
    instances: tuple[FileInstance, ...] = ()


@dataclass(frozen=True)
class FileNetwork:
    """What the section is checked against: a network's subnet, gateway and who holds which address."""

    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    gateway: IPAddress
    nodes: Mapping[str, IPAddress]  # node -> its address on the network
    remote: frozenset[IPAddress] = frozenset()


def services_parse(
    data: object, networks: Mapping[str, FileNetwork]
) -> tuple[dict[str, FileService], list[str]]:
    """The section's services and every problem found, each naming its field (`services.web.port`)."""
    if data is None:
        return {}, []
    if not isinstance(data, Mapping):
        return {}, [f"services: must be a mapping, not {type(data).__name__}"]
    reader = _Reader(networks)
    services = {}
    for key, body in data.items():
        service = reader.service(key, body)
        if service is not None:
            services[service.name] = service
    return services, reader.problems


class _Reader:
    def __init__(self, networks: Mapping[str, FileNetwork]) -> None:
        self.networks = networks
        self.problems: list[str] = []
        self.vips: dict[IPAddress, str] = {}

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def service(self, key: object, body: object) -> FileService | None:
        path = f"services.{key}" if isinstance(key, str) else f"services.{excerpt(key)}"
        if not isinstance(key, str) or not LABEL.match(key) or len(key) > MAX_SERVICE_NAME:
            self.problem(f"{path}: a service name is a DNS label (a-z, 0-9 and '-') of at most 62 characters")
            return None
        if not isinstance(body, Mapping):
            self.problem(f"{path}: must be a mapping, not {type(body).__name__}")
            return None
        before = len(self.problems)
        for unknown in set(body) - set(SERVICE_KEYS):
            self.problem(
                f"{path}: unknown key {excerpt(unknown)} (expected one of: {', '.join(SERVICE_KEYS)})"
            )
        given = body.get("network")
        network_name = given if isinstance(given, str) else ""
        network = self.networks.get(network_name)
        if network is None:
            known = ", ".join(self.networks) or "none"
            self.problem(f"{path}.network: {excerpt(given)} is not a network of the file ({known})")
        elif not LABEL.match(network_name):
            self.problem(f"{path}.network: {network_name} is no DNS label, so no service name can carry it")
        port = self.port(body, "port", path, required=True)
        protocol = body.get("protocol", "tcp")
        if protocol not in PROTOCOLS:
            self.problem(f"{path}.protocol: {excerpt(protocol)} is not tcp or udp")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            self.problem(f"{path}.tags: a list of words")
        meta = body.get("meta", {})
        if not isinstance(meta, Mapping) or not all(isinstance(v, str) for v in meta.values()):
            self.problem(f"{path}.meta: a mapping of names to text")
        check = body.get("check")
        if check is not None:
            try:
                check_parse(check, f"{path}.check")
            except InvalidSpec as exc:
                self.problem(str(exc))
        vip = self.vip(body.get("vip"), network, f"{path}.vip", key) if network else None
        instances = self.instances(body.get("instances", []), network, f"{path}.instances", vip, port)
        if len(self.problems) > before or network is None or port is None:
            return None
        return FileService(
            name=key,
            network=network_name,
            port=port,
            protocol=protocol,
            vip=vip,
            tags=tuple(tags),
            meta=dict(meta),
            check=dict(check) if check is not None else None,
            instances=instances,
        )

    def port(self, body: Mapping, key: str, path: str, *, required: bool = False) -> int | None:
        value = body.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            self.problem(f"{path}.{key}: {excerpt(value)} is not a port (1..65535)")
            return None
        return value

    def address(self, value: object, network: FileNetwork, path: str) -> IPAddress | None:
        try:
            address = ipaddress.ip_address(value)  # type: ignore[arg-type]
        except ValueError:
            self.problem(f"{path}: {excerpt(value)} is not an IP address")
            return None
        subnet = network.subnet
        if address not in subnet or (subnet.version == 4 and address in (subnet[0], subnet[-1])):
            self.problem(f"{path}: {address} is not a host address of the network ({subnet})")
            return None
        if address == network.gateway:
            self.problem(f"{path}: {address} is the network's gateway")
            return None
        return address

    def vip(self, value: object, network: FileNetwork, path: str, service: str) -> IPAddress | None:
        if value is None:
            return None
        vip = self.address(value, network, path)
        if vip is None:
            return None
        holder = next((node for node, address in network.nodes.items() if address == vip), None)
        if vip.version != 4:
            self.problem(f"{path}: service addresses are IPv4 for now")
        elif holder is not None:
            self.problem(f"{path}: {vip} is node {holder}'s address")
        elif vip in network.remote:
            self.problem(f"{path}: {vip} is a remote node's address")
        elif vip in self.vips:
            self.problem(f"{path}: {vip} is service {self.vips[vip]}'s address")
        else:
            self.vips[vip] = service
            return vip
        return None

    def instances(
        self, items: object, network: FileNetwork | None, path: str, vip: IPAddress | None, port: int | None
    ) -> tuple[FileInstance, ...]:
        if not isinstance(items, list):
            self.problem(f"{path}: must be a list of nodes or {{node|address, name, port, weight}}")
            return ()
        found: list[FileInstance] = []
        for index, item in enumerate(items):
            instance = self.instance(item, network, f"{path}[{index}]", vip)
            if instance is None:
                continue
            if any(other.name == instance.name for other in found):
                self.problem(f"{path}[{index}]: a second instance named {instance.name}")
                continue
            target = (instance.node or instance.address, instance.port or port)
            if any((other.node or other.address, other.port or port) == target for other in found):
                self.problem(f"{path}[{index}]: the same address and port as another instance")
                continue
            found.append(instance)
        return tuple(found)

    def instance(
        self, item: object, network: FileNetwork | None, path: str, vip: IPAddress | None
    ) -> FileInstance | None:
        body: Mapping = {"node": item} if isinstance(item, str) else item if isinstance(item, Mapping) else {}
        if not body:
            self.problem(f"{path}: a node's name or a mapping of {', '.join(INSTANCE_KEYS)}")
            return None
        before = len(self.problems)
        for unknown in set(body) - set(INSTANCE_KEYS):
            self.problem(
                f"{path}: unknown key {excerpt(unknown)} (expected one of: {', '.join(INSTANCE_KEYS)})"
            )
        node, given = body.get("node"), body.get("address")
        address = None
        if (node is None) == (given is None):
            self.problem(f"{path}: give a node or an address, not both or neither")
        elif node is not None and network is not None and node not in network.nodes:
            self.problem(f"{path}.node: {excerpt(node)} is not a node on the service's network")
        elif given is not None and network is not None:
            address = self.address(given, network, f"{path}.address")
            if address is not None and address == vip:
                self.problem(f"{path}.address: {address} is the service's VIP")
        port = self.port(body, "port", path)
        name = body.get("name", node if node is not None else address_name(given, port))
        if not isinstance(name, str) or not LABEL.match(name):
            self.problem(f"{path}.name: {excerpt(name)} is not a DNS label (give the instance a name)")
        weight = body.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= MAX_WEIGHT:
            self.problem(f"{path}.weight: {excerpt(weight)} is not an integer in 1..{MAX_WEIGHT}")
        if len(self.problems) > before or network is None:
            return None
        return FileInstance(name=name, node=node, address=address, port=port, weight=weight)


def address_name(address: object, port: int | None = None) -> str:
    """The default name of an instance at an address: 198.18.1.50 -> a-198-18-1-50, with its port
    when it has its own (a-198-18-1-50-8080)."""
    text = "a-" + str(address).replace(".", "-").replace(":", "-").strip("-")
    return f"{text}-{port}" if port else text
