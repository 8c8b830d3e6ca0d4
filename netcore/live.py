"""A live model of every namespace's networking, kept current from netlink events.

LiveModel subscribes to link, address, route and neighbour events in the host and in
every namespace it can see (new namespaces are found through inotify on /run/netns and
Docker's netns directory, and by a periodic /proc scan), applies each event to its
state, and yields it as a typed Event. `snapshot()` answers from memory, without
dumping anything; `refresh()` re-reads the kernel and reconciles the model with it.

The kernel does not announce everything, so the model also follows what it changes
silently: veth peers are resolved through each namespace's own ids for the others (as
`snapshot()` does) and resolved again when a namespace or a link they point at comes or
goes (a veth event naming another peer than the model holds, which may predate a move the
model has read already, is checked with the kernel); a link's routes are re-read (one
filtered dump of that link) when a link goes up or down or an address is removed, which
flushes routes without RTM_DELROUTE; lost events (ENOBUFS, a malformed message) are
answered by a re-dump of that namespace that reports only the differences. A link's
shaping (its root qdisc) changes without a link event: qdisc events update it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import functools
import os
import resource
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netcore import netns as ns
from netcore.errors import NetcoreError
from netcore.model import Address, FdbEntry, Link, LinkRef, Namespace, Neighbour, Route, Snapshot
from netcore.names import ZERO_MAC
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.objects import link_by_index
from netcore.snapshot import NamespaceDump, dump_namespace, dump_routes, fdb_listed, neighbour_listed

GROUPS = (
    c.RTNLGRP_LINK,
    c.RTNLGRP_NEIGH,
    c.RTNLGRP_IPV4_IFADDR,
    c.RTNLGRP_IPV6_IFADDR,
    c.RTNLGRP_IPV4_ROUTE,
    c.RTNLGRP_IPV6_ROUTE,
    c.RTNLGRP_TC,  # root qdiscs: a link's shaping (no link event says it changed)
)
PROCESS_SCAN_SECONDS = 2.0
REQUERY_DELAY = 0.02
RESYNC_RETRY = 0.1  # seconds before a failed re-dump of a namespace is tried again
REROUTE_AGAIN = 0.25  # seconds after the first re-read of a link's routes, the second
REROUTE_WHOLE = 64  # more links than this to re-read at once: one route dump of the namespace instead

_IN_CREATE, _IN_DELETE, _IN_MOVED_FROM, _IN_MOVED_TO = 0x100, 0x200, 0x40, 0x80
_IN_NONBLOCK_CLOEXEC = 0o4000 | 0o2000000
_SO_RCVBUFFORCE = 33
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
        return f"{self.type:<16} {self.netns:<20} {_describe(self.obj)}"


def _describe(o: Namespace | Link | Address | Route | Neighbour | FdbEntry) -> str:
    """One line about an object, as `ip` would show it."""
    if isinstance(o, Namespace):
        return f"{o.name} ({o.kind})"
    if isinstance(o, Link):
        return f"{o.name} {o.kind or ''} {o.state}" + (f" master {o.master}" if o.master else "")
    if isinstance(o, Address):
        return f"{o.address}/{o.prefixlen} dev {o.ifname}"
    if isinstance(o, Route):
        return f"{o.dst}" + (f" via {o.gateway}" if o.gateway else "") + f" dev {o.dev}"
    if isinstance(o, Neighbour):
        return f"{o.address} lladdr {o.mac} dev {o.ifname} {o.state}"
    return f"{o.mac} dev {o.ifname}" + (f" dst {o.dst}" if o.dst else "")


def _one_remote(entry: FdbEntry) -> bool:
    """A VXLAN device's own entry with a remote, for a MAC other than all zeros: netcore keeps one
    remote for it, which `bridge fdb replace` changes in place (see LiveModel._remote_replaced)."""
    return entry.self_entry and bool(entry.dst) and entry.mac != ZERO_MAC


@dataclass(slots=True)
class _Space:
    """What the model knows about one namespace."""

    info: ns.NamespaceInfo
    sock: NetlinkSocket  # subscribed to events; never used for requests
    query: NetlinkSocket  # requests: ids, link and route re-reads, re-dumps
    raw: dict[int, parse.RawLink] = field(default_factory=dict)
    links: dict[int, Link] = field(default_factory=dict)
    addresses: dict[tuple, Address] = field(default_factory=dict)
    routes: dict[tuple, Route] = field(default_factory=dict)
    neighbours: dict[tuple, Neighbour] = field(default_factory=dict)
    fdb: dict[tuple, FdbEntry] = field(default_factory=dict)
    # (ifindex, mac, vlan) -> keys in `fdb` of a VXLAN device's own entries for a MAC with a remote:
    # the kernel changes such an entry's remote in place (`bridge fdb replace`) and tells only the new
    # one, so the entry it replaced is found here (keys may be stale: they are checked in `fdb`)
    remotes: dict[tuple, set[tuple]] = field(default_factory=dict)
    nsids: dict[int, str] = field(default_factory=dict)  # the id this namespace gives another -> its name
    reroute: set[int] = field(default_factory=set)  # links whose routes are to be re-read
    resync_pending: bool = False

    def names(self) -> dict[int, str]:
        return {i: x.name for i, x in self.raw.items()}

    def stores(self) -> tuple[tuple[str, dict[tuple, Any]], ...]:
        return (
            ("address", self.addresses),
            ("route", self.routes),
            ("neighbour", self.neighbours),
            ("fdb", self.fdb),
        )


def _still_mounted(path: str) -> bool:
    try:
        return ns.is_netns_mount(path)
    except OSError:
        return False


class LiveModel:
    """The current topology, updated from netlink events; use `async for event in model.events()`.

    `event_rcvbuf` sets the event sockets' receive buffer (bytes); tests make it small to
    force lost events.
    """

    def __init__(self, *, processes: bool = True, event_rcvbuf: int | None = None) -> None:
        self.processes = processes
        self.event_rcvbuf = event_rcvbuf
        self._spaces: dict[str, _Space] = {}
        self._unresolved: set[tuple[str, int]] = set()  # veths whose peer is not known yet
        self._referrer: dict[tuple[str, int], tuple[str, int]] = {}  # a veth end -> the end naming it
        # veths whose other end is in another namespace, by (index, the other end's index): where
        # they are; the candidates for a veth's other end are found here, not by a scan
        self._ends: dict[tuple[int, int], set[str]] = {}
        self._loading = False
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._inotify = -1
        self._watch_dirs: dict[int, str] = {}
        self._tasks: list[asyncio.Task] = []
        self._held: dict[str, tuple[str, str]] | None = None  # namespaces seen while held

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

    def refresh(self) -> Snapshot:
        """Re-read every namespace from the kernel, reconcile the model with it (the differences
        are emitted as events), and return the snapshot. For a state sent as the truth (an
        agent's snapshot on connect or on request), not for answering from memory."""
        current = {i.inode: i for i in ns.netns_list(processes=self.processes)}
        for space in list(self._spaces.values()):
            if space.info.inode not in current:
                self._remove_space(space.info.name)
        known = {s.info.inode for s in self._spaces.values()}
        for space in list(self._spaces.values()):
            self._redump(space)
        for inode, info in current.items():
            if inode not in known:
                self._add_space(info, emit=True)
        self._resolve_unresolved(emit=True)
        return self.snapshot()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe everywhere and load the initial state (events queued meanwhile are kept)."""
        _raise_fd_limit()
        loop = asyncio.get_running_loop()
        self._start_inotify(loop)
        self._loading = True
        for info in ns.netns_list(processes=self.processes):
            self._add_space(info, emit=False)
        self._loading = False
        self._resolve_unresolved(emit=False)
        if self.processes:
            self._tasks.append(loop.create_task(self._scan_processes()))

    def close(self) -> None:
        loop = asyncio.get_event_loop()
        for task in self._tasks:
            task.cancel()
        for space in self._spaces.values():
            self._close_space(space, loop)
        self._spaces.clear()
        if self._inotify >= 0:
            with contextlib.suppress(Exception):
                loop.remove_reader(self._inotify)
            os.close(self._inotify)
            self._inotify = -1

    def hold(self) -> None:
        """Read no events, and note new namespaces without reading them, until release(): while an
        apply creates hundreds of namespaces, reading each as it appears (a trip to the namespace
        worker, a socket, a dump) and every event of the host competes with the apply for the same
        worker thread and the interpreter, and doubles its time. Events the kernel drops meanwhile
        are recovered as always: a re-dump of that namespace."""
        if self._held is not None:
            return
        self._held = {}
        loop = asyncio.get_running_loop()
        for space in self._spaces.values():
            loop.remove_reader(space.sock.fileno())

    def release(self) -> None:
        """Read what the held namespaces' events say (a re-dump where the kernel dropped some), then
        the namespaces that appeared meanwhile (and are still there), in the order seen."""
        held, self._held = self._held, None
        if held is None:
            return
        loop = asyncio.get_running_loop()
        for space in list(self._spaces.values()):
            loop.add_reader(space.sock.fileno(), self._on_readable, space)
            self._on_readable(space)
        for name, (path, kind) in held.items():
            self._when_mounted(path, name, kind, tries=200)

    def catch_up(self) -> None:
        """Read the events the kernel has queued for every namespace now, not when the loop next polls
        them: a change just made is in the model (and in take_events) before its result is told."""
        for space in list(self._spaces.values()):
            self._on_readable(space)

    def take_events(self) -> list[Event]:
        """The events queued and not yet taken by events(), taken now (to send them at once)."""
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken

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
                sock, query = _open_pair()
            else:
                sock, query = ns.netns_run(path=info.path, fn=_open_pair)  # one trip to the worker
        except (OSError, NetcoreError):
            return  # it vanished or is not a namespace yet: the next scan or inotify event retries
        space = _Space(info, sock, query)
        try:
            d = dump_namespace(info, query)
        except (OSError, NetcoreError):
            self._close_space(space, None)
            return
        if self.event_rcvbuf:
            sock.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self.event_rcvbuf)
        sock.sock.setblocking(False)
        self._spaces[info.name] = space
        if emit:
            self._emit("namespace", "new", info.name, Namespace(info.name, info.inode, info.kind))
        self._reconcile(space, d, emit=emit)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable, space)

    def _remove_space(self, name: str) -> None:
        space = self._spaces.pop(name, None)
        if space is None:
            return
        self._close_space(space, asyncio.get_running_loop())
        for kind, store in reversed(space.stores()):
            for item in store.values():
                self._emit(kind, "del", name, item)
        for link in space.links.values():
            self._emit("link", "del", name, link)
        self._emit("namespace", "del", name, Namespace(name, space.info.inode, space.info.kind))
        for index in list(space.raw):
            self._drop_raw(space, index)
        self._unresolved = {key for key in self._unresolved if key[0] != name}
        for key in [k for k in self._referrer if k[0] == name]:
            self._referrer.pop(key)
        # a veth whose other end was there is read again: that end may have moved out just before the
        # namespace went, which changed this end silently, and its RTM_DELLINK there (what tells the
        # model to read this end again, see _forget_link) is not read now
        for other in list(self._spaces.values()):
            ids = {i for i, n in other.nsids.items() if n == name}
            if ids:
                other.nsids = {i: n for i, n in other.nsids.items() if n != name}
                for index in [i for i, x in other.raw.items() if x.kind == "veth" and x.link_netnsid in ids]:
                    self._requery(other.info.name, index)

    def _close_space(self, space: _Space, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(space.sock.fileno())
        space.sock.close()
        space.query.close()

    def _start_inotify(self, loop: asyncio.AbstractEventLoop) -> None:
        fd = _libc.inotify_init1(_IN_NONBLOCK_CLOEXEC)
        if fd < 0:
            return
        self._inotify = fd
        os.makedirs(ns.NETNS_DIR, exist_ok=True)
        self._watch_missing()
        loop.add_reader(fd, self._on_inotify)

    def _watch_missing(self) -> list[str]:
        """Watch the namespace directories not watched yet that exist now; answers those."""
        added = []
        for directory in (ns.NETNS_DIR, ns.DOCKER_NETNS_DIR):
            if directory in self._watch_dirs.values():
                continue
            mask = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO
            wd = _libc.inotify_add_watch(self._inotify, directory.encode(), mask)
            if wd >= 0:
                self._watch_dirs[wd] = directory
                added.append(directory)
        return added

    def docker_changed(self) -> None:
        """Docker changed something: drop its namespaces that are no longer mounted (it unmounts a
        stopped container's namespace at once and removes the file only later, which is all inotify
        sees; the model's own sockets must not keep the namespace alive), and follow its directory
        if it appeared since the start (dockerd makes it with its first container)."""
        for space in list(self._spaces.values()):
            if space.info.kind == "docker" and not _still_mounted(space.info.path):
                self._remove_space(space.info.name)
        if self._inotify < 0:
            return
        for directory in self._watch_missing():
            for name in sorted(n for n in os.listdir(directory) if ns.listed(directory, n)):
                shown = name if directory == ns.NETNS_DIR else f"docker:{name}"
                kind = "named" if directory == ns.NETNS_DIR else "docker"
                self._when_mounted(os.path.join(directory, name), shown, kind, tries=200)

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
            if directory is None or not name or not ns.listed(directory, name):
                continue
            shown = name if directory == ns.NETNS_DIR else f"docker:{name}"
            if mask & (_IN_DELETE | _IN_MOVED_FROM):
                if self._held is not None:
                    self._held.pop(shown, None)
                self._remove_space(shown)
            else:
                kind = "named" if directory == ns.NETNS_DIR else "docker"
                if self._held is not None:
                    self._held[shown] = (os.path.join(directory, name), kind)
                else:
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

    # -- lost events: re-dump and report the differences ----------------------------------------

    def _on_readable(self, space: _Space) -> None:
        lost = False

        def handle(buf: bytearray, kind: int, start: int, end: int) -> None:
            nonlocal lost
            try:
                self._apply(space, buf, kind, start, end)
            except NetcoreError:
                lost = True  # one message could not be read: the rest of the batch still applies

        try:
            space.sock.read_events(handle, what=f"events of {space.info.name}")
        except (OSError, NetcoreError):
            lost = True
        if lost and self._spaces.get(space.info.name) is space:
            # what is still queued predates the re-dump, and the events that followed it are lost:
            # applied after the re-dump it would take the model back in time
            space.sock.discard_queued()
            self._resync(space)

    def _resync(self, space: _Space) -> None:
        """Re-dump the namespace and apply only the differences, then resolve what waits on them."""
        if self._redump(space):
            self._resolve_unresolved(emit=True)

    def _redump(self, space: _Space) -> bool:
        """Re-dump the namespace and apply only the differences; on failure keep what is known and
        try again shortly (unless the namespace itself is gone, which inotify or the scan reports)."""
        space.resync_pending = False
        try:
            d = dump_namespace(space.info, space.query)
        except (OSError, NetcoreError):
            if self._spaces.get(space.info.name) is space and os.path.exists(space.info.path):
                space.resync_pending = True
                asyncio.get_running_loop().call_later(RESYNC_RETRY, self._resync_again, space)
            return False
        self._reconcile(space, d, emit=True)
        return True

    def _resync_again(self, space: _Space) -> None:
        if space.resync_pending and self._spaces.get(space.info.name) is space:
            self._resync(space)

    def _reconcile(self, space: _Space, d: NamespaceDump, *, emit: bool) -> None:
        """Make the namespace's part of the model equal a dump of it, emitting each difference."""
        name = space.info.name
        fresh = {x.index: x for x in d.raw_links}
        for index in [i for i in space.raw if i not in fresh]:
            self._drop_raw(space, index)
            self._forget_link(space, index, emit)
        for kind, store in space.stores():
            items = {x.key: x for x in getattr(d, _DUMP_FIELD[kind])}
            for key in [k for k in store if k not in items]:
                gone = store.pop(key)
                if emit:
                    self._emit(kind, "del", name, gone)
            for key, item in items.items():
                if store.get(key) != item:
                    store[key] = item
                    if emit:
                        self._emit(kind, "new", name, item)
        space.remotes.clear()
        for key, entry in space.fdb.items():
            if _one_remote(entry):
                space.remotes.setdefault((entry.ifindex, entry.mac, entry.vlan), set()).add(key)
        for raw in d.raw_links:
            self._keep_raw(space, raw)
        for raw in d.raw_links:
            self._set_link(space, raw, emit)

    # -- events -------------------------------------------------------------------------------

    def _apply(self, space: _Space, buf: bytearray, kind: int, start: int, end: int) -> None:
        name = space.info.name
        if kind in (c.RTM_NEWLINK, c.RTM_DELLINK):
            if buf[start] == c.AF_BRIDGE:
                return  # bridge-port news (port state, VLANs), not the link itself: a DELLINK here only
                # means the port left its bridge, and the link's own RTM_NEWLINK says so too
            raw = parse.link(buf, start, end)
            if kind == c.RTM_NEWLINK:
                self._link_changed(space, self._peer_now(space, raw))
            else:
                self._link_gone(space, raw.index)
            return
        if kind in (c.RTM_NEWQDISC, c.RTM_DELQDISC):
            found = parse.qdisc(buf, start, end)
            if found is not None:
                self._qdisc_changed(space, found, new=kind == c.RTM_NEWQDISC)
            return
        names = space.names()
        if kind in (c.RTM_NEWADDR, c.RTM_DELADDR):
            address = parse.address(name, names, buf, start, end)
            self._store(space, "address", space.addresses, kind == c.RTM_NEWADDR, address)
            if kind == c.RTM_DELADDR and address is not None:
                # a link's last IPv4 address takes its IPv4 routes with it, and routes using an address
                # as their source go (IPv4) or lose it (IPv6): none of that is announced
                affected = {r.oif for r in space.routes.values() if r.prefsrc == address.address}
                self._reroute_soon(space, {address.ifindex, *affected})
        elif kind in (c.RTM_NEWROUTE, c.RTM_DELROUTE):
            route = parse.route(name, names, buf, start, end)
            self._store(space, "route", space.routes, kind == c.RTM_NEWROUTE, route)
        elif kind in (c.RTM_NEWNEIGH, c.RTM_DELNEIGH):
            new = kind == c.RTM_NEWNEIGH
            if buf[start] == c.AF_BRIDGE:
                fdb_entry = parse.fdb(name, names, buf, start, end)
                if fdb_entry is not None and fdb_listed(fdb_entry, space.raw):
                    if new:
                        self._remote_replaced(space, fdb_entry)
                    self._store(space, "fdb", space.fdb, new, fdb_entry)
            else:
                entry = parse.neighbour(name, names, buf, start, end)
                if entry is not None and neighbour_listed(entry):
                    self._store(space, "neighbour", space.neighbours, new, entry)

    def _remote_replaced(self, space: _Space, entry: FdbEntry) -> None:
        """Forget the entry whose remote a VXLAN device's new entry for the same MAC replaced.

        Only for a MAC other than all zeros: there several remotes are the rule (head-end replication,
        `bridge fdb append`), and each is told on its own. For any other MAC netcore keeps one remote,
        as the control plane wants (several appended by hand show as the last one told)."""
        if not _one_remote(entry):
            return
        held = space.remotes.setdefault((entry.ifindex, entry.mac, entry.vlan), set())
        for key in list(held):
            old = space.fdb.get(key)
            if old is not None and old.dst == entry.dst:
                continue
            held.discard(key)
            if old is not None:
                del space.fdb[key]
                self._emit("fdb", "del", space.info.name, old)
        held.add(entry.key)

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

    def _qdisc_changed(self, space: _Space, found: parse.RawQdisc, *, new: bool) -> None:
        """A link's root qdisc was set or removed: its shaping follows."""
        raw = space.raw.get(found.ifindex)
        if raw is None or (not new and raw.qdisc != found.kind):
            return
        kind, shaping = (found.kind, found.shaping) if new else (None, None)
        changed = dataclasses.replace(raw, qdisc=kind, shaping=shaping)
        self._keep_raw(space, changed)
        self._set_link(space, changed, True)

    def _link_changed(self, space: _Space, raw: parse.RawLink) -> None:
        was = space.raw.get(raw.index)
        if was is not None and raw.shaping is None and raw.qdisc == was.qdisc:
            raw.shaping = was.shaping  # a link message does not carry the qdisc's settings: keep them
        self._keep_raw(space, raw)
        if was is None:
            self._name_orphans(space, raw)
        elif was.name != raw.name:
            self._renamed(space, raw)
        if was is not None and (was.up != raw.up or was.state != raw.state):
            # the kernel flushes a downed link's routes without announcing each one
            self._reroute_soon(space, {raw.index})
        if was is not None and was.master and was.master != raw.master:
            self._port_left(space, raw.index, was.master)
        self._set_link(space, raw, True)
        if raw.kind == "veth" and not raw.link:
            # a veth end is first announced before its peer exists (IFLA_LINK 0): ask again shortly
            asyncio.get_running_loop().call_later(REQUERY_DELAY, self._requery, space.info.name, raw.index)

    def _keep_raw(self, space: _Space, raw: parse.RawLink) -> None:
        """Store a link as the kernel reported it (and index it if it is a veth to elsewhere)."""
        self._drop_raw(space, raw.index)
        space.raw[raw.index] = raw
        if raw.kind == "veth" and raw.link and raw.link_netnsid is not None:
            self._ends.setdefault((raw.index, raw.link), set()).add(space.info.name)

    def _drop_raw(self, space: _Space, index: int) -> None:
        raw = space.raw.pop(index, None)
        if raw is not None and raw.link and raw.link_netnsid is not None:
            where = self._ends.get((raw.index, raw.link))
            if where is not None:
                where.discard(space.info.name)
                if not where:
                    del self._ends[(raw.index, raw.link)]

    def _link_gone(self, space: _Space, index: int) -> None:
        gone = space.raw.get(index)
        if gone is None:
            return
        if gone.master:
            self._port_left(space, index, gone.master)
        self._drop_raw(space, index)
        name = space.info.name
        for kind, store in space.stores():
            for key in [k for k, x in store.items() if _on_link(x, index)]:
                self._emit(kind, "del", name, store.pop(key))
        self._forget_link(space, index, True)

    def _forget_link(self, space: _Space, index: int, emit: bool) -> None:
        """Drop a link the kernel no longer has. A veth end that went (deleted, or moved to another
        namespace) changes its other end without a word from the kernel, so read that end again:
        its peer, the end naming it, or an unresolved end pointing at its index."""
        key = (space.info.name, index)
        old = space.links.pop(index, None)
        self._unresolved.discard(key)
        if old is not None and emit:
            self._emit("link", "del", space.info.name, old)
        suspects = set()
        if old is not None and old.peer is not None:
            target = (old.peer.netns, old.peer.index)
            if self._referrer.get(target) == key:
                del self._referrer[target]
            suspects.add(target)
        referrer = self._referrer.pop(key, None)
        if referrer is not None:
            suspects.add(referrer)
        for netns, i in self._unresolved:
            raw = self._spaces[netns].raw.get(i) if netns in self._spaces else None
            if raw is not None and raw.link == index:
                suspects.add((netns, i))
        for netns, i in suspects:
            self._requery(netns, i)

    def _name_orphans(self, space: _Space, raw: parse.RawLink) -> None:
        """Objects announced before their link (a new bridge's own FDB entry) get its name now."""
        stores: tuple[tuple[str, dict[tuple, Any]], ...] = (
            ("address", space.addresses),
            ("neighbour", space.neighbours),
            ("fdb", space.fdb),
        )
        for kind, store in stores:
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

    def _port_left(self, space: _Space, port: int, bridge: int) -> None:
        """A port leaving its bridge takes its own ("local") FDB entries with it, except that the
        kernel silently hands such an entry to another port of that bridge with the same MAC, or
        else to the bridge itself when the bridge has that MAC (br_fdb.c, fdb_delete_local)."""
        br = space.raw.get(bridge)
        for key, entry in list(space.fdb.items()):
            if entry.ifindex != port or entry.self_entry or entry.state != "permanent":
                continue
            heir = next(
                (
                    x
                    for x in space.raw.values()
                    if x.master == bridge and x.index != port and x.mac == entry.mac
                ),
                br if br is not None and br.mac == entry.mac else None,
            )
            del space.fdb[key]
            if heir is None:
                self._emit("fdb", "del", space.info.name, entry)
                continue
            moved = dataclasses.replace(entry, ifindex=heir.index, ifname=heir.name)
            space.fdb[moved.key] = moved
            self._emit("fdb", "del", space.info.name, entry)
            self._emit("fdb", "new", space.info.name, moved)

    def _renamed(self, space: _Space, raw: parse.RawLink) -> None:
        """A rename is announced for the link only: objects naming it (addresses, routes,
        neighbours, FDB entries, the ports of a bridge) take the new name here."""
        index, name = raw.index, raw.name
        for kind, store in space.stores():
            for key, item in list(store.items()):
                if isinstance(item, Route):
                    fixes = {"dev": name} if item.oif == index else {}
                else:
                    fixes = {"ifname": name} if item.ifindex == index else {}
                    if (
                        isinstance(item, FdbEntry)
                        and item.master is not None
                        and (
                            (port := space.raw.get(item.ifindex)) is not None
                            and port.master == index
                            or item.ifindex == index
                            and raw.kind == "bridge"
                        )
                    ):
                        fixes["master"] = name
                if fixes:
                    store[key] = dataclasses.replace(item, **fixes)
                    self._emit(kind, "new", space.info.name, store[key])
        for port in [x for x in space.raw.values() if x.master == index]:
            self._set_link(space, port, True)

    def _requery(self, netns: str, index: int) -> None:
        """Read one link again with a plain query (the event socket only listens)."""
        space = self._spaces.get(netns)
        if space is None or index not in space.raw:
            return
        try:
            raw = link_by_index(space.query, index)
        except NetcoreError:
            raw = None  # gone (its RTM_DELLINK follows): its peer may be gone already
        if raw is not None and raw != space.raw.get(index):
            self._link_changed(space, raw)
        else:
            self._reset((netns, index), True)  # unchanged itself, but its peer may be gone

    # -- routes the kernel removes silently -----------------------------------------------------

    def _reroute_soon(self, space: _Space, indexes: Iterable[int | None]) -> None:
        """Re-read these links' routes shortly, and once more a little later: the kernel finishes
        its silent flush after it announces the change that caused it (a route dump does not wait
        for it), and a burst of changes is read once."""
        if not space.reroute:
            asyncio.get_running_loop().call_later(REQUERY_DELAY, self._reroute, space)
        space.reroute.update(i for i in indexes if i)

    def _reroute(self, space: _Space) -> None:
        pending, space.reroute = space.reroute, set()
        if self._spaces.get(space.info.name) is space and pending:
            self._reread_routes(space, pending)
            asyncio.get_running_loop().call_later(REROUTE_AGAIN, self._reroute_again, space, pending)

    def _reroute_again(self, space: _Space, pending: set[int]) -> None:
        if self._spaces.get(space.info.name) is space:
            self._reread_routes(space, pending)

    def _reread_routes(self, space: _Space, pending: set[int]) -> None:
        """Make the model's routes of these links (or all routes, for many links) equal the kernel's."""
        name = space.info.name
        whole = len(pending) > REROUTE_WHOLE
        oifs: list[int | None] = [None] if whole else [i for i in pending if i in space.raw]
        names = space.names()
        try:
            fresh = {r.key: r for oif in oifs for r in dump_routes(space.query, name, names, oif=oif)}
        except (OSError, NetcoreError):
            self._resync(space)
            return
        for key in [k for k, r in space.routes.items() if (whole or r.oif in pending) and k not in fresh]:
            self._emit("route", "del", name, space.routes.pop(key))
        for key, route in fresh.items():
            if space.routes.get(key) != route:
                space.routes[key] = route
                self._emit("route", "new", name, route)

    # -- veth peers ---------------------------------------------------------------------------

    def _set_link(self, space: _Space, raw: parse.RawLink, emit: bool) -> None:
        key = (space.info.name, raw.index)
        peer = self._peer(space, raw)
        master = space.raw[raw.master].name if raw.master in space.raw else None
        link = raw.to_link(netns=space.info.name, master=master, peer=peer)
        old = space.links.get(raw.index)
        if raw.kind == "veth" and raw.link and peer is None:
            self._unresolved.add(key)
        else:
            self._unresolved.discard(key)
        if old == link:
            return
        if old is not None and old.peer is not None and old.peer != peer:
            target = (old.peer.netns, old.peer.index)
            if self._referrer.get(target) == key:
                del self._referrer[target]
        space.links[raw.index] = link
        if emit:
            self._emit("link", "new", space.info.name, link)
        if (
            (old is None or old.peer is None)
            and raw.link
            and raw.link_netnsid is not None
            and not self._loading
        ):
            # this may be the other end an unresolved veth elsewhere waits for (new, or just told its
            # peer: a veth end is first announced before its peer exists)
            for there in list(self._ends.get((raw.link, raw.index), ())):
                if there != key[0] and (there, raw.link) in self._unresolved:
                    self._reset((there, raw.link), emit)
        if peer is not None:
            target = (peer.netns, peer.index)
            self._referrer[target] = key
            if target in self._unresolved:
                self._reset(target, emit)
            if target in self._unresolved:
                # this end names it, but what the model holds of it does not lead back here: that predates
                # a move of this end it was not told of (read before the move, or after it from an event
                # sent before it), so the kernel says where its peer is now
                self._requery(*target)
        referrer = self._referrer.get(key)
        if referrer is not None and (old is None or old.name != link.name):
            self._reset(referrer, emit)  # the end naming this one shows its new name

    def _peer_now(self, space: _Space, raw: parse.RawLink) -> parse.RawLink:
        """A veth event whose other end is not the one the model holds, with the kernel's word on it.

        The other end moving to another namespace changes this end's IFLA_LINK and IFLA_LINK_NETNSID
        without a word to this end; the model learns it by reading this end again (when the other end
        leaves, or in a re-dump), possibly ahead of this namespace's queued events. An event of this end
        sent before the move and read after that names the old other end, and no later event corrects
        it: so the kernel says which other end is current. The rest of the event stands (any later change
        of this end is queued behind it)."""
        was = space.raw.get(raw.index)
        if (
            raw.kind != "veth"
            or was is None
            or not was.link  # the usual way: first announced before its peer exists, then with it
            or (raw.link, raw.link_netnsid) == (was.link, was.link_netnsid)
        ):
            return raw
        try:
            now = link_by_index(space.query, raw.index)
        except NetcoreError:
            return raw
        if now is None or now.kind != "veth":
            return raw  # gone: its RTM_DELLINK is queued behind this event
        return dataclasses.replace(raw, link=now.link, link_netnsid=now.link_netnsid)

    def _reset(self, key: tuple[str, int], emit: bool) -> None:
        space = self._spaces.get(key[0])
        if space is not None and key[1] in space.raw:
            self._set_link(space, space.raw[key[1]], emit)

    def _resolve_unresolved(self, *, emit: bool) -> None:
        """Try again the veths whose peer was not known (after a load or a re-dump)."""
        for key in list(self._unresolved):
            self._reset(key, emit)

    def _peer(self, space: _Space, raw: parse.RawLink) -> LinkRef | None:
        """Where a veth's other end is: through this namespace's own id for the peer's namespace
        (cached, and checked against what the model holds there)."""
        link, nsid = raw.link, raw.link_netnsid
        if raw.kind != "veth" or not link:
            return None
        if nsid is None:
            there: _Space | None = space
        else:
            there = self._spaces.get(space.nsids.get(nsid, ""))
            if there is None or not _points_back(there.raw.get(link), raw):
                there = self._ask_peer_space(space, raw, link, nsid)
        if there is None or link not in there.raw:
            return None
        return LinkRef(there.info.name, link, there.raw[link].name)

    def _ask_peer_space(self, space: _Space, raw: parse.RawLink, link: int, nsid: int) -> _Space | None:
        """Which namespace holds the other end of a veth of `space`: the candidates are the
        namespaces with a veth at the peer's index pointing back at this one (look-alikes
        included), and `space`'s own ids for them (one batched RTM_GETNSID) tell which it is.
        None when the other end is not in the model yet: its arrival resolves this veth."""
        found = self._ends.get((link, raw.index), ())
        candidates = [self._spaces[n] for n in found if n != space.info.name and n in self._spaces]
        if not candidates:
            return None
        fds: list[int] = []
        try:
            for s in candidates:
                try:
                    fds.append(os.open(s.info.path, os.O_RDONLY | os.O_CLOEXEC))
                except OSError:
                    fds.append(-1)
            asked = [s for s, fd in zip(candidates, fds, strict=True) if fd >= 0]
            ids = space.query.nsids([fd for fd in fds if fd >= 0])
        except (OSError, NetcoreError):
            return None
        finally:
            for fd in fds:
                if fd >= 0:
                    os.close(fd)
        for s, their_id in zip(asked, ids, strict=True):
            if their_id >= 0:
                space.nsids[their_id] = s.info.name  # ids are reused once a namespace is gone: replace
        return self._spaces.get(space.nsids.get(nsid, ""))

    def _emit(self, kind: str, action: str, netns: str, obj) -> None:
        self._queue.put_nowait(Event(kind, action, netns, obj))


_DUMP_FIELD = {"address": "addresses", "route": "routes", "neighbour": "neighbours", "fdb": "fdb"}


def _open_pair() -> tuple[NetlinkSocket, NetlinkSocket]:
    """An event socket and a query socket in the calling thread's namespace."""
    sock = NetlinkSocket.open(groups=GROUPS)
    try:
        return sock, NetlinkSocket.open()
    except OSError:
        sock.close()
        raise


def _points_back(x: parse.RawLink | None, raw: parse.RawLink) -> bool:
    """Whether x could be the other end of veth `raw` (of another namespace): a veth at raw's peer
    index whose own peer index is raw's."""
    return x is not None and x.kind == "veth" and x.index == raw.link and x.link == raw.index


def _on_link(obj: Address | Route | Neighbour | FdbEntry, index: int) -> bool:
    """Whether an object belongs to the link with this index (a route by its output link)."""
    return (obj.oif if isinstance(obj, Route) else obj.ifindex) == index


def _raise_fd_limit() -> None:
    """Two sockets per namespace: let the model use the hard limit, not the soft 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


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
