"""Topology files against the real kernel: apply, plan, destroy, traffic, idempotency, rollback."""

from __future__ import annotations

import ipaddress
import json
import os
import socket

import pytest

from netcore import names
from netcore import netns as ns
from netcore import requests as rq
from netcore.errors import AlreadyExists, InvalidSpec, NetcoreError
from netcore.netlink.socket import NetlinkSocket
from netcore.snapshot import snapshot
from netcore.topology import converge, desired, spec
from tests.conftest import can_connect, tcp_echo


def demo(topo: str, *, more_nodes: str = "") -> spec.TopologySpec:
    """The demo topology; `more_nodes` are further lines of its nodes section."""
    return spec.loads(f"""
name: {topo}
networks:
  front: {{driver: bridge, subnet: 198.18.1.0/24, mtu: 1400}}
  back: {{driver: vxlan, subnet: 198.18.2.0/24, vni: 4242}}
nodes:
  web1: {{networks: [front, back]}}
  web2: {{networks: {{front: {{address: 198.18.1.20}}}}}}
  db: {{mode: none}}
  side: {{mode: "container:web1"}}
{more_nodes}
routes:
  - {{node: web1, to: 198.18.9.0/24, via: 198.18.1.254}}
""")


def test_apply_builds_a_working_network(host_ns, topo):
    result = converge.apply(demo(topo))
    assert result.applied and result.counts()["create"] > 0

    # real traffic: node to node across the bridge, and node to the gateway on the bridge
    tcp_echo(server_ns=f"{topo}-web2", client_ns=f"{topo}-web1", address="198.18.1.20")
    tcp_echo(server_ns="host", client_ns=f"{topo}-web2", address="198.18.1.1")
    # the vxlan network's bridge carries the second interface of web1
    tcp_echo(server_ns="host", client_ns=f"{topo}-web1", address="198.18.2.1")

    snap = snapshot(namespaces=["host", f"{topo}-web1", f"{topo}-web2", f"{topo}-db"])
    web1 = {x.name: x for x in snap.links if x.netns == f"{topo}-web1"}
    assert set(web1) == {"lo", "eth0", "eth1"}
    assert web1["eth0"].mtu == 1400 and web1["eth0"].up
    assert web1["eth0"].peer.netns == "host" and web1["eth0"].peer.name == names.host_veth_name(
        topo, "web1", "front"
    )
    host_veth = snap.link("host", names.host_veth_name(topo, "web1", "front"))
    assert host_veth.master == f"{topo}-front" and host_veth.peer.netns == f"{topo}-web1"
    vx = snap.link("host", names.vxlan_name(topo, "back"))
    assert vx.kind == "vxlan" and vx.vxlan.vni == 4242 and vx.master == f"{topo}-back"
    routes = {r.dst: r for r in snap.routes if r.netns == f"{topo}-web1"}
    assert routes["default"].gateway == "198.18.1.1" and routes["default"].dev == "eth0"
    assert routes["198.18.9.0/24"].gateway == "198.18.1.254"
    db = [x.name for x in snap.links if x.netns == f"{topo}-db"]
    assert db == ["lo"]
    # container mode shares web1's namespace: nothing of its own
    assert not ns.netns_exists(f"{topo}-side")

    converge.destroy(demo(topo))


def test_second_apply_changes_nothing_and_plan_agrees(host_ns, topo):
    before = converge.plan(demo(topo))
    assert before.changes and not before.applied
    applied = converge.apply(demo(topo))
    assert [str(c) for c in applied.changes] == [str(c) for c in before.changes]
    again = converge.apply(demo(topo))
    assert again.changes == ()
    assert "no changes" in again.summary()
    assert converge.plan(demo(topo)).changes == ()
    converge.destroy(demo(topo))


def lo_of(netns: str):
    """The `lo` of a namespace, as a fresh snapshot reads it from the kernel."""
    lo = snapshot(namespaces=[netns]).link(netns, "lo")
    assert lo is not None
    return lo


