"""The service catalog one agent serves: what the web app sends (`catalog_parse`) and the answers it
derives from health (`healthy_instances`, `zone_of`, `vip_targets`).

A catalog is per host: each managed network on the host with its nodes (`<node>.<network>.<domain>`)
and its services. An instance is an address and port; `netns`, when given, is the namespace it lives in
(a node's or a container's), so an instance whose namespace is gone is down without a probe.

Everything here is pure: the agent's supervisors (DNS, VIP, health) turn it into processes and rules.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netcore.errors import InvalidSpec
from netcore.ipam import IPAddress
from netcore.names import validate_netns_name

PROTOCOLS = ("tcp", "udp")
CHECK_KINDS = ("tcp", "http", "dns")
#: Health states, best first. An instance with no check is passing while its namespace exists.
STATES = ("passing", "warning", "critical")
#: States that keep an instance in DNS and behind its VIP (as Consul's DNS does by default).
SERVING = ("passing", "warning")
#: The protocol state kind that carries instances' health (netcore/schema/services.schema.json).
HEALTH_KIND = "service_health"
DEFAULT_DOMAIN = "sb.internal"
MAX_OUTPUT = 512  # characters of a check's output that travel
MAX_WEIGHT = 100
#: A DNS label: what service, instance, network and node names must be to appear in names.
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True)
class CheckSpec:
    """How an agent probes each instance: `kind` tcp (connect), http (GET `path`, passing when the
    status is in `status`, warning for another status below 500) or dns (the instance answers `query`
    for type A). Runs every `interval` seconds with `timeout`; `rise` passes in a row make an instance
    passing again, `fall` failures in a row critical. `source` is the namespace it runs from (None:
    the agent's own, where the network's gateway is)."""

    kind: str
    interval: float = 10.0
    timeout: float = 2.0
    rise: int = 1
    fall: int = 1
    path: str = "/"
    status: tuple[int, int] = (200, 399)
    query: str = ""
    source: str | None = None


@dataclass(frozen=True)
class InstanceSpec:
    """One instance: `id` is unique in its service and a DNS label (the SRV target is
    `<id>.<service>.<network>.<domain>`)."""

    id: str
    address: IPAddress
    port: int
    weight: int = 1
    netns: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    protocol: str
    port: int
    vip: IPAddress | None = None
    check: CheckSpec | None = None
    instances: tuple[InstanceSpec, ...] = ()


@dataclass(frozen=True)
class NodeName:
    """`<name>.<network>.<domain>` answers `addresses`; `netns` is the node's namespace, whose
    resolver (/etc/netns/<netns>/resolv.conf) points at the network's DNS."""

    name: str
    addresses: tuple[IPAddress, ...]
    netns: str | None = None


@dataclass(frozen=True)
class NetworkCatalog:
    """One managed network: its bridge in the agent's namespace, the gateway addresses DNS answers on,
    its subnets (a VIP must be inside one), nodes and services."""

    name: str
    bridge: str
    gateways: tuple[IPAddress, ...]
    subnets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    nodes: tuple[NodeName, ...] = ()
    services: tuple[ServiceSpec, ...] = ()


@dataclass(frozen=True)
class Catalog:
    version: int = 0
    domain: str = DEFAULT_DOMAIN
    networks: tuple[NetworkCatalog, ...] = field(default_factory=tuple)

    def service(self, network: str, name: str) -> ServiceSpec | None:
        """A service by network and name."""
        for net in self.networks:
            if net.name == network:
                return next((s for s in net.services if s.name == name), None)
        return None


@dataclass(frozen=True)
class Health:
    """The last word on one instance: its state, what the check said, how long the probe took (ms;
    None without one), when it was last checked and since when it has had this state (seconds since
    the epoch)."""

    network: str
    service: str
    instance: str
    status: str
    output: str
    checked: float
    since: float
    rtt: float | None = None

    @property
    def key(self) -> str:
        return f"{self.network}|{self.service}|{self.instance}"

    def to_dict(self) -> dict[str, Any]:
        """As the protocol carries it: times in whole milliseconds since the epoch, rtt in µs."""
        return {
            "network": self.network,
            "service": self.service,
            "instance": self.instance,
            "status": self.status,
            "output": self.output[:MAX_OUTPUT],
            "checked_ms": round(self.checked * 1000),
            "since_ms": round(self.since * 1000),
            "rtt_us": None if self.rtt is None else round(self.rtt * 1000),
        }


