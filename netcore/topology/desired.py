"""What a topology file asks the kernel to hold, as flat lists of kernel objects.

A network larger than one bridge segment (SEGMENT_PORTS endpoints) is spread over
several bridges: segment 0 holds the gateway address and the VXLAN port, and every
further segment hangs off segment 0 through one veth pair. That is a star, so the
network stays one L2 broadcast domain with no loops (and needs no STP), while each
bridge stays small: adding a port to a Linux bridge costs time proportional to the
ports it already has (docs/netcore.md has the measurement behind the size).

Published ports and NAT become nftables rules (netcore.topology.nat).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netcore import names
from netcore.topology.nat import NatWant, nat_wants
from netcore.topology.spec import (
    RemoteNodeSpec,
    TopologySpec,
    default_route,
    endpoint_mac,  # defined in spec, where remote nodes' MACs default to it
    home_node,
    netns_of,
)

SEGMENT_PORTS = 128

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, slots=True)
class BridgeWant:
    name: str
    network: str
    segment: int
    mtu: int | None
    alias: str
    gateway: IPInterface | None

    @property
    def mac(self) -> str | None:
        """The MAC of a bridge holding a gateway: fixed (endpoint_mac of the gateway), as Docker fixes
        its bridges' MACs. A bridge left to choose takes its lowest port's MAC and changes it when
        that port goes, and every node's ARP entry for the gateway then points nowhere for a while."""
        return endpoint_mac(self.gateway.ip) if self.gateway is not None else None


@dataclass(frozen=True, slots=True)
class UplinkWant:
    """The veth pair joining segment `segment` to segment 0 of `network`."""

    root_side: str
    segment_side: str
    network: str
    segment: int
    mtu: int | None
    alias: str
    root_bridge: str
    segment_bridge: str


@dataclass(frozen=True, slots=True)
class VxlanWant:
    name: str
    network: str
    vni: int
    dstport: int
    local: IPAddress | None
    remote: IPAddress | None
    group: IPAddress | None
    learning: bool
    mtu: int | None
    alias: str
    bridge: str
    proxy: bool = False  # answer ARP/ND from the device's neighbour entries (learning off)
    peers: tuple[IPAddress, ...] = ()  # head-end replication: 00:00:00:00:00:00 -> each peer
    remote_nodes: tuple[RemoteNodeSpec, ...] = ()  # FDB mac -> vtep and neighbour address -> mac each


@dataclass(frozen=True, slots=True)
class PortWant:
    """One endpoint interface: host veth `host_name` on `bridge`, peer `ifname` in `netns`."""

    host_name: str
    netns: str
    ifname: str
    index: int
    address: IPInterface
    mtu: int | None
    bridge: str
    alias: str
    node: str
    network: str

    @property
    def mac(self) -> str:
        """The endpoint's MAC, derived from its address (as Docker does): an interface rebuilt by a
        repair comes back with the MAC its peers and the host have cached, so traffic resumes at
        once instead of after their ARP entries fail (seconds to a minute)."""
        return endpoint_mac(self.address.ip)


@dataclass(frozen=True, slots=True)
class RouteWant:
    netns: str
    node: str
    to: IPNetwork
    via: IPAddress | None
    dev: str | None
    index: int | None


@dataclass(frozen=True, slots=True)
class NodeWant:
    """A node with a namespace of its own, with everything that goes inside it.

    `shared` are the nodes in container mode that share this namespace; `alias` (set on its lo)
    lists them, as they have no kernel object of their own.
    """

    name: str
    netns: str
    alias: str
    ports: tuple[PortWant, ...]
    routes: tuple[RouteWant, ...]
    shared: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Desired:
    topology: str
    bridges: tuple[BridgeWant, ...]
    uplinks: tuple[UplinkWant, ...]
    vxlans: tuple[VxlanWant, ...]
    nodes: tuple[NodeWant, ...]
    nat: NatWant  # published ports and masquerading: the topology's nftables table

    def host_link_names(self) -> set[str]:
        """Every interface name this topology owns in the host namespace."""
        out = {b.name for b in self.bridges} | {v.name for v in self.vxlans}
        out |= {u.root_side for u in self.uplinks} | {u.segment_side for u in self.uplinks}
        out |= {p.host_name for n in self.nodes for p in n.ports}
        return out


