"""What the kernel holds now for one topology: the host links it owns and its namespaces.

Only namespaces named `<topology>-*` are opened, and only the host namespace is dumped
whole, so reading a fresh topology's state costs one link dump. The forwarding and neighbour
entries of the topology's VXLAN devices (peers, remote nodes) are read with dumps filtered by
device, two per device that exists.

Ownership is read from the marks netcore sets when it creates something (names alone are
never proof): a link's owner alias, or, for a link cut off between the request that created
it and the one that set its alias, the topology's device group, which the creating request
itself sets; a namespace's alias on `lo`, or the mark on a mount point left without its
namespace (see netcore.netns).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from netcore import names
from netcore import netns as ns
from netcore import requests as rq
from netcore.model import Address, FdbEntry, Neighbour, Route
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.snapshot import NamespaceDump, dump_namespace


@dataclass(slots=True)
class NamespaceState:
    """One existing namespace of the topology (or one that only carries its name)."""

    name: str
    owner: names.OwnerTag | None
    links: dict[str, parse.RawLink] = field(default_factory=dict)
    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    mounted: bool = True  # False: only the mount point is left (a creation or deletion cut short)


@dataclass(slots=True)
class Actual:
    """The host's links by name, the ones this topology owns, and its namespaces by name."""

    topology: str
    host_links: dict[str, parse.RawLink]
    host_addresses: list[Address]
    namespaces: dict[str, NamespaceState]
    # the VXLAN devices' own forwarding entries ("self") and neighbour entries, by device name
    vxlan_fdb: dict[str, list[FdbEntry]] = field(default_factory=dict)
    vxlan_neighbours: dict[str, list[Neighbour]] = field(default_factory=dict)

    def owned(self, name: str) -> names.OwnerTag | None:
        """The owner tag of host link `name` if this topology made it."""
        link = self.host_links.get(name)
        return link_owner(link, self.topology) if link else None

    def owned_host_links(self) -> dict[str, names.OwnerTag]:
        out = {}
        for name in self.host_links:
            tag = self.owned(name)
            if tag:
                out[name] = tag
        return out


_KIND_ROLE = {"bridge": "bridge", "vxlan": "vxlan", "veth": "veth"}


def link_owner(link: parse.RawLink, topology: str) -> names.OwnerTag | None:
    """`topology`'s tag for a link it made, else None.

    The kernel ignores IFLA_IFALIAS in the request that creates a link, so the alias follows in
    the next request; a link without an alias is ours when the creating request's marks are there:
    the topology's device group, a kind netcore creates and the topology's name prefix.
    """
    tag = names.parse_owner_alias(link.alias)
    if tag is not None:
        return tag if tag.topology == topology else None
    if (
        link.alias
        or link.group != names.owner_group(topology)
        or link.kind not in _KIND_ROLE
        or not link.name.startswith(f"{topology}-")
    ):
        return None
    return names.OwnerTag(topology=topology, role=_KIND_ROLE[link.kind])


def _from_dump(d: NamespaceDump) -> NamespaceState:
    links = {x.name: x for x in d.raw_links}
    lo = links.get("lo")
    return NamespaceState(
        d.info.name, names.parse_owner_alias(lo.alias) if lo else None, links, d.addresses, d.routes
    )


def read(
    *,
    topology: str,
    host_sock: NetlinkSocket,
    vxlans: Iterable[str] = (),
    scope: Collection[str] | None = None,
) -> Actual:
    """Read the host namespace and every namespace whose name starts with `<topology>-` (of those,
    only the ones in `scope` when given), and the entries of the VXLAN devices named in `vxlans`
    that exist and are the topology's."""
    home = ns.host_inode()
    host = dump_namespace(
        ns.NamespaceInfo(ns.HOST, home, "host", "/proc/thread-self/ns/net"), host_sock, neighbours=False
    )
    prefix = f"{topology}-"
    try:
        candidates = sorted(
            n for n in os.listdir(ns.NETNS_DIR) if n.startswith(prefix) and (scope is None or n in scope)
        )
    except FileNotFoundError:
        candidates = []
    paths = [ns.netns_path(n) for n in candidates]
    namespaces: dict[str, NamespaceState] = {}
    for name, path, sock in zip(candidates, paths, ns.netns_open_sockets(paths), strict=True):
        if sock is None:
            if os.path.lexists(path):
                mark = names.parse_owner_alias(ns.netns_placeholder_mark(name))
                namespaces[name] = NamespaceState(name, mark, mounted=False)
            continue
        try:
            info = ns.NamespaceInfo(name, os.stat(path).st_ino, "named", path)
            namespaces[name] = _from_dump(dump_namespace(info, sock, neighbours=False))
        finally:
            sock.close()
    actual = Actual(topology, {x.name: x for x in host.raw_links}, host.addresses, namespaces)
    for name in vxlans:
        link = actual.host_links.get(name)
        if link is not None and link.kind == "vxlan" and actual.owned(name) is not None:
            actual.vxlan_fdb[name], actual.vxlan_neighbours[name] = read_entries(host_sock, link)
    return actual


def read_entries(sock: NetlinkSocket, link: parse.RawLink) -> tuple[list[FdbEntry], list[Neighbour]]:
    """A VXLAN device's own forwarding entries and its neighbour entries, through filtered dumps."""
    by_index = {link.index: link.name}
    fdb = []
    for buf, kind, start, end in sock.dump(
        c.RTM_GETNEIGH, rq.fdb_dump(index=link.index), what=f"fdb of {link.name}"
    ):
        entry = parse.fdb(ns.HOST, by_index, buf, start, end) if kind == c.RTM_NEWNEIGH else None
        if entry is not None and entry.self_entry and entry.ifindex == link.index:
            fdb.append(entry)
    neighbours = []
    body = rq.neighbour_dump(index=link.index)
    for buf, kind, start, end in sock.dump(c.RTM_GETNEIGH, body, what=f"neighbours of {link.name}"):
        entry_n = parse.neighbour(ns.HOST, by_index, buf, start, end) if kind == c.RTM_NEWNEIGH else None
        if entry_n is not None and entry_n.ifindex == link.index:
            neighbours.append(entry_n)
    return fdb, neighbours