# -- parsing ------------------------------------------------------------------------------------


class _Reader:
    """Reads one JSON object, naming the path of whatever is wrong."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidSpec(f"{path}: expected an object", obj=path)
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise InvalidSpec(f"{self.at(key)}: required", obj=self.at(key))
            return default
        value = self.data[key]
        if value is None and default is None:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise InvalidSpec(f"{self.at(key)}: expected {_kind_name(kind)}", obj=self.at(key))
        if not isinstance(value, kind):
            raise InvalidSpec(f"{self.at(key)}: expected {_kind_name(kind)}", obj=self.at(key))
        return value

    def label(self, key: str) -> str:
        value = self.get(key, str)
        if not LABEL.match(value):
            raise InvalidSpec(
                f"{self.at(key)}: {value!r} is not a DNS label (a-z, 0-9 and '-', at most 63)",
                obj=self.at(key),
            )
        return value

    def number(self, key: str, low: float, high: float, default: float) -> float:
        value = float(self.get(key, (int, float), default))
        if not low <= value <= high:
            raise InvalidSpec(
                f"{self.at(key)}: {value:g} is not between {low:g} and {high:g}", obj=self.at(key)
            )
        return value

    def integer(self, key: str, low: int, high: int, default: Any = ...) -> int:
        value = self.get(key, int, default)
        if not low <= value <= high:
            raise InvalidSpec(f"{self.at(key)}: {value} is not between {low} and {high}", obj=self.at(key))
        return value

    def address(self, key: str, default: Any = ...) -> IPAddress | None:
        value = self.get(key, str, default)
        if value is None:
            return None
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise InvalidSpec(f"{self.at(key)}: {value!r} is not an IP address", obj=self.at(key)) from None

    def netns(self, key: str) -> str | None:
        """A namespace name (under /run/netns; never a path), or None."""
        value = self.get(key, str, None)
        if value is not None:
            validate_netns_name(value, field=self.at(key))
        return value

    def items(self, key: str) -> list[tuple[str, object]]:
        value = self.get(key, list, [])
        return [(f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds if k is not float or int not in kinds)


def check_parse(data: object, path: str) -> CheckSpec:
    """A service's check, as the catalog and topology files write it; InvalidSpec names the field."""
    r = _Reader(data, path)
    kind = r.get("kind", str)
    if kind not in CHECK_KINDS:
        raise InvalidSpec(
            f"{r.at('kind')}: {kind!r} is not one of {', '.join(CHECK_KINDS)}", obj=r.at("kind")
        )
    interval = r.number("interval", 0.1, 3600, 10.0)
    timeout = r.number("timeout", 0.05, 60, min(2.0, interval))
    if timeout > interval:
        raise InvalidSpec(
            f"{r.at('timeout')}: longer than the interval ({interval:g} s)", obj=r.at("timeout")
        )
    status = r.get("status", list, [200, 399])
    if (
        len(status) != 2
        or not all(isinstance(s, int) and 100 <= s <= 599 for s in status)
        or status[0] > status[1]
    ):
        raise InvalidSpec(
            f"{r.at('status')}: expected [low, high], HTTP statuses from 100 to 599", obj=r.at("status")
        )
    path_value = r.get("path", str, "/")
    if not path_value.startswith("/") or any(c in path_value for c in " \r\n"):
        raise InvalidSpec(f"{r.at('path')}: an HTTP path starting with '/'", obj=r.at("path"))
    return CheckSpec(
        kind=kind,
        interval=interval,
        timeout=timeout,
        rise=r.integer("rise", 1, 10, 1),
        fall=r.integer("fall", 1, 10, 1),
        path=path_value,
        status=(status[0], status[1]),
        query=r.get("query", str, ""),
        source=r.netns("source"),
    )


