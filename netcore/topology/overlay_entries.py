"""An overlay's forwarding entries compared, without the kernel: what a VXLAN device holds against
what its network's peers and remote nodes ask for.

:func:`entry_changes` is the one comparison behind plan/apply (netcore.topology.overlay, from the
entries the kernel dumps) and live drift (:func:`overlay_drift`, from an agent's state), so both say
the same. On netcore's own VXLAN devices the file is the whole truth for permanent entries: a
permanent entry the file does not ask for is removed (entries the kernel learnt, and the default
entry a device with ``remote`` or ``group`` has, are left alone). Pure: the web app uses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netcore import names
from netcore.names import ZERO_MAC
from netcore.topology.spec import RemoteNodeSpec, TopologySpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_permanent(state: object) -> bool:
    """Whether an entry's state ("reachable", "permanent|noarp", ...) says someone set it (a file, a
    person), not the kernel learning it."""
    return "permanent" in str(state or "").split("|")


#: Bytes VXLAN adds to a frame on the underlay: inner Ethernet 14, VXLAN 8, UDP 8 and the outer IP
#: header (20 for IPv4, 40 for IPv6).
OVERHEAD = {4: 50, 6: 70}


@dataclass(frozen=True, slots=True)
class HeldFdb:
    """One remote of a forwarding entry a VXLAN device holds (its own, "self")."""

    mac: str
    dst: str | None
    vni: int | None  # None: the device's VNI (the kernel leaves NDA_VNI out then)
    permanent: bool


@dataclass(frozen=True, slots=True)
class HeldNeighbour:
    address: str
    mac: str | None
    state: str

    @property
    def permanent(self) -> bool:
        return is_permanent(self.state)


@dataclass(frozen=True, slots=True)
class EntryChange:
    """One forwarding (kind "fdb") or neighbour entry to create, correct or remove on `device`.

    `key` is the MAC (fdb) or the address (neighbour); `value` the dst (fdb) or the lladdr
    (neighbour) wanted, or held for a removal; `was` what an update corrects."""

    action: str  # create, update or delete
    kind: str
    device: str
    key: str
    value: str
    why: str = ""  # "peer", "remote node 198.18.50.11"
    was: str = ""

    @property
    def name(self) -> str:
        """As plan names it: "02:42:c6:12:32:0b dst 198.18.254.12 on ov-mesh.vx"."""
        word = "dst" if self.kind == "fdb" else "lladdr"
        return f"{self.key} {word} {self.value} on {self.device}"

    @property
    def detail(self) -> str:
        """As plan details it: "remote node 198.18.50.11, was dst 198.18.254.13"."""
        return ", ".join(part for part in (self.why, f"was {self.was}" if self.was else "") if part)

    def drift_line(self) -> str:
        """As live drift says it: what the device lacks, has wrong, or has beyond the file."""
        if self.action == "create":
            return f"- {self.kind} {self.name} is gone"
        if self.action == "update":
            return f"~ {self.kind} {self.key} on {self.device} is {self.was}, not {self.value}"
        return f"+ {self.kind} {self.name} is not in the topology"


def entry_changes(
    *,
    device: str,
    peers: Sequence[IPAddress],
    remote_nodes: Sequence[RemoteNodeSpec],
    default_dst: IPAddress | None,
    fdb: Iterable[HeldFdb],
    neighbours: Iterable[HeldNeighbour],
) -> list[EntryChange]:
    """What makes `device`'s entries (`fdb`, `neighbours`) those of its network: removals first,
    then peers, then each remote node's forwarding and neighbour entries, in file order.
    `default_dst` is the network's remote or group, whose all-zeros entry the kernel keeps itself."""
    out: list[EntryChange] = []
    keep = str(default_dst) if default_dst is not None else None
    flood: list[str] = []
    unicast: dict[str, list[HeldFdb]] = {}
    for entry in fdb:
        if entry.mac == ZERO_MAC:
            if entry.dst is not None and entry.dst != keep and entry.dst not in flood:
                flood.append(entry.dst)
        elif not int(entry.mac[:2], 16) & 1:  # multicast MACs: the kernel's and a user's, left alone
            unicast.setdefault(entry.mac, []).append(entry)
    wanted_peers = [str(peer) for peer in peers]
    wanted_macs = {node.mac: node for node in remote_nodes}
    held_neighbours = {n.address: n for n in neighbours}
    wanted_neighbours = {str(node.address): node for node in remote_nodes}

    def change(action: str, kind: str, key: str, value: str, why: str = "", was: str = "") -> None:
        out.append(EntryChange(action, kind, device, key, value, why, was))

    for dst in flood:
        if dst not in wanted_peers:
            change("delete", "fdb", ZERO_MAC, dst)
    for mac, held in unicast.items():
        if mac not in wanted_macs and any(entry.permanent for entry in held):
            change("delete", "fdb", mac, held[0].dst or "none")
    for address, neighbour in held_neighbours.items():
        if address not in wanted_neighbours and neighbour.permanent:
            change("delete", "neighbour", address, neighbour.mac or "none")
    for dst in wanted_peers:
        if dst not in flood:
            change("create", "fdb", ZERO_MAC, dst, "peer")
    for node in remote_nodes:
        why = f"remote node {node.address}"
        vtep = str(node.vtep)
        entries = unicast.get(node.mac)
        if not entries:
            change("create", "fdb", node.mac, vtep, why)
        elif [(e.dst, e.vni, e.permanent) for e in entries] != [(vtep, None, True)]:
            was = " and ".join(_fdb_text(e) for e in entries)
            change("update", "fdb", node.mac, vtep, why, f"dst {was}")
        have = held_neighbours.get(str(node.address))
        if have is None:
            change("create", "neighbour", str(node.address), node.mac, "remote node")
        elif have.mac != node.mac or not have.permanent:
            was = f"lladdr {have.mac or 'none'} ({have.state})"
            change("update", "neighbour", str(node.address), node.mac, "remote node", was)
    return out