def test_a_shared_namespace_names_its_container_nodes_and_apply_keeps_the_list_current(host_ns, topo):
    """A container: node has no kernel object of its own; the owner alias on the lo of the namespace it
    shares lists it, so that the dashboard can show and find it."""
    web1, db = f"{topo}-web1", f"{topo}-db"
    converge.apply(demo(topo))
    assert lo_of(web1).alias == f"switchboard:{topo}:node:node=web1:shared=side"
    assert lo_of(db).alias == f"switchboard:{topo}:node:node=db"
    assert names.parse_owner_alias(lo_of(web1).alias).shared == ("side",)

    # more container: nodes, one of them through a chain (tail shares side's, which is web1's)
    more = demo(topo, more_nodes='  tail: {mode: "container:side"}\n  cache: {mode: "container:db"}')
    planned = [str(c) for c in converge.plan(more).changes]
    assert sorted(planned) == [
        f"~ namespace {db} (owner alias: shared by cache)",
        f"~ namespace {web1} (owner alias: shared by side, tail)",
    ]
    assert [str(c) for c in converge.apply(more).changes] == planned
    assert lo_of(web1).alias == f"switchboard:{topo}:node:node=web1:shared=side,tail"
    assert lo_of(db).alias == f"switchboard:{topo}:node:node=db:shared=cache"
    assert lo_of(web1).up and lo_of(db).up
    assert not ns.netns_exists(f"{topo}-tail") and not ns.netns_exists(f"{topo}-cache")
    assert converge.apply(more).changes == ()  # idempotent

    # and when they go, the list follows
    assert sorted(str(c) for c in converge.apply(demo(topo)).changes) == [
        f"~ namespace {db} (owner alias: not shared)",
        f"~ namespace {web1} (owner alias: shared by side)",
    ]
    assert lo_of(web1).alias == f"switchboard:{topo}:node:node=web1:shared=side"
    assert lo_of(db).alias == f"switchboard:{topo}:node:node=db"
    assert converge.plan(demo(topo)).changes == ()
    tcp_echo(server_ns=f"{topo}-web2", client_ns=web1, address="198.18.1.20")  # the node still works
    converge.destroy(demo(topo))
    assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]