def _instance(data: object, path: str) -> InstanceSpec:
    r = _Reader(data, path)
    address = r.address("address")
    assert address is not None, "address is required"
    return InstanceSpec(
        id=r.label("id"),
        address=address,
        port=r.integer("port", 1, 65535),
        weight=r.integer("weight", 1, MAX_WEIGHT, 1),
        netns=r.netns("netns"),
    )


def _service(data: object, path: str, subnets: tuple) -> ServiceSpec:
    r = _Reader(data, path)
    protocol = r.get("protocol", str, "tcp")
    if protocol not in PROTOCOLS:
        raise InvalidSpec(f"{r.at('protocol')}: {protocol!r} is not tcp or udp", obj=r.at("protocol"))
    vip = r.address("vip", None)
    if vip is not None and not any(vip in net for net in subnets):
        raise InvalidSpec(f"{r.at('vip')}: {vip} is not in the network's subnet", obj=r.at("vip"))
    check = r.get("check", dict, None)
    instances = tuple(_instance(item, where) for where, item in r.items("instances"))
    _unique((i.id for i in instances), r.at("instances"), "instance")
    return ServiceSpec(
        name=r.label("name"),
        protocol=protocol,
        port=r.integer("port", 1, 65535),
        vip=vip,
        check=check_parse(check, r.at("check")) if check is not None else None,
        instances=instances,
    )


def _network(data: object, path: str) -> NetworkCatalog:
    r = _Reader(data, path)
    subnets = []
    for where, item in r.items("subnets"):
        try:
            subnets.append(ipaddress.ip_network(item))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidSpec(f"{where}: {item!r} is not a subnet", obj=where) from None
    gateways = []
    for where, item in r.items("gateways"):
        gateways.append(_Reader({"gateway": item}, where).address("gateway"))
    nodes = []
    for where, item in r.items("nodes"):
        n = _Reader(item, where)
        addresses = tuple(_Reader({"a": a}, w).address("a") for w, a in n.items("addresses"))
        nodes.append(NodeName(name=n.label("name"), addresses=addresses, netns=n.netns("netns")))  # type: ignore[arg-type]
    services = tuple(_service(item, where, tuple(subnets)) for where, item in r.items("services"))
    _unique((s.name for s in services), r.at("services"), "service")
    _addresses_apart(services, tuple(gateways), r.at("services"))  # type: ignore[arg-type]
    return NetworkCatalog(
        name=r.label("name"),
        bridge=r.get("bridge", str),
        gateways=tuple(gateways),  # type: ignore[arg-type]
        subnets=tuple(subnets),
        nodes=tuple(nodes),
        services=services,
    )


def _addresses_apart(services: tuple[ServiceSpec, ...], gateways: tuple[IPAddress, ...], path: str) -> None:
    """A VIP is nobody else's address: not a gateway, not an instance's, not another VIP."""
    vips: dict[IPAddress, str] = {}
    for service in services:
        if service.vip is None:
            continue
        if service.vip in gateways or service.vip in vips:
            other = "the gateway" if service.vip in gateways else f"service {vips[service.vip]}'s VIP"
            raise InvalidSpec(
                f"{path}: the VIP of {service.name}, {service.vip}, is {other}", obj=service.name
            )
        vips[service.vip] = service.name
    for service in services:
        for instance in service.instances:
            holder = "the gateway" if instance.address in gateways else vips.get(instance.address)
            if holder:
                what = holder if holder == "the gateway" else f"service {holder}'s VIP"
                where = f"{service.name}/{instance.id}"
                raise InvalidSpec(
                    f"{path}: instance {where}'s address {instance.address} is {what}", obj=where
                )


