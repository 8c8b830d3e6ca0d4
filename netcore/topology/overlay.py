"""Overlays across hosts: a vxlan network's static forwarding state, and the underlay it rides on.

A host's share of an overlay (netcore.topology.span writes them) names the other hosts' VTEPs as
``peers`` and the endpoints living there as ``remote_nodes`` (netcore.topology.spec). On the
network's VXLAN device each peer is a remote of the all-zeros forwarding entry (head-end
replication: broadcast and unknown traffic goes to every peer by unicast), each remote node a
forwarding entry MAC -> VTEP and a permanent neighbour entry address -> MAC, which a device with
the proxy flag (``learning: false``) uses to answer ARP and neighbour solicitations itself.

What a device should hold is compared with what it holds in netcore.topology.overlay_entries (pure,
shared with live drift); here are the kernel's side of it: the entries as dumped (:func:`held_fdb`,
:func:`held_neighbours`) and the requests that make or take back a change.

:func:`resolve_underlay` checks a topology's ``local`` addresses against the host and gives a
vxlan network without ``mtu`` the underlay's MTU less the VXLAN overhead; spec validation cannot
see the kernel, so converge calls it with the state it read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping, Sequence

from netcore import requests as rq
from netcore.errors import InvalidSpec
from netcore.model import Address, FdbEntry, Neighbour
from netcore.netlink.parse import RawLink
from netcore.netlink.socket import Request
from netcore.topology.overlay_entries import (
    OVERHEAD,
    ZERO_MAC,
    EntryChange,
    HeldFdb,
    HeldNeighbour,
    is_permanent,
)
from netcore.topology.spec import IPV6_MIN_MTU, TopologySpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def held_fdb(entries: Iterable[FdbEntry]) -> list[HeldFdb]:
    """A VXLAN device's own forwarding entries (state.read_entries) as entry_changes compares them."""
    return [HeldFdb(e.mac, e.dst, e.vni, is_permanent(e.state)) for e in entries]


def held_neighbours(entries: Iterable[Neighbour]) -> list[HeldNeighbour]:
    return [HeldNeighbour(n.address, n.mac, n.state) for n in entries]


def change_request(change: EntryChange, *, index: int) -> Request:
    """The request that makes `change` on the device with ifindex `index`."""
    if change.kind == "fdb":
        if change.action == "delete":
            dst = ipaddress.ip_address(change.value) if change.key == ZERO_MAC else None
            return rq.fdb_delete(index=index, ifname=change.device, mac=change.key, dst=dst, missing_ok=True)
        return rq.fdb_add(
            index=index,
            ifname=change.device,
            mac=change.key,
            dst=ipaddress.ip_address(change.value),
            replace=change.key != ZERO_MAC,  # a peer is appended to the all-zeros entry's remotes
        )
    address = ipaddress.ip_address(change.key)
    if change.action == "delete":
        return rq.neighbour_delete(index=index, ifname=change.device, address=address, missing_ok=True)
    return rq.neighbour_add(index=index, ifname=change.device, address=address, mac=change.value)


def undo_request(change: EntryChange, *, index: int) -> Request:
    """The request that takes back an entry `change` created."""
    return change_request(dataclasses.replace(change, action="delete"), index=index)


# -- the underlay ---------------------------------------------------------------------------------


def resolve_underlay(
    spec: TopologySpec, *, links: Mapping[str, RawLink], addresses: Sequence[Address]
) -> TopologySpec:
    """`spec` with each vxlan network's MTU settled against the host namespace's interfaces
    (`links` by name, `addresses`): a network with `local` gets, without `mtu`, the MTU of the
    interface holding `local` less the VXLAN overhead (50 bytes over IPv4, 70 over IPv6); an `mtu`
    larger than that, and a `local` no interface holds, are InvalidSpec naming the field."""
    problems: list[str] = []
    networks = dict(spec.networks)
    by_index = {link.index: link for link in links.values()}
    for net in spec.networks.values():
        if net.driver != "vxlan" or net.local is None:
            continue
        path = f"networks.{net.name}"
        holder = next((a for a in addresses if ipaddress.ip_address(a.address) == net.local), None)
        underlay = by_index.get(holder.ifindex) if holder is not None else None
        if underlay is None:
            problems.append(
                f"{path}.local: no interface of the host namespace has {net.local}; local is this host's"
                " VTEP address, which one of its interfaces (the underlay) must hold"
            )
            continue
        overhead = OVERHEAD[net.local.version]
        largest = underlay.mtu - overhead
        why = (
            f"local {net.local} is on {underlay.name} (MTU {underlay.mtu}), and VXLAN over"
            f" IPv{net.local.version} adds {overhead} bytes"
        )
        if net.mtu is not None:
            if net.mtu > largest:
                problems.append(
                    f"{path}.mtu: {net.mtu} is more than the underlay allows: {why}, so at most {largest}"
                )
            continue
        if net.subnet.version == 6 and largest < IPV6_MIN_MTU:
            problems.append(
                f"{path}.mtu: the underlay allows at most {largest} ({why}), below the {IPV6_MIN_MTU} IPv6"
                f" subnet {net.subnet} needs; raise the MTU of {underlay.name}"
            )
            continue
        networks[net.name] = dataclasses.replace(net, mtu=largest)
    if problems:
        error = InvalidSpec("\n".join(f"topology {spec.name}: {p}" for p in problems), obj=spec.name)
        error.problems = problems
        raise error
    return dataclasses.replace(spec, networks=networks)
