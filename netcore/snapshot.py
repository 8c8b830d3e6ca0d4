"""One call for the whole topology: every namespace's links, addresses, routes,
neighbours and bridge/VXLAN forwarding entries, with veth peers resolved across namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netcore import netns as ns
from netcore.errors import NotFound
from netcore.model import Address, FdbEntry, Link, LinkRef, Namespace, Neighbour, Route, Snapshot
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket

_LINK_DUMP = c.IFINFOMSG.pack(0, 0, 0, 0, 0) + c.attr_u32(c.IFLA_EXT_MASK, c.RTEXT_FILTER_SKIP_STATS)
_ADDR_DUMP = c.IFADDRMSG.pack(0, 0, 0, 0, 0)
_NEIGH_DUMP = c.NDMSG.pack(0, 0, 0, 0, 0)
_FDB_DUMP = c.NDMSG.pack(c.AF_BRIDGE, 0, 0, 0, 0)
_QDISC_DUMP = c.TCMSG.pack(0, 0, 0, 0, 0)
_FDB_KINDS = {"bridge", "vxlan"}
_LOOPBACK_INDEX = 1  # the kernel gives loopback index 1 in every namespace


@dataclass(slots=True)
class NamespaceDump:
    """Everything read from one namespace, before veth peers are resolved."""

    info: ns.NamespaceInfo
    raw_links: list[parse.RawLink] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)
    fdb: list[FdbEntry] = field(default_factory=list)

    names: dict[int, str] = field(default_factory=dict)


def dump_namespace(info: ns.NamespaceInfo, sock: NetlinkSocket, *, neighbours: bool = True) -> NamespaceDump:
    """Read one namespace through a socket that lives in it (neighbours=False skips neighbours and FDB)."""
    out = NamespaceDump(info)
    name = info.name
    for buf, kind, start, end in sock.dump(c.RTM_GETLINK, _LINK_DUMP, what=f"links of {name}"):
        if kind == c.RTM_NEWLINK:
            out.raw_links.append(parse.link(buf, start, end))
    names = out.names = {link.index: link.name for link in out.raw_links}
    if any(link.shaped() for link in out.raw_links):
        shape_links(sock, out.raw_links, what=f"qdiscs of {name}")
    for buf, kind, start, end in sock.dump(c.RTM_GETADDR, _ADDR_DUMP, what=f"addresses of {name}"):
        if kind == c.RTM_NEWADDR and (a := parse.address(name, names, buf, start, end)):
            out.addresses.append(a)
    out.routes = dump_routes(sock, name, names)
    if not neighbours:
        return out
    for buf, kind, start, end in sock.dump(c.RTM_GETNEIGH, _NEIGH_DUMP, what=f"neighbours of {name}"):
        n = parse.neighbour(name, names, buf, start, end) if kind == c.RTM_NEWNEIGH else None
        if n and neighbour_listed(n):
            out.neighbours.append(n)
    if any(x.kind in _FDB_KINDS or x.master is not None for x in out.raw_links):
        links = {x.index: x for x in out.raw_links}
        for buf, kind, start, end in sock.dump(c.RTM_GETNEIGH, _FDB_DUMP, what=f"fdb of {name}"):
            f = parse.fdb(name, names, buf, start, end) if kind == c.RTM_NEWNEIGH else None
            if f and fdb_listed(f, links):
                out.fdb.append(f)
    return out


def shape_links(sock: NetlinkSocket, raw_links: Iterable[parse.RawLink], *, what: str) -> None:
    """Give each shaped link (RawLink.shaped) its root qdisc's settings, from one RTM_GETQDISC dump.
    Read only where a link has a qdisc a user set: most namespaces have none, and pay nothing."""
    by_index = {link.index: link for link in raw_links}
    for buf, kind, start, end in sock.dump(c.RTM_GETQDISC, _QDISC_DUMP, what=what):
        found = parse.qdisc(buf, start, end) if kind == c.RTM_NEWQDISC else None
        link = by_index.get(found.ifindex) if found else None
        if found and link is not None and link.qdisc == found.kind:
            link.shaping = found.shaping


def dump_routes(
    sock: NetlinkSocket, netns: str, names: dict[int, str], *, oif: int | None = None
) -> list[Route]:
    """The main-table routes of a namespace, or only those through link `oif` (a filtered dump)."""
    body = c.RTMSG.pack(0, 0, 0, 0, c.RT_TABLE_MAIN, 0, 0, 0, 0)
    if oif:
        body += c.attr_u32(c.RTA_OIF, oif)
    routes = []
    for buf, kind, start, end in sock.dump(c.RTM_GETROUTE, body, what=f"routes of {netns}"):
        if kind == c.RTM_NEWROUTE and (r := parse.route(netns, names, buf, start, end)):
            routes.append(r)
    return routes


def neighbour_listed(entry: Neighbour) -> bool:
    """Whether a neighbour entry is part of the topology (one definition, for snapshot() and the
    live model). Left out: the entries the kernel makes by itself, and never announces, for
    multicast and broadcast destinations and on loopback (state noarp) — derived from traffic,
    not configuration. A noarp entry a user adds for a unicast address is listed."""
    if entry.state != "noarp":
        return True
    if entry.ifindex == _LOOPBACK_INDEX or entry.address == "255.255.255.255":
        return False
    return not ipaddress.ip_address(entry.address).is_multicast


def fdb_listed(entry: FdbEntry, links: Mapping[int, parse.RawLink]) -> bool:
    """Whether a bridge/VXLAN forwarding entry is part of the topology (snapshot() and the live
    model). "self" entries of anything but a VXLAN device are that device's own address lists, not
    forwarding entries, and the kernel never announces them."""
    if not entry.self_entry:
        return True
    device = links.get(entry.ifindex)
    return device is not None and device.kind == "vxlan"


def resolve_links(dumps: Sequence[NamespaceDump], peer_of: dict[tuple[str, int], LinkRef]) -> list[Link]:
    """Build Link objects: master indexes become names, veth peers come from peer_of."""
    links: list[Link] = []
    for d in dumps:
        names = d.names
        netns_name = d.info.name
        for x in d.raw_links:
            master = names.get(x.master) if x.master else None
            links.append(x.to_link(netns=netns_name, master=master, peer=peer_of.get((netns_name, x.index))))
    return links


def find_peers(
    dumps: Sequence[NamespaceDump], socks: Mapping[str, NetlinkSocket]
) -> dict[tuple[str, int], LinkRef]:
    """Resolve each veth's other end to (namespace, index, name) through IFLA_LINK + link-netnsid.

    A link-netnsid means something only to the namespace that reports it, so a namespace's
    ids for the others come from one batched RTM_GETNSID through its own socket. The host is
    asked first, which resolves every endpoint veth from the host side (both ends at once);
    any other namespace is asked only if it still holds a veth whose peer is unknown.
    """
    by_name = {d.info.name: d for d in dumps}
    fds: dict[str, int] = {}
    try:
        for d in dumps:
            with contextlib.suppress(OSError):
                fds[d.info.name] = os.open(d.info.path, os.O_RDONLY | os.O_CLOEXEC)
        peers: dict[tuple[str, int], LinkRef] = {}
        for d in sorted(dumps, key=lambda d: d.info.kind != "host"):
            here = d.info.name
            ids: dict[int, str] | None = None
            for x in d.raw_links:
                if x.kind != "veth" or not x.link or (here, x.index) in peers:
                    continue
                if x.link_netnsid is None:
                    there: str | None = here
                else:
                    if ids is None:
                        ids = _nsids(socks.get(here), fds, here)
                    there = ids.get(x.link_netnsid)
                if there is None or there not in by_name:
                    continue
                peers[(here, x.index)] = LinkRef(there, x.link, by_name[there].names.get(x.link))
                peers.setdefault((there, x.link), LinkRef(here, x.index, x.name))
        return peers
    finally:
        for fd in fds.values():
            os.close(fd)


def _nsids(sock: NetlinkSocket | None, fds: Mapping[str, int], here: str) -> dict[int, str]:
    """The ids namespace `here` gives the other namespaces (those it has given one)."""
    if sock is None:
        return {}
    names = [n for n in fds if n != here]
    ids = sock.nsids([fds[n] for n in names])
    return {nsid: name for name, nsid in zip(names, ids, strict=True) if nsid >= 0}


def snapshot(*, namespaces: Iterable[str] | None = None, processes: bool = True) -> Snapshot:
    """The whole topology now: every namespace netcore sees, or only those named.

    "host" names the namespace netcore runs in; unnamed namespaces appear as pid:<pid>.
    """
    infos = ns.netns_list(processes=processes)
    if namespaces is not None:
        wanted = set(namespaces)
        known = {i.name for i in infos}
        missing = sorted(wanted - known)
        if missing:
            raise NotFound(f"namespace {missing[0]} does not exist", obj=missing[0])
        infos = [i for i in infos if i.name in wanted]
    host_sock = NetlinkSocket.open()
    others = [i for i in infos if i.kind != "host"]
    socks = dict(zip((i.name for i in others), ns.netns_open_sockets([i.path for i in others]), strict=True))
    try:
        dumps: list[NamespaceDump] = []
        for info in infos:
            sock = host_sock if info.kind == "host" else socks[info.name]
            if sock is not None:
                dumps.append(dump_namespace(info, sock))
        return build(dumps, {ns.HOST: host_sock, **{k: v for k, v in socks.items() if v is not None}})
    finally:
        host_sock.close()
        for sock in socks.values():
            if sock is not None:
                sock.close()


def build(dumps: Sequence[NamespaceDump], socks: Mapping[str, NetlinkSocket]) -> Snapshot:
    """Assemble a Snapshot from per-namespace dumps and a socket inside each of them."""
    return Snapshot(
        namespaces=tuple(Namespace(d.info.name, d.info.inode, d.info.kind) for d in dumps),
        links=tuple(resolve_links(dumps, find_peers(dumps, socks))),
        addresses=tuple(a for d in dumps for a in d.addresses),
        routes=tuple(r for d in dumps for r in d.routes),
        neighbours=tuple(n for d in dumps for n in d.neighbours),
        fdb=tuple(f for d in dumps for f in d.fdb),
    )
