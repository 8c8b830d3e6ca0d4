"""The topology file: parsed and validated into frozen dataclasses, touching nothing.

Format (YAML)::

    name: demo                  # 1-8 of [a-z0-9-]; prefix of everything created for this file
    networks:
      front:
        driver: bridge          # bridge (default) | vxlan (a bridge with a VXLAN port)
        subnet: 198.18.1.0/24
        gateway: 198.18.1.1     # optional; default: first host address; assigned to the bridge
        mtu: 1500               # optional, 68..65535 (1280.. for IPv6)
        nat: true               # optional (false): masquerade what leaves the subnet by another interface
      back:
        driver: vxlan
        subnet: 198.18.2.0/24
        vni: 4242               # required for vxlan, 1..16777215
        # optional: local, remote or group (multicast; not with remote), dstport (4789), learning (true)
      mesh:                     # one host's share of an overlay spanning hosts (see "Overlays" below)
        driver: vxlan
        subnet: 198.18.50.0/24
        vni: 5000
        local: 198.18.254.11    # this host's VTEP: an address of the host namespace
        learning: false         # static forwarding only: the VXLAN device answers ARP/ND (proxy)
        peers: [198.18.254.12, 198.18.254.13]            # the other hosts' VTEPs
        remote_nodes:                                    # endpoints living on those hosts
          - {address: 198.18.50.11, vtep: 198.18.254.12}                      # mac: derived
          - {address: 198.18.50.12, vtep: 198.18.254.13, mac: "02:00:00:00:32:0c"}
    nodes:
      web1: {networks: [front, back]}                    # interfaces eth0, eth1; addresses allocated
      web2: {networks: {front: {address: 198.18.1.20}}}  # static address (optional)
      db:   {mode: none}                                 # bridge (default) | none | host | container:<node>
      side: {mode: "container:web1"}
      api:                                               # published ports, Docker's syntax:
        networks: [front]                                # [host_ip:]host_port:container_port[/tcp|udp]
        ports: ["127.0.0.1:8080:80/tcp", "8081:81", "198.18.5.1:9000-9001:9000-9001/udp", "[fd00::1]:80:80"]
    routes:
      - {node: web1, to: 198.18.9.0/24, via: 198.18.1.254}
      - {node: web1, to: 198.18.8.0/24, dev: eth0}      # on-link
    services:                   # what the nodes offer: see netcore.topology.services_section
      web: {network: front, port: 80, vip: 198.18.1.100, instances: [web1, web2]}

Addresses are resolved here: every static address in file order first, then allocations in node
order and, within a node, network order.

Published ports (``ports``, on a node in bridge mode) send what reaches ``host_ip:host_port`` in the
host namespace (including what the host namespace itself sends there) to the node's address, port
``container_port``; protocol tcp (default) or udp. Without host_ip a port is published on every address
of the host, in each IP family the node has an address in (``0.0.0.0`` or ``::`` says one family);
an IPv6 host_ip goes in brackets. The node's address is its first one of that family, in the order of
its networks. Ranges (``9000-9001:9000-9001``) are the same length on both sides and count one port
each, at most MAX_PUBLISHED_PORTS in a topology. Quote every item: YAML 1.1 reads an unquoted
``80:22`` as the base-60 number 4822. Refused: a port outside 1..65535, a protocol other than tcp or
udp, a host_ip that is not a unicast address or is ``::1`` (the kernel never routes IPv6 loopback to
another namespace), a node that has no address of the host_ip's family (mode none, host,
``container:``, or no networks), and two items publishing the same host address and port (or an
address and the every-address form of its family) for the same protocol, in one node or two.
``nat: true`` on a network masquerades what its subnet sends out of any interface but the network's
own bridge, as Docker's bridge networks do. netcore.topology.nat turns both into nftables rules.

Overlays (a vxlan network spanning hosts, each host applying its share, as Docker's overlay driver
and flannel do). ``peers`` are the other hosts' VTEP addresses: each is a head-end replication
entry on the VXLAN device (``bridge fdb append 00:00:00:00:00:00 dev VX dst PEER``), so broadcast
and unknown traffic is sent to every peer by unicast. Refused with ``remote`` or ``group``; every
peer has the IP version of ``local`` (of the first peer without ``local``), none twice, none equal
to ``local``. ``remote_nodes`` are endpoints on those hosts; each is an FDB entry MAC -> ``vtep``
(``bridge fdb add MAC dev VX dst VTEP self permanent``) and a permanent neighbour entry address ->
MAC on the VXLAN device (``ip neigh add ADDR lladdr MAC dev VX nud permanent``). ``mac`` defaults
to :func:`endpoint_mac` of the address, the MAC netcore gives that node on its own host. Refused: an
address outside the subnet, the gateway, one a node of this file has (or a remote node twice); a
``vtep`` that is not one of ``peers``; a MAC that is not unicast, is all zeros, or is another
remote node's or a node's of this file on that network. Remote nodes' addresses are never
allocated to the file's own nodes. With ``learning: false`` the VXLAN device is made with the
proxy flag: it answers ARP requests and neighbour solicitations from its neighbour entries and drops
the ones it has no entry for (nothing is flooded, nothing learnt). The MTU a VXLAN network gets
without ``mtu``, and the check of ``local`` against the host, need the kernel: converge does them.

Every problem is collected and raised as one :class:`~netcore.errors.InvalidSpec` with one problem
per line and the list in ``.problems``.

Files are read with limits, since whoever may send one to the agent should not be able to make it
spend more than the file is worth: at most MAX_DOCUMENT_BYTES and MAX_NODES nodes; YAML anchors
and aliases refused (an "alias bomb" of a few hundred bytes expands to gigabytes); at most
MAX_YAML_VALUES values nested at most MAX_DEPTH deep, checked on the event stream before anything
is built; messages quote at most an excerpt of a value (netcore.names.excerpt).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Protocol, TypedDict, TypeGuard, TypeVar

import yaml

from netcore import names
from netcore.errors import InvalidSpec
from netcore.ipam import IPAddress, Ipam, IPNetwork, Pool, parse_address, parse_host, parse_subnet
from netcore.names import excerpt
from netcore.topology.services_section import FileNetwork, FileService, services_parse

DRIVERS = ("bridge", "vxlan")
MODES = ("bridge", "none", "host", "container")
VXLAN_PORT = 4789
VNI_RANGE = (1, 2**24 - 1)
MTU_RANGE = (68, 65535)
IPV6_MIN_MTU = 1280
#: Largest topology file, in bytes.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: Most nodes in one topology.
MAX_NODES = 10_000
#: Most YAML values (scalars, mappings and sequences) in one file; 10,000 nodes take about 80,000.
MAX_YAML_VALUES = 200_000
#: Deepest nesting of YAML mappings and sequences (a topology needs 6).
MAX_DEPTH = 32
#: Most problems listed in an InvalidSpec message (all of them are in `.problems`).
MAX_LISTED_PROBLEMS = 100
#: Protocols a port can be published for.
PROTOCOLS = ("tcp", "udp")
PORT_RANGE = (1, 65535)
#: Most published ports in one topology, every port of a range and every IP family counted (each is
#: a DNAT rule or two, and nftables goes through a chain's rules one by one).
MAX_PUBLISHED_PORTS = 1024

_TOP_KEYS = ("name", "networks", "nodes", "routes", "services")
_NETWORK_KEYS = (
    "driver",
    "subnet",
    "gateway",
    "mtu",
    "vni",
    "local",
    "remote",
    "group",
    "dstport",
    "learning",
    "nat",
    "peers",
    "remote_nodes",
)
_VXLAN_KEYS = ("vni", "local", "remote", "group", "dstport", "learning", "peers", "remote_nodes")
_REMOTE_NODE_KEYS = ("address", "vtep", "mac")
_NODE_KEYS = ("networks", "mode", "ports")
_ATTACHMENT_KEYS = ("address",)
_ROUTE_KEYS = ("node", "to", "via", "dev")

_T = TypeVar("_T")


@dataclass(frozen=True)
class NetworkSpec:
    """One network: a bridge, optionally with a VXLAN port (driver "vxlan")."""

    name: str
    driver: str
    subnet: IPNetwork
    gateway: IPAddress
    mtu: int | None = None
    vni: int | None = None
    local: IPAddress | None = None
    remote: IPAddress | None = None
    group: IPAddress | None = None
    dstport: int | None = None  # 4789 unless given, for vxlan; None for bridge
    learning: bool | None = None  # True unless given, for vxlan; None for bridge
    nat: bool = False  # masquerade what the subnet sends out of any other interface than the bridge
    peers: tuple[IPAddress, ...] = ()  # vxlan: the other hosts' VTEPs (head-end replication)
    remote_nodes: tuple[RemoteNodeSpec, ...] = ()  # vxlan: endpoints on those hosts

    @property
    def proxy(self) -> bool:
        """Whether the VXLAN device answers ARP/ND itself (IFLA_VXLAN_PROXY): with learning off."""
        return self.driver == "vxlan" and self.learning is False


@dataclass(frozen=True)
class RemoteNodeSpec:
    """An endpoint of a vxlan network living on another host: `address` is reached at `mac`, which
    lives behind the VXLAN tunnel endpoint `vtep` (one of the network's peers)."""

    address: IPAddress
    vtep: IPAddress
    mac: str  # lower case, colon-separated


def endpoint_mac(address: IPAddress) -> str:
    """A locally administered unicast MAC from an address: 02:42 and the four bytes of an IPv4
    address, 02 and the last five bytes of an IPv6 one. Addresses are unique on a network, so its
    MACs are too; a remote node's MAC defaults to it, so the host it lives on gives it the same."""
    tail = address.packed[-4:] if address.version == 4 else address.packed[-5:]
    head = b"\x02\x42" if address.version == 4 else b"\x02"
    return ":".join(f"{byte:02x}" for byte in head + tail)


@dataclass(frozen=True)
class AttachmentSpec:
    """A node's interface `ifname` on `network`, with its resolved address."""

    network: str
    ifname: str
    address: IPAddress


@dataclass(frozen=True)
class PortSpec:
    """One published port: host_ip:host_port/protocol in the host namespace goes to the node's `address`
    (on `network`), port container_port. A host_ip of 0.0.0.0 or :: is every address of that family."""

    protocol: str
    host_ip: IPAddress
    host_port: int
    container_port: int
    network: str
    address: IPAddress

    @property
    def endpoint(self) -> str:
        """How the host side is written: "127.0.0.1:8080/tcp", "[::]:8080/udp"."""
        return f"{_host_port_text(self.host_ip, self.host_port)}/{self.protocol}"

    @property
    def target(self) -> str:
        """Where it goes: "198.18.1.2:80", "[fd00::2]:80"."""
        return _host_port_text(self.address, self.container_port)


def _host_port_text(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


@dataclass(frozen=True)
class NodeSpec:
    """A node; `container` is the node whose namespace it shares in container mode."""

    name: str
    mode: str
    container: str | None = None
    attachments: tuple[AttachmentSpec, ...] = ()
    ports: tuple[PortSpec, ...] = ()


@dataclass(frozen=True)
class RouteSpec:
    """A route in a node's namespace: to `to` via a gateway, out of a device, or both."""

    node: str
    to: IPNetwork
    via: IPAddress | None = None
    dev: str | None = None


@dataclass(frozen=True)
class TopologySpec:
    """A whole topology file, validated; mappings keep the file's order."""

    name: str
    networks: Mapping[str, NetworkSpec] = field(default_factory=dict)
    nodes: Mapping[str, NodeSpec] = field(default_factory=dict)
    routes: tuple[RouteSpec, ...] = ()
    services: Mapping[str, FileService] = field(default_factory=dict)


def home_node(spec: TopologySpec, node: str) -> NodeSpec:
    """The node whose namespace holds `node`'s interfaces: itself, or the end of its container chain."""
    current = spec.nodes.get(node)
    if current is None:
        raise InvalidSpec(f"node {node} is not in topology {spec.name}", obj=node)
    while current.mode == "container":
        assert current.container is not None, "a node in container mode names the node it shares"
        current = spec.nodes[current.container]
    return current


def netns_of(spec: TopologySpec, node: str) -> str | None:
    """The namespace holding `node`'s interfaces: container mode follows the chain; host mode is None."""
    home = home_node(spec, node)
    return None if home.mode == "host" else names.namespace_name(spec.name, home.name)


def default_route(
    spec: TopologySpec, node: NodeSpec, file_routes: Iterable[IPNetwork]
) -> tuple[IPNetwork, IPAddress] | None:
    """The default route apply gives the namespace of `node` (mode bridge or none), as (destination,
    gateway): via the gateway of its first network, out of its first interface, unless the file's
    routes for that namespace (`file_routes`, their destinations) give one of that IP family."""
    if not node.attachments:
        return None
    version = node.attachments[0].address.version
    if any(to.prefixlen == 0 and to.version == version for to in file_routes):
        return None
    gateway = spec.networks[node.attachments[0].network].gateway
    return ip_network("0.0.0.0/0" if version == 4 else "::/0"), gateway


def parse(data: object, *, source: str = "<input>") -> TopologySpec:
    """Validate a topology as loaded from YAML or JSON; every problem is reported at once."""
    parser = _Parser()
    spec = parser.read(data)
    if parser.problems:
        lines = [f"{source}: {problem}" for problem in parser.problems[:MAX_LISTED_PROBLEMS]]
        if len(parser.problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"{source}: ... and {len(parser.problems) - MAX_LISTED_PROBLEMS} more problems")
        error = InvalidSpec("\n".join(lines), obj=source)
        error.problems = parser.problems
        raise error
    return spec


def loads(text: str, *, source: str = "<string>") -> TopologySpec:
    """Parse a topology from YAML text."""
    return parse(load_data(text, source=source), source=source)


def load_data(text: str, *, source: str = "<string>") -> object:
    """The data of a topology's YAML text, read with the limits of `loads` but not validated as a
    topology (for callers that take keys of their own out first: netcore.topology.span)."""
    if len(text) > MAX_DOCUMENT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise InvalidSpec(f"{source}: the topology is larger than {MAX_DOCUMENT_BYTES} bytes", obj=source)
    if text.lstrip().startswith("{"):
        data = _json_data(text, source=source)
        if data is not _NOT_JSON:
            return data
    _check_yaml_shape(text, source=source)
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise InvalidSpec(_yaml_message(exc, source=source), obj=source) from None
    finally:
        loader.dispose()
    return data


def load(path: str | os.PathLike[str]) -> TopologySpec:
    """Parse a topology file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise InvalidSpec(f"{source}: the file is larger than {MAX_DOCUMENT_BYTES} bytes", obj=source)
        text = raw.decode("utf-8")
    except OSError as exc:
        raise InvalidSpec(f"{source}: cannot read the topology file: {exc.strerror}", obj=source) from None
    except UnicodeDecodeError as exc:
        raise InvalidSpec(
            f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})", obj=source
        ) from None
    return loads(text, source=source)


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NOT_JSON = object()


def _json_data(text: str, *, source: str) -> object:
    """The data of JSON text, or _NOT_JSON when it is not JSON (it may still be YAML in flow style).

    JSON is YAML too, and what the web app sends an agent (a compiled topology of hundreds of nodes):
    Python's JSON reader takes a millisecond where the YAML one, without libyaml, takes hundreds. The
    same limits hold: duplicate keys refused, integers too long kept as LongNumber, at most
    MAX_YAML_VALUES values nested at most MAX_DEPTH deep (counted on the data: JSON has no aliases,
    so the data is no larger than the text)."""

    def mapping(pairs: list[tuple[str, object]]) -> dict[str, object]:
        found: dict[str, object] = {}
        for key, value in pairs:
            if key in found:
                raise InvalidSpec(f"{source}: duplicate key {excerpt(key)}", obj=source)
            found[key] = value
        return found

    def constant(name: str) -> object:
        raise InvalidSpec(f"{source}: {name} is not a number a topology can hold", obj=source)

    try:
        data = json.loads(
            text,
            object_pairs_hook=mapping,
            parse_int=_json_int,
            parse_constant=constant,
        )
    except json.JSONDecodeError:
        return _NOT_JSON
    except RecursionError:
        raise InvalidSpec(f"{source}: nested more than {MAX_DEPTH} levels deep", obj=source) from None
    values = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        values += 1
        if values > MAX_YAML_VALUES:
            raise InvalidSpec(f"{source}: more than {MAX_YAML_VALUES} values in one topology", obj=source)
        if isinstance(value, dict | list) and depth > MAX_DEPTH:
            raise InvalidSpec(f"{source}: nested more than {MAX_DEPTH} levels deep", obj=source)
        if isinstance(value, dict):
            values += len(value)  # the keys
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return data


def _check_yaml_shape(text: str, *, source: str) -> None:
    """Refuse, from the event stream and before anything is built, what could cost more than the text:
    anchors and aliases, more than MAX_YAML_VALUES values, nesting deeper than MAX_DEPTH."""
    values = depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            problem = None
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                shown = anchor if len(anchor) <= 40 else anchor[:39] + "…"
                problem = (
                    f"YAML anchors and aliases ({sign}{shown}) are not allowed in a topology file;"
                    " write the value out"
                )
            elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                values += 1
                if values > MAX_YAML_VALUES:
                    problem = f"more than {MAX_YAML_VALUES} values in one topology"
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    problem = f"nested more than {MAX_DEPTH} levels deep"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if problem:
                raise InvalidSpec(f"{_where(source, event.start_mark)}: {problem}", obj=source)
    except yaml.YAMLError as exc:
        raise InvalidSpec(_yaml_message(exc, source=source), obj=source) from None


def _json_int(digits: str) -> int | LongNumber:
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts
        return LongNumber(digits)


class LongNumber:
    """A YAML integer with more digits than Python converts (sys.get_int_max_str_digits): kept as its
    text so that the field it is in can be named in the error."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"{self.text[:12]}… (an integer of {len(self.text)} characters)"


# the base class is chosen at run time (libyaml's loader when PyYAML was built with it)
class _StrictLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The safe YAML loader (libyaml's if available); refuses duplicate keys instead of keeping the last,
    and keeps integers too long to convert as LongNumber."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {excerpt(key)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int | LongNumber:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            return LongNumber(node.value)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


class _Mark(Protocol):
    """A position in the YAML text: yaml.Mark, or libyaml's from the C loader."""

    line: int
    column: int


def _where(source: str, mark: _Mark | None) -> str:
    return source if mark is None else f"{source}:{mark.line + 1}:{mark.column + 1}"


def _yaml_message(exc: yaml.YAMLError, *, source: str) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{_where(source, getattr(exc, 'problem_mark', None))}: invalid YAML: {problem[:200]}"


def _key(key: object) -> str:
    """A mapping key as it appears in a field path."""
    if isinstance(key, str) and key.isprintable() and len(key) <= names.EXCERPT_CHARS:
        return key
    return excerpt(key)


def _ip_text(value: object) -> object:
    """`value` for ipam's parsers, which quote it whole: one too long to quote is refused here."""
    short = excerpt(value)
    if short.endswith("…"):
        raise InvalidSpec(f"{short} is not an IP address or subnet")
    return value


def _is_name(key: object) -> TypeGuard[str]:
    try:
        names.validate_ifname(key, field="")
    except InvalidSpec:
        return False
    return True


def _kind(value: object) -> str:
    return type(value).__name__


_UNSPECIFIED: dict[int, IPAddress] = {4: ip_address("0.0.0.0"), 6: ip_address("::")}
_PORT_SHAPE = "[host_ip:]host_port:container_port[/tcp|udp]"
_PORT_NUMBER = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


def _number_as_port_problem(value: int | LongNumber) -> str:
    """Why a number is not a port mapping, guessing at YAML 1.1's base-60 integers (80:22 is 4822)."""
    text = f'{excerpt(value)} is a number, not a port mapping such as "8080:80" (a quoted string)'
    if isinstance(value, int) and 60 <= value < (PORT_RANGE[1] + 1) * 60:
        written = f"{value // 60}:{value % 60}"
        text += f'; YAML reads an unquoted {written} as the base-60 number {value}: write "{written}"'
    return text


def _port_range(text: str, what: str) -> range:
    """A port ("80") or an inclusive range ("9000-9009") of `what` ("host port", "container port")."""
    match = _PORT_NUMBER.fullmatch(text)
    low_limit, high_limit = PORT_RANGE
    if match is None:
        raise InvalidSpec(
            f"{what} {excerpt(text)} is not a port in {low_limit}..{high_limit} or a range first-last"
        )
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    for number in (first, last):
        if not low_limit <= number <= high_limit:
            raise InvalidSpec(f"{what} {number} is not in {low_limit}..{high_limit}")
    if last < first:
        raise InvalidSpec(f"{what} range {first}-{last} ends before it starts")
    return range(first, last + 1)


def _parse_host_ip(text: str) -> IPAddress:
    if not text:
        raise InvalidSpec("host_ip is empty; leave it out, with its ':', to publish on every address")
    try:
        ip = parse_address(text)
    except InvalidSpec:
        raise InvalidSpec(f"host_ip {excerpt(text)} is not an IP address") from None
    if ip.is_multicast or ip == ip_address("255.255.255.255"):
        raise InvalidSpec(f"host_ip {ip} is not a unicast address")
    if ip.version == 6 and ip.is_loopback:
        raise InvalidSpec(
            "host_ip ::1: the kernel never routes IPv6 loopback traffic to another namespace (IPv6 has no"
            " route_localnet); publish on 127.0.0.1, or on an address of the host"
        )
    return ip


def parse_port_item(item: str, path: str) -> PortItem:
    """One "[host_ip:]host_port:container_port[/tcp|udp]" item; InvalidSpec says what is wrong with it."""
    shown = excerpt(item)
    try:
        text, slash, protocol = item.partition("/")
        if not slash:
            protocol = "tcp"
        elif protocol not in PROTOCOLS:
            raise InvalidSpec(f"unknown protocol {excerpt(protocol)} (expected tcp or udp)")
        ip_text: str | None = None
        if text.startswith("["):
            close = text.find("]")
            if close < 0 or text[close + 1 : close + 2] != ":":
                raise InvalidSpec(f"expected {_PORT_SHAPE}, an IPv6 host_ip in brackets: [fd00::1]:8080:80")
            ip_text, parts = text[1:close], text[close + 2 :].split(":")
            if ip_text and ":" not in ip_text:
                raise InvalidSpec(f"host_ip [{excerpt(ip_text)[1:-1]}]: only IPv6 addresses go in brackets")
            if len(parts) != 2:
                raise InvalidSpec(f"expected {_PORT_SHAPE} (after the host_ip: host_port:container_port)")
        else:
            parts = text.split(":")
            if len(parts) == 1:
                example = f"8080:{text}" if text.isdigit() and len(text) < 6 else "8080:80"
                raise InvalidSpec(
                    "a container port alone: netcore does not choose host ports; write"
                    f' host_port:container_port, e.g. "{example}"'
                )
            if len(parts) > 3:
                raise InvalidSpec(f"expected {_PORT_SHAPE}; IPv6 host_ips go in brackets: [fd00::1]:8080:80")
            if len(parts) == 3:
                ip_text = parts.pop(0)
        if "" in parts:
            raise InvalidSpec(f"expected {_PORT_SHAPE}: a port is missing")
        host_ip = None if ip_text is None else _parse_host_ip(ip_text)
        host_ports = _port_range(parts[0], "host port")
        container_ports = _port_range(parts[1], "container port")
        if len(host_ports) != len(container_ports):
            if len(container_ports) == 1 and len(host_ports) > 1:
                raise InvalidSpec(
                    f"{len(host_ports)} host ports go to one container port; netcore does not choose among"
                    " host ports: give as many container ports, or one host port"
                )
            raise InvalidSpec(
                f"{len(host_ports)} host ports and {len(container_ports)} container ports;"
                " a range maps port by port, so both must be the same length"
            )
    except InvalidSpec as exc:
        raise InvalidSpec(f"{shown}: {exc}") from None
    return PortItem(item, path, protocol, host_ip, host_ports, container_ports)


class _VxlanFields(TypedDict, total=False):
    """The fields of a vxlan network's NetworkSpec beyond a bridge's (none for a bridge)."""

    vni: int | None
    local: IPAddress | None
    remote: IPAddress | None
    group: IPAddress | None
    dstport: int | None
    learning: bool | None
    peers: tuple[IPAddress, ...]
    remote_nodes: tuple[RemoteNodeSpec, ...]


@dataclass(frozen=True)
class _Want:
    """A network a node asks for, with its static address (None: allocate) and its field path."""

    network: str
    address: object
    path: str


@dataclass(frozen=True)
class PortItem:
    """One item of a node's ports, parsed: a range of host ports goes to an equally long range of
    container ports (a single port is a range of one)."""

    text: str
    path: str
    protocol: str
    host_ip: IPAddress | None
    host_ports: range
    container_ports: range


@dataclass
class _RawNode:
    path: str
    mode: str | None
    container: str | None
    wants: list[_Want]
    addresses: dict[str, IPAddress] = field(default_factory=dict)
    ports: list[PortItem] = field(default_factory=list)
    ports_given: bool = False
    networks_given: bool = False
    published: list[PortSpec] = field(default_factory=list)


class _Parser:
    """One pass over a topology, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.name: str | None = None
        self.ipam = Ipam()
        self.pools: dict[str, Pool] = {}
        self.declared_networks: set[object] = set()
        self.networks: dict[str, NetworkSpec] = {}
        self.nodes: dict[object, _RawNode] = {}
        self.routes: list[RouteSpec] = []
        # each vxlan network's remote nodes with their field paths, checked once addresses are known
        self.remote_nodes: dict[str, list[tuple[str, RemoteNodeSpec]]] = {}
        self.remote_clashes: set[str] = set()  # paths of remote nodes whose address was refused
        self.services: dict[str, FileService] = {}

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def read(self, data: object) -> TopologySpec:
        if data is None:
            self.problem("the topology is empty")
        elif not isinstance(data, Mapping):
            self.problem(f"the topology must be a mapping, not {_kind(data)}")
        else:
            self.unknown_keys(data, _TOP_KEYS, path=None)
            self.topology_name(data)
            networks = self.mapping_section(data, "networks")
            nodes = self.mapping_section(data, "nodes")
            if len(nodes) > MAX_NODES:
                self.problem(f"nodes: {len(nodes)} nodes; a topology holds at most {MAX_NODES}")
                nodes = {}
            routes = self.list_section(data, "routes")
            self.declared_networks = set(networks)
            for key, body in networks.items():
                self.network(key, body)
            for key, body in nodes.items():
                self.node(key, body)
            self.container_targets()
            self.addresses()
            self.remote_node_macs()
            self.published_ports()
            seen: dict[tuple[str, IPNetwork], int] = {}
            for index, body in enumerate(routes):
                self.route(index, body, seen)
            self.generated_names()
            self.shared_namespaces()
            self.services_section(data.get("services"))
        return self.result()

    def result(self) -> TopologySpec:
        nodes = {}
        for key, raw in self.nodes.items():
            if isinstance(key, str) and raw.mode is not None:
                attachments = tuple(
                    AttachmentSpec(
                        network=want.network, ifname=f"eth{index}", address=raw.addresses[want.network]
                    )
                    for index, want in enumerate(raw.wants)
                    if want.network in raw.addresses
                )
                nodes[key] = NodeSpec(
                    name=key,
                    mode=raw.mode,
                    container=raw.container,
                    attachments=attachments,
                    ports=tuple(raw.published),
                )
        return TopologySpec(
            name=self.name or "",
            networks=self.networks,
            nodes=nodes,
            routes=tuple(self.routes),
            services=self.services,
        )

    def services_section(self, data: object) -> None:
        """The services: section, checked against the networks and the addresses resolved."""
        networks = {
            name: FileNetwork(
                subnet=network.subnet,
                gateway=network.gateway,
                nodes={
                    node: raw.addresses[name]
                    for node, raw in self.nodes.items()
                    if isinstance(node, str) and name in raw.addresses
                },
                remote=frozenset(remote.address for remote in network.remote_nodes),
            )
            for name, network in self.networks.items()
        }
        self.services, problems = services_parse(data, networks)
        self.problems.extend(problems)

    # -- helpers -------------------------------------------------------------------------------------

    def unknown_keys(self, body: Mapping, allowed: tuple[str, ...], *, path: str | None) -> None:
        for key in body:
            if key not in allowed:
                where = f"{path}: unknown key" if path else "unknown top-level key"
                self.problem(f"{where} {excerpt(key)} (expected one of: {', '.join(allowed)})")

    def mapping_section(self, data: Mapping, key: str) -> Mapping:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(f"{key}: must be a mapping, not {_kind(value)}")
            return {}
        return value

    def list_section(self, data: Mapping, key: str) -> list:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"{key}: must be a list, not {_kind(value)}")
            return []
        return value

    def check(self, path: str, func: Callable[[], _T]) -> _T | None:
        """Run `func`; on InvalidSpec record it under `path` and return None."""
        try:
            return func()
        except InvalidSpec as exc:
            self.problem(f"{path}: {exc}")
            return None

    def check_name(self, key: object, path: str) -> None:
        try:
            names.validate_ifname(key, field=path)
        except InvalidSpec as exc:
            self.problem(str(exc))

    def integer(self, body: Mapping, key: str, path: str, bounds: tuple[int, int]) -> int | None:
        value = body.get(key)
        if value is None:
            return None
        low, high = bounds
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.problem(f"{path}.{key}: {excerpt(value)} is not an integer in {low}..{high}")
            return None
        return value

    def address(self, body: Mapping, key: str, path: str) -> IPAddress | None:
        if body.get(key) is None:
            return None
        return self.check(f"{path}.{key}", lambda: parse_address(_ip_text(body[key])))

    # -- sections ------------------------------------------------------------------------------------

    def topology_name(self, data: Mapping) -> None:
        if data.get("name") is None:
            self.problem("name: missing (the topology needs a name of 1 to 8 characters of a-z, 0-9 and '-')")
            return
        try:
            names.validate_topology_name(data["name"], field="name")
        except InvalidSpec as exc:
            self.problem(str(exc))
            return
        self.name = data["name"]

    def network(self, key: object, body: object) -> None:
        name = _key(key)
        path = f"networks.{name}"
        before = len(self.problems)
        self.check_name(key, path)
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            self.problem(f"{path}: must be a mapping with at least a subnet, not {_kind(body)}")
            return
        self.unknown_keys(body, _NETWORK_KEYS, path=path)
        driver = body.get("driver", "bridge")
        if driver not in DRIVERS:
            self.problem(f"{path}.driver: unknown driver {excerpt(driver)} (expected bridge or vxlan)")
        subnet = None
        if body.get("subnet") is None:
            self.problem(f"{path}.subnet: missing")
        else:
            subnet = self.check(f"{path}.subnet", lambda: parse_subnet(_ip_text(body["subnet"])))
        gateway = None
        if subnet is not None and body.get("gateway") is not None:
            gateway = self.check(
                f"{path}.gateway", lambda: parse_host(_ip_text(body["gateway"]), subnet=subnet, network=name)
            )
        mtu = self.integer(body, "mtu", path, MTU_RANGE)
        if mtu is not None and subnet is not None and subnet.version == 6 and mtu < IPV6_MIN_MTU:
            self.problem(f"{path}.mtu: {mtu} is below {IPV6_MIN_MTU}, the least IPv6 subnet {subnet} needs")
        nat = body.get("nat")
        if nat is None:
            nat = False
        elif not isinstance(nat, bool):
            self.problem(
                f"{path}.nat: {excerpt(nat)} is not true or false (true: masquerade outbound traffic)"
            )
            nat = False
        vxlan = self.vxlan(body, path, name) if driver == "vxlan" else _VxlanFields()
        if driver == "bridge":
            for vxlan_key in _VXLAN_KEYS:
                if vxlan_key in body:
                    self.problem(f"{path}.{vxlan_key}: only a vxlan network takes {vxlan_key}")
        if subnet is not None and (gateway is not None or body.get("gateway") is None):
            pool = self.check(
                f"{path}.subnet", lambda: self.ipam.add_network(name=name, subnet=subnet, gateway=gateway)
            )
            if pool is None:
                with suppress(InvalidSpec):  # an overlapping subnet: keep checking the addresses in it
                    pool = Pool(network=name, subnet=subnet, gateway=gateway)
            if pool is not None:
                self.pools[name] = pool
                if len(self.problems) == before:
                    self.networks[name] = NetworkSpec(
                        name=name,
                        driver=driver,
                        subnet=pool.subnet,
                        gateway=pool.gateway,
                        mtu=mtu,
                        nat=nat,
                        **vxlan,
                    )

    def vxlan(self, body: Mapping, path: str, name: str) -> _VxlanFields:
        if body.get("vni") is None:
            self.problem(
                f"{path}.vni: missing (a vxlan network needs a VNI in {VNI_RANGE[0]}..{VNI_RANGE[1]})"
            )
        vni = self.integer(body, "vni", path, VNI_RANGE)
        local, remote, group = (self.address(body, key, path) for key in ("local", "remote", "group"))
        if remote is not None and group is not None:
            self.problem(f"{path}: give remote or group, not both")
        if group is not None and not group.is_multicast:
            self.problem(f"{path}.group: {group} is not a multicast address")
        for key, value in (("local", local), ("remote", remote)):
            if value is not None and value.is_multicast:
                self.problem(
                    f"{path}.{key}: {value} is a multicast address"
                    + (" (use group)" if key == "remote" else "")
                )
        if len({value.version for value in (local, remote, group) if value is not None}) > 1:
            self.problem(f"{path}: local, remote and group must be of the same IP version")
        dstport = self.integer(body, "dstport", path, (1, 65535))
        learning = body.get("learning", True)
        if not isinstance(learning, bool):
            self.problem(f"{path}.learning: {excerpt(learning)} is not true or false")
        peers = self.peers(body, path, local=local)
        remote_nodes = self.remote_node_items(body, path, name, peers)
        peers = peers or ()
        return {
            "vni": vni,
            "local": local,
            "remote": remote,
            "group": group,
            "dstport": VXLAN_PORT if dstport is None else dstport,
            "learning": learning,
            "peers": peers,
            "remote_nodes": remote_nodes,
        }

    def peers(self, body: Mapping, path: str, *, local: IPAddress | None) -> tuple[IPAddress, ...] | None:
        """A vxlan network's peers: the other hosts' VTEP addresses, each a head-end replication entry.
        None when they are refused as a whole (the remote nodes' VTEPs are then not checked against them)."""
        value = body.get("peers")
        if value is None:
            return ()
        where = f"{path}.peers"
        for other, why in (
            ("remote", "remote is the one VTEP a point-to-point VXLAN device sends to"),
            ("group", "group floods by multicast instead"),
        ):
            if body.get(other) is not None:
                self.problem(f"{where}: not with {other} ({why}); give peers or {other}")
                return None
        if not isinstance(value, list):
            self.problem(f"{where}: must be a list of addresses such as [198.18.254.12], not {_kind(value)}")
            return None
        peers: list[IPAddress] = []
        seen: dict[IPAddress, int] = {}
        for index, item in enumerate(value):
            item_path = f"{where}[{index}]"
            try:
                peer = parse_address(_ip_text(item))
            except InvalidSpec as exc:
                self.problem(f"{item_path}: {exc}")
                continue
            version = local.version if local is not None else (peers[0].version if peers else peer.version)
            if peer.is_multicast or peer.is_unspecified:
                self.problem(f"{item_path}: {peer} is not a unicast address (a peer is another host's VTEP)")
            elif peer.version != version:
                against = f"local {local}" if local is not None else f"{where}[0] {peers[0]}"
                self.problem(f"{item_path}: {peer} is not of the same IP version as {against}")
            elif peer == local:
                self.problem(
                    f"{item_path}: {peer} is local, this host's own VTEP; peers are the other hosts'"
                )
            elif peer in seen:
                self.problem(f"{item_path}: {peer} is listed twice (also {where}[{seen[peer]}])")
            else:
                seen[peer] = index
                peers.append(peer)
        return tuple(peers)

    def remote_node_items(
        self, body: Mapping, path: str, network: str, peers: tuple[IPAddress, ...] | None
    ) -> tuple[RemoteNodeSpec, ...]:
        """A vxlan network's remote nodes, each on its own; the checks against the subnet and the file's
        nodes come once addresses are resolved (remote_node_addresses, remote_node_macs)."""
        value = body.get("remote_nodes")
        if value is None:
            return ()
        where = f"{path}.remote_nodes"
        if not isinstance(value, list):
            self.problem(
                f"{where}: must be a list of mappings such as {{address: 198.18.50.11, vtep: 198.18.254.12}},"
                f" not {_kind(value)}"
            )
            return ()
        found: list[RemoteNodeSpec] = []
        listed = ", ".join(map(str, peers or ())) or "none given"
        for index, item in enumerate(value):
            item_path = f"{where}[{index}]"
            if not isinstance(item, Mapping):
                self.problem(
                    f"{item_path}: must be a mapping such as {{address: 198.18.50.11, vtep: 198.18.254.12}},"
                    f" not {_kind(item)}"
                )
                continue
            before = len(self.problems)
            self.unknown_keys(item, _REMOTE_NODE_KEYS, path=item_path)
            for key in ("address", "vtep"):
                if item.get(key) is None:
                    self.problem(f"{item_path}.{key}: missing")
            address = self.address(item, "address", item_path)
            vtep = self.address(item, "vtep", item_path)
            if vtep is not None and peers is not None and vtep not in peers:
                self.problem(
                    f"{item_path}.vtep: {vtep} is not one of peers ({listed}); a remote node lives behind"
                    " the VTEP of another host, which peers must list"
                )
            mac = self.mac(item, item_path, address)
            if len(self.problems) == before and address is not None and vtep is not None and mac is not None:
                node = RemoteNodeSpec(address=address, vtep=vtep, mac=mac)
                found.append(node)
                self.remote_nodes.setdefault(network, []).append((item_path, node))
        return tuple(found)

    def mac(self, item: Mapping, path: str, address: IPAddress | None) -> str | None:
        """A remote node's MAC: given (unicast, not all zeros), else derived from its address."""
        value = item.get("mac")
        if value is None:
            return endpoint_mac(address) if address is not None else None
        if not isinstance(value, str) or not names.MAC.fullmatch(value):
            self.problem(f"{path}.mac: {excerpt(value)} is not a MAC address such as 02:42:c6:12:32:0b")
            return None
        mac = value.lower()
        if int(mac[:2], 16) & 1:
            self.problem(
                f"{path}.mac: {mac} is a multicast MAC (its first byte is odd); a node's MAC is unicast"
            )
            return None
        if mac == names.ZERO_MAC:
            self.problem(f"{path}.mac: {mac} is all zeros, the MAC of the peers' flooding entries")
            return None
        return mac

    def node(self, key: object, body: object) -> None:
        path = f"nodes.{_key(key)}"
        self.check_name(key, path)
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            self.problem(f"{path}: must be a mapping such as {{networks: [front]}}, not {_kind(body)}")
            self.nodes[key] = _RawNode(path=path, mode=None, container=None, wants=[])
            return
        self.unknown_keys(body, _NODE_KEYS, path=path)
        mode, container = self.mode(body.get("mode", "bridge"), f"{path}.mode")
        wants = self.wants(body.get("networks"), f"{path}.networks")
        if wants and mode in ("none", "host", "container"):
            why = (
                f"it uses the interfaces of node {_key(container)}"
                if container
                else "it has no interfaces of its own"
            )
            self.problem(f"{path}.networks: a node in mode {mode} cannot have networks ({why})")
            wants = []
        ports = self.port_items(body.get("ports"), f"{path}.ports")
        self.nodes[key] = _RawNode(
            path=path,
            mode=mode,
            container=container,
            wants=wants,
            ports=ports,
            ports_given=bool(ports) or body.get("ports") not in (None, []),
            networks_given=body.get("networks") not in (None, [], {}),
        )

    def port_items(self, value: object, path: str) -> list[PortItem]:
        """The items of a node's ports, each parsed on its own (what they publish to comes later)."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(
                f'{path}: must be a list of "[host_ip:]host_port:container_port[/tcp|udp]" strings,'
                f" not {_kind(value)}"
            )
            return []
        items = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if isinstance(item, int | LongNumber) and not isinstance(item, bool):
                self.problem(f"{item_path}: {_number_as_port_problem(item)}")
            elif not isinstance(item, str):
                self.problem(
                    f'{item_path}: {excerpt(item)} is not a port mapping such as "8080:80" or'
                    f' "127.0.0.1:8080:80/tcp" (a quoted string), but {_kind(item)}'
                )
            else:
                try:
                    items.append(parse_port_item(item, item_path))
                except InvalidSpec as exc:
                    self.problem(f"{item_path}: {exc}")
        return items

    def mode(self, value: object, path: str) -> tuple[str | None, str | None]:
        if isinstance(value, str):
            if value in ("bridge", "none", "host"):
                return value, None
            prefix, sep, target = value.partition(":")
            if prefix == "container" and sep and target:
                return "container", target
        self.problem(
            f"{path}: unknown mode {excerpt(value)} (expected bridge, none, host or container:<node>)"
        )
        return None, None

    def wants(self, value: object, path: str) -> list[_Want]:
        if value is None:
            return []
        if isinstance(value, list):
            items = [(item, None, f"{path}[{index}]") for index, item in enumerate(value)]
        elif isinstance(value, Mapping):
            items = []
            for network, options in value.items():
                item_path = f"{path}.{_key(network)}"
                if options is None:
                    options = {}
                if not isinstance(options, Mapping):
                    self.problem(
                        f"{item_path}: must be a mapping such as {{address: ...}}, not {_kind(options)}"
                    )
                    options = {}
                self.unknown_keys(options, _ATTACHMENT_KEYS, path=item_path)
                items.append((network, options.get("address"), item_path))
        else:
            self.problem(
                f"{path}: must be a list of networks or a mapping of network to options, not {_kind(value)}"
            )
            return []
        wants: list[_Want] = []
        listed: set[str] = set()
        for network, address, item_path in items:
            if not isinstance(network, str):
                self.problem(f"{item_path}: {excerpt(network)} is not a network name")
            elif network not in self.declared_networks:
                self.problem(f"{item_path}: unknown network {excerpt(network)}")
            elif network in listed:
                self.problem(f"{item_path}: network {_key(network)} is listed twice")
            else:
                listed.add(network)
                wants.append(_Want(network=network, address=address, path=item_path))
        return wants

    def container_targets(self) -> None:
        for key, raw in self.nodes.items():
            if raw.mode == "container":
                if raw.container == key:
                    self.problem(f"{raw.path}.mode: node {_key(key)} cannot share its own namespace")
                elif raw.container not in self.nodes:
                    self.problem(f"{raw.path}.mode: unknown node {excerpt(raw.container)}")
        done: set[object] = set()
        for start in self.nodes:
            position: dict[object, int] = {}
            chain: list[object] = []
            current: object = start
            while current is not None and current not in done and current not in position:
                position[current] = len(chain)
                chain.append(current)
                current = self.target(current)
            if current is not None and current in position:
                cycle = [*chain[position[current] :], current]
                self.problem(
                    f"{self.nodes[current].path}.mode: container modes form a cycle: "
                    + " -> ".join(map(_key, cycle))
                )
            done.update(chain)

    def target(self, key: object) -> object:
        """The node whose namespace `key` shares, if that is a valid other node."""
        raw = self.nodes[key]
        if raw.mode == "container" and raw.container != key and raw.container in self.nodes:
            return raw.container
        return None

    def home(self, key: object) -> object:
        """The node at the end of `key`'s container chain (None if the chain is broken)."""
        seen = set()
        while self.nodes[key].mode == "container":
            seen.add(key)
            key = self.target(key)
            if key is None or key in seen:
                return None
        return key

    def cached_home(self, key: object, homes: dict[object, object]) -> object:
        """:meth:`home`, remembering every node met on the way in `homes`."""
        chain: dict[object, None] = {}
        current: object = key
        while current is not None and current not in homes and self.nodes[current].mode == "container":
            if current in chain:  # a cycle (reported by container_targets)
                current = None
                break
            chain[current] = None
            current = self.target(current)
        home = homes.get(current, current) if current is not None else None
        for node in chain:
            homes[node] = home
        return home

    def shared_namespaces(self) -> None:
        """A node namespace's owner alias (on its lo) lists the nodes in container mode sharing it,
        comma-separated; it must fit in the kernel's alias (names.MAX_ALIAS_BYTES)."""
        homes: dict[object, object] = {}  # each chain walked once, however long and however many
        sharing: dict[str, list[str]] = {}
        for key, raw in self.nodes.items():
            if raw.mode != "container" or not _is_name(key):
                continue
            if "," in key:
                self.problem(
                    f"{raw.path}: a node in container mode cannot have ',' in its name (the node whose"
                    " namespace it shares lists it in a comma-separated owner alias)"
                )
                continue
            home = self.cached_home(key, homes)
            if _is_name(home):
                sharing.setdefault(home, []).append(key)
        if self.name is None:
            return
        for home, shared in sharing.items():
            raw = self.nodes[home]
            if raw.mode not in ("bridge", "none"):
                continue  # host mode: the host's own namespace, which netcore does not mark
            try:
                names.owner_alias(topology=self.name, role="node", node=home, shared=shared)
            except ValueError as exc:
                ordered = sorted(shared)
                listed = ", ".join(ordered[:5]) + (f", … ({len(ordered)} in all)" if len(ordered) > 5 else "")
                self.problem(
                    f"{raw.path}: nodes in container mode share the namespace of node {home} ({listed}),"
                    f" and the owner alias on its lo lists them all, but {exc};"
                    " let fewer nodes share it or give them shorter names"
                )

    def published_ports(self) -> None:
        """Resolve every node's published ports to the address they go to; refuse the ones that
        have none, go over MAX_PUBLISHED_PORTS, or that two items publish."""
        taken: dict[tuple[str, int, int], list[tuple[IPAddress, str, PortItem]]] = {}
        total = 0
        for key, raw in self.nodes.items():
            if not raw.ports_given or not isinstance(key, str):
                continue
            targets = self.port_targets(key, raw)
            if targets is None:
                continue
            for item in raw.ports:
                families: list[int] = [item.host_ip.version] if item.host_ip else sorted(targets.keys())
                missing = [family for family in families if family not in targets]
                if missing:
                    has = ", ".join(
                        f"{want.network} {self.pools[want.network].subnet}"
                        for want in raw.wants
                        if want.network in self.pools
                    )
                    self.problem(
                        f"{item.path}: {excerpt(item.text)} publishes on IPv{missing[0]}, but node {key} has"
                        f" no IPv{missing[0]} address to send it to (its networks: {has})"
                    )
                    continue
                total += len(item.host_ports) * len(families)
                if total > MAX_PUBLISHED_PORTS:
                    self.problem(
                        f"{item.path}: more than {MAX_PUBLISHED_PORTS} published ports in the topology"
                        " (every port of a range and every IP family counts); publish fewer"
                    )
                    return
                for family in families:
                    network, address = targets[family]
                    host_ip = item.host_ip or _UNSPECIFIED[family]
                    reported: set[str] = set()
                    for host_port, container_port in zip(item.host_ports, item.container_ports, strict=True):
                        port = PortSpec(item.protocol, host_ip, host_port, container_port, network, address)
                        self.claim_port(port, key, item, taken, reported)
                        raw.published.append(port)

    def port_targets(self, key: str, raw: _RawNode) -> dict[int, tuple[str, IPAddress]] | None:
        """The (network, address) of each IP family that `key`'s published ports go to: its first
        address of that family. None, with the problem recorded, when it has none to give."""
        path = f"{raw.path}.ports"
        if raw.mode in ("none", "host", "container"):
            why = {
                "none": "it has no address to send them to (give it networks, in mode bridge)",
                "host": "it is in the host namespace, where its own sockets listen (remove ports)",
                "container": f"it shares the namespace of node {_key(raw.container)} (publish them there)",
            }[raw.mode]
            self.problem(f"{path}: a node in mode {raw.mode} cannot publish ports: {why}")
            return None
        if raw.mode != "bridge" or (raw.networks_given and not raw.wants):
            return None  # its mode or its networks are wrong, already reported
        if not raw.wants:
            self.problem(
                f"{path}: node {key} has no address on a network to send published ports to; give it networks"
            )
            return None
        if any(want.network not in raw.addresses for want in raw.wants):
            return None  # an address could not be resolved, already reported
        targets: dict[int, tuple[str, IPAddress]] = {}
        for want in raw.wants:
            address = raw.addresses[want.network]
            targets.setdefault(address.version, (want.network, address))
        return targets

    def claim_port(
        self,
        port: PortSpec,
        node: str,
        item: PortItem,
        taken: dict[tuple[str, int, int], list[tuple[IPAddress, str, PortItem]]],
        reported: set[str],
    ) -> None:
        """Refuse `port` when an earlier item already publishes its host address and port."""
        slot = (port.protocol, port.host_ip.version, port.host_port)
        for host_ip, other_node, other in taken.get(slot, ()):
            if other.path in reported or not (
                host_ip == port.host_ip or host_ip.is_unspecified or port.host_ip.is_unspecified
            ):
                continue
            reported.add(other.path)
            where = other.path
            if host_ip != port.host_ip:
                theirs = f"{_host_port_text(host_ip, port.host_port)}/{port.protocol}"
                every = f"every IPv{host_ip.version} address of the host"
                where += f": {theirs}, {every}" if host_ip.is_unspecified else f": {theirs}"
                if port.host_ip.is_unspecified:
                    where += f", inside {port.host_ip}, {every}"
            self.problem(
                f"{item.path}: {port.endpoint} is already published by node {other_node} ({where});"
                " a host address and port go to one node only"
            )
        taken.setdefault(slot, []).append((port.host_ip, node, item))

    def addresses(self) -> None:
        bridged = [(_key(key), raw) for key, raw in self.nodes.items() if raw.mode == "bridge"]
        for static in (True, False):
            if not static:
                self.remote_node_addresses()
            for owner, raw in bridged:
                for want in raw.wants:
                    pool = self.pools.get(want.network)
                    if pool is None or (want.address is not None) != static:
                        continue
                    try:
                        if static:
                            raw.addresses[want.network] = pool.claim(_ip_text(want.address), owner=owner)
                        else:
                            raw.addresses[want.network] = pool.allocate(owner=owner)
                    except InvalidSpec as exc:
                        self.problem(f"{want.path}.address: {exc}" if static else f"{want.path}: {exc}")

    def remote_node_addresses(self) -> None:
        """Claim the remote nodes' addresses after the file's static ones (a clash is reported at the
        remote node) and before allocation, which then never hands one of them to a node of the file."""
        for network, items in self.remote_nodes.items():
            pool = self.pools.get(network)
            if pool is None:
                continue
            local = {
                raw.addresses[network]: key for key, raw in self.nodes.items() if network in raw.addresses
            }
            for path, node in items:
                if node.address in local:
                    self.problem(
                        f"{path}.address: {node.address} is the address of node {_key(local[node.address])}"
                        f" of this file on network {network}; a remote node is one on another host"
                    )
                    self.remote_clashes.add(path)
                    continue
                try:
                    pool.claim(node.address, owner=f"remote node {path}")
                except InvalidSpec as exc:
                    self.problem(f"{path}.address: {exc}")
                    self.remote_clashes.add(path)

    def remote_node_macs(self) -> None:
        """No two endpoints of a vxlan network share a MAC: remote nodes among themselves, and against
        the MACs netcore gives the file's own nodes on that network (endpoint_mac of their address)."""
        for network, items in self.remote_nodes.items():
            taken: dict[str, str] = {}
            for key, raw in self.nodes.items():
                address = raw.addresses.get(network) if raw.mode == "bridge" else None
                if address is not None:
                    taken[endpoint_mac(address)] = f"node {_key(key)} ({address})"
            for path, node in items:
                if path in self.remote_clashes:
                    continue  # its address is already reported
                holder = taken.setdefault(node.mac, path)
                if holder != path:
                    self.problem(
                        f"{path}.mac: {node.mac} is already the MAC of {holder} on network {network}"
                    )

    def route(self, index: int, body: object, seen: dict[tuple[str, IPNetwork], int]) -> None:
        path = f"routes[{index}]"
        if not isinstance(body, Mapping):
            self.problem(f"{path}: must be a mapping such as {{node: web1, to: 198.18.9.0/24, via: ...}}")
            return
        before = len(self.problems)
        self.unknown_keys(body, _ROUTE_KEYS, path=path)
        node = body.get("node")
        if node is None:
            self.problem(f"{path}.node: missing")
        elif not isinstance(node, str) or node not in self.nodes:
            self.problem(f"{path}.node: unknown node {excerpt(node)}")
            node = None
        to: IPNetwork | None = None
        if body.get("to") is None:
            self.problem(f"{path}.to: missing")
        else:
            to = self.check(f"{path}.to", lambda: parse_subnet(_ip_text(body["to"])))
        via = self.address(body, "via", path)
        dev = body.get("dev")
        if dev is not None and not isinstance(dev, str):
            self.problem(f"{path}.dev: {excerpt(dev)} is not an interface name")
            dev = None
        if body.get("via") is None and body.get("dev") is None:
            self.problem(f"{path}: a route needs via, dev or both")
        if to is not None and via is not None and to.version != via.version:
            self.problem(f"{path}.via: {via} is not of the same IP version as {to}")
        home = None if node is None else self.home(node)
        if node is not None and home is not None:
            self.route_in_namespace(path, node, home, via=via, dev=dev)
        if len(self.problems) == before and node is not None and to is not None:
            key = (names.namespace_name(self.name or "", _key(home)), to)
            if key in seen:
                self.problem(
                    f"{path}: routes[{seen[key]}] already routes {to} in the namespace of node {_key(home)}"
                )
                return
            seen[key] = index
            self.routes.append(RouteSpec(node=node, to=to, via=via, dev=dev))

    def route_in_namespace(
        self, path: str, node: str, home: object, *, via: IPAddress | None, dev: str | None
    ) -> None:
        raw = self.nodes[home]
        owner = f"node {_key(node)}"
        if home != node:
            owner += f" (in the namespace of node {_key(home)})"
        if raw.mode == "host":
            self.problem(f"{path}.node: {owner} is in host mode; netcore does not change the host's routes")
            return
        interfaces = {
            f"eth{index}": (self.pools[want.network], raw.addresses.get(want.network))
            for index, want in enumerate(raw.wants)
            if want.network in self.pools
        }
        if dev is not None and dev != "lo" and dev not in interfaces:
            have = ", ".join(["lo", *interfaces])
            self.problem(f"{path}.dev: {owner} has no interface {excerpt(dev)} (it has {have})")
            return
        if via is None:
            return
        candidates = {ifname: found for ifname, found in interfaces.items() if dev in (None, ifname)}
        for ifname, (_, address) in candidates.items():
            if via == address:
                self.problem(f"{path}.via: {via} is the address of {owner} itself on {ifname}")
                return
        if not any(
            via.version == pool.subnet.version and via in pool.subnet for pool, _ in candidates.values()
        ):
            subnets = ", ".join(f"{pool.network} {pool.subnet}" for pool, _ in candidates.values()) or "none"
            on = f" on {dev}" if dev else ""
            self.problem(f"{path}.via: {via} is not inside a subnet {owner} is attached to{on} ({subnets})")

    def generated_names(self) -> None:
        if self.name is None:
            return
        owners: dict[str, str] = {}

        def claim(ifname: str, what: str, path: str) -> None:
            other = owners.setdefault(ifname, what)
            if other != what:
                self.problem(f"{path}: generated interface name {ifname!r} of {what} collides with {other}")

        for key in self.pools:
            if not _is_name(key):
                continue
            path = f"networks.{key}"
            claim(names.bridge_name(self.name, key), f"the bridge of network {key}", path)
            if key in self.networks and self.networks[key].driver == "vxlan":
                claim(names.vxlan_name(self.name, key), f"the VXLAN device of network {key}", path)
        for node, raw in self.nodes.items():
            if _is_name(node) and raw.mode == "bridge":
                for want in raw.wants:
                    claim(
                        names.host_veth_name(self.name, node, want.network),
                        f"the host-side veth of node {node} on network {want.network}",
                        want.path,
                    )