def test_the_longest_shared_alias_validation_allows_is_what_the_kernel_keeps(host_ns, topo):
    """names.MAX_ALIAS_BYTES is the kernel's limit for the alias as netcore sends it (NUL-terminated):
    an alias of exactly that many bytes is set and read back whole, one byte more is refused by the
    kernel (and by validation before it gets there)."""
    head = len(names.owner_alias(topology=topo, role="node", node="a", shared=["x"])) - 1
    room = names.MAX_ALIAS_BYTES - head  # for the names and their commas
    sharers = [f"s{i:02d}" + "x" * 12 for i in range(room // 16)]  # 15 bytes and a comma each
    last = "z" * (room - 16 * len(sharers))
    sharers.append(last)

    def shared_by(nodes: list[str]) -> str:
        lines = "".join(f'  {name}: {{mode: "container:a"}}\n' for name in nodes)
        return f"name: {topo}\nnodes:\n  a: {{mode: none}}\n{lines}"

    topology = spec.loads(shared_by(sharers))
    converge.apply(topology)
    alias = lo_of(f"{topo}-a").alias
    assert alias == names.owner_alias(topology=topo, role="node", node="a", shared=sharers)
    assert len(alias.encode()) == names.MAX_ALIAS_BYTES
    assert converge.apply(topology).changes == ()

    sock = NetlinkSocket.open()  # on the throwaway host namespace's own lo
    try:
        sock.run([rq.link_set(index=1, name="lo", alias="x" * names.MAX_ALIAS_BYTES)])
        with pytest.raises(NetcoreError):
            sock.run([rq.link_set(index=1, name="lo", alias="x" * (names.MAX_ALIAS_BYTES + 1))])
    finally:
        sock.close()
    too_long = f"^<string>: nodes.a: .* would be {names.MAX_ALIAS_BYTES + 1} bytes long"
    with pytest.raises(InvalidSpec, match=too_long):
        spec.loads(shared_by([*sharers[:-1], last + "z"]))
    converge.destroy(topology)


def test_destroy_leaves_nothing_and_only_touches_its_own(host_ns, topo):
    host_ns.run("ip link add keepme type bridge && ip netns add keep" + topo)
    try:
        converge.apply(demo(topo))
        result = converge.destroy(demo(topo))
        assert result.counts()["delete"] >= 6
        links = json.loads(host_ns.run("ip -j link show").stdout)
        assert sorted(x["ifname"] for x in links) == ["keepme", "lo"]
        assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]
        assert converge.destroy(demo(topo)).changes == ()
    finally:
        host_ns.run(f"ip netns del keep{topo}", check=False)


def mac(host_ns, netns: str, ifname: str) -> str:
    return json.loads(host_ns.run(f"ip -j -n {netns} link show {ifname}").stdout)[0]["address"]


def test_drift_is_planned_and_repaired(host_ns, topo):
    converge.apply(demo(topo))
    # web1 talks to web2 first, so it has web2's MAC cached when web2's interface is rebuilt
    tcp_echo(server_ns=f"{topo}-web2", client_ns=f"{topo}-web1", address="198.18.1.20")
    assert mac(host_ns, f"{topo}-web2", "eth0") == desired.endpoint_mac(ipaddress.ip_address("198.18.1.20"))
    host_ns.run(f"ip link del {names.host_veth_name(topo, 'web2', 'front')}")
    host_ns.run(f"ip -n {topo}-web1 addr flush dev eth0 scope global")
    plan = converge.plan(demo(topo))
    described = [str(c) for c in plan.changes]
    assert any(names.host_veth_name(topo, "web2", "front") in line for line in described)
    assert any("198.18.1.2/24" in line for line in described)
    converge.apply(demo(topo))
    # the rebuilt interface has its old MAC: the cached entry is right, and traffic flows at once
    assert mac(host_ns, f"{topo}-web2", "eth0") == "02:42:c6:12:01:14"
    tcp_echo(server_ns=f"{topo}-web2", client_ns=f"{topo}-web1", address="198.18.1.20", timeout=1.0)
    assert converge.plan(demo(topo)).changes == ()
    converge.destroy(demo(topo))


def bridge_mac(topo: str) -> str | None:
    return snapshot(namespaces=["host"]).link("host", f"{topo}-front").mac


def test_removed_node_is_removed_on_apply(host_ns, topo):
    converge.apply(demo(topo))
    gateway_mac = spec.endpoint_mac(ipaddress.ip_address("198.18.1.1"))
    assert bridge_mac(topo) == gateway_mac  # fixed: not the lowest of its ports', which moves as they go
    smaller = spec.loads(f"""
name: {topo}
networks:
  front: {{subnet: 198.18.1.0/24, mtu: 1400}}
nodes:
  web2: {{networks: {{front: {{address: 198.18.1.20}}}}}}
""")
    result = converge.apply(smaller)
    removed = {c.name for c in result.changes if c.action == "delete"}
    assert {
        f"{topo}-web1",
        f"{topo}-db",
        f"{topo}-back",
        names.host_veth_name(topo, "web1", "front"),
    } <= removed
    assert not ns.netns_exists(f"{topo}-web1")
    assert bridge_mac(topo) == gateway_mac
    tcp_echo(server_ns="host", client_ns=f"{topo}-web2", address="198.18.1.1")
    sock = NetlinkSocket.open()  # a MAC changed by hand is drift, and apply puts it back
    try:
        sock.run([rq.link_set(name=f"{topo}-front", mac="02:00:00:00:00:99")])
    finally:
        sock.close()
    assert [str(c) for c in converge.plan(smaller).changes] == [f"~ bridge {topo}-front (mac {gateway_mac})"]
    converge.apply(smaller)
    assert bridge_mac(topo) == gateway_mac
    converge.destroy(smaller)


def test_an_apply_limited_to_some_nodes_reads_and_changes_only_theirs(host_ns, topo):
    """apply(nodes=...) converges the host's own objects and those nodes' namespaces, and leaves the
    others alone (unread: here, a drift in web2 is neither seen nor repaired by it)."""
    converge.apply(demo(topo))
    host_ns.run(f"ip -n {topo}-web2 addr flush dev eth0 scope global")  # drift in a node out of scope
    grown = demo(topo, more_nodes="  web3: {networks: {front: {address: 198.18.1.30}}}")
    result = converge.apply(grown, nodes=["web3"])
    changed = {c.name for c in result.changes}
    assert f"{topo}-web3" in changed and not any("198.18.1.20" in str(c) for c in result.changes)
    tcp_echo(server_ns=f"{topo}-web3", client_ns=f"{topo}-web1", address="198.18.1.30")
    assert global_addresses(host_ns, "eth0", f"{topo}-web2") == []  # web2 was not touched
    # a node gone from the file and named is removed; one named that never existed is no error
    shrunk = demo(topo)
    result = converge.apply(shrunk, nodes=["web3", "ghost"])
    assert {c.name for c in result.changes if c.action == "delete"} >= {f"{topo}-web3"}
    assert not ns.netns_exists(f"{topo}-web3")
    # the whole apply then repairs web2
    assert any("198.18.1.20" in str(c) for c in converge.apply(shrunk).changes)
    assert converge.plan(shrunk).changes == ()
    converge.destroy(shrunk)


def global_addresses(host_ns, dev: str, netns: str | None = None) -> list[str]:
    where = f"-n {netns} " if netns else ""
    shown = json.loads(host_ns.run(f"ip {where}-j addr show dev {dev} scope global").stdout)
    return sorted(f"{a['local']}/{a['prefixlen']}" for x in shown for a in x["addr_info"] if "local" in a)


def host_answers(client_ns: str, address: str, port: int = 7002) -> bool:
    """True if a TCP connection from client_ns to `address` reaches a server listening on every
    address of the host namespace: it does exactly when the host holds `address`."""
    with socket.create_server(("0.0.0.0", port)) as listener:
        client = ns.netns_run(path=ns.netns_path(client_ns), fn=socket.socket)
        client.settimeout(1.0)
        with client:
            try:
                client.connect((address, port))
            except OSError:
                return False
            listener.accept()[0].close()
            return True


def test_moving_a_network_removes_the_addresses_the_file_no_longer_asks_for(host_ns, topo):
    def network(subnet: str, static: str) -> spec.TopologySpec:
        return spec.loads(f"""
name: {topo}
networks:
  front: {{subnet: {subnet}}}
nodes:
  a: {{networks: [front]}}
  b: {{networks: {{front: {{address: {static}}}}}}}
""")

    bridge, veth = f"{topo}-front", names.host_veth_name(topo, "a", "front")
    first = network("198.18.4.0/24", "198.18.4.20")
    converge.apply(first)
    # drift: addresses the file does not ask for, one making the gateway an IPv4 secondary that the
    # kernel deletes along with its primary
    host_ns.run(f"ip addr flush dev {bridge} scope global && ip addr add 198.18.4.99/24 dev {bridge}")
    host_ns.run(f"ip addr add 198.18.4.1/24 dev {bridge} && ip addr add 198.18.77.1/24 dev {veth}")
    inside = f"ip -n {topo}-b addr"  # flushing eth0 drops b's default route too
    host_ns.run(f"{inside} flush dev eth0 && {inside} add 198.18.4.98/24 dev eth0")
    host_ns.run(f"{inside} add 198.18.4.20/24 dev eth0")
    planned = [str(c) for c in converge.plan(first).changes]
    assert sorted(planned) == [
        f"+ route 0.0.0.0/0 in {topo}-b (via 198.18.4.1 dev eth0)",
        f"- address 198.18.4.98/24 on {topo}-b:eth0",
        f"- address 198.18.4.99/24 on {bridge}",
        f"- address 198.18.77.1/24 on {veth}",
    ]
    converge.apply(first)
    assert global_addresses(host_ns, bridge) == ["198.18.4.1/24"] and global_addresses(host_ns, veth) == []
    assert global_addresses(host_ns, "eth0", f"{topo}-b") == ["198.18.4.20/24"]
    assert converge.plan(first).changes == ()
    tcp_echo(server_ns="host", client_ns=f"{topo}-b", address="198.18.4.1")
    tcp_echo(server_ns="host", client_ns=f"{topo}-a", address="198.18.4.1")
    host_ns.run(f"ip addr add 198.18.4.99/24 dev {bridge}")
    # the same addresses with a longer prefix, then a new subnet: every old address goes
    steps = [
        ("198.18.4.0/23", "198.18.4.30", "198.18.4.1/24", "198.18.4.2/24"),
        ("198.18.8.0/24", "198.18.8.20", "198.18.4.1/23", "198.18.4.2/23"),
    ]
    for subnet, static, old_gateway, old_a in steps:
        moved = network(subnet, static)
        planned = [str(c) for c in converge.plan(moved).changes]
        assert f"- address {old_gateway} on {bridge}" in planned
        assert f"- address {old_a} on {topo}-a:eth0" in planned
        converge.apply(moved)
        prefix = subnet.split("/")[1]
        gateway = str(ipaddress.ip_network(subnet).network_address + 1)
        assert global_addresses(host_ns, bridge) == [f"{gateway}/{prefix}"]
        assert global_addresses(host_ns, "eth0", f"{topo}-b") == [f"{static}/{prefix}"]
        # the MAC follows the address: no later endpoint given the old address gets b's MAC
        assert mac(host_ns, f"{topo}-b", "eth0") == desired.endpoint_mac(ipaddress.ip_address(static))
        assert converge.plan(moved).changes == ()
        # the nodes reach the new gateway and each other; an old gateway address answers no more
        tcp_echo(server_ns="host", client_ns=f"{topo}-a", address=gateway)
        tcp_echo(server_ns=f"{topo}-b", client_ns=f"{topo}-a", address=static)
        old_ip = old_gateway.split("/")[0]
        if old_ip != gateway:
            assert not host_answers(f"{topo}-a", old_ip)
    converge.destroy(moved)


def test_large_network_spreads_over_segments_and_stays_one_l2(host_ns, topo, monkeypatch):
    monkeypatch.setattr(desired, "SEGMENT_PORTS", 3)
    nodes = "\n".join(f"  n{i}: {{networks: [lan]}}" for i in range(8))
    topology = spec.loads(f"name: {topo}\nnetworks:\n  lan: {{subnet: 198.18.4.0/24}}\nnodes:\n{nodes}\n")
    converge.apply(topology)
    bridges = json.loads(host_ns.run("ip -j link show type bridge").stdout)
    assert sorted(b["ifname"] for b in bridges) == [f"{topo}-lan", f"{topo}-lan.1", f"{topo}-lan.2"]
    ports = json.loads(host_ns.run(f"ip -j link show master {topo}-lan.2").stdout)
    assert f"{topo}-n7-lan" in {p["ifname"] for p in ports}
    # n0 (segment 0) and n7 (segment 2) talk through the root bridge, and n7 reaches the gateway
    tcp_echo(server_ns=f"{topo}-n0", client_ns=f"{topo}-n7", address="198.18.4.2")
    tcp_echo(server_ns="host", client_ns=f"{topo}-n7", address="198.18.4.1")
    assert converge.apply(topology).changes == ()
    converge.destroy(topology)
    assert json.loads(host_ns.run("ip -j link show").stdout)[0]["ifname"] == "lo"


def test_ipv6_network(host_ns, topo):
    topology = spec.loads(f"""
name: {topo}
networks:
  v6: {{subnet: "fd00:18::/64"}}
nodes:
  a: {{networks: [v6]}}
  b: {{networks: [v6]}}
""")
    converge.apply(topology)
    tcp_echo(server_ns=f"{topo}-b", client_ns=f"{topo}-a", address="fd00:18::3")
    tcp_echo(server_ns="host", client_ns=f"{topo}-a", address="fd00:18::1")
    assert mac(host_ns, f"{topo}-b", "eth0") == "02:00:00:00:00:03"  # the address's last 5 bytes
    assert converge.apply(topology).changes == ()
    converge.destroy(topology)


def test_networks_are_separate_segments_joined_only_by_the_hosts_routing(host_ns, topo):
    """Each network is its own L2 segment: a node reaches another network only through its gateway, i.e.
    only if the host namespace routes between them. netcore neither turns forwarding on nor off (on a
    Docker host it is on, and then networks reach each other: filtering is not netcore's today)."""
    topology = spec.loads(f"""
name: {topo}
networks:
  red: {{subnet: 198.18.6.0/24}}
  blue: {{subnet: 198.18.7.0/24}}
nodes:
  r: {{networks: [red]}}
  b: {{networks: [blue]}}
""")
    for forwarding in ("0", "1"):
        host_ns.run(f"sysctl -qw net.ipv4.ip_forward={forwarding}")
        converge.apply(topology)
        try:
            assert host_ns.run("sysctl -n net.ipv4.ip_forward").stdout.strip() == forwarding
            # no L2 path: b's address is not on r's link, it is reached through r's gateway
            via = host_ns.run(f"ip -n {topo}-r route get 198.18.7.2").stdout
            assert "via 198.18.6.1" in via, via
            reached = can_connect(server_ns=f"{topo}-b", client_ns=f"{topo}-r", address="198.18.7.2")
            assert reached == (forwarding == "1")
        finally:
            converge.destroy(topology)


def test_conflicting_link_is_refused_before_anything_is_touched(host_ns, topo):
    host_ns.run(f"ip link add {topo}-front type bridge")
    with pytest.raises(AlreadyExists, match=f"link {topo}-front already exists"):
        converge.apply(demo(topo))
    links = json.loads(host_ns.run("ip -j link show").stdout)
    assert sorted(x["ifname"] for x in links) == ["lo", f"{topo}-front"]
    assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]