def _segments(ports: int) -> int:
    return max(1, -(-ports // SEGMENT_PORTS))


def desired(spec: TopologySpec) -> Desired:
    """Expand a validated topology into the kernel objects it stands for."""
    topo = spec.name
    members: dict[str, list[tuple[str, int]]] = {n: [] for n in spec.networks}
    for node in spec.nodes.values():
        for position, att in enumerate(node.attachments):
            members[att.network].append((node.name, position))

    bridges: list[BridgeWant] = []
    uplinks: list[UplinkWant] = []
    vxlans: list[VxlanWant] = []
    bridge_of: dict[tuple[str, int], str] = {}
    for net in spec.networks.values():
        root = names.bridge_name(topo, net.name)
        gateway = ipaddress.ip_interface(f"{net.gateway}/{net.subnet.prefixlen}")
        for segment in range(_segments(len(members[net.name]))):
            name = names.bridge_name(topo, net.name, segment)
            role = "bridge" if segment == 0 else "segment"
            alias = names.owner_alias(topology=topo, role=role, network=net.name, segment=segment or None)
            bridges.append(
                BridgeWant(name, net.name, segment, net.mtu, alias, gateway if segment == 0 else None)
            )
            if segment:
                root_side, segment_side = names.segment_link_names(topo, net.name, segment)
                uplinks.append(
                    UplinkWant(root_side, segment_side, net.name, segment, net.mtu, alias, root, name)
                )
        for position, member in enumerate(members[net.name]):
            bridge_of[member] = names.bridge_name(topo, net.name, position // SEGMENT_PORTS)
        if net.driver == "vxlan":
            assert net.vni is not None, "spec.parse refuses a vxlan network without a vni"
            vxlans.append(
                VxlanWant(
                    names.vxlan_name(topo, net.name),
                    net.name,
                    net.vni,
                    net.dstport or 4789,
                    net.local,
                    net.remote,
                    net.group,
                    True if net.learning is None else net.learning,
                    net.mtu,
                    names.owner_alias(topology=topo, role="vxlan", network=net.name),
                    root,
                    net.proxy,
                    net.peers,
                    net.remote_nodes,
                )
            )

    routes_of: dict[str, list[RouteWant]] = {}
    for r in spec.routes:
        home = netns_of(spec, r.node)
        if home is None:
            continue
        index = _ifindex(spec, r.node, r.dev) if r.dev else None
        routes_of.setdefault(home, []).append(RouteWant(home, r.node, r.to, r.via, r.dev, index))

    shared_by: dict[str, list[str]] = {}
    for node in spec.nodes.values():
        home = netns_of(spec, node.name) if node.mode == "container" else None
        if home is not None:
            shared_by.setdefault(home, []).append(node.name)

    nodes: list[NodeWant] = []
    for node in spec.nodes.values():
        if node.mode not in ("bridge", "none"):
            continue
        netns = names.namespace_name(topo, node.name)
        ports = tuple(
            PortWant(
                names.host_veth_name(topo, node.name, att.network),
                netns,
                att.ifname,
                position + 2,
                ipaddress.ip_interface(f"{att.address}/{spec.networks[att.network].subnet.prefixlen}"),
                spec.networks[att.network].mtu,
                bridge_of[(node.name, position)],
                names.owner_alias(topology=topo, role="veth", network=att.network, node=node.name),
                node.name,
                att.network,
            )
            for position, att in enumerate(node.attachments)
        )
        routes = list(routes_of.get(netns, ()))
        default = default_route(spec, node, (r.to for r in routes))
        if default is not None:
            to, via = default
            routes.insert(0, RouteWant(netns, node.name, to, via, ports[0].ifname, ports[0].index))
        shared = tuple(sorted(shared_by.get(netns, ())))
        alias = names.owner_alias(topology=topo, role="node", node=node.name, shared=shared)
        nodes.append(NodeWant(node.name, netns, alias, ports, tuple(routes), shared))
    return Desired(topo, tuple(bridges), tuple(uplinks), tuple(vxlans), tuple(nodes), nat_wants(spec))


def _ifindex(spec: TopologySpec, node: str, dev: str) -> int | None:
    """The fixed ifindex of `dev` (eth<N> has index N + 2) in the namespace holding `node`."""
    for position, att in enumerate(home_node(spec, node).attachments):
        if att.ifname == dev:
            return position + 2
    return None
