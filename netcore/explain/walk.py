"""The path walk: where a packet from a namespace to an address goes, hop by hop, and why it stops.

It reads the host as a Snapshot (links with their veth peers, bridge ports, addresses, FDB and
neighbour entries) and asks each namespace's kernel for its routing decision (`Kernel`, normally
netcore.explain.probe.Namespaces), so the FIB, policy rules and forwarding checks are the kernel's own:

    route in the source namespace → its out link → the veth's other end → the bridge and its FDB
    decision for the next hop's MAC → the next hop's namespace → its route (as a forwarded packet,
    arriving on that link) → ... → delivery: a local address there, and something listening.

A bridge that does not have the next hop behind any port hands the frame to its VXLAN port, whose
FDB picks the remote VTEP (the entry for the next hop's MAC, else the default all-zeros entries, to
each of which the frame is flooded; neither: VXLAN_NO_REMOTE, dropped). When a namespace of the
snapshot holds that VTEP's address (a lab of "hosts" on one machine), the walk goes on through the
tunnel: the underlay, hop by hop like any route but for the encapsulated packet (UDP to the
device's port from its local address, its size 50 bytes more over IPv4 and 70 over IPv6; these hops
say "underlay to VTEP ..." and are not watched, the probe being inside), then in the VTEP's
namespace the VXLAN device of the same VNI and port (none: VXLAN_NO_RECEIVER), its bridge and that
bridge's FDB decision, on to the destination. A tunnel crossed twice is a LOOP.

Each hop says what it is, what decided it and its verdict; the walk ends in ``deliver``, ``drop``
(with a cause), ``forward`` (the packet leaves this host: a physical link, or a VXLAN tunnel to a
VTEP no namespace here holds) or ``abort`` (the walk cannot say). Causes (CAUSES) are a fixed
vocabulary, each with what to do about it. The firewall is read at each hook the packet passes
(output in the source, forward where it is routed or bridged with br_netfilter on, input where it
is delivered: netcore.explain.firewall), and DNAT where it happens (a VIP's or a published port's:
prerouting where the packet arrives, output in the source); with a packet size, each link's MTU
(VXLAN's encapsulation on the underlay too). Not modelled yet: what happens past the host, and a
VXLAN device's proxy ARP (a remote next hop without a neighbour entry there is not resolved); the
live probe (netcore.explain.probe) catches what the walk cannot see, and an answer where the two
disagree says so.
"""

from __future__ import annotations

import errno as _errno
import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from netcore.explain.firewall import Packet, Verdict
from netcore.explain.route_get import RouteAnswer
from netcore.ipam import IPAddress
from netcore.model import FdbEntry, Link, Snapshot

MAX_HOPS = 16  # routed hops before the walk calls it a loop

#: cause -> what it means and what to do about it
CAUSES: dict[str, str] = {
    "NO_ROUTE": "The namespace has no route to the destination (or an unreachable, blackhole or prohibit"
    " route): add a route, or a default route via the network's gateway.",
    "FORWARDING_DISABLED": "The packet reached a namespace that would have to forward it, and IP forwarding"
    " is off there: turn on net.ipv4.ip_forward (net.ipv6.conf.all.forwarding) in that namespace.",
    "REVERSE_PATH_FILTER": "The namespace that would forward the packet drops it by its reverse path"
    " filter (rp_filter): its route back to the source leaves by another interface. Fix the routes,"
    " or loosen rp_filter (2) there.",
    "FIREWALL_DROP": "A firewall rule drops (or rejects) the packet: the hop names its table, chain and"
    " handle. Change the rule, or add an accept before it.",
    "DOCKER_FORWARD_DROP": "Docker set the forward policy of iptables' filter table to DROP, and nothing"
    " accepts this packet: add an accept for these interfaces to the DOCKER-USER chain (the agent does"
    " so for the bridges it manages).",
    "LINK_DOWN": "An interface on the path is down: bring it up (ip link set DEV up).",
    "BRIDGE_PORT_DOWN": "The bridge port (the host end of the node's veth) is down: bring it up.",
    "NO_NEIGHBOUR": "Nobody on the link's segment has the next hop's address, so ARP/ND gets no answer:"
    " check the address and the gateway, and that the owner is attached to the same network.",
    "ADDRESS_CONFLICT": "Several interfaces on the segment have the next hop's address: whichever answers"
    " ARP first gets the traffic. Give each its own address.",
    "FDB_MISS_FLOOD": "Not a drop: the bridge has not learnt the next hop's MAC yet and floods the frame"
    " to every port; it learns the port from the first answer. A VXLAN device without an entry for the"
    " MAC sends the frame to each of its default (all-zeros) destinations: add an entry for the remote"
    " node to send it to its VTEP alone.",
    "FDB_WRONG_PORT": "The bridge's FDB sends the next hop's MAC to another port than the one it is"
    " behind (a stale or static entry): delete the entry (bridge fdb del).",
    "VXLAN_NO_REMOTE": "The next hop is behind a VXLAN port that has no forwarding entry for it and no"
    " default destination: add the remote node (FDB entry) or the peer VTEP.",
    "VXLAN_NO_RECEIVER": "The tunnel reaches the remote VTEP's address, but nothing there takes the VNI on"
    " that UDP port: no VXLAN device with the same VNI and destination port (the kernel drops the"
    " packet, or answers port unreachable to the sending VTEP). Create the device on the remote host,"
    " or make the VNI and port agree on both ends.",
    "MTU_TOO_SMALL": "The packet (with don't-fragment set) is larger than a link on the path can carry:"
    " where the kernel can, it answers 'fragmentation needed'; a veth or bridge port drops it silently (a"
    " black hole). Give the links of one network one MTU, and a VXLAN network 50 bytes (70 over IPv6)"
    " less than its underlay.",
    "NOTHING_LISTENING": "The packet reaches the destination, but nothing listens on that port there:"
    " start the service, or check the port and the address it binds.",
    "LOOP": f"The walk passed {MAX_HOPS} routed hops, or crossed a VXLAN tunnel twice: routes (or the"
    " overlays' forwarding entries) send the packet in a circle.",
    "NOT_MODELLED": "The path goes through something the walk does not follow yet (the hop says what).",
    "LEAVES_HOST": "The packet leaves this host: what happens after is up to the next host.",
}