def _fdb_text(entry: HeldFdb) -> str:
    text = entry.dst or "none"
    if entry.vni is not None:
        text += f" vni {entry.vni}"
    return text if entry.permanent else f"{text} (learnt)"


# -- live drift -----------------------------------------------------------------------------------

State = Mapping[str, Mapping[str, Mapping[str, Any]]]


def overlay_drift(spec: TopologySpec, state: State) -> list[str]:
    """What the VXLAN devices of `spec`'s vxlan networks lack of their peers and remote nodes, have
    wrong, or have beyond the file, in an agent's `state` (docs/agent-protocol.md, "State": the
    host's links, fdb and neighbours), one line each, in file order; for live drift. A device that is
    gone or down is one line, and its entries are not listed."""
    overlays = [n for n in spec.networks.values() if n.driver == "vxlan"]
    if not overlays:
        return []
    host = next((ns["name"] for ns in state.get("namespaces", {}).values() if ns.get("kind") == "host"), None)
    links = {link["name"]: link for link in state.get("links", {}).values() if link.get("netns") == host}
    wanted = {names.vxlan_name(spec.name, net.name): net for net in overlays}
    indexes = {links[name]["index"]: name for name in wanted if name in links}
    fdb: dict[str, list[HeldFdb]] = {name: [] for name in indexes.values()}
    for e in state.get("fdb", {}).values():
        device = indexes.get(e.get("ifindex")) if e.get("netns") == host and e.get("self_entry") else None
        if device is not None:
            fdb[device].append(HeldFdb(e["mac"], e.get("dst"), e.get("vni"), is_permanent(e.get("state"))))
    neighbours: dict[str, list[HeldNeighbour]] = {name: [] for name in indexes.values()}
    for n in state.get("neighbours", {}).values():
        device = indexes.get(n.get("ifindex")) if n.get("netns") == host else None
        if device is not None:
            neighbours[device].append(HeldNeighbour(n["address"], n.get("mac"), str(n.get("state", ""))))
    lines: list[str] = []
    for device, net in wanted.items():
        link = links.get(device)
        if link is None:
            lines.append(f"- vxlan {device} is gone")
            continue
        if not link.get("up"):
            lines.append(f"~ vxlan {device} is down")
            continue
        changes = entry_changes(
            device=device,
            peers=net.peers,
            remote_nodes=net.remote_nodes,
            default_dst=net.remote or net.group,
            fdb=fdb[device],
            neighbours=neighbours[device],
        )
        lines += [change.drift_line() for change in changes]
    return lines