def _unique(names: Iterable[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidSpec(f"{path}: {what} {name} is listed twice", obj=name)
        seen.add(name)


def catalog_parse(data: object) -> Catalog:
    """A catalog from its JSON form (docs/agent-protocol.md, "catalog"); InvalidSpec names the path of
    the first thing wrong."""
    r = _Reader(data, "")
    domain = r.get("domain", str, DEFAULT_DOMAIN)
    if not DOMAIN.match(domain):
        raise InvalidSpec(f"domain: {domain!r} is not a domain name", obj="domain")
    networks = tuple(_network(item, where) for where, item in r.items("networks"))
    _unique((n.name for n in networks), "networks", "network")
    return Catalog(version=r.integer("version", 0, 2**63 - 1, 0), domain=domain, networks=networks)


# -- answers ------------------------------------------------------------------------------------


def healthy_instances(service: ServiceSpec, network: str, health: Mapping[str, Health]) -> list[InstanceSpec]:
    """The instances that serve: passing or warning. One not yet checked serves only if the service
    has no check (then its namespace, if any, is all that decides, and the caller reports that)."""
    serving = []
    for instance in service.instances:
        state = health.get(f"{network}|{service.name}|{instance.id}")
        if state is not None and state.status in SERVING:
            serving.append(instance)
    return serving


@dataclass(frozen=True)
class Srv:
    name: str
    target: str
    port: int
    priority: int
    weight: int


@dataclass(frozen=True)
class Zone:
    """The records one network's DNS answers: hosts-file lines (address, names) and SRV records."""

    hosts: tuple[tuple[str, tuple[str, ...]], ...]
    srv: tuple[Srv, ...]


def zone_of(network: NetworkCatalog, domain: str, health: Mapping[str, Health]) -> Zone:
    """What `network`'s DNS must answer now: each node's addresses; each serving instance's address
    under `<service>.<network>.<domain>` and its own `<instance>.<service>.<network>.<domain>`; SRV
    records with ports at `<service>.<network>.<domain>` and at the RFC 2782 name
    `_<service>._<protocol>.<network>.<domain>`.

    SRV records list every registered instance, and only a serving one's target name resolves: dnsmasq
    takes SRV records from its command line alone, so a change of them restarts it (and loses the
    queries of that moment), while address records change through its hosts directory at once. So a
    health flap, the frequent change, costs no restart; a registration does."""
    suffix = f"{network.name}.{domain}"
    names: dict[str, list[str]] = {}

    def add(address: IPAddress, name: str) -> None:
        names.setdefault(str(address), []).append(name)

    for node in network.nodes:
        for address in node.addresses:
            add(address, f"{node.name}.{suffix}")
    srv = []
    for service in network.services:
        service_name = f"{service.name}.{suffix}"
        for instance in healthy_instances(service, network.name, health):
            add(instance.address, service_name)
            add(instance.address, f"{instance.id}.{service_name}")
        for instance in service.instances:
            target = f"{instance.id}.{service_name}"
            for name in (service_name, f"_{service.name}._{service.protocol}.{suffix}"):
                srv.append(
                    Srv(name=name, target=target, port=instance.port, priority=0, weight=instance.weight)
                )
    hosts = tuple((address, tuple(dict.fromkeys(found))) for address, found in sorted(names.items()))
    return Zone(hosts=hosts, srv=tuple(srv))


@dataclass(frozen=True)
class VipTarget:
    address: IPAddress
    port: int
    weight: int


@dataclass(frozen=True)
class Vip:
    """Connections to `address`:`port`/`protocol` on `bridge` go to `targets`, spread by weight; a VIP
    with no serving instance refuses (no target)."""

    bridge: str
    service: str
    address: IPAddress
    port: int
    protocol: str
    targets: tuple[VipTarget, ...]


def vip_targets(catalog: Catalog, health: Mapping[str, Health]) -> list[Vip]:
    """Every VIP of the catalog with the instances it spreads over now."""
    vips = []
    for network in catalog.networks:
        for service in network.services:
            if service.vip is None:
                continue
            targets = tuple(
                VipTarget(address=i.address, port=i.port, weight=i.weight)
                for i in healthy_instances(service, network.name, health)
                if i.address.version == service.vip.version
            )
            vips.append(
                Vip(
                    bridge=network.bridge,
                    service=f"{network.name}/{service.name}",
                    address=service.vip,
                    port=service.port,
                    protocol=service.protocol,
                    targets=targets,
                )
            )
    return vips