class Kernel(Protocol):
    """What the walk asks of each namespace (netcore.explain.probe.Namespaces asks the real ones)."""

    def ask(self, netns: str, dst: IPAddress, src: IPAddress | None, iif: int | None) -> RouteAnswer:
        """The namespace kernel's routing decision for a packet (arriving on link `iif`)."""

    def listening(self, netns: str, protocol: str, address: IPAddress, port: int) -> bool | None:
        """Whether a socket there takes the packet (None: cannot tell)."""

    def firewall(self, netns: str, hook: str, packet: Packet) -> Verdict:
        """What the namespace's filter chains do with the packet at a hook."""

    def nat(self, netns: str, hook: str, packet: Packet) -> Verdict:
        """Where the namespace's nat chains at a hook (prerouting, output) send a new connection."""

    def bridge_filters(self, netns: str) -> bool:
        """Whether bridged IPv4 packets go through the namespace's forward hook (br_netfilter)."""


@dataclass(frozen=True)
class Hop:
    """One step: in `netns`, `kind` (route, link, veth, bridge, fdb, vxlan, deliver) on `object` (a
    link's name, a bridge, a route), `decision` in words, `verdict` forward/deliver/drop/abort, and
    the cause when it ends the walk or is worth a flag (FDB miss: flooded); `interface`, the link in
    `netns` the packet crosses at this hop (a veth end it leaves by, the port or link it arrives on,
    one that is down), where a live probe is watched (netcore.explain.watch), or "" for none."""

    netns: str
    kind: str
    object: str
    decision: str
    verdict: str = "forward"
    cause: str = ""
    interface: str = ""


@dataclass
class Walk:
    """The whole answer: hops in order and how the walk ended."""

    source: str
    destination: str
    protocol: str
    port: int | None
    hops: list[Hop] = field(default_factory=list)
    verdict: str = "abort"
    cause: str = ""
    message: str = ""
    translated: list[tuple[str, int | None]] = field(default_factory=list)  # DNAT targets on the way

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["advice"] = CAUSES.get(self.cause, "")
        return data


