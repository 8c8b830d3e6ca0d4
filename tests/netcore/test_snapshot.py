"""snapshot() against iproute2: a topology built by hand with `ip`/`bridge`, then read both ways.

Everything `ip -j` reports for the same namespaces (links, addresses, main-table routes,
neighbours, bridge/VXLAN forwarding entries) must match what snapshot() returns, and every
veth's peer must be resolved to the right namespace and name on both sides.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import time

import pytest

from netcore.errors import NotFound
from netcore.model import LinkRef, Snapshot
from netcore.snapshot import snapshot

SCOPES = {"global": "universe"}  # ip's name for scope 0; the others (link, host, site) are the same
BRIDGE_FDB_STATES = {"permanent": "permanent", "static": "noarp", "stale": "stale", "": "reachable"}


def ip(host_ns, where: str, cmd: str) -> list[dict]:
    """`ip -j` or `bridge -j` inside namespace `where` ("host" = the test's host namespace)."""
    tool, _, rest = cmd.partition(" ")
    netns = "" if where == "host" else f"-n {where} "
    out = host_ns.run(f"{tool} {netns}-j {rest}").stdout.strip()
    return json.loads(out) if out else []


def run_all(host_ns, commands: list[str]) -> None:
    for command in commands:
        host_ns.run(command)


@pytest.fixture
def spaces(host_ns, topo):
    """spaces("a", "b") creates <topo>-a, <topo>-b with `ip netns add`; all are removed after the test."""
    made: list[str] = []

    def make(*suffixes: str) -> list[str]:
        names = [f"{topo}-{s}" for s in suffixes]
        for name in names:
            host_ns.run(f"ip netns add {name}")
            made.append(name)
        return names

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def built(host_ns, topo, spaces):
    """The hand-built topology: (namespaces in snapshot order, link names of interest)."""
    a, b = spaces("a", "b")
    t = topo
    run_all(
        host_ns,
        [
            f"ip link add {t}br type bridge",
            f"ip link set {t}br up mtu 1450",
            f"ip link set {t}br alias switchboard:{t}:bridge",
            f"ip link add {t}a0 type veth peer name eth0 netns {a}",
            f"ip link add {t}b0 type veth peer name eth0 netns {b}",
            f"ip link set {t}a0 master {t}br up",
            f"ip link set {t}b0 master {t}br up",
            f"ip link add {t}vx type vxlan id 4242 dstport 4789 local 198.18.70.1 nolearning",
            f"ip link set {t}vx master {t}br up",
            f"ip addr add 198.18.70.1/24 dev {t}br",
            f"ip addr add fd00:70::1/64 dev {t}br nodad",
            "ip route add 198.18.72.0/24 via 198.18.70.2",
            "ip -6 route add fd00:72::/64 via fd00:70::2 metric 77",
            f"ip route add 198.18.73.0/24 via 198.18.99.9 dev {t}br onlink",
            f"bridge fdb append 00:00:00:00:00:00 dev {t}vx dst 198.18.70.50",
            f"bridge fdb add 02:00:00:00:70:51 dev {t}vx dst 198.18.70.51",
            f"bridge fdb add 02:00:00:00:70:53 dev {t}vx dst 198.18.70.53 vni 5000",
            f"bridge fdb add 02:00:00:00:70:52 dev {t}a0 master static",
            # a veth pair between two namespaces, neither of them the host
            f"ip -n {a} link add ab type veth peer name ba netns {b}",
            f"ip -n {a} link set ab up",
            f"ip -n {b} link set ba up",
        ],
    )
    for space, last in ((a, 2), (b, 3)):
        run_all(
            host_ns,
            [
                f"ip -n {space} link set lo up",
                f"ip -n {space} link set eth0 up",
                f"ip -n {space} addr add 198.18.70.{last}/24 dev eth0",
                f"ip -n {space} addr add fd00:70::{last}/64 dev eth0 nodad",
                f"ip -n {space} route add default via 198.18.70.1",
                f"ip -n {space} route add 198.18.71.0/24 via 198.18.70.1 proto static",
                f"ip -n {space} -6 route add default via fd00:70::1",
                f"ip -n {space} addr add 198.18.80.{last}/24 dev {'ab' if space == a else 'ba'}",
            ],
        )
    # permanent neighbours last: a bridge whose MAC changes (ports joining) flushes even permanent ones
    run_all(
        host_ns,
        [
            f"ip neigh add 198.18.70.9 lladdr 02:00:00:00:70:09 dev {t}br nud permanent",
            f"ip -n {a} neigh add 198.18.70.3 lladdr 02:00:00:00:70:03 dev eth0 nud permanent",
            f"ip -n {a} neigh add fd00:70::3 lladdr 02:00:00:00:70:03 dev eth0 nud permanent",
        ],
    )
    return ["host", a, b]


# --- the same facts, read through iproute2 and through snapshot(), in one normal form ---------------


def rows(items) -> list[tuple]:
    """Tuples in a stable order (they hold None next to strings, so sort by their repr)."""
    return sorted(items, key=repr)


def _dst(text: str, family: int) -> str:
    if text == "default" or "/" in text:
        return text
    return f"{text}/{32 if family == socket.AF_INET else 128}"


def ip_view(host_ns, namespaces: list[str]) -> dict:
    view: dict = {}
    for where in namespaces:
        links = ip(host_ns, where, "ip -d link show")
        names = {x["ifindex"]: x["ifname"] for x in links}
        fdb_ports = {
            x["ifname"]
            for x in links
            if "master" in x or x.get("linkinfo", {}).get("info_kind") in ("bridge", "vxlan")
        }
        vxlans = {x["ifname"] for x in links if x.get("linkinfo", {}).get("info_kind") == "vxlan"}
        routes = []
        for family, flag in ((socket.AF_INET, "-4"), (socket.AF_INET6, "-6")):
            for r in ip(host_ns, where, f"ip {flag} route show table main"):
                routes.append(
                    (
                        family,
                        _dst(r["dst"], family),
                        r.get("gateway"),
                        r.get("dev"),
                        r.get("protocol", "boot"),
                        SCOPES.get(r.get("scope", "global"), r.get("scope")),
                        r.get("metric"),
                        r.get("prefsrc"),
                        "onlink" in r.get("flags", []),
                    )
                )
        view[where] = {
            "links": rows(
                (
                    x["ifindex"],
                    x["ifname"],
                    x.get("linkinfo", {}).get("info_kind"),
                    x["mtu"],
                    x.get("address"),
                    x.get("master"),
                    x["operstate"].lower(),
                    "UP" in x["flags"],
                    x.get("ifalias"),
                )
                for x in links
            ),
            "addresses": rows(
                (
                    x["ifindex"],
                    x["ifname"],
                    socket.AF_INET if a["family"] == "inet" else socket.AF_INET6,
                    a["local"],
                    a["prefixlen"],
                    SCOPES.get(a["scope"], a["scope"]),
                )
                for x in ip(host_ns, where, "ip addr show")
                for a in x["addr_info"]
            ),
            "routes": rows(routes),
            "neighbours": rows(
                (n["dev"], n["dst"], n.get("lladdr"), tuple(sorted(s.lower() for s in n["state"])))
                for n in ip(host_ns, where, "ip neigh show nud all")
                if not _kernel_made(n)
            ),
            "fdb": rows(
                (
                    e["ifname"],
                    e.get("master"),
                    e["mac"],
                    e.get("dst"),
                    e.get("vlan"),
                    e.get("vni"),
                    BRIDGE_FDB_STATES.get(e.get("state", ""), e.get("state")),
                    "self" in e.get("flags", []),
                )
                for e in ip(host_ns, where, "bridge fdb show")
                if e["ifname"] in fdb_ports and ("self" not in e.get("flags", []) or e["ifname"] in vxlans)
            ),
            "names": names,
        }
    return view


def _bridge_state(state: str) -> str:
    """A netcore NUD state as `bridge fdb show` can tell it (it prints only the strongest bit)."""
    bits = set(state.split("|"))
    for name in ("permanent", "noarp", "stale", "reachable"):
        if name in bits:
            return name
    return state


def snap_view(snap: Snapshot, namespaces: list[str]) -> dict:
    view: dict = {}
    for where in namespaces:
        part = snap.in_netns(where)
        view[where] = {
            "links": rows(
                (x.index, x.name, x.kind, x.mtu, x.mac, x.master, x.state, x.up, x.alias) for x in part.links
            ),
            "addresses": rows(
                (a.ifindex, a.ifname, a.family, a.address, a.prefixlen, a.scope) for a in part.addresses
            ),
            "routes": rows(
                (r.family, r.dst, r.gateway, r.dev, r.protocol, r.scope, r.metric, r.prefsrc, r.onlink)
                for r in part.routes
            ),
            "neighbours": rows(
                (n.ifname, n.address, n.mac, tuple(sorted(n.state.split("|")))) for n in part.neighbours
            ),
            "fdb": rows(
                (f.ifname, f.master, f.mac, f.dst, f.vlan, f.vni, _bridge_state(f.state), f.self_entry)
                for f in part.fdb
            ),
            "names": {x.index: x.name for x in part.links},
        }
    return view


def settle(host_ns, namespaces: list[str]) -> None:
    """Wait until no address is tentative (DAD on link-local addresses), so the view stops moving."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(
            a.get("tentative")
            for where in namespaces
            for x in ip(host_ns, where, "ip addr show")
            for a in x["addr_info"]
        ):
            return
        time.sleep(0.1)


def stable_snapshot(host_ns, namespaces: list[str]) -> tuple[Snapshot, dict]:
    """A snapshot and iproute2's view taken around it, retried until the kernel held still meanwhile.

    Multicast-listener reports and DAD add neighbour and FDB entries on their own schedule, so
    the comparison is only fair when iproute2 saw the same thing just before and just after.
    """
    settle(host_ns, namespaces)
    for _ in range(30):
        before = ip_view(host_ns, namespaces)
        snap = snapshot(namespaces=namespaces)
        after = ip_view(host_ns, namespaces)
        if before == after:
            return snap, before
        time.sleep(0.3)
    raise AssertionError("the topology never held still long enough to compare")


# --- tests -----------------------------------------------------------------------------------------


def _kernel_made(n: dict) -> bool:
    """The neighbour entries netcore leaves out (docs/netcore.md, "Neighbours"): noarp entries the
    kernel makes by itself for multicast and broadcast destinations and on loopback."""
    if [s.lower() for s in n["state"]] != ["noarp"]:
        return False
    return n["dev"] == "lo" or n["dst"] == "255.255.255.255" or ipaddress.ip_address(n["dst"]).is_multicast


SECTIONS = ("links", "addresses", "routes", "neighbours", "fdb")


def test_snapshot_matches_iproute2(host_ns, built):
    snap, seen = stable_snapshot(host_ns, built)
    got = snap_view(snap, built)
    differ = [
        f"{section} of {where}:\n  snapshot: {got[where][section]}\n  iproute2: {seen[where][section]}"
        for where in built
        for section in SECTIONS
        if got[where][section] != seen[where][section]
    ]
    assert not differ, "\n".join(differ)
    # and there was something to compare (the node namespaces have no bridge ports, so no fdb; b has no
    # neighbour of its own making)
    expected = {w: set(SECTIONS) - ({"fdb"} if w != "host" else set()) for w in built}
    expected[list(built)[-1]].discard("neighbours")
    empty = [(w, s) for w in built for s in sorted(expected[w]) if not seen[w][s]]
    assert not empty


def test_snapshot_has_what_was_built(host_ns, topo, built):
    host, a, b = built
    snap, _ = stable_snapshot(host_ns, built)
    assert [(n.name, n.kind) for n in snap.namespaces] == [("host", "host"), (a, "named"), (b, "named")]
    assert snap.namespaces[0].inode == os.stat(host_ns.path).st_ino
    assert snap.namespaces[1].inode == os.stat(f"/run/netns/{a}").st_ino

    br = snap.link(host, f"{topo}br")
    assert (br.kind, br.mtu, br.up, br.alias) == ("bridge", 1450, True, f"switchboard:{topo}:bridge")
    vx = snap.link(host, f"{topo}vx")
    assert vx.master == f"{topo}br" and vx.kind == "vxlan"
    assert (vx.vxlan.vni, vx.vxlan.local, vx.vxlan.dstport, vx.vxlan.learning) == (
        4242,
        "198.18.70.1",
        4789,
        False,
    )
    assert snap.link(host, f"{topo}a0").master == f"{topo}br"

    v6 = [x for x in snap.addresses if x.netns == a and x.address == "fd00:70::2"]
    assert [(x.ifname, x.prefixlen, x.family) for x in v6] == [("eth0", 64, socket.AF_INET6)]
    routes = {(r.netns, r.dst): r for r in snap.routes if r.family == socket.AF_INET}
    routes6 = {(r.netns, r.dst): r for r in snap.routes if r.family == socket.AF_INET6}
    assert routes[(a, "default")].gateway == "198.18.70.1" and routes[(a, "default")].dev == "eth0"
    assert routes6[(a, "default")].gateway == "fd00:70::1" and routes6[(a, "default")].dev == "eth0"
    assert routes[(a, "198.18.71.0/24")].protocol == "static"
    assert routes6[(host, "fd00:72::/64")].metric == 77
    assert routes[(host, "198.18.73.0/24")].onlink is True
    neigh = {(n.netns, n.address): n for n in snap.neighbours}
    assert (
        neigh[(a, "fd00:70::3")].state == "permanent" and neigh[(a, "fd00:70::3")].mac == "02:00:00:00:70:03"
    )
    assert neigh[(host, "198.18.70.9")].ifname == f"{topo}br"
    fdb = {(f.ifname, f.mac): f for f in snap.fdb if f.netns == host}
    assert fdb[(f"{topo}vx", "02:00:00:00:70:51")].dst == "198.18.70.51"
    assert fdb[(f"{topo}vx", "02:00:00:00:70:53")].vni == 5000
    assert fdb[(f"{topo}vx", "00:00:00:00:00:00")].dst == "198.18.70.50"
    assert fdb[(f"{topo}a0", "02:00:00:00:70:52")].master == f"{topo}br"
    assert fdb[(f"{topo}a0", "02:00:00:00:70:52")].self_entry is False


def test_veth_peers_are_resolved_on_both_sides(host_ns, topo, built):
    host, a, b = built
    snap, seen = stable_snapshot(host_ns, built)
    expected = {
        (host, f"{topo}a0"): (a, "eth0"),
        (host, f"{topo}b0"): (b, "eth0"),
        (a, "ab"): (b, "ba"),
    }
    expected.update({there: here for here, there in list(expected.items())})
    veths = {(x.netns, x.name): x for x in snap.links if x.kind == "veth"}
    assert set(veths) == set(expected)
    for (where, name), (peer_ns, peer_name) in expected.items():
        peer_index = next(i for i, n in seen[peer_ns]["names"].items() if n == peer_name)
        assert veths[(where, name)].peer == LinkRef(peer_ns, peer_index, peer_name), (where, name)
    # iproute2 agrees on the index of the far end
    for x in ip(host_ns, "host", "ip -d link show type veth"):
        assert snap.link(host, x["ifname"]).peer.index == x["link_index"]
    assert all(x.peer is None for x in snap.links if x.kind != "veth")


def _two_pairs_between_namespaces(host_ns, spaces) -> list[str]:
    """Namespaces a, b, c, d with veth pairs a:ab <-> b:ba and c:cd <-> d:dc (same indexes in each)."""
    a, b, c, d = spaces("a", "b", "c", "d")
    run_all(
        host_ns,
        [
            f"ip -n {a} link add ab type veth peer name ba netns {b}",
            f"ip -n {c} link add cd type veth peer name dc netns {d}",
        ],
    )
    return [a, b, c, d]


def test_veth_peers_resolve_with_two_lookalike_pairs(host_ns, spaces):
    a, b, c, d = _two_pairs_between_namespaces(host_ns, spaces)
    snap = snapshot(namespaces=["host", a, b, c, d])
    assert snap.link(a, "ab").index == snap.link(c, "cd").index  # the look-alike the bug needs
    assert snap.link(a, "ab").peer == LinkRef(b, snap.link(b, "ba").index, "ba")
    assert snap.link(c, "cd").peer == LinkRef(d, snap.link(d, "dc").index, "dc")


def test_veth_peer_outside_the_snapshot_is_none_never_a_lookalike(host_ns, spaces):
    """A peer in a namespace the snapshot was not asked for is unresolved (None); a look-alike at the
    same index in a namespace that was asked for must not stand in for it."""
    a, b, c, d = _two_pairs_between_namespaces(host_ns, spaces)
    [dc] = ip(host_ns, d, "ip link show dev dc")
    snap = snapshot(namespaces=[a, b, c])
    ab, ba, cd = snap.link(a, "ab"), snap.link(b, "ba"), snap.link(c, "cd")
    assert ba.index == dc["ifindex"]  # cd's real peer (d:dc) has a look-alike in the snapshot: b:ba
    assert ab.peer == LinkRef(b, ba.index, "ba")
    assert ba.peer == LinkRef(a, ab.index, "ab")
    assert cd.peer is None
    # with neither far end asked for, both are unresolved
    only = snapshot(namespaces=[a, c])
    assert (only.link(a, "ab").peer, only.link(c, "cd").peer) == (None, None)


def test_missing_namespace_is_not_found(host_ns, topo):
    with pytest.raises(NotFound, match="nope"):
        snapshot(namespaces=["nope"])
    with pytest.raises(NotFound, match=f"{topo}-nope"):
        snapshot(namespaces=["host", f"{topo}-nope"])


def test_to_dict_round_trips_through_json(host_ns, built):
    snap, _ = stable_snapshot(host_ns, built)
    data = snap.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["version"] == 1
    assert [n["name"] for n in data["namespaces"]] == built
    assert len(data["links"]) == len(snap.links) and len(data["fdb"]) == len(snap.fdb)
    veth = next(x for x in data["links"] if x["peer"] is not None)
    assert set(veth["peer"]) == {"netns", "index", "name"}
    vxlan = next(x for x in data["links"] if x["vxlan"] is not None)
    assert ipaddress.ip_address(vxlan["vxlan"]["local"]) in ipaddress.ip_network("198.18.0.0/15")
