"""The overlay consistency check: is a network spanning hosts forwarding where its endpoints really are?

Each host's agent can only say what its own kernel holds. This check looks at the live state of every
host of a spanning vxlan network at once (netcore state as the agents report it: ``{kind: {key:
object}}``) and compares the forwarding state on each host with where each endpoint really lives:
an endpoint is a node's interface whose veth peer is a port of the network's bridge on that host,
with that interface's MAC and addresses. For every host it asks:

- is the network's VXLAN device there, with the VNI and UDP port of the file, bound to a local address
  that an interface of the host holds, with an MTU its underlay interface can carry, and is there a
  route to every other host's VTEP?
- (learning off) for every endpoint living on another host: is there a forwarding entry for its MAC
  pointing at the VTEP of the host where it lives, and a neighbour entry for its address? Are there
  entries for MACs that live nowhere else any more (stale), or a MAC living on two hosts?
- is there a head-end replication entry for every other host's VTEP?

Each finding names the host, the object, what was expected and what was found, and whether applying
that host's share again repairs it. Kinds form a fixed vocabulary (FINDING_KINDS).

The check reads each host's state through its digest (host_digest: the few objects the check needs),
which a caller may keep per saved state: after an event on one host only that host is digested again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netcore import names
from netcore.topology.overlay_entries import OVERHEAD, ZERO_MAC, is_permanent

MAX_SEGMENTS = 64  # bridges of one network netcore may chain (its further segments)

FINDING_KINDS = {
    "DEVICE_MISSING": "the host has no VXLAN device for the network: apply the host's share",
    "VNI_MISMATCH": "the device's VNI is not the network's: its frames reach no other host",
    "DSTPORT_MISMATCH": "the device's UDP port is not the network's: the other hosts drop its frames",
    "VTEP_NOT_LOCAL": "no interface of the host holds the device's local address",
    "MTU_TOO_BIG": "the underlay cannot carry the device's MTU plus the VXLAN overhead",
    "NO_UNDERLAY_ROUTE": "the host has no route to another host's VTEP",
    "MISSING_FLOOD": "no head-end replication entry for a peer: broadcasts do not reach it",
    "MISSING_FDB": "no forwarding entry for a remote endpoint's MAC",
    "WRONG_VTEP": "the forwarding entry of a remote endpoint's MAC points at another host",
    "STALE_FDB": "a forwarding entry for a MAC that lives on no other host of the network",
    "MISSING_NEIGHBOUR": "no neighbour entry for a remote endpoint's address: ARP is not answered",
    "WRONG_NEIGHBOUR": "the neighbour entry of a remote endpoint's address has another MAC",
    "STALE_NEIGHBOUR": "a neighbour entry for an address no endpoint of another host has",
    "DUPLICATE_MAC": "the same MAC lives on two endpoints",
}


@dataclass(frozen=True)
class HostView:
    """One host of the network: its name, its VTEP address in the file, its live state."""

    name: str
    vtep: str
    state: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Finding:
    host: str
    kind: str  # one of FINDING_KINDS
    object: str  # e.g. "fdb 02:42:c6:12:32:03 on ov-mesh.vx"
    expected: str
    found: str
    repairable: bool  # applying the host's share again puts it right

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "kind": self.kind,
            "object": self.object,
            "expected": self.expected,
            "found": self.found,
            "repairable": self.repairable,
            "why": FINDING_KINDS[self.kind],
        }


@dataclass(frozen=True)
class Endpoint:
    host: str
    mac: str
    addresses: tuple[str, ...]
    where: str  # "namespace/interface", for messages


@dataclass(frozen=True)
class HostDigest:
    """What the check needs of one host's live state for one network (host_digest). Worked out once
    per state its agent saves: a check after an event on one host digests that host's state only and
    reuses the others' digests, which is what makes the check incremental."""

    name: str
    vtep: str
    device: Mapping[str, Any] | None  # the network's VXLAN device, if the host has it
    endpoints: tuple[Endpoint, ...]  # the network's endpoints living on this host
    fdb: tuple[Mapping[str, Any], ...]  # the device's own forwarding entries with a remote
    neighbours: tuple[Mapping[str, Any], ...]  # the device's permanent neighbour entries
    holder: Mapping[str, Any] | None  # the host link holding the device's local address
    routes: tuple[Mapping[str, Any], ...]  # the host namespace's routes