class _Index:
    """The snapshot by the ways the walk looks things up."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.links = {(x.netns, x.index): x for x in snapshot.links}
        self.by_name = {(x.netns, x.name): x for x in snapshot.links}
        self.ports: dict[tuple[str, str], list[Link]] = {}
        for link in snapshot.links:
            if link.master:
                self.ports.setdefault((link.netns, link.master), []).append(link)
        self.owners: dict[IPAddress, list[tuple[str, int]]] = {}
        for address in snapshot.addresses:
            ip = ipaddress.ip_address(address.address)
            self.owners.setdefault(ip, []).append((address.netns, address.ifindex))
        self.fdb = {(e.netns, e.master, e.mac): e for e in snapshot.fdb if e.master and not e.self_entry}
        self.vxlan_fdb = [e for e in snapshot.fdb if e.self_entry and e.dst]
        self.neighbours = {(n.netns, n.ifindex, n.address): n for n in snapshot.neighbours}
        self.namespaces = {n.name for n in snapshot.namespaces}

    def peer(self, link: Link) -> Link | None:
        return self.links.get((link.peer.netns, link.peer.index)) if link.peer else None


def _down(link: Link) -> bool:
    return not link.up or link.state in ("down", "lowerlayerdown", "notpresent")


class _Walker:
    def __init__(self, snapshot: Snapshot, walk: Walk, kernel: Kernel, size: int | None) -> None:
        self.index = _Index(snapshot)
        self.walk = walk
        self.kernel = kernel
        self.size = size
        self.src: IPAddress | None = None
        self.protocol = walk.protocol  # of the packet followed: the probe's, or UDP on an underlay
        self.outer = ""  # on an underlay: what each hop's decision starts with
        self.tunnels: set[tuple[str, int]] = set()  # VXLAN devices crossed (in or out): twice is a loop

    def too_big(self, netns: str, link: Link, what: str, *, mtu: int | None = None) -> Walk | None:
        """The walk's end when the packet (size given, DF set) does not fit `link` (or `mtu`)."""
        limit = link.mtu if mtu is None else mtu
        if self.size is None or self.size <= limit:
            return None
        packet = "encapsulated packet" if self.outer else "packet"
        text = f"a {self.size}-byte {packet} does not fit {what} {link.name} (MTU {limit})"
        self.hop(netns, "link", link.name, text, "drop", "MTU_TOO_SMALL", interface=link.name)
        return self.end("drop", "MTU_TOO_SMALL", f"{netns}: {text}")

    def hop(
        self,
        netns: str,
        kind: str,
        obj: str,
        decision: str,
        verdict: str = "forward",
        cause: str = "",
        *,
        interface: str = "",
    ) -> None:
        if self.outer:  # the encapsulated packet: the probe inside cannot be watched here
            decision, interface = self.outer + decision, ""
        self.walk.hops.append(Hop(netns, kind, obj, decision, verdict, cause, interface))

    def end(self, verdict: str, cause: str, message: str) -> Walk:
        self.walk.verdict, self.walk.cause, self.walk.message = verdict, cause, self.outer + message
        return self.walk

    def run(self, netns: str, dst: IPAddress, port: int | None) -> Walk:
        if netns not in self.index.namespaces:
            return self.end("abort", "NOT_MODELLED", f"namespace {netns} is not on this host")
        iif: Link | None = None
        for _ in range(MAX_HOPS):
            dst, port = self.translated(netns, dst, port, iif)
            answer = self.kernel.ask(netns, dst, self.src if iif else None, iif.index if iif else None)
            if iif is None:
                self.src = answer.prefsrc
            step = self.routed(netns, dst, port, answer, iif)
            if isinstance(step, Walk):
                return step
            netns, iif = step
        return self.end("drop", "LOOP", f"more than {MAX_HOPS} routed hops")

    def routed(
        self, netns: str, dst: IPAddress, port: int | None, answer: RouteAnswer, iif: Link | None
    ) -> tuple[str, Link] | Walk:
        """One routed hop, for the packet and for an encapsulated one on an underlay: the route's
        verdict, its out link, the firewall on the way out, the link's MTU, then the link to the next
        namespace (where it arrives, and on which link), or the walk's end."""
        ended = self.route(netns, dst, port, answer, iif)
        if ended is not None:
            return ended
        out = self.index.links.get((netns, answer.oif or 0))
        if out is None:
            return self.end("abort", "NOT_MODELLED", f"the route's link {answer.oif} is not in {netns}")
        hook = "forward" if iif else "output"
        blocked = self.filtered(netns, hook, dst, port, iif.name if iif else None, out.name)
        if blocked is None:
            blocked = self.too_big(netns, out, "the out link")
        if blocked is not None:
            return blocked
        return self.link(netns, out, answer.gateway or dst, dst, port)

    def translated(
        self, netns: str, dst: IPAddress, port: int | None, iif: Link | None
    ) -> tuple[IPAddress, int | None]:
        """The destination after the namespace's DNAT (prerouting for an arriving packet, output for
        the source's own): a VIP's or a published port's target, else as it was."""
        before = self.kernel.ask(netns, dst, None, None)
        if iif is None and before.refused:
            return dst, port  # a packet of its own needs a route before the output hook sees it
        local = before.type == "local"
        packet = Packet(
            saddr=self.src,
            daddr=dst,
            protocol=self.walk.protocol,
            dport=port,
            iif=iif.name if iif else None,
            daddr_local=local,
        )
        hook = "prerouting" if iif else "output"
        verdict = self.kernel.nat(netns, hook, packet)
        if not verdict.dnat:
            return dst, port
        self.walk.translated += [(str(a), p or port) for a, p in verdict.dnat]
        address, new_port = verdict.dnat[0]
        handle = f" handle {verdict.handle}" if verdict.handle is not None else ""
        where = f"{address}:{new_port or port}"
        others = f" (one of {len(verdict.dnat)}, chosen per connection)" if len(verdict.dnat) > 1 else ""
        text = f"{hook}: {verdict.where}{handle} sends {dst}:{port} to {where}{others}"
        self.hop(netns, "nat", f"{verdict.where}{handle}", text)
        return address, new_port or port

    def route(
        self, netns: str, dst: IPAddress, port: int | None, answer: RouteAnswer, iif: Link | None
    ) -> Walk | None:
        """The routing decision in `netns`: the walk's end, or None to follow the route out."""
        arriving = f" (arriving on {iif.name})" if iif else ""
        if answer.refused:
            cause = "NO_ROUTE"
            if iif is not None and answer.errno == _errno.EHOSTUNREACH:
                cause = "FORWARDING_DISABLED"
            elif iif is not None and answer.errno == _errno.EXDEV:
                cause = "REVERSE_PATH_FILTER"
            text = f"the kernel refuses a route to {dst}{arriving}: {answer.reason()}"
            self.hop(netns, "route", str(dst), text, "drop", cause, interface=iif.name if iif else "")
            return self.end("drop", cause, f"{netns}: {text}")
        if answer.type == "local":
            self.hop(
                netns,
                "route",
                str(dst),
                f"{dst} is an address of {netns}{arriving}: delivered here",
                "deliver",
                interface=iif.name if iif else "",
            )
            if iif is None:  # to itself: out and back in through lo
                blocked = self.filtered(netns, "output", dst, port, None, "lo")
                if blocked is not None:
                    return blocked
            blocked = self.filtered(netns, "input", dst, port, iif.name if iif else "lo", None)
            return blocked if blocked is not None else self.deliver(netns, dst, port)
        if answer.type != "unicast":
            text = f"route type {answer.type} to {dst}"
            self.hop(netns, "route", str(dst), text, "drop", "NO_ROUTE", interface=iif.name if iif else "")
            return self.end("drop", "NO_ROUTE", f"{netns}: {text}")
        out = self.index.links.get((netns, answer.oif or 0))
        via = f" via {answer.gateway}" if answer.gateway else ""
        name = out.name if out else str(answer.oif)
        self.hop(
            netns,
            "route",
            str(dst),
            f"route to {dst}{via} dev {name}{arriving}",
            interface=iif.name if iif else "",
        )
        return None

    def filtered(
        self, netns: str, hook: str, dst: IPAddress, port: int | None, iif: str | None, oif: str | None
    ) -> Walk | None:
        """The firewall of `netns` at `hook`: the walk's end when it drops the packet, else None."""
        packet = Packet(saddr=self.src, daddr=dst, protocol=self.protocol, dport=port, iif=iif, oif=oif)
        verdict = self.kernel.firewall(netns, hook, packet)
        if verdict.verdict != "drop":
            return None
        cause = "DOCKER_FORWARD_DROP" if verdict.docker else "FIREWALL_DROP"
        handle = f" handle {verdict.handle}" if verdict.handle is not None else ""
        unread = (
            f"; unless a rule the walk cannot read accepts it ({', '.join(verdict.unread)})"
            if verdict.unread
            else ""
        )
        text = f"{hook}: {verdict.where}{handle} drops it: {verdict.rule}{unread}"
        self.hop(netns, "firewall", f"{verdict.where}{handle}", text, "drop", cause)
        return self.end("drop", cause, f"{netns}: {text}")

    def deliver(self, netns: str, dst: IPAddress, port: int | None) -> Walk:
        if port is None or self.walk.protocol not in ("tcp", "udp"):
            return self.end("deliver", "", f"delivered to {dst} in {netns}")
        listening = self.kernel.listening(netns, self.walk.protocol, dst, port)
        where = f"{self.walk.protocol}/{port} on {dst} in {netns}"
        what = f"{self.walk.protocol}/{port}"
        if listening is False:
            self.hop(netns, "deliver", what, f"nothing listens on {where}", "drop", "NOTHING_LISTENING")
            return self.end("drop", "NOTHING_LISTENING", f"nothing listens on {where}")
        said = "a socket listens" if listening else "cannot tell whether a socket listens"
        self.hop(netns, "deliver", what, f"{said} on {where}", "deliver")
        return self.end("deliver", "", f"delivered to {where}")

    def link(
        self, netns: str, out: Link, nexthop: IPAddress, dst: IPAddress, port: int | None
    ) -> tuple[str, Link] | Walk:
        """Follow the frame out of `out` to whoever has `nexthop`: (its namespace, its link), or the end."""
        if _down(out):
            self.hop(
                netns, "link", out.name, f"{out.name} is {out.state}", "drop", "LINK_DOWN", interface=out.name
            )
            return self.end("drop", "LINK_DOWN", f"{out.name} in {netns} is down")
        if out.kind == "bridge":
            return self.bridge(netns, out, nexthop, dst, port, came_from=None)
        if out.kind == "veth":
            peer = self.index.peer(out)
            if peer is None:
                return self.end(
                    "abort", "NOT_MODELLED", f"the other end of veth {out.name} in {netns} is not visible"
                )
            self.hop(
                netns, "veth", out.name, f"veth {out.name} → {peer.name} in {peer.netns}", interface=out.name
            )
            if _down(peer):
                cause = "BRIDGE_PORT_DOWN" if peer.master else "LINK_DOWN"
                text = f"{peer.name} is {peer.state}"
                self.hop(peer.netns, "link", peer.name, text, "drop", cause, interface=peer.name)
                return self.end("drop", cause, f"{peer.name} in {peer.netns} is down")
            blocked = self.too_big(peer.netns, peer, "the veth's other end")
            if blocked is not None:
                return blocked
            if peer.master:
                bridge = self.index.by_name.get((peer.netns, peer.master))
                if bridge is None:
                    return self.end(
                        "abort", "NOT_MODELLED", f"bridge {peer.master} of {peer.name} is not visible"
                    )
                return self.bridge(peer.netns, bridge, nexthop, dst, port, came_from=peer)
            if self.owns(peer, nexthop):
                return peer.netns, peer
            return self.no_owner(peer.netns, peer.name, nexthop)
        if out.kind == "vxlan" or out.kind is None:
            what = "VXLAN device" if out.kind == "vxlan" else "interface"
            self.hop(
                netns,
                "link",
                out.name,
                f"out of {what} {out.name} towards {nexthop}",
                "forward",
                "LEAVES_HOST",
                interface=out.name,
            )
            return self.end("forward", "LEAVES_HOST", f"leaves this host by {out.name} towards {nexthop}")
        return self.end("abort", "NOT_MODELLED", f"{out.kind} link {out.name} in {netns}")

    def owns(self, link: Link, address: IPAddress) -> bool:
        return (link.netns, link.index) in self.index.owners.get(address, [])

    def bridge(
        self,
        netns: str,
        bridge: Link,
        nexthop: IPAddress,
        dst: IPAddress,
        port: int | None,
        *,
        came_from: Link | None,
    ) -> tuple[str, Link] | Walk:
        """Inside bridge `bridge`: the next hop is the bridge itself, behind one of its ports, or
        behind an uplink to another bridge of the same L2 network (netcore's bridge segments)."""
        if _down(bridge):
            text = f"bridge {bridge.name} is {bridge.state}"
            self.hop(netns, "link", bridge.name, text, "drop", "LINK_DOWN")
            return self.end("drop", "LINK_DOWN", f"{text} in {netns}")
        ingress = came_from.name if came_from else bridge.name  # where the frame enters the bridge
        owners = self.owners_behind(bridge, nexthop, came_from=came_from, seen=set())
        if len(owners) > 1:
            holders = ", ".join(f"{owner.name} in {owner.netns}" for _, owner in owners)
            self.hop(
                netns, "bridge", bridge.name, f"{nexthop} is held by {holders}", "drop", "ADDRESS_CONFLICT"
            )
            return self.end("drop", "ADDRESS_CONFLICT", f"{nexthop} is held by {holders}")
        if not owners:
            ports = self.index.ports.get((netns, bridge.name), [])
            vxlans = [p for p in ports if p.kind == "vxlan" and p is not came_from]  # never back out
            if vxlans:
                return self.vxlan(netns, bridge, vxlans, nexthop, dst, port)
            if self.kernel.ask(netns, nexthop, None, None).type == "local":
                text = f"{nexthop} is local to {netns} (a local route, as a VIP's): the bridge answers ARP"
                self.hop(netns, "bridge", bridge.name, text, interface=came_from.name if came_from else "")
                return netns, bridge
            return self.no_owner(netns, bridge.name, nexthop)
        via, owner = owners[0]
        if via is None:
            self.hop(
                netns,
                "bridge",
                bridge.name,
                f"{nexthop} is the bridge's own address: up to {netns}'s routing",
                interface=came_from.name if came_from else "",
            )
            return netns, bridge
        entry = self.index.fdb.get((netns, bridge.name, owner.mac or ""))
        if entry is None:
            text = f"no FDB entry for {owner.mac}: flooded to every port"
            self.hop(netns, "fdb", bridge.name, text, "forward", "FDB_MISS_FLOOD", interface=ingress)
        elif entry.ifname != via.name:
            text = f"FDB sends {owner.mac} to {entry.ifname}, not {via.name}"
            self.hop(netns, "fdb", bridge.name, text, "drop", "FDB_WRONG_PORT", interface=ingress)
            return self.end("drop", "FDB_WRONG_PORT", f"bridge {bridge.name}: {text}")
        else:
            self.hop(netns, "fdb", bridge.name, f"FDB: {owner.mac} is on port {via.name}", interface=ingress)
        if dst.version == 4 and self.kernel.bridge_filters(netns):  # br_netfilter: iptables sees bridged IPv4
            blocked = self.filtered(netns, "forward", dst, port, bridge.name, bridge.name)
            if blocked is not None:
                return blocked
        if not via.up:
            text = f"bridge port {via.name} is down"
            self.hop(netns, "link", via.name, text, "drop", "BRIDGE_PORT_DOWN", interface=via.name)
            return self.end("drop", "BRIDGE_PORT_DOWN", f"{text} in {netns}")
        blocked = self.too_big(netns, via, "bridge port")
        if blocked is not None:
            return blocked
        far = self.index.peer(via) if via.kind == "veth" else via
        if far is not None and far is not via:
            self.hop(
                netns, "veth", via.name, f"veth {via.name} → {far.name} in {far.netns}", interface=via.name
            )
            if far.master:  # an uplink: the same network goes on in the next bridge
                next_bridge = self.index.by_name.get((far.netns, far.master))
                if next_bridge is None:
                    return self.end(
                        "abort", "NOT_MODELLED", f"bridge {far.master} of {far.name} is not visible"
                    )
                return self.bridge(far.netns, next_bridge, nexthop, dst, port, came_from=far)
            if _down(far):  # the far end down takes its bridge port's carrier with it: name the far end
                text = f"{far.name} is {far.state}"
                self.hop(far.netns, "link", far.name, text, "drop", "LINK_DOWN", interface=far.name)
                return self.end("drop", "LINK_DOWN", f"{far.name} in {far.netns} is down")
            blocked = self.too_big(far.netns, far, "the veth's other end")
            if blocked is not None:
                return blocked
        if _down(via):
            text = f"bridge port {via.name} is {via.state}"
            self.hop(netns, "link", via.name, text, "drop", "BRIDGE_PORT_DOWN", interface=via.name)
            return self.end("drop", "BRIDGE_PORT_DOWN", f"{text} in {netns}")
        return owner.netns, owner

    def owners_behind(
        self, bridge: Link, nexthop: IPAddress, *, came_from: Link | None, seen: set[tuple[str, int]]
    ) -> list[tuple[Link | None, Link]]:
        """Who holds `nexthop` on the bridge's L2 network: (the port of `bridge` it is behind, or None
        for the bridge itself; the link holding it), following uplinks to other bridges."""
        seen.add(bridge.key)
        found: list[tuple[Link | None, Link]] = [(None, bridge)] if self.owns(bridge, nexthop) else []
        for via in self.index.ports.get((bridge.netns, bridge.name), []):
            if via is came_from or via.kind == "vxlan":
                continue
            far = self.index.peer(via) if via.kind == "veth" else via
            if far is None:
                continue
            if far is not via and far.master:
                other = self.index.by_name.get((far.netns, far.master))
                if other is not None and other.key not in seen:
                    behind = self.owners_behind(other, nexthop, came_from=far, seen=seen)
                    found += [(via, owner) for _, owner in behind]
            elif self.owns(far, nexthop):
                found.append((via, far))
        return found

    def vxlan(
        self,
        netns: str,
        bridge: Link,
        ports: list[Link],
        nexthop: IPAddress,
        dst: IPAddress,
        port: int | None,
    ) -> tuple[str, Link] | Walk:
        """No local owner: the next hop may be behind a VXLAN port (a remote node or a flood entry);
        through the tunnel when a namespace here holds the VTEP, else the packet leaves the host."""
        macs = {
            n.mac for (_, _, address), n in self.index.neighbours.items() if address == str(nexthop) and n.mac
        }
        for port_link in ports:
            remotes = [e for e in self.index.vxlan_fdb if e.netns == netns and e.ifindex == port_link.index]
            chosen = [e for e in remotes if e.mac in macs] or [
                e for e in remotes if e.mac == "00:00:00:00:00:00"
            ]
            if chosen:
                vteps = ", ".join(sorted({e.dst or "" for e in chosen}))
                blocked = self.too_big(netns, port_link, "VXLAN device") or self.underlay(
                    netns, port_link, chosen[0].dst
                )
                if blocked is None and dst.version == 4 and self.kernel.bridge_filters(netns):
                    blocked = self.filtered(netns, "forward", dst, port, bridge.name, port_link.name)
                if blocked is not None:
                    return blocked
                flooded = chosen[0].mac not in macs
                how = "the default (flood) entries" if flooded else "its FDB entry"
                text = f"{nexthop} is remote: encapsulated to VTEP {vteps} by {how}"
                entry = self.held_vtep(chosen, port_link, nexthop)
                if entry is None:
                    self.hop(
                        netns,
                        "vxlan",
                        port_link.name,
                        text,
                        "forward",
                        "LEAVES_HOST",
                        interface=port_link.name,
                    )
                    return self.end(
                        "forward", "LEAVES_HOST", f"tunnelled by {port_link.name} to VTEP {vteps}"
                    )
                if len(chosen) > 1:
                    text += f"; followed to {entry.dst}, held here"
                flag = "FDB_MISS_FLOOD" if flooded else ""
                self.hop(netns, "vxlan", port_link.name, text, "forward", flag, interface=port_link.name)
                return self.tunnel(netns, port_link, entry, nexthop, dst, port)
        names = ", ".join(p.name for p in ports)
        text = f"no forwarding entry for {nexthop} and no default destination"
        only = ports[0].name if len(ports) == 1 else ""  # where a probe is seen going out, then dropped
        self.hop(netns, "vxlan", names, text, "drop", "VXLAN_NO_REMOTE", interface=only)
        return self.end("drop", "VXLAN_NO_REMOTE", f"{names} has nowhere to send {nexthop}")

    def held_vtep(self, chosen: list[FdbEntry], device: Link, nexthop: IPAddress) -> FdbEntry | None:
        """Of the entries the frame goes to, the one to follow through the tunnel: its VTEP held by a
        namespace of the snapshot (of several, one with `nexthop` behind its VXLAN device), or None
        when no namespace here holds one (the packet leaves the host)."""
        if device.vxlan is None:
            return None
        held = []
        for entry in chosen:
            try:
                vtep = ipaddress.ip_address(entry.dst or "")
            except ValueError:
                continue
            if vtep in self.index.owners and not vtep.is_multicast:
                held.append(entry)
        if len(held) > 1:
            for entry in held:
                vtep = ipaddress.ip_address(entry.dst or "")
                for netns, _ in self.index.owners[vtep]:
                    for receiver in self.receivers(
                        netns, entry.vni or device.vxlan.vni, device.vxlan.dstport
                    ):
                        bridge = self.index.by_name.get((netns, receiver.master or ""))
                        if bridge is not None and self.owners_behind(
                            bridge, nexthop, came_from=receiver, seen=set()
                        ):
                            return entry
        return held[0] if held else None

    def receivers(self, netns: str, vni: int, dstport: int) -> list[Link]:
        """The VXLAN devices of `netns` that take VNI `vni` on UDP port `dstport`."""
        return [
            x
            for x in self.index.links.values()
            if x.netns == netns and x.vxlan is not None and x.vxlan.vni == vni and x.vxlan.dstport == dstport
        ]

    def tunnel(
        self, netns: str, device: Link, entry: FdbEntry, nexthop: IPAddress, dst: IPAddress, port: int | None
    ) -> tuple[str, Link] | Walk:
        """Through the tunnel of VXLAN `device` to the VTEP of `entry`, held by a namespace here: the
        underlay to it, the VXLAN device there, and on into its bridge towards `nexthop`."""
        assert device.vxlan is not None and entry.dst is not None
        if device.key in self.tunnels:
            return self.loop(netns, device)
        self.tunnels.add(device.key)
        vtep = ipaddress.ip_address(entry.dst)
        vni, dstport = entry.vni or device.vxlan.vni, device.vxlan.dstport
        saved = (self.src, self.protocol, self.size, self.outer)
        self.src = ipaddress.ip_address(device.vxlan.local) if device.vxlan.local else None
        self.protocol, self.outer = "udp", f"underlay to VTEP {vtep}: "
        if self.size is not None:
            self.size += 50 if vtep.version == 4 else 70
        try:
            arrived = self.underlay_path(netns, vtep, dstport)
        finally:
            self.src, self.protocol, self.size, self.outer = saved
        if isinstance(arrived, Walk):
            return arrived
        return self.decapsulate(arrived, vtep, vni, dstport, nexthop, dst, port)

    def underlay_path(self, netns: str, vtep: IPAddress, dstport: int) -> str | Walk:
        """The encapsulated packet from `netns` to the namespace holding `vtep`, routed and bridged
        like any packet (each namespace's kernel asked): that namespace, or the walk's end."""
        here, iif = netns, None
        for _ in range(MAX_HOPS):
            answer = self.kernel.ask(here, vtep, self.src if iif else None, iif.index if iif else None)
            if self.src is None:
                self.src = answer.prefsrc
            if not answer.refused and answer.type == "local":
                arriving = f" (arriving on {iif.name})" if iif else ""
                self.hop(
                    here, "route", str(vtep), f"{vtep} is an address of {here}{arriving}: the remote VTEP"
                )
                blocked = self.filtered(here, "input", vtep, dstport, iif.name if iif else "lo", None)
                return blocked if blocked is not None else here
            step = self.routed(here, vtep, dstport, answer, iif)
            if isinstance(step, Walk):
                return step
            here, iif = step
        return self.end("drop", "LOOP", f"more than {MAX_HOPS} routed hops")

    def decapsulate(
        self,
        netns: str,
        vtep: IPAddress,
        vni: int,
        dstport: int,
        nexthop: IPAddress,
        dst: IPAddress,
        port: int | None,
    ) -> tuple[str, Link] | Walk:
        """At the VTEP's namespace: the VXLAN device that takes VNI `vni` on `dstport`, then its bridge
        (or the device itself, unbridged) towards `nexthop`."""
        found = sorted(
            self.receivers(netns, vni, dstport),
            key=lambda x: (x.vxlan is None or x.vxlan.local not in (None, str(vtep)), x.index),
        )
        if not found:
            text = f"nothing in {netns} takes VNI {vni} on UDP port {dstport}: no VXLAN device with both"
            self.hop(netns, "vxlan", str(vtep), text, "drop", "VXLAN_NO_RECEIVER")
            return self.end("drop", "VXLAN_NO_RECEIVER", f"{netns}: {text}")
        device = found[0]
        if device.key in self.tunnels:
            return self.loop(netns, device)
        self.tunnels.add(device.key)
        if _down(device):
            text = f"VXLAN device {device.name} (VNI {vni}) is {device.state}"
            self.hop(netns, "link", device.name, text, "drop", "LINK_DOWN")
            return self.end("drop", "LINK_DOWN", f"{device.name} in {netns} is down")
        into = f" into bridge {device.master}" if device.master else ""
        text = f"{device.name} (VNI {vni}, UDP port {dstport}) takes it off the tunnel{into}"
        self.hop(netns, "vxlan", device.name, text)
        if device.master:
            bridge = self.index.by_name.get((netns, device.master))
            if bridge is None:
                return self.end(
                    "abort", "NOT_MODELLED", f"bridge {device.master} of {device.name} is not visible"
                )
            return self.bridge(netns, bridge, nexthop, dst, port, came_from=device)
        if self.owns(device, nexthop):
            return netns, device
        return self.no_owner(netns, device.name, nexthop)

    def loop(self, netns: str, device: Link) -> Walk:
        text = f"the frame comes back to VXLAN device {device.name}: the tunnels send it in a circle"
        self.hop(netns, "vxlan", device.name, text, "drop", "LOOP")
        return self.end("drop", "LOOP", f"{netns}: {text}")

    def underlay(self, netns: str, vxlan: Link, vtep: str | None) -> Walk | None:
        """The walk's end when the encapsulated packet does not fit the underlay link towards `vtep`
        (VXLAN adds 50 bytes over IPv4, 70 over IPv6: the classic black hole of an overlay whose MTU
        was not lowered)."""
        if self.size is None or vtep is None:
            return None
        remote = ipaddress.ip_address(vtep)
        answer = self.kernel.ask(netns, remote, None, None)
        out = self.index.links.get((netns, answer.oif or 0))
        if answer.refused or out is None:
            return None
        overhead = 50 if remote.version == 4 else 70
        if self.size + overhead <= out.mtu:
            return None
        text = (
            f"encapsulated by {vxlan.name}, a {self.size}-byte packet is {self.size + overhead} bytes on the"
            f" underlay: more than {out.name}'s MTU {out.mtu}"
        )
        self.hop(netns, "vxlan", vxlan.name, text, "drop", "MTU_TOO_SMALL")
        return self.end("drop", "MTU_TOO_SMALL", f"{netns}: {text}")

    def no_owner(self, netns: str, where: str, nexthop: IPAddress) -> Walk:
        self.hop(netns, "link", where, f"nobody on {where}'s segment has {nexthop}", "drop", "NO_NEIGHBOUR")
        return self.end("drop", "NO_NEIGHBOUR", f"nobody on {where}'s segment has {nexthop}")


def path_walk(
    snapshot: Snapshot,
    *,
    source: str,
    destination: IPAddress,
    port: int | None = None,
    protocol: str = "tcp",
    size: int | None = None,
    kernel: Kernel,
) -> Walk:
    """Walk a packet from namespace `source` to `destination` (port, protocol tcp/udp/icmp); with
    `size`, a packet of that many bytes with don't-fragment set, checked against each link's MTU."""
    walk = Walk(source=source, destination=str(destination), protocol=protocol, port=port)
    return _Walker(snapshot, walk, kernel, size).run(source, destination, port)
