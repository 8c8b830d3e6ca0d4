"""Who reaches whom in a topology, and what a change to it breaks: worked out from the file alone.

Pure: no kernel, no Django. The model is what netcore.topology.desired and converge program, and
nothing else:

- A node in mode bridge or none has a namespace of its own; a node in container mode shares its
  node's; a node in host mode is in the host namespace.
- A node namespace routes, longest prefix first: each interface's subnet (connected), the file's
  routes for that namespace, and, unless the file gives one, a default route via the gateway of the
  node's first network (out of eth0, for the IP family of that first address).
- The host namespace holds every network's bridge with the gateway address: a connected route to
  every subnet of the topology.
- netcore never turns forwarding on. The host forwards between networks only when its
  ``net.ipv4.ip_forward`` (``net.ipv6.conf.all.forwarding``) is on, which Docker does; a node
  attached to two networks forwards only when someone turned it on in its namespace. ``host_forwards``
  and ``forwarding`` say which; by default nothing forwards.
- ``nat: true``: what the host forwards from the subnet out of another bridge leaves with the host's
  address on that bridge, so the answer comes back to the host, which sends it on.
- A neighbour answers for an address: IPv4, for any address of its namespace (arp_ignore 0); IPv6,
  for an address on the interface on that network. A packet for any address of a namespace is
  delivered there, whatever interface it came in by.

A pair is reachable when the packet gets there *and* the answer gets back (what ping and TCP need):
the answer goes from the address asked to the source address the sender's route chose. ``how`` is
"local" (one namespace), "L2" (straight over one network, both ways) or "L3" (routed: through the
host or a node). Not modelled: filtering (the host's own firewall, Docker's FORWARD policy),
rp_filter in strict mode, the host's routes outside the topology, published ports.

:func:`diff` compares two versions of a topology: the pairs gained and lost, the nodes whose live
connections a change breaks though they stay (`interrupted`: a new address, a recreated interface, a
new mode) and the kernel objects apply rebuilds (`recreated`), as plain data for the web app.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from netcore.errors import Unsupported
from netcore.ipam import IPAddress, IPNetwork
from netcore.topology.spec import NetworkSpec, NodeSpec, TopologySpec, default_route, home_node

#: How the host namespace is written in a pair's path.
HOST = "(host)"
#: Most items of each list in Diff.to_dict (the counts are always whole).
MAX_LISTED = 200
#: Most pairs reach works out for one topology (about 500 nodes on one network each; a second).
MAX_PAIRS = 250_000


@dataclass(frozen=True, slots=True)
class Pair:
    """Node `source` sending to `address`, node `target`'s address on `network`."""

    source: str
    target: str
    network: str
    address: IPAddress
    how: str | None  # "local", "L2", "L3"; None when not reachable
    path: tuple[str, ...] = ()  # namespaces crossed there and back, by node name (HOST for the host)
    reason: str = ""  # why not, when not reachable

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.target, self.network)

    def to_dict(self) -> dict:
        out = {
            "source": self.source,
            "target": self.target,
            "network": self.network,
            "address": str(self.address),
            "how": self.how,
            "path": list(self.path),
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Diff:
    """What a change does to who reaches whom; `interrupted` and `recreated` are plain dicts."""

    gained: tuple[Pair, ...]
    lost: tuple[Pair, ...]
    interrupted: tuple[dict, ...]
    recreated: tuple[dict, ...]
    pairs_before: int  # reachable pairs before
    pairs_after: int

    def to_dict(self, *, limit: int = MAX_LISTED) -> dict:
        """Plain data; each list cut at `limit` items, `counts` says how many there are."""
        lists = {
            "gained": [p.to_dict() for p in self.gained[:limit]],
            "lost": [p.to_dict() for p in self.lost[:limit]],
            "interrupted": list(self.interrupted[:limit]),
            "recreated": list(self.recreated[:limit]),
        }
        counts = {
            "gained": len(self.gained),
            "lost": len(self.lost),
            "interrupted": len(self.interrupted),
            "recreated": len(self.recreated),
        }
        return {**lists, "counts": counts, "pairs_before": self.pairs_before, "pairs_after": self.pairs_after}


@dataclass(frozen=True, slots=True)
class _Route:
    to: IPNetwork
    via: IPAddress | None
    network: str | None  # the network of its interface; None for lo


@dataclass(slots=True)
class _Space:
    """A network namespace: its addresses (address -> network) and routing table."""

    name: str
    forwards: bool
    addresses: dict[IPAddress, str] = field(default_factory=dict)
    routes: list[_Route] = field(default_factory=list)
    sources: dict[tuple[str | None, int], IPAddress | None] = field(default_factory=dict)  # source_for's

    def lookup(self, dst: IPAddress) -> _Route | None:
        """Longest prefix match; at equal length the first route added (connected ones come first)."""
        best: _Route | None = None
        for route in self.routes:
            matches = route.to.version == dst.version and dst in route.to
            if matches and (best is None or route.to.prefixlen > best.to.prefixlen):
                best = route
        return best

    def source_for(self, network: str | None, version: int) -> IPAddress | None:
        """The address a packet out of the interface on `network` leaves with: that interface's of the
        family, else the namespace's first of it."""
        key = (network, version)
        if key not in self.sources:
            mine = [a for a, net in self.addresses.items() if a.version == version]
            self.sources[key] = next(
                (a for a in mine if self.addresses[a] == network), mine[0] if mine else None
            )
        return self.sources[key]

    def twins(self) -> tuple[bool, tuple[_Route, ...]]:
        """What a packet's way out of here depends on, besides the addresses: namespaces alike in it
        (every node of a network with the default routes) send the same way."""
        return self.forwards, tuple(self.routes)


@dataclass(frozen=True, slots=True)
class _Trip:
    """One direction of a packet from path[0]: where it went and how it ended. When `shared`, nothing
    in it is particular to path[0] but its name, so namespaces alike (_Space.twins) share it."""

    path: tuple[str, ...]
    delivered: bool
    reason: str = ""
    shared: bool = True  # False when it ended in path[0] (dropped there, or looped back to it)
    network: str | None = None  # the network of the address it left with
    masquerade: IPAddress | None = None  # the address the host gave it instead


class _Model:
    """The namespaces of a topology and how packets cross them."""

    def __init__(self, spec: TopologySpec, *, host_forwards: bool, forwarding: Collection[str]) -> None:
        self.spec = spec
        self.host = _Space(HOST, host_forwards)
        self.spaces: dict[str, _Space] = {HOST: self.host}
        self.members: dict[str, set[str]] = {name: {HOST} for name in spec.networks}
        homes = {name: _home_of(spec, name) for name in spec.nodes}
        forwards = {homes[name] for name in forwarding if name in homes}
        for net in spec.networks.values():
            self.host.addresses[net.gateway] = net.name
            self.host.routes.append(_Route(net.subnet, None, net.name))
        for node in spec.nodes.values():
            if node.mode not in ("bridge", "none"):
                continue
            space = _Space(node.name, node.name in forwards)
            for att in node.attachments:
                space.addresses[att.address] = att.network
                space.routes.append(_Route(spec.networks[att.network].subnet, None, att.network))
                self.members[att.network].add(node.name)
            self.spaces[node.name] = space
        self._file_routes()
        self.owners: dict[IPAddress, list[str]] = {}
        for space in self.spaces.values():
            for address in space.addresses:
                self.owners.setdefault(address, []).append(space.name)
        alike: dict[tuple, int] = {}
        self.twins = {
            name: alike.setdefault(space.twins(), len(alike)) for name, space in self.spaces.items()
        }
        self.trips: dict[tuple[int, IPAddress, bool], _Trip] = {}

    def _file_routes(self) -> None:
        file_routes: dict[str, list[IPNetwork]] = {}
        for r in self.spec.routes:
            home = _home_of(self.spec, r.node)
            if home == HOST:
                continue  # the parser refuses these: netcore does not change the host's routes
            space = self.spaces[home]
            node = self.spec.nodes[home]
            if r.dev == "lo":
                network = None
            elif r.dev is not None:
                network = next(a.network for a in node.attachments if a.ifname == r.dev)
            else:
                assert r.via is not None, "the parser refuses a route without via or dev"
                on = space.lookup(r.via)
                network = on.network if on else None
            space.routes.append(_Route(r.to, r.via, network))
            file_routes.setdefault(home, []).append(r.to)
        for node in self.spec.nodes.values():
            if node.name not in self.spaces:
                continue
            default = default_route(self.spec, node, file_routes.get(node.name, ()))
            if default is not None:
                to, via = default
                self.spaces[node.name].routes.append(_Route(to, via, node.attachments[0].network))

    def neighbour(self, network: str, address: IPAddress) -> str | None:
        """The namespace on `network` that answers for `address` (ARP or neighbour discovery)."""
        for owner in self.owners.get(address, ()):
            if owner in self.members[network] and (
                address.version == 4 or self.spaces[owner].addresses[address] == network
            ):
                return owner
        return None

    def trip(self, start: str, dst: IPAddress, *, answer: bool = False) -> _Trip:
        """:meth:`walk`, or the walk of a namespace alike when it holds for `start` too (it went
        elsewhere than `start`, and not through it). The trip's path[0] may be that other namespace."""
        if dst in self.spaces[start].addresses:
            return _Trip((start,), True)
        key = (self.twins[start], dst, answer)
        known = self.trips.get(key)
        if known is not None and start not in known.path:
            return known
        walked = self.walk(start, dst, answer=answer)
        if walked.shared:
            self.trips.setdefault(key, walked)
        return walked

    def walk(self, start: str, dst: IPAddress, *, answer: bool = False) -> _Trip:
        """A packet to `dst` sent from namespace `start`, followed table by table until it is
        delivered or dropped. The host masquerades requests only (conntrack translates the `answer`)."""
        at, path = start, [start]
        leaves: str | None = None  # the network of the address it leaves with
        masquerade: IPAddress | None = None
        while True:
            space = self.spaces[at]
            if dst in space.addresses:
                return _Trip(tuple(path), True, network=leaves, masquerade=masquerade)
            if at != start and not space.forwards:
                return _Trip(tuple(path), False, f"{at} does not forward (IP forwarding is off there)")
            route = space.lookup(dst)
            if route is None:
                return _Trip(tuple(path), False, f"{at} has no route to {dst}", at != start)
            if route.network is None:
                return _Trip(tuple(path), False, f"{at} routes {dst} to lo", at != start)
            if at == start:
                source = space.source_for(route.network, dst.version)
                if source is None:
                    why = f"{at} has no IPv{dst.version} address to send from"
                    return _Trip(tuple(path), False, why, shared=False)
                leaves = space.addresses[source]
            elif at == HOST and not answer and masquerade is None:
                masquerade = self._masquerade(leaves, route.network, dst.version)
            hop = route.via or dst
            after = self.neighbour(route.network, hop)
            if after is None:
                return _Trip(tuple(path), False, f"nothing on network {route.network} answers for {hop}")
            if after in path:
                why = "routing loop: " + " → ".join([*path, after])
                return _Trip(tuple(path), False, why, shared=after != start)
            path.append(after)
            at = after

    def _masquerade(self, source: str | None, out: str, version: int) -> IPAddress | None:
        """The host's address on network `out`, when the network of the source address is `nat: true`
        and not `out`."""
        net = self.spec.networks.get(source or "")
        if net is None or not net.nat or net.name == out:
            return None
        gateway = self.spec.networks[out].gateway
        return gateway if gateway.version == version else None

    def round_trip(self, start: str, dst: IPAddress) -> tuple[str | None, tuple[str, ...], str]:
        """(how, path there and back, reason) of `start` reaching `dst` and hearing back."""
        there = self.trip(start, dst)
        if not there.delivered:
            return None, (start, *there.path[1:]), there.reason
        target = there.path[-1]
        if len(there.path) == 1:
            return "local", (start,), ""
        origin = self.spaces[start].source_for(there.network, dst.version)
        assert origin is not None, "a request that left its namespace had an address to leave with"
        arrived = there.masquerade or origin
        back = self.trip(target, arrived, answer=True)
        path = (start, *there.path[1:], *back.path[1:])
        if not back.delivered:
            return None, path, f"the answer from {target} to {arrived} is lost: {back.reason}"
        if there.masquerade:  # the answer came to the host, which undoes the masquerade and sends it on
            onward = self.trip(HOST, origin, answer=True)
            path += onward.path[1:]
            if not onward.delivered:
                return None, path, f"the answer from {HOST} to {origin} is lost: {onward.reason}"
        how = "L2" if len(there.path) == 2 and len(back.path) == 2 else "L3"
        return how, path, ""


def _home_of(spec: TopologySpec, node: str) -> str:
    """The node whose namespace `node` is in (following container mode), or HOST for host mode."""
    home = home_node(spec, node)
    return HOST if home.mode == "host" else home.name


def reach(
    spec: TopologySpec, *, host_forwards: bool = False, forwarding: Collection[str] = ()
) -> tuple[Pair, ...]:
    """Every node to every address of every other node, in file order: reachable and how, or why not.

    `host_forwards`: IP forwarding is on in the host namespace; `forwarding`: nodes whose namespace
    has it on (netcore turns it on nowhere). Unsupported beyond MAX_PAIRS pairs.
    """
    count = len(spec.nodes) * sum(len(node.attachments) for node in spec.nodes.values())
    if count > MAX_PAIRS:
        raise Unsupported(
            f"topology {spec.name} has about {count} pairs of a node and an address of another;"
            f" reach works out at most {MAX_PAIRS}",
            obj=spec.name,
        )
    model = _Model(spec, host_forwards=host_forwards, forwarding=forwarding)
    pairs = []
    for source in spec.nodes.values():
        start = _home_of(spec, source.name)
        for target in spec.nodes.values():
            if target.name == source.name:
                continue
            for att in target.attachments:
                how, path, reason = model.round_trip(start, att.address)
                if source.name != start and start != HOST:  # container mode: name the node, not its host
                    path = tuple(source.name if step == start else step for step in path)
                pairs.append(Pair(source.name, target.name, att.network, att.address, how, path, reason))
    return tuple(pairs)


def diff(
    before: TopologySpec | None,
    after: TopologySpec,
    *,
    host_forwards: bool = False,
    forwarding: Collection[str] = (),
) -> Diff:
    """What applying `after` over `before` (None: nothing applied) does to who reaches whom."""
    now = {p.key: p for p in reach(after, host_forwards=host_forwards, forwarding=forwarding)}
    was = (
        {p.key: p for p in reach(before, host_forwards=host_forwards, forwarding=forwarding)}
        if before
        else {}
    )
    gained = tuple(p for key, p in now.items() if p.how and not (key in was and was[key].how))
    lost = tuple(
        _lost(p, now.get(key)) for key, p in was.items() if p.how and not (now.get(key) and now[key].how)
    )
    interrupted, recreated = _disruptions(before, after) if before else ((), ())
    return Diff(
        gained,
        lost,
        interrupted,
        recreated,
        sum(1 for p in was.values() if p.how),
        sum(1 for p in now.values() if p.how),
    )


def _lost(before: Pair, after: Pair | None) -> Pair:
    """A pair reachable before, as it is after (or gone, saying why)."""
    if after is not None:
        return after
    return Pair(*before.key, before.address, None, (), "the node or its network is removed")


def _disruptions(before: TopologySpec, after: TopologySpec) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """(interrupted, recreated): nodes that stay but whose live connections break, and the kernel
    objects apply deletes and makes again (converge rebuilds a veth whose MTU or interface name is
    wrong, and a VXLAN device whose options differ; it changes addresses, gateways, routes and bridge
    MTUs in place)."""
    recreated: list[dict] = []
    for name, net in after.networks.items():
        was = before.networks.get(name)
        if was is not None and was.driver == net.driver == "vxlan" and _vxlan_rebuilt(was, net):
            recreated.append({"kind": "vxlan", "network": name, "why": "its VXLAN options change"})
    why_of: dict[str, list[str]] = {}
    for name, node in after.nodes.items():
        old_node = before.nodes.get(name)
        if old_node is None:
            continue
        why = why_of.setdefault(name, [])
        if _mode(old_node) != _mode(node):
            why.append(f"mode {_mode(old_node)} → {_mode(node)}")
            continue
        if node.mode != "bridge":
            continue
        old_atts = {a.network: a for a in old_node.attachments}
        for att in node.attachments:
            old = old_atts.get(att.network)
            if old is None:
                continue
            if old.address != att.address:
                moved = before.networks[att.network].subnet != after.networks[att.network].subnet
                why.append(
                    f"address {old.address} → {att.address} on {att.network}"
                    + (" (its subnet moves)" if moved else "")
                )
            # converge rebuilds a veth whose interface name changes (an MTU change it makes in place)
            rebuilt = f"{old.ifname} becomes {att.ifname}" if old.ifname != att.ifname else ""
            if rebuilt:
                why.append(f"its interface on {att.network} is recreated ({rebuilt})")
                recreated.append({"kind": "veth", "node": name, "network": att.network, "why": rebuilt})
    for name, node in after.nodes.items():  # nodes in container mode share what their namespace suffers
        home = _home_of(after, name)
        if node.mode == "container" and name in before.nodes and why_of.get(home) and not why_of.get(name):
            why_of[name] = [f"shares the namespace of {home}"]
    interrupted = tuple({"node": n, "why": "; ".join(w)} for n, w in why_of.items() if w)
    return interrupted, tuple(recreated)


def _mode(node: NodeSpec) -> str:
    return f"container:{node.container}" if node.mode == "container" else node.mode


def _vxlan_rebuilt(old: NetworkSpec, new: NetworkSpec) -> bool:
    fields = ("vni", "dstport", "local", "remote", "group", "learning")
    return any(getattr(old, f) != getattr(new, f) for f in fields)  # an MTU change is made in place