def host_digest(view: HostView, *, topology: str, network: str, subnet: str) -> HostDigest:
    """The parts of the host's state the check of `network` (of `topology`, on `subnet`) reads."""
    bridges = {names.bridge_name(topology, network, segment) for segment in range(MAX_SEGMENTS)}
    device = _device(view.state, names.vxlan_name(topology, network))
    local = device["vxlan"].get("local") if device is not None else None
    return HostDigest(
        name=view.name,
        vtep=view.vtep,
        device=device,
        endpoints=tuple(_endpoints(view, bridges, ipaddress.ip_network(subnet))),
        fdb=tuple(
            # the device's own entries (NTF_SELF) with a remote: the bridge's entries for the port (its
            # own MAC, what the bridge learnt) are not forwarding state of the overlay
            e
            for e in _objects(view.state, "fdb")
            if device is not None
            and e.get("netns") == "host"
            and e.get("ifindex") == device.get("index")
            and e.get("self_entry")
            and e.get("dst")
        ),
        neighbours=tuple(
            n
            for n in _objects(view.state, "neighbours")
            if device is not None
            and n.get("netns") == "host"
            and n.get("ifindex") == device.get("index")
            and is_permanent(n.get("state"))
        ),
        holder=_holder(view.state, local) if local else None,
        routes=tuple(r for r in _objects(view.state, "routes") if r.get("netns") == "host"),
    )


def overlay_check(
    *,
    topology: str,
    network: str,
    subnet: str,
    vni: int,
    dstport: int,
    learning: bool,
    hosts: Iterable[HostView | HostDigest],
) -> list[Finding]:
    """Every finding about one spanning network, host by host (hosts in the order given, each its
    live state or the digest of it)."""
    views = [
        h if isinstance(h, HostDigest) else host_digest(h, topology=topology, network=network, subnet=subnet)
        for h in hosts
    ]
    net = ipaddress.ip_network(subnet)
    device_name = names.vxlan_name(topology, network)
    endpoints = [e for view in views for e in view.endpoints]
    findings: list[Finding] = []
    owners: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        owners.setdefault(endpoint.mac, []).append(endpoint)
    for mac, where in owners.items():
        if len(where) > 1:
            for endpoint in where:
                others = ", ".join(f"{e.host} {e.where}" for e in where if e is not endpoint)
                findings.append(
                    Finding(
                        endpoint.host,
                        "DUPLICATE_MAC",
                        f"{mac} on {endpoint.where}",
                        "one endpoint",
                        others,
                        False,
                    )
                )
    for view in views:
        if view.device is None:
            findings.append(
                Finding(view.name, "DEVICE_MISSING", device_name, f"VXLAN device, VNI {vni}", "none", True)
            )
            continue
        findings += _device_findings(view, view.device, vni=vni, dstport=dstport, peers=views)
        remote = [e for e in endpoints if e.host != view.name]
        findings += _fdb_findings(view, view.device, remote, views, learning=learning)
        if not learning:
            findings += _neighbour_findings(view, view.device, remote, net)
    return findings


def _objects(state: Mapping[str, Mapping[str, Any]], kind: str) -> Iterable[Mapping[str, Any]]:
    return (state.get(kind) or {}).values()