def test_failure_half_way_rolls_back_everything(host_ns, topo, monkeypatch):
    from netcore import requests as rq

    real = rq.route_add

    def broken(**kwargs):
        request = real(**kwargs)
        if f"{topo}-web2" in request.obj:  # web2's default route: after bridges, vxlan and web1 exist
            return type(request)(
                request.msg_type, request.flags, request.body[:8], request.action, request.obj
            )
        return request

    monkeypatch.setattr(rq, "route_add", broken)
    with pytest.raises(NetcoreError, match=f"in {topo}-web2"):
        converge.apply(demo(topo))
    links = json.loads(host_ns.run("ip -j link show").stdout)
    assert [x["ifname"] for x in links] == ["lo"]
    assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]


def test_mtu_changes_in_place_and_connections_survive(host_ns, topo):
    """A network's MTU, lowered and raised, is set on its bridge and on both ends of every veth: no
    namespace or interface is rebuilt (the interface indexes stay), and an open TCP connection
    between two nodes carries data before and after."""

    def network(mtu: int) -> spec.TopologySpec:
        return spec.loads(f"""
name: {topo}
networks:
  front: {{subnet: 198.18.14.0/24, mtu: {mtu}}}
nodes:
  a: {{networks: [front]}}
  b: {{networks: {{front: {{address: 198.18.14.20}}}}}}
""")

    converge.apply(network(1500))
    veth = names.host_veth_name(topo, "b", "front")

    def indexes() -> tuple[int, int]:
        inside = json.loads(host_ns.run(f"ip -j -n {topo}-b link show eth0").stdout)[0]
        return json.loads(host_ns.run(f"ip -j link show {veth}").stdout)[0]["ifindex"], inside["ifindex"]

    before = indexes()
    listener = ns.netns_run(
        path=ns.netns_path(f"{topo}-b"), fn=lambda: socket.create_server(("198.18.14.20", 7100))
    )
    client = ns.netns_run(path=ns.netns_path(f"{topo}-a"), fn=socket.socket)
    try:
        client.settimeout(3)
        listener.settimeout(3)
        client.connect(("198.18.14.20", 7100))
        server, _ = listener.accept()
        for mtu in (1400, 9000):
            planned = [str(c) for c in converge.plan(network(mtu)).changes]
            assert f"~ veth {veth} (mtu {mtu})" in planned and not [
                c for c in planned if c.startswith(("+", "-"))
            ]
            converge.apply(network(mtu))
            assert indexes() == before
            assert mac(host_ns, f"{topo}-b", "eth0").startswith("02:42")
            ends = (("", veth), (f"-n {topo}-b", "eth0"), ("", f"{topo}-front"))
            mtus = {
                json.loads(host_ns.run(f"ip -j {where} link show {n}").stdout)[0]["mtu"] for where, n in ends
            }
            assert mtus == {mtu}
            client.sendall(b"still here")
            assert server.recv(64) == b"still here"
            assert converge.plan(network(mtu)).changes == ()
        server.close()
    finally:
        client.close()
        listener.close()
        converge.destroy(network(9000))
