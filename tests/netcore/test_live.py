"""LiveModel against the real kernel: events for changes made by hand, and a snapshot that matches a dump.

The model runs in-process on the test's thread, which the `host_ns` fixture has moved into a throwaway
namespace, so "host" is that namespace. Never hand work to another thread here (asyncio.to_thread, run_in
executor): other threads stay in the machine's real namespace. /run/netns is shared with the whole
machine, so the model also sees unrelated namespaces of other runs and benchmarks: the recorder keeps only
events from "host" and from namespaces named after this test's topology.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest
import pytest_asyncio

from netcore import names
from netcore.live import Event, LiveModel
from netcore.model import LinkRef, Snapshot
from netcore.snapshot import snapshot
from netcore.topology import converge, spec

_T = TypeVar("_T")
TIMEOUT = 5.0


class Recorder:
    """Consumes model.events() in a task, keeping the events `keep` accepts."""

    def __init__(self, model: LiveModel, keep: Callable[[Event], bool]) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._keep = keep
        self._task = asyncio.get_running_loop().create_task(self._run(model))

    async def _run(self, model: LiveModel) -> None:
        async for event in model.events():
            if self._keep(event):
                self.events.append(event)
                self._changed.set()

    async def until(self, predicate: Callable[[list[Event]], _T], *, timeout: float = TIMEOUT) -> _T:
        """Wait until predicate(events) is truthy and return its value; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.events)
            if found:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n  ".join(f"{e.type} {e.netns} {e.obj}" for e in self.events[-40:])
                raise AssertionError(f"no matching event within {timeout} s; last events:\n  {seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def close(self) -> None:
        self._task.cancel()


def one(type_: str, netns: str, **attrs: object) -> Callable[[list[Event]], Event | None]:
    """Predicate: the latest event of that type in that namespace whose object has these attributes."""

    def match(events: list[Event]) -> Event | None:
        for e in reversed(events):
            if e.type == type_ and e.netns == netns and all(getattr(e.obj, k) == v for k, v in attrs.items()):
                return e
        return None

    return match


SECTIONS = ("namespaces", "links", "addresses", "routes", "neighbours", "fdb")


def view(snap: Snapshot, spaces: set[str]) -> dict[str, set]:
    """Every section of a snapshot, whole records, for the namespaces compared."""
    return {
        section: {
            x for x in getattr(snap, section) if (x.name if section == "namespaces" else x.netns) in spaces
        }
        for section in SECTIONS
    }


async def assert_matches_fresh_snapshot(model: LiveModel, spaces: set[str], *, timeout: float = TIMEOUT):
    """The model's snapshot equals a fresh dump of the same namespaces in every field of every section
    (allowing events still in flight)."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = view(snapshot(namespaces=sorted(spaces), processes=False), spaces)
        mine = view(model.snapshot(), spaces)
        if mine == fresh or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    for section in SECTIONS:
        m, f = mine[section], fresh[section]
        assert m == f, f"{section}: only in the model {m - f}; only in the fresh snapshot {f - m}"
    return fresh


@pytest_asyncio.fixture
async def live(host_ns, topo) -> AsyncIterator[tuple[LiveModel, Recorder]]:
    model = LiveModel(processes=False)
    await model.start()
    recorder = Recorder(model, keep=lambda e: e.netns == "host" or e.netns.startswith(topo))
    try:
        yield model, recorder
    finally:
        recorder.close()
        model.close()


@pytest.mark.asyncio
async def test_events_for_changes_made_by_hand(host_ns, topo, live):
    model, rec = live
    br, va, vb, vc, vd = (f"{topo}{s}" for s in ("br", "va", "vb", "vc", "vd"))
    other = f"{topo}-x"
    try:
        host_ns.run(f"ip link add {br} type bridge")
        bridge = await rec.until(one("link.new", "host", name=br))
        assert bridge.obj.kind == "bridge"

        host_ns.run(f"ip link add {va} type veth peer name {vb}")
        a = await rec.until(one("link.new", "host", name=va))
        b = await rec.until(one("link.new", "host", name=vb))
        assert a.obj.kind == b.obj.kind == "veth"
        # both ends in the same namespace: the second one announced resolves to the first (the first one
        # announced resolving by itself is test_first_announced_veth_end_gets_its_peer)
        await rec.until(one("link.new", "host", name=va, peer=_ref("host", b.obj.index, vb)))

        host_ns.run(f"ip link set {va} master {br}")
        await rec.until(one("link.new", "host", name=va, master=br))

        # vb last: its carrier change is then the last news about va, which the bug behind
        # test_bridge_port_keeps_its_kind_and_peer would otherwise leave looking kind-less
        host_ns.run(f"ip link set {br} up && ip link set {va} up && ip link set {vb} up")
        await rec.until(one("link.new", "host", name=vb, up=True, peer=_ref("host", a.obj.index, va)))
        host_ns.run(f"ip addr add 198.18.20.1/24 dev {br}")
        addr = await rec.until(one("address.new", "host", address="198.18.20.1"))
        assert (addr.obj.ifname, addr.obj.prefixlen, addr.obj.ifindex) == (br, 24, bridge.obj.index)

        host_ns.run(f"ip route add 198.18.21.0/24 via 198.18.20.254 dev {br}")
        route = await rec.until(one("route.new", "host", dst="198.18.21.0/24"))
        assert (route.obj.gateway, route.obj.dev) == ("198.18.20.254", br)

        host_ns.run(f"ip netns add {other}")
        await rec.until(one("namespace.new", other, name=other))
        # the pair is made with its peer already in the other namespace (moving it there afterwards is
        # test_veth_peer_moved_into_a_namespace)
        host_ns.run(f"ip link add {vc} type veth peer name {vd} netns {other}")
        inside = await rec.until(one("link.new", other, name=vd))
        assert inside.obj.kind == "veth"
        # the host end's peer names the other namespace, once the model has seen both ends
        host_end = await rec.until(one("link.new", "host", name=vc, peer=_ref(other, inside.obj.index, vd)))
        host_ns.run(f"ip -n {other} link set {vd} up")
        # and the end inside resolves back to the host end
        await rec.until(one("link.new", other, name=vd, up=True, peer=_ref("host", host_end.obj.index, vc)))

        await assert_matches_fresh_snapshot(model, {"host", other})

        host_ns.run("ip route del 198.18.21.0/24")
        await rec.until(one("route.del", "host", dst="198.18.21.0/24"))
        host_ns.run(f"ip addr del 198.18.20.1/24 dev {br}")
        await rec.until(one("address.del", "host", address="198.18.20.1"))
        host_ns.run(f"ip link del {va}")
        await rec.until(one("link.del", "host", name=va))
        await rec.until(one("link.del", "host", name=vb))
        host_ns.run(f"ip link del {br}")
        await rec.until(one("link.del", "host", name=br))

        await assert_matches_fresh_snapshot(model, {"host", other})

        host_ns.run(f"ip netns del {other}")
        await rec.until(one("namespace.del", other, name=other))
        await rec.until(one("link.del", other, name=vd))
        # the namespace is gone, so is its end of the pair, and with it the host end
        await rec.until(one("link.del", "host", name=vc))
        final = await assert_matches_fresh_snapshot(model, {"host"})
        assert {x.name for x in final["links"]} == {"lo"}
    finally:
        host_ns.run(f"ip netns del {other}", check=False)
        host_ns.run(f"ip link del {br}; ip link del {va}; ip link del {vc}", check=False)


def _ref(netns: str, index: int, name: str) -> LinkRef:
    return LinkRef(netns, index, name)


def _demo(topo: str) -> spec.TopologySpec:
    return spec.loads(f"""
name: {topo}
networks:
  lan: {{subnet: 198.18.30.0/24}}
  wan: {{subnet: 198.18.31.0/24}}
nodes:
  a: {{networks: [lan, wan]}}
  b: {{networks: [lan]}}
  c: {{mode: none}}
""")


@pytest.mark.asyncio
async def test_model_follows_a_topology_apply(host_ns, topo, live):
    model, rec = live
    topology = _demo(topo)
    namespaces = {f"{topo}-{n}" for n in ("a", "b", "c")}
    ports = {
        (names.host_veth_name(topo, "a", "lan"), f"{topo}-a", "eth0", f"{topo}-lan"),
        (names.host_veth_name(topo, "a", "wan"), f"{topo}-a", "eth1", f"{topo}-wan"),
        (names.host_veth_name(topo, "b", "lan"), f"{topo}-b", "eth0", f"{topo}-lan"),
    }
    # apply on this thread (the one inside host_ns); it blocks the loop, so events queue up meanwhile
    converge.apply(topology)
    try:

        def complete(_events) -> bool:
            snap = model.snapshot()
            if not namespaces <= {n.name for n in snap.namespaces}:
                return False
            for host_name, netns, ifname, bridge in ports:
                host = snap.link("host", host_name)
                inside = snap.link(netns, ifname)
                if host is None or inside is None or host.master != bridge:
                    return False
                if (host.peer and (host.peer.netns, host.peer.name)) != (netns, ifname):
                    return False
                if (inside.peer and (inside.peer.netns, inside.peer.name)) != ("host", host_name):
                    return False
            return True

        await rec.until(complete)
        for netns in namespaces:
            await rec.until(one("namespace.new", netns, name=netns))
        fresh = await assert_matches_fresh_snapshot(model, {"host", *namespaces})
        # the comparison is not vacuous: the topology's addresses are in it
        assert {(a.netns, a.address) for a in fresh["addresses"]} >= {
            ("host", "198.18.30.1"),
            ("host", "198.18.31.1"),
        }
    finally:
        converge.destroy(topology)
    for netns in namespaces:
        await rec.until(one("namespace.del", netns, name=netns))
    for host_name, *_ in ports:
        await rec.until(one("link.del", "host", name=host_name))


@pytest.mark.asyncio
async def test_first_announced_veth_end_gets_its_peer(host_ns, topo, live):
    model, rec = live
    va, vb = f"{topo}va", f"{topo}vb"
    try:
        host_ns.run(f"ip link add {va} type veth peer name {vb}")
        a = await rec.until(one("link.new", "host", name=va))
        await rec.until(one("link.new", "host", name=vb))
        assert snapshot(namespaces=["host"], processes=False).link("host", vb).peer.name == va
        # no further change is made to either end: the model must work the peer out from what it has
        await rec.until(lambda _: (x := model.snapshot().link("host", vb)) and x.peer, timeout=2.0)
        assert model.snapshot().link("host", vb).peer == _ref("host", a.obj.index, va)
    finally:
        host_ns.run(f"ip link del {va}", check=False)


@pytest.mark.asyncio
async def test_namespace_mounted_after_its_file_appears(host_ns, topo):
    """`ip netns add` creates the file under /run/netns and bind-mounts the namespace on it a moment
    later; the model must wait for the mount. Here the mount is done only once the model has read the
    file's creation (a hook on the model's inotify handler tells when), so the gap is always there."""

    class Model(LiveModel):
        def __init__(self) -> None:
            super().__init__(processes=False)
            self.inotify_read = asyncio.Event()

        def _on_inotify(self) -> None:
            try:
                super()._on_inotify()
            finally:
                self.inotify_read.set()

    model = Model()
    await model.start()
    rec = Recorder(model, keep=lambda e: e.netns.startswith(topo))
    late = f"{topo}-late"
    try:
        host_ns.run(f"touch /run/netns/{late}")
        # the loop ran nothing during that blocking call: the next read of inotify includes the file
        model.inotify_read.clear()
        await asyncio.wait_for(model.inotify_read.wait(), TIMEOUT)
        # what `ip netns add` does next: a new namespace, bind-mounted on the file
        host_ns.run(f"unshare --net mount --bind /proc/self/ns/net /run/netns/{late}")
        await rec.until(one("namespace.new", late, name=late), timeout=3.0)
    finally:
        rec.close()
        model.close()
        host_ns.run(f"umount /run/netns/{late}; rm -f /run/netns/{late}", check=False)


@pytest.mark.asyncio
async def test_veth_peer_moved_into_a_namespace(host_ns, topo, live):
    """The usual way to wire a namespace (and Docker's): make the pair, then move one end in. The kernel
    then reports only the moved end (a DELLINK in the host naming its new netnsid and ifindex, a NEWLINK
    inside); the host end is not re-announced."""
    model, rec = live
    vc, vd, other = f"{topo}vc", f"{topo}vd", f"{topo}-x"
    try:
        host_ns.run(f"ip netns add {other}")
        await rec.until(one("namespace.new", other, name=other))
        host_ns.run(f"ip link add {vc} type veth peer name {vd}")
        await rec.until(one("link.new", "host", name=vc))
        host_ns.run(f"ip link set {vd} netns {other}")
        inside = await rec.until(one("link.new", other, name=vd))
        await rec.until(one("link.del", "host", name=vd))
        fresh = snapshot(namespaces=["host", other], processes=False)
        assert fresh.link("host", vc).peer == _ref(other, inside.obj.index, vd)
        await rec.until(
            lambda _: (x := model.snapshot().link("host", vc)) and x.peer and x.peer.netns == other,
            timeout=2.0,
        )
        await assert_matches_fresh_snapshot(model, {"host", other}, timeout=1.0)
    finally:
        host_ns.run(f"ip netns del {other}", check=False)
        host_ns.run(f"ip link del {vc}", check=False)


@pytest.mark.asyncio
async def test_bridge_port_keeps_its_kind_and_peer(host_ns, topo, live):
    model, rec = live
    br, va, vb, sync = f"{topo}br", f"{topo}va", f"{topo}vb", f"{topo}sy"
    try:
        host_ns.run(f"ip link add {br} type bridge && ip link add {va} type veth peer name {vb}")
        await rec.until(one("link.new", "host", name=va))
        host_ns.run(f"ip link set {vb} up")  # re-announces vb with its peer
        host_ns.run(f"ip link set {va} master {br}")
        await rec.until(one("link.new", "host", name=va, master=br))
        # the netlink socket keeps order: once this bridge is reported, everything before it has been seen
        host_ns.run(f"ip link add {sync} type bridge")
        await rec.until(one("link.new", "host", name=sync))
        fresh = snapshot(namespaces=["host"], processes=False).link("host", va)
        assert (fresh.kind, fresh.master, fresh.peer.name) == ("veth", br, vb)
        mine = model.snapshot().link("host", va)
        assert (mine.kind, mine.master, mine.peer) == (fresh.kind, fresh.master, fresh.peer)
    finally:
        host_ns.run(f"ip link del {va}; ip link del {br}; ip link del {sync}", check=False)


@pytest.mark.asyncio
async def test_routes_removed_with_their_link(host_ns, topo, live):
    """Taking a link down removes its IPv4 routes; the kernel does not announce each one."""
    model, rec = live
    br = f"{topo}br"
    try:
        host_ns.run(
            f"ip link add {br} type bridge && ip link set {br} up && ip addr add 198.18.22.1/24 dev {br}"
            f" && ip route add 198.18.23.0/24 via 198.18.22.254 dev {br}"
        )
        await rec.until(one("route.new", "host", dst="198.18.23.0/24"))
        host_ns.run(f"ip link set {br} down")
        await rec.until(one("link.new", "host", name=br, up=False))
        fresh = snapshot(namespaces=["host"], processes=False)
        assert not [r for r in fresh.routes if r.dst in ("198.18.22.0/24", "198.18.23.0/24")]
        await assert_matches_fresh_snapshot(model, {"host"}, timeout=2.0)
    finally:
        host_ns.run(f"ip link del {br}", check=False)


@pytest.mark.asyncio
async def test_fdb_entries_name_their_interfaces(host_ns, topo, live):
    model, rec = live
    br, sync = f"{topo}br", f"{topo}sy"
    try:
        host_ns.run(f"ip link add {br} type bridge")
        bridge = await rec.until(one("link.new", "host", name=br))
        host_ns.run(f"ip link add {sync} type bridge")  # ordered after everything about the first bridge
        await rec.until(one("link.new", "host", name=sync))
        fresh = {
            f for f in snapshot(namespaces=["host"], processes=False).fdb if f.ifindex == bridge.obj.index
        }
        assert (br, br) in {(f.ifname, f.master) for f in fresh}  # its own MAC, on itself
        assert {f for f in model.snapshot().fdb if f.ifindex == bridge.obj.index} == fresh
    finally:
        host_ns.run(f"ip link del {br}; ip link del {sync}", check=False)


@pytest.mark.asyncio
@pytest.mark.parametrize("rcvbuf", [None, 4096], ids=["events-kept", "events-dropped"])
async def test_a_held_model_reads_nothing_until_released_then_catches_up(host_ns, topo, rcvbuf):
    """What the agent does around an apply: hold, apply, release, take the events, send them."""
    model = LiveModel(processes=False, event_rcvbuf=rcvbuf)
    await model.start()
    topology = _demo(topo)
    namespaces = {f"{topo}-{n}" for n in ("a", "b", "c")}
    try:
        model.hold()
        converge.apply(topology)
        await asyncio.sleep(0.3)  # the loop runs: a model that read now would see the namespaces
        assert not namespaces & {n.name for n in model.snapshot().namespaces}
        assert model.take_events() == []
        model.release()
        events = model.take_events()
        assert {e.netns for e in events if e.type == "namespace.new"} >= namespaces
        assert any(e.type == "link.new" and e.netns == "host" and e.obj.name == f"{topo}-lan" for e in events)
        await assert_matches_fresh_snapshot(model, {"host", *namespaces})
    finally:
        converge.destroy(topology)
        model.close()


@pytest.mark.asyncio
async def test_a_vxlan_entry_whose_remote_is_replaced_is_one_entry(host_ns, topo, live):
    """`bridge fdb replace` changes a VXLAN entry's remote in place and the kernel tells only the new
    one: the model must not keep the old remote as a second entry (the overlay check would read a
    wrong VTEP that is gone). All-zeros entries keep one remote per peer."""
    model, rec = live
    vx, mac = f"{topo}vx", "02:42:c6:12:3c:04"
    try:
        host_ns.run(f"ip link add {vx} type vxlan id 4242 dstport 4789 local 127.0.0.1 nolearning")
        device = await rec.until(one("link.new", "host", name=vx))
        for command in (
            f"bridge fdb append 00:00:00:00:00:00 dev {vx} dst 198.18.254.12",
            f"bridge fdb append 00:00:00:00:00:00 dev {vx} dst 198.18.254.13",
            f"bridge fdb add {mac} dev {vx} dst 198.18.254.12 self permanent",
            f"bridge fdb replace {mac} dev {vx} dst 198.18.254.13 self permanent",
        ):
            host_ns.run(command)
        await rec.until(one("fdb.new", "host", mac=mac, dst="198.18.254.13"))
        held = {(f.mac, f.dst) for f in model.snapshot().fdb if f.ifindex == device.obj.index and f.dst}
        assert held == {
            ("00:00:00:00:00:00", "198.18.254.12"),
            ("00:00:00:00:00:00", "198.18.254.13"),
            (mac, "198.18.254.13"),
        }
        fresh = {
            (f.mac, f.dst)
            for f in snapshot(namespaces=["host"], processes=False).fdb
            if f.ifindex == device.obj.index and f.dst
        }
        assert held == fresh
    finally:
        host_ns.run(f"ip link del {vx}", check=False)