def _device(state: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    for link in _objects(state, "links"):
        if link.get("netns") == "host" and link.get("name") == name and link.get("vxlan"):
            return link
    return None


def _endpoints(view: HostView, bridges: set[str], subnet: ipaddress._BaseNetwork) -> list[Endpoint]:
    """The endpoints of the network living on this host: node interfaces whose veth peer is a port of
    one of the network's bridges, with their MAC and their addresses in the subnet."""
    links = {(link.get("netns"), link.get("index")): link for link in _objects(view.state, "links")}
    addresses: dict[tuple[Any, Any], list[str]] = {}
    for address in _objects(view.state, "addresses"):
        text = str(address.get("address"))
        if _inside(text, subnet):
            addresses.setdefault((address.get("netns"), address.get("ifindex")), []).append(text)
    found = []
    for key, link in links.items():
        peer = link.get("peer")
        if key[0] == "host" or not peer or not link.get("mac"):
            continue
        port = links.get((peer.get("netns"), peer.get("index")))
        if port is not None and port.get("master") in bridges:
            found.append(
                Endpoint(
                    view.name,
                    str(link["mac"]).lower(),
                    tuple(addresses.get(key, ())),
                    f"{key[0]}/{link.get('name')}",
                )
            )
    return found


def _inside(text: str, subnet: ipaddress._BaseNetwork) -> bool:
    try:
        return ipaddress.ip_address(text) in subnet
    except ValueError:
        return False


def _device_findings(
    view: HostDigest, device: Mapping[str, Any], *, vni: int, dstport: int, peers: list[HostDigest]
) -> list[Finding]:
    info = device["vxlan"]
    name = str(device["name"])
    found = []
    if info.get("vni") != vni:
        found.append(Finding(view.name, "VNI_MISMATCH", name, str(vni), str(info.get("vni")), True))
    if info.get("dstport") != dstport:
        found.append(
            Finding(view.name, "DSTPORT_MISMATCH", name, str(dstport), str(info.get("dstport")), True)
        )
    local = info.get("local")
    holder = view.holder
    if holder is None:
        expected = f"an interface holding {local}" if local else f"local {view.vtep}"
        found.append(Finding(view.name, "VTEP_NOT_LOCAL", name, expected, "none", False))
    else:
        family = ipaddress.ip_address(local).version
        most = int(holder.get("mtu", 0)) - OVERHEAD[family]
        if int(device.get("mtu", 0)) > most:
            found.append(
                Finding(
                    view.name,
                    "MTU_TOO_BIG",
                    name,
                    f"MTU at most {most} ({holder.get('name')} {holder.get('mtu')} less {OVERHEAD[family]})",
                    f"MTU {device.get('mtu')}",
                    True,
                )
            )
    for peer in peers:
        if peer.name != view.name and not _routed(view.routes, peer.vtep):
            found.append(
                Finding(
                    view.name,
                    "NO_UNDERLAY_ROUTE",
                    f"route to {peer.vtep}",
                    f"a route to {peer.name}'s VTEP",
                    "none",
                    False,
                )
            )
    return found


def _holder(state: Mapping[str, Mapping[str, Any]], address: str) -> Mapping[str, Any] | None:
    """The host-namespace link holding `address`, or None."""
    for held in _objects(state, "addresses"):
        if held.get("netns") == "host" and held.get("address") == address:
            for link in _objects(state, "links"):
                if link.get("netns") == "host" and link.get("index") == held.get("ifindex"):
                    return link
    return None


def _routed(routes: Iterable[Mapping[str, Any]], address: str) -> bool:
    target = ipaddress.ip_address(address)
    for route in routes:
        dst = route.get("dst")
        if dst == "default" and route.get("family") in (None, 2 if target.version == 4 else 10):
            return True
        try:
            if dst != "default" and target in ipaddress.ip_network(str(dst), strict=False):
                return True
        except ValueError:
            continue
    return False


def _fdb_findings(
    view: HostDigest,
    device: Mapping[str, Any],
    remote: list[Endpoint],
    views: list[HostDigest],
    *,
    learning: bool,
) -> list[Finding]:
    name = str(device["name"])
    entries = view.fdb
    floods = {e.get("dst") for e in entries if e.get("mac") == ZERO_MAC}
    found = [
        Finding(
            view.name,
            "MISSING_FLOOD",
            f"fdb {ZERO_MAC} dst {peer.vtep} on {name}",
            f"dst {peer.vtep}",
            "none",
            True,
        )
        for peer in views
        if peer.name != view.name and peer.vtep not in floods
    ]
    if learning:
        return found
    vteps = {v.name: v.vtep for v in views}
    held = {
        str(e.get("mac")).lower(): e
        for e in entries
        if e.get("mac") != ZERO_MAC and is_permanent(e.get("state"))
    }
    for endpoint in remote:
        entry = held.pop(endpoint.mac, None)
        where = vteps[endpoint.host]
        what = f"fdb {endpoint.mac} on {name}"
        if entry is None:
            found.append(
                Finding(view.name, "MISSING_FDB", what, f"dst {where} ({endpoint.host})", "none", True)
            )
        elif entry.get("dst") != where:
            found.append(
                Finding(
                    view.name,
                    "WRONG_VTEP",
                    what,
                    f"dst {where} ({endpoint.host})",
                    f"dst {entry.get('dst')}",
                    True,
                )
            )
    for mac, entry in held.items():
        found.append(
            Finding(
                view.name, "STALE_FDB", f"fdb {mac} on {name}", "no entry", f"dst {entry.get('dst')}", True
            )
        )
    return found


def _neighbour_findings(
    view: HostDigest, device: Mapping[str, Any], remote: list[Endpoint], subnet: ipaddress._BaseNetwork
) -> list[Finding]:
    name = str(device["name"])
    held = {str(n.get("address")): n for n in view.neighbours}
    found = []
    for endpoint in remote:
        for address in endpoint.addresses:
            entry = held.pop(address, None)
            what = f"neighbour {address} on {name}"
            if entry is None:
                found.append(
                    Finding(view.name, "MISSING_NEIGHBOUR", what, f"lladdr {endpoint.mac}", "none", True)
                )
            elif str(entry.get("mac")).lower() != endpoint.mac:
                found.append(
                    Finding(
                        view.name,
                        "WRONG_NEIGHBOUR",
                        what,
                        f"lladdr {endpoint.mac}",
                        f"lladdr {entry.get('mac')}",
                        True,
                    )
                )
    for address, entry in held.items():
        if _inside(address, subnet):
            found.append(
                Finding(
                    view.name,
                    "STALE_NEIGHBOUR",
                    f"neighbour {address} on {name}",
                    "no entry",
                    f"lladdr {entry.get('mac')}",
                    True,
                )
            )
    return found
