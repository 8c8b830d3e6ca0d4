"""A live model of every namespace's networking, kept current from netlink events.

LiveModel subscribes to link, address, route and neighbour events in the host and in
every namespace it can see (new namespaces are found through inotify on /run/netns and
Docker's netns directory, and by a periodic /proc scan), applies each event to its
state, and yields it as a typed Event. `snapshot()` answers from memory, without
dumping anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from netcore import netns as ns
from netcore.errors import NetcoreError
from netcore.model import Address, FdbEntry, Link, LinkRef, Namespace, Neighbour, Route, Snapshot
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.objects import link_by_index
from netcore.snapshot import dump_namespace

GROUPS = (
    c.RTNLGRP_LINK,
    c.RTNLGRP_NEIGH,
    c.RTNLGRP_IPV4_IFADDR,
    c.RTNLGRP_IPV6_IFADDR,
    c.RTNLGRP_IPV4_ROUTE,
    c.RTNLGRP_IPV6_ROUTE,
)
PROCESS_SCAN_SECONDS = 2.0
REQUERY_DELAY = 0.02

_IN_CREATE, _IN_DELETE, _IN_MOVED_FROM, _IN_MOVED_TO = 0x100, 0x200, 0x40, 0x80
_IN_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True, slots=True)
class Event:
    """One change: kind is namespace, link, address, route, neighbour or fdb; action is new or del."""

    kind: str
    action: str
    netns: str
    obj: Namespace | Link | Address | Route | Neighbour | FdbEntry

    @property
    def type(self) -> str:
        return f"{self.kind}.{self.action}"

    def to_dict(self) -> dict:
        return {"type": self.type, "netns": self.netns, "object": self.obj.to_dict()}

    def __str__(self) -> str:
        o = self.obj
        what = {
            "namespace": lambda: f"{o.name} ({o.kind})",
            "link": lambda: (
                f"{o.name} {o.kind or ''} {o.state}" + (f" master {o.master}" if o.master else "")
            ),
            "address": lambda: f"{o.address}/{o.prefixlen} dev {o.ifname}",
            "route": lambda: f"{o.dst}" + (f" via {o.gateway}" if o.gateway else "") + f" dev {o.dev}",
            "neighbour": lambda: f"{o.address} lladdr {o.mac} dev {o.ifname} {o.state}",
            "fdb": lambda: f"{o.mac} dev {o.ifname}" + (f" dst {o.dst}" if o.dst else ""),
        }[self.kind]()
        return f"{self.type:<16} {self.netns:<20} {what}"


@dataclass(slots=True)
class _Space:
    """What the model knows about one namespace."""

    info: ns.NamespaceInfo
    sock: NetlinkSocket | None = None
    raw: dict[int, parse.RawLink] = field(default_factory=dict)
    links: dict[int, Link] = field(default_factory=dict)
    addresses: dict[tuple, Address] = field(default_factory=dict)
    routes: dict[tuple, Route] = field(default_factory=dict)
    neighbours: dict[tuple, Neighbour] = field(default_factory=dict)
    fdb: dict[tuple, FdbEntry] = field(default_factory=dict)

    def names(self) -> dict[int, str]:
        return {i: x.name for i, x in self.raw.items()}


class LiveModel:
    """The current topology, updated from netlink events; use `async for event in model.events()`."""

    def __init__(self, *, processes: bool = True) -> None:
        self.processes = processes
        self._spaces: dict[str, _Space] = {}
        self._host_sock: NetlinkSocket | None = None
        self._nsid: dict[int, str] = {}  # the host's id for a namespace -> its name
        self._loading = False
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._inotify = -1
        self._watch_dirs: dict[int, str] = {}
        self._tasks: list[asyncio.Task] = []

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current state, from memory."""
        spaces = list(self._spaces.values())
        return Snapshot(
            namespaces=tuple(Namespace(s.info.name, s.info.inode, s.info.kind) for s in spaces),
            links=tuple(x for s in spaces for x in s.links.values()),
            addresses=tuple(x for s in spaces for x in s.addresses.values()),
            routes=tuple(x for s in spaces for x in s.routes.values()),
            neighbours=tuple(x for s in spaces for x in s.neighbours.values()),
            fdb=tuple(x for s in spaces for x in s.fdb.values()),
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe everywhere and load the initial state (events queued meanwhile are kept)."""
        loop = asyncio.get_running_loop()
        self._host_sock = NetlinkSocket.open()
        self._start_inotify(loop)
        self._loading = True
        for info in ns.netns_list(processes=self.processes):
            self._add_space(info, emit=False)
        self._loading = False
        self._refresh_nsids()
        for space in self._spaces.values():  # peers in namespaces loaded after their veth's
            for raw in space.raw.values():
                if raw.kind == "veth" and space.links[raw.index].peer is None:
                    self._set_link(space, raw, False)
        if self.processes:
            self._tasks.append(loop.create_task(self._scan_processes()))

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        for task in self._tasks:
            task.cancel()
        for space in self._spaces.values():
            if space.sock:
                with contextlib.suppress(Exception):
                    loop.remove_reader(space.sock.fileno())
                space.sock.close()
        self._spaces.clear()
        if self._inotify >= 0:
            with contextlib.suppress(Exception):
                loop.remove_reader(self._inotify)
            os.close(self._inotify)
            self._inotify = -1
        if self._host_sock:
            self._host_sock.close()
            self._host_sock = None

    async def events(self) -> AsyncIterator[Event]:
        """Every change from now on, in the order the kernel reported it."""
        while True:
            yield await self._queue.get()

    # -- namespaces ---------------------------------------------------------------------------

    def _add_space(self, info: ns.NamespaceInfo, *, emit: bool) -> None:
        if info.name in self._spaces or any(s.info.inode == info.inode for s in self._spaces.values()):
            return
        try:
            if info.kind == "host":
                sock = NetlinkSocket.open(groups=GROUPS)
                dumper = NetlinkSocket.open()
            else:
                sock = ns.netns_open_socket(path=info.path, groups=GROUPS)
                dumper = ns.netns_open_socket(path=info.path)
        except Exception:
            return  # it vanished or is not a namespace yet: the next scan or inotify event retries
        sock.sock.setblocking(False)
        space = _Space(info, sock)
        try:
            d = dump_namespace(info, dumper)
        except Exception:
            sock.close()
            return
        finally:
            dumper.close()
        self._spaces[info.name] = space
        if emit:
            self._emit("namespace", "new", info.name, Namespace(info.name, info.inode, info.kind))
        space.raw = {x.index: x for x in d.raw_links}
        if not self._loading:
            self._refresh_nsids()
        for x in d.raw_links:
            self._set_link(space, x, emit)
        for kind, items, store in (
            ("address", d.addresses, space.addresses),
            ("route", d.routes, space.routes),
            ("neighbour", d.neighbours, space.neighbours),
            ("fdb", d.fdb, space.fdb),
        ):
            for item in items:
                store[item.key] = item
                if emit:
                    self._emit(kind, "new", info.name, item)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, space)

    def _remove_space(self, name: str) -> None:
        space = self._spaces.pop(name, None)
        if space is None:
            return
        self._nsid = {nsid: other for nsid, other in self._nsid.items() if other != name}
        if space.sock:
            asyncio.get_running_loop().remove_reader(space.sock.fileno())
            space.sock.close()
        for kind, store in (
            ("fdb", space.fdb),
            ("neighbour", space.neighbours),
            ("route", space.routes),
            ("address", space.addresses),
            ("link", space.links),
        ):
            for item in store.values():
                self._emit(kind, "del", name, item)
        self._emit("namespace", "del", name, Namespace(name, space.info.inode, space.info.kind))

    def _refresh_nsids(self) -> None:
        """Ask the host for its ids of the namespaces that have none known yet (ids are given
        lazily, when a veth end first goes there), so resolving peers costs one batched
        query per burst of new namespaces, not one per veth."""
        if self._host_sock is None:
            return
        known = set(self._nsid.values())
        others = [s for s in self._spaces.values() if s.info.kind != "host" and s.info.name not in known]
        fds = []
        try:
            for s in others:
                try:
                    fds.append(os.open(s.info.path, os.O_RDONLY | os.O_CLOEXEC))
                except OSError:
                    fds.append(-1)
            ids = self._host_sock.nsids([fd for fd in fds if fd >= 0])
            live = [s for s, fd in zip(others, fds, strict=True) if fd >= 0]
            self._nsid.update({nsid: s.info.name for s, nsid in zip(live, ids, strict=True) if nsid >= 0})
        finally:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def _start_inotify(self, loop: asyncio.AbstractEventLoop) -> None:
        fd = _libc.inotify_init1(_IN_NONBLOCK_CLOEXEC)
        if fd < 0:
            return
        self._inotify = fd
        os.makedirs(ns.NETNS_DIR, exist_ok=True)
        for directory in (ns.NETNS_DIR, ns.DOCKER_NETNS_DIR):
            mask = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO
            wd = _libc.inotify_add_watch(fd, directory.encode(), mask)
            if wd >= 0:
                self._watch_dirs[wd] = directory
        loop.add_reader(fd, self._on_inotify)

    def _on_inotify(self) -> None:
        try:
            data = os.read(self._inotify, 65536)
        except BlockingIOError:
            return
        pos = 0
        while pos + 16 <= len(data):
            wd, mask, _cookie, length = struct.unpack_from("iIII", data, pos)
            name = data[pos + 16 : pos + 16 + length].rstrip(b"\0").decode(errors="replace")
            pos += 16 + length
            directory = self._watch_dirs.get(wd)
            if directory is None or not name:
                continue
            shown = name if directory == ns.NETNS_DIR else f"docker:{name}"
            if mask & (_IN_DELETE | _IN_MOVED_FROM):
                self._remove_space(shown)
            else:
                kind = "named" if directory == ns.NETNS_DIR else "docker"
                self._when_mounted(os.path.join(directory, name), shown, kind, tries=200)

    def _when_mounted(self, path: str, name: str, kind: str, *, tries: int) -> None:
        """The file appears before the namespace is bind-mounted on it: wait for the mount."""
        try:
            st, parent = os.stat(path), os.stat(os.path.dirname(path))
        except FileNotFoundError:
            return
        if st.st_dev != parent.st_dev:
            self._add_space(ns.NamespaceInfo(name, st.st_ino, kind, path), emit=True)
        elif tries:
            retry = functools.partial(self._when_mounted, path, name, kind, tries=tries - 1)
            asyncio.get_running_loop().call_later(0.005, retry)

    async def _scan_processes(self) -> None:
        while True:
            await asyncio.sleep(PROCESS_SCAN_SECONDS)
            current = {i.inode: i for i in ns.netns_list(processes=True)}
            for space in list(self._spaces.values()):
                if space.info.kind == "process" and space.info.inode not in current:
                    self._remove_space(space.info.name)
            for info in current.values():
                if info.kind == "process":
                    self._add_space(info, emit=True)

    # -- events -------------------------------------------------------------------------------

    def _on_readable(self, space: _Space) -> None:
        try:
            space.sock.read_events(lambda buf, kind, start, end: self._apply(space, buf, kind, start, end))
        except OSError:
            self._resync(space)

    def _resync(self, space: _Space) -> None:
        """Events were lost (ENOBUFS): reload the namespace and report what changed."""
        info = space.info
        self._remove_space(info.name)
        self._add_space(info, emit=True)

    def _apply(self, space: _Space, buf: bytearray, kind: int, start: int, end: int) -> None:
        name = space.info.name
        if kind in (c.RTM_NEWLINK, c.RTM_DELLINK):
            if buf[start] == c.AF_BRIDGE:
                return  # bridge-port news (port state, VLANs), not the link itself: a DELLINK here only
                # means the port left its bridge, and the link's own RTM_NEWLINK says so too
            raw = parse.link(buf, start, end)
            if kind == c.RTM_NEWLINK:
                self._link_changed(space, raw)
            else:
                self._link_gone(space, raw.index)
            return
        names = space.names()
        if kind in (c.RTM_NEWADDR, c.RTM_DELADDR):
            self._store(
                space,
                "address",
                space.addresses,
                kind == c.RTM_NEWADDR,
                parse.address(name, names, buf, start, end),
            )
        elif kind in (c.RTM_NEWROUTE, c.RTM_DELROUTE):
            self._store(
                space,
                "route",
                space.routes,
                kind == c.RTM_NEWROUTE,
                parse.route(name, names, buf, start, end),
            )
        elif kind in (c.RTM_NEWNEIGH, c.RTM_DELNEIGH):
            new = kind == c.RTM_NEWNEIGH
            if buf[start] == c.AF_BRIDGE:
                entry = parse.fdb(name, names, buf, start, end)
                device = space.raw.get(entry.ifindex) if entry else None
                if entry and entry.self_entry and not (device and device.kind == "vxlan"):
                    return  # a device's own address list, left out as in snapshot()
                self._store(space, "fdb", space.fdb, new, entry)
            else:
                self._store(
                    space, "neighbour", space.neighbours, new, parse.neighbour(name, names, buf, start, end)
                )

    def _store(self, space: _Space, kind: str, store: dict, new: bool, item) -> None:
        if item is None:
            return
        if new:
            if store.get(item.key) == item:
                return
            store[item.key] = item
            self._emit(kind, "new", space.info.name, item)
        elif store.pop(item.key, None) is not None:
            self._emit(kind, "del", space.info.name, item)

    def _link_changed(self, space: _Space, raw: parse.RawLink) -> None:
        was = space.raw.get(raw.index)
        space.raw[raw.index] = raw
        if raw.link_netnsid is not None and raw.link_netnsid not in self._nsid:
            self._refresh_nsids()
        if was is None:
            self._name_orphans(space, raw)
        elif was.up and not raw.up:
            # the kernel flushes a downed link's IPv4 routes without announcing each one
            self._drop(space, lambda r: r.oif == raw.index and r.family == socket.AF_INET, routes_only=True)
        self._set_link(space, raw, True)
        if raw.kind == "veth" and not raw.link:
            # a veth end is first announced before its peer exists (IFLA_LINK 0): ask again shortly
            asyncio.get_running_loop().call_later(REQUERY_DELAY, self._requery, space.info.name, raw.index)

    def _link_gone(self, space: _Space, index: int) -> None:
        gone = space.raw.pop(index, None)
        self._drop(space, lambda x: getattr(x, "oif", None) == index or getattr(x, "ifindex", None) == index)
        old = space.links.pop(index, None)
        if old:
            self._emit("link", "del", space.info.name, old)
        # a veth end that moved to another namespace leaves its peer pointing at nothing; the
        # kernel does not announce the peer again, so look at it afresh
        if old is not None and old.peer is not None:
            self._requery(old.peer.netns, old.peer.index)
        elif gone is not None:
            for x in [x for x in space.raw.values() if x.kind == "veth" and x.link == index]:
                self._requery(space.info.name, x.index)

    def _drop(self, space: _Space, doomed: Callable[[object], bool], *, routes_only: bool = False) -> None:
        """Forget (and announce the removal of) the objects of a link the kernel removed silently."""
        stores = (
            (("route", space.routes),)
            if routes_only
            else (
                ("route", space.routes),
                ("address", space.addresses),
                ("neighbour", space.neighbours),
                ("fdb", space.fdb),
            )
        )
        for kind, store in stores:
            for key in [k for k, item in store.items() if doomed(item)]:
                self._emit(kind, "del", space.info.name, store.pop(key))

    def _name_orphans(self, space: _Space, raw: parse.RawLink) -> None:
        """Objects announced before their link (a new bridge's own FDB entry) get its name now."""
        for kind, store in (
            ("address", space.addresses),
            ("neighbour", space.neighbours),
            ("fdb", space.fdb),
        ):
            for key, item in list(store.items()):
                fixes = {}
                if item.ifindex == raw.index and item.ifname is None:
                    fixes["ifname"] = raw.name
                if kind == "fdb" and raw.kind == "bridge" and item.master is None and not item.self_entry:
                    port = space.raw.get(item.ifindex)
                    if item.ifindex == raw.index or (port is not None and port.master == raw.index):
                        fixes["master"] = raw.name
                if fixes:
                    store[key] = dataclasses.replace(item, **fixes)
                    self._emit(kind, "new", space.info.name, store[key])

    def _requery(self, netns: str, index: int) -> None:
        """Read one link again with a plain query (the event socket only listens)."""
        space = self._spaces.get(netns)
        if space is None or index not in space.raw:
            return
        try:
            if space.info.kind == "host" and self._host_sock is not None:
                raw = link_by_index(self._host_sock, index)
            else:
                sock = ns.netns_open_socket(path=space.info.path)
                try:
                    raw = link_by_index(sock, index)
                finally:
                    sock.close()
        except NetcoreError:
            return
        if raw is not None and raw != space.raw.get(index):
            self._link_changed(space, raw)

    def _set_link(self, space: _Space, raw: parse.RawLink, emit: bool) -> None:
        peer = self._peer(space, raw)
        master = space.raw[raw.master].name if raw.master in space.raw else None
        link = raw.to_link(netns=space.info.name, master=master, peer=peer)
        if space.links.get(raw.index) == link:
            return
        space.links[raw.index] = link
        if emit:
            self._emit("link", "new", space.info.name, link)
        if peer and peer.netns in self._spaces:
            other = self._spaces[peer.netns]
            theirs = other.links.get(peer.index)
            if theirs is not None and theirs.peer is None and other.raw.get(peer.index):
                self._set_link(other, other.raw[peer.index], emit)

    def _peer(self, space: _Space, raw: parse.RawLink) -> LinkRef | None:
        if raw.kind != "veth" or not raw.link:
            return None
        if raw.link_netnsid is None:
            there = space
        elif space.info.kind == "host":
            there = self._spaces.get(self._nsid.get(raw.link_netnsid, ""))
        else:
            there = self._peer_space(space, raw)
        if there is None or raw.link not in there.raw:
            return None
        return LinkRef(there.info.name, raw.link, there.raw[raw.link].name)

    def _peer_space(self, space: _Space, raw: parse.RawLink) -> _Space | None:
        """Where a veth of a non-host namespace leads: the host if the host's veth points back
        at it (the common case), else the one other namespace whose veth does; None if unsure."""
        host = self._spaces.get(ns.HOST)
        x = host.raw.get(raw.link) if host else None
        if (
            x
            and x.kind == "veth"
            and x.link == raw.index
            and self._nsid.get(x.link_netnsid) == space.info.name
        ):
            return host
        candidates = [
            s
            for s in self._spaces.values()
            if s is not space
            and s is not host
            and (x := s.raw.get(raw.link)) is not None
            and x.kind == "veth"
            and x.link == raw.index
            and x.link_netnsid is not None
        ]
        return candidates[0] if len(candidates) == 1 else None

    def _emit(self, kind: str, action: str, netns: str, obj) -> None:
        self._queue.put_nowait(Event(kind, action, netns, obj))


async def watch(
    *, processes: bool = True, on_ready: Callable[[LiveModel], None] | None = None
) -> AsyncIterator[Event]:
    """Yield every change across all namespaces until cancelled."""
    model = LiveModel(processes=processes)
    await model.start()
    if on_ready:
        on_ready(model)
    try:
        async for event in model.events():
            yield event
    finally:
        model.close()
