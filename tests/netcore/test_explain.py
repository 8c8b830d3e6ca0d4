"""Why can't A reach B, for real: topologies built in the kernel, some broken on purpose, each asked
with the path walk and a live probe. The walk's verdict and cause are the expected ones, the probe's
outcome agrees with the walk (or the answer says they disagree), and the CLI says the same."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from netcore import names
from netcore import netns as ns
from netcore.explain import answer as answer_module
from netcore.explain.answer import Explanation, destination_parse, explain
from netcore.explain.firewall import Verdict
from netcore.explain.probe import Namespaces
from netcore.explain.route_get import RouteAnswer
from netcore.explain.walk import path_walk
from netcore.model import Address, FdbEntry, Link, LinkRef, Namespace, Snapshot, VxlanInfo
from netcore.services.catalog import Vip, VipTarget
from netcore.services.vip import VipTable
from netcore.topology import converge, desired, spec
from netcore.topology.spec import endpoint_mac
from tests.netcore.test_topology_overlay import Lab, build, lab

__all__ = ["lab"]  # the two simulated hosts of test_topology_overlay, a fixture used by name

TWO_NETWORKS = """
name: {topo}
networks:
  lan: {{subnet: 198.18.70.0/24}}
  back: {{subnet: 198.18.71.0/24}}
nodes:
  a: {{networks: {{lan: {{address: 198.18.70.10}}}}}}
  b: {{networks: {{lan: {{address: 198.18.70.11}}}}}}
  c: {{networks: {{back: {{address: 198.18.71.10}}}}}}
  d: {{networks: {{lan: {{address: 198.18.70.12}}}}}}
  side: {{mode: "container:a"}}
"""


@pytest.fixture
def built(host_ns, topo) -> Iterator[str]:
    """The two networks applied in the test's namespace (its "host"), destroyed after."""
    topology = spec.loads(TWO_NETWORKS.format(topo=topo))
    converge.apply(topology)
    try:
        _links_up([f"{topo}-{node}" for node in "abcd"])
        yield topo
    finally:
        converge.destroy(topology)


@contextlib.contextmanager
def listening(netns: str, address: str, port: int) -> Iterator[None]:
    """A TCP listener inside a node's namespace for the length of the block."""

    def make() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(8)
        return s

    sock = ns.netns_run(path=ns.netns_path(netns), fn=make)
    try:
        yield
    finally:
        sock.close()


def ask(source: str, destination: str, **kw) -> tuple[str, str, str, str]:
    """(result, walk verdict, cause, probe outcome)."""
    answer = explain(source=source, destination=destination, count=1, timeout=1.0, **kw)
    return answer.result, answer.walk.verdict, answer.walk.cause, answer.probe.outcome if answer.probe else ""


def test_a_working_path_on_one_bridge_is_walked_hop_by_hop_and_proven(built):
    with listening(f"{built}-b", "198.18.70.11", 8080):
        answer = explain(source=f"{built}-a", destination="198.18.70.11:8080", count=2, timeout=2.0)
    assert (answer.result, answer.walk.verdict, answer.probe.answered) == ("REACHABLE", "deliver", 2), (
        answer.walk.hops
    )
    kinds = [(h.netns, h.kind) for h in answer.walk.hops]
    assert kinds[0] == (f"{built}-a", "route") and kinds[-1] == (f"{built}-b", "deliver")
    veth = names.host_veth_name(built, "a", "lan")
    assert any(h.kind == "veth" and h.object == "eth0" and veth in h.decision for h in answer.walk.hops)
    assert "a socket listens" in answer.walk.hops[-1].decision


def test_a_node_name_stands_for_its_address_and_icmp_is_the_default_without_a_port(built):
    answer = explain(source=f"{built}-a", destination=f"{built}-b", count=1, timeout=2.0)
    assert (answer.walk.destination, answer.walk.protocol, answer.result) == (
        "198.18.70.11",
        "icmp",
        "REACHABLE",
    )


def test_nothing_listening_is_found_by_the_walk_and_refused_by_the_probe(built):
    assert ask(f"{built}-a", "198.18.70.11:8080") == ("UNREACHABLE", "drop", "NOTHING_LISTENING", "refused")


def test_a_downed_veth_end_in_the_destination(built):
    _ip(f"ip -n {built}-b link set eth0 down")
    assert ask(f"{built}-a", "198.18.70.11") == ("UNREACHABLE", "drop", "LINK_DOWN", "timeout")


def test_a_downed_source_interface(built):
    _ip(f"ip -n {built}-a link set eth0 down")
    result, verdict, cause, _ = ask(f"{built}-a", "198.18.70.11")
    assert (result, verdict, cause) == ("UNREACHABLE", "drop", "NO_ROUTE")  # its routes went down with it


def test_a_bridge_port_down(built):
    _ip(f"ip link set {names.host_veth_name(built, 'b', 'lan')} down")
    assert ask(f"{built}-a", "198.18.70.11") == ("UNREACHABLE", "drop", "BRIDGE_PORT_DOWN", "timeout")


def test_a_missing_route(built):
    _ip(f"ip -n {built}-a route del default")
    result, verdict, cause, probe = ask(f"{built}-a", "198.18.71.10")
    assert (result, verdict, cause, probe) == ("UNREACHABLE", "drop", "NO_ROUTE", "unreachable")


def test_an_address_nobody_has(built):
    assert ask(f"{built}-a", "198.18.70.99") == ("UNREACHABLE", "drop", "NO_NEIGHBOUR", "timeout")


def test_a_wrong_gateway(built):
    _ip(f"ip -n {built}-a route replace default via 198.18.70.254")
    assert ask(f"{built}-a", "198.18.71.10")[:3] == ("UNREACHABLE", "drop", "NO_NEIGHBOUR")


def test_across_networks_the_host_must_forward(built):
    _ip("sysctl -qw net.ipv4.ip_forward=0")
    assert ask(f"{built}-a", "198.18.71.10") == ("UNREACHABLE", "drop", "FORWARDING_DISABLED", "timeout")
    _ip("sysctl -qw net.ipv4.ip_forward=1")
    answer = explain(source=f"{built}-a", destination="198.18.71.10", count=1, timeout=2.0)
    assert (answer.result, answer.walk.verdict) == ("REACHABLE", "deliver")
    routed = [h for h in answer.walk.hops if h.kind == "route"]
    assert [h.netns for h in routed] == [f"{built}-a", "host", f"{built}-c"]
    assert "arriving on" in routed[1].decision


def test_an_address_conflict_on_the_segment(built):
    _ip(f"ip -n {built}-d addr add 198.18.70.11/24 dev eth0")
    assert ask(f"{built}-a", "198.18.70.11", probe=False)[:3] == ("UNREACHABLE", "drop", "ADDRESS_CONFLICT")


def test_a_container_node_reaches_its_peer_over_lo(built):
    with listening(f"{built}-a", "127.0.0.1", 9000):
        answer = explain(source=f"{built}-a", destination="127.0.0.1:9000", count=1, timeout=2.0)
    assert (answer.result, [h.kind for h in answer.walk.hops]) == ("REACHABLE", ["route", "deliver"])


def test_a_firewall_rule_dropping_the_port_is_named_by_table_chain_and_handle(built):
    _ip("nft add table inet sbtest; nft add chain inet sbtest fw '{ type filter hook forward priority 0; }'")
    _ip("nft add rule inet sbtest fw ip daddr 198.18.70.11 tcp dport 8080 drop")
    _ip("sysctl -qw net.ipv4.ip_forward=1")
    try:
        with listening(f"{built}-b", "198.18.70.11", 8080):
            answer = explain(source=f"{built}-c", destination="198.18.70.11:8080", count=1, timeout=0.5)
            other_port = explain(source=f"{built}-c", destination="198.18.70.11:8081", count=1, timeout=0.5)
    finally:
        _ip("nft delete table inet sbtest")
    assert (answer.result, answer.walk.cause, answer.probe.outcome) == (
        "UNREACHABLE",
        "FIREWALL_DROP",
        "timeout",
    )
    dropped = answer.walk.hops[-1]
    assert (dropped.netns, dropped.kind) == ("host", "firewall")
    assert dropped.object.startswith("inet sbtest fw handle ") and "tcp dport == 8080" in dropped.decision
    assert other_port.walk.cause == "NOTHING_LISTENING"  # the rule is about 8080 only
    # the probe, traced where the host filters: the kernel names the same rule, by its handle
    trace = answer.watched.trace
    assert trace.traced == ["host"] and trace.dropped_by is not None, answer.watched
    assert (trace.dropped_by.netns, trace.dropped_by.where) == ("host", dropped.object)
    assert "tcp dport 8080 drop" in trace.dropped_by.rule
    assert other_port.watched.trace.traced == ["host"] and other_port.watched.dropped_by is None
    # seen arriving on the host's bridge of c's network, where the forward hook dropped it
    last = answer.watched.last_seen
    assert (last["netns"], last["interface"]) == ("host", names.bridge_name(built, "back")), answer.watched
    assert answer.walk.hops[last["hop"]].kind == "route"  # routed by the host, then dropped
    assert answer.to_dict()["probe"]["dropped_by"]["handle"] == trace.dropped_by.handle
    assert _trace_tables() == []


def test_docker_s_forward_drop_between_plain_bridges(built):
    _ip("sysctl -qw net.ipv4.ip_forward=1; iptables -N DOCKER-USER; iptables -A FORWARD -j DOCKER-USER")
    _ip("iptables -P FORWARD DROP")
    try:
        routed = explain(source=f"{built}-a", destination="198.18.71.10", count=1, timeout=1.0)
        same_bridge = ask(f"{built}-a", "198.18.70.11")
    finally:
        _ip("iptables -P FORWARD ACCEPT; iptables -F FORWARD; iptables -X DOCKER-USER")
    assert (routed.result, routed.walk.cause, routed.probe.outcome) == (
        "UNREACHABLE",
        "DOCKER_FORWARD_DROP",
        "timeout",
    )
    drop = routed.watched.dropped_by  # the trace agrees: the FORWARD chain's policy
    assert drop is not None and drop.policy and (drop.netns, drop.where) == ("host", "ip filter FORWARD")
    bridged = Namespaces({"host": None}).bridge_filters("host")  # br_netfilter: Docker loads it
    expected = (
        ("UNREACHABLE", "drop", "DOCKER_FORWARD_DROP", "timeout")
        if bridged
        else ("REACHABLE", "deliver", "", "answered")
    )
    assert same_bridge == expected


def test_bad_questions_are_refused_by_name(built):
    from netcore.errors import InvalidSpec, NotFound

    with pytest.raises(NotFound, match="nowhere"):
        explain(source="nowhere", destination="198.18.70.11")
    with pytest.raises(NotFound, match="neither an address nor a namespace"):
        explain(source=f"{built}-a", destination="nothing-here")
    with pytest.raises(InvalidSpec, match="not a port"):
        explain(source=f"{built}-a", destination="198.18.70.11:99999")
    with pytest.raises(InvalidSpec, match="needs a port"):
        explain(source=f"{built}-a", destination="198.18.70.11", protocol="tcp")


def test_the_cli_answers_as_text_and_json_with_the_answer_as_exit_status(host_ns, built):
    text = host_ns.netcore("explain", f"{built}-a", "198.18.70.11:8080", "--count", "1", "--timeout", "0.5")
    assert text.returncode == 3, text.stderr
    assert "NOTHING_LISTENING" in text.stdout and "what to do:" in text.stdout
    assert "seen:   seen at every watched interface" in text.stdout  # refused at b: it got there
    data = host_ns.netcore("explain", f"{built}-a", f"{built}-b", "--json", "--no-probe")
    assert data.returncode == 0, data.stderr
    body = json.loads(data.stdout)
    assert (body["result"], body["walk"]["verdict"], body["probe"]) == ("REACHABLE", "deliver", None)
    bad = host_ns.netcore("explain", "nowhere", "198.18.70.11")
    assert bad.returncode != 0 and "nowhere" in bad.stderr


def _watched(answer: Explanation) -> list[tuple[str, str, int, int]]:
    """(namespace, interface, packets out, packets back) of each watched hop, in path order."""
    assert answer.watched is not None
    pairs = zip(answer.walk.hops, answer.watched.seen, strict=True)
    return [(hop.netns, hop.interface, seen.out, seen.back) for hop, seen in pairs if seen is not None]


def _where(found: dict | None) -> tuple[str, str] | None:
    return (found["netns"], found["interface"]) if found else None


def _mac(netns: str) -> str:
    return json.loads(_run(f"ip -n {netns} -j link show eth0"))[0]["address"]


def _trace_tables() -> list[str]:
    """Our trace tables left in the test's namespace."""
    return [line for line in _run("nft list tables").splitlines() if "switchboard-explain-trace-" in line]


def _monitors() -> str:
    """`nft monitor` processes this test process started and did not stop."""
    found = subprocess.run(["pgrep", "-a", "-P", str(os.getpid()), "nft"], capture_output=True, text=True)
    return found.stdout


def test_a_working_probe_is_seen_at_every_watched_hop_both_ways(built):
    with listening(f"{built}-b", "198.18.70.11", 8080):
        answer = explain(source=f"{built}-a", destination="198.18.70.11:8080", count=2, timeout=2.0)
    a_port, b_port = names.host_veth_name(built, "a", "lan"), names.host_veth_name(built, "b", "lan")
    seen = _watched(answer)
    assert [(netns, interface) for netns, interface, _, _ in seen] == [
        (f"{built}-a", "eth0"),
        ("host", a_port),
        ("host", b_port),
        (f"{built}-b", "eth0"),
    ]
    assert all(out >= 2 and back >= 2 for _, _, out, back in seen), seen  # two SYNs, two SYN-ACKs at least
    assert _where(answer.watched.last_seen) == (f"{built}-b", "eth0") and answer.watched.not_seen is None
    assert answer.watched.trace.traced == []  # nothing filters on this path: nothing to trace
    data = answer.to_dict()
    watched = [h["probe_seen"] is not None for h in data["walk"]["hops"]]
    assert watched == [False, True, True, True, True, False]
    assert data["probe"]["seen"].startswith("seen at every watched interface (4)")
    assert "its answers seen on the way back at every one" in answer.summary


def test_the_probe_is_last_seen_before_a_downed_veth_end_and_a_downed_bridge_port(built):
    a_port, b_port = names.host_veth_name(built, "a", "lan"), names.host_veth_name(built, "b", "lan")
    # a knows b's MAC, so the echo request leaves a without waiting for an ARP answer that cannot come
    _ip(f"ip -n {built}-a neigh replace 198.18.70.11 lladdr {_mac(f'{built}-b')} dev eth0 nud permanent")
    _ip(f"ip -n {built}-b link set eth0 down")
    far_end = explain(source=f"{built}-a", destination="198.18.70.11", count=1, timeout=0.5)
    _ip(f"ip -n {built}-b link set eth0 up && ip link set {b_port} down")
    port = explain(source=f"{built}-a", destination="198.18.70.11", count=1, timeout=0.5)
    for answer, cause in ((far_end, "LINK_DOWN"), (port, "BRIDGE_PORT_DOWN")):
        assert (answer.result, answer.walk.cause, answer.probe.outcome) == ("UNREACHABLE", cause, "timeout")
        assert _where(answer.watched.last_seen) == ("host", a_port), _watched(answer)
        assert _where(answer.watched.not_seen) == ("host", b_port), _watched(answer)
        assert f"last seen arriving on {a_port} in host; not seen on {b_port} in host" in answer.summary
        assert _watched(answer)[0][:3] == (f"{built}-a", "eth0", 1)


def test_a_rule_the_walk_cannot_read_is_named_by_the_trace_and_makes_the_answer_inconsistent(built):
    _ip("nft add table inet sbtest; nft add chain inet sbtest fw '{ type filter hook forward priority 0; }'")
    _ip("nft add rule inet sbtest fw meta length 1-65535 ip daddr 198.18.70.11 drop")  # unreadable: length
    _ip("nft add rule inet sbtest fw ip daddr 198.18.70.11 tcp dport 8080 drop")
    _ip("sysctl -qw net.ipv4.ip_forward=1")
    handles = [
        item["rule"]["handle"]
        for item in json.loads(_run("nft -j -a list chain inet sbtest fw"))["nftables"]
        if "rule" in item
    ]
    try:
        with listening(f"{built}-b", "198.18.70.11", 8080):
            answer = explain(source=f"{built}-c", destination="198.18.70.11:8080", count=1, timeout=0.5)
        with listening(f"{built}-b", "198.18.70.11", 8081):
            past_the_walk = explain(source=f"{built}-c", destination="198.18.70.11:8081", count=1, timeout=1)
    finally:
        _ip("nft delete table inet sbtest")
    walk_says, trace_says = f"inet sbtest fw handle {handles[1]}", f"inet sbtest fw handle {handles[0]}"
    assert (answer.walk.cause, answer.walk.hops[-1].object) == ("FIREWALL_DROP", walk_says)
    assert answer.watched.dropped_by.where == trace_says
    assert answer.result == "INCONSISTENT" and walk_says in answer.summary and trace_says in answer.summary
    assert (past_the_walk.walk.verdict, past_the_walk.result) == ("deliver", "INCONSISTENT")
    assert f"{trace_says} in host dropped it" in past_the_walk.summary


def test_the_trace_table_is_removed_even_when_the_probe_fails(built, monkeypatch):
    _ip("nft add table inet sbtest; nft add chain inet sbtest fw '{ type filter hook forward priority 0; }'")
    _ip("nft add rule inet sbtest fw tcp dport 9 drop; sysctl -qw net.ipv4.ip_forward=1")
    during: list[list[str]] = []

    def broken_probe(*args, **kwargs):
        during.append(_trace_tables())
        raise OSError(errno.EIO, "the probe broke")

    monkeypatch.setattr(answer_module, "probe_tcp", broken_probe)
    try:
        with pytest.raises(OSError, match="the probe broke"):
            explain(source=f"{built}-c", destination="198.18.70.11:8080", count=1, timeout=0.5)
    finally:
        _ip("nft delete table inet sbtest")
    assert len(during) == 1 and len(during[0]) == 1, during  # it was there while the probe ran
    assert _trace_tables() == [] and _monitors() == ""


@contextlib.contextmanager
def udp_bound(netns: str, address: str, port: int, *, answers: bool) -> Iterator[None]:
    """A UDP socket bound in a node's namespace for the block: echoing every datagram, or silent."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, port))
        s.settimeout(0.05)
        return s

    sock = ns.netns_run(path=ns.netns_path(netns), fn=make)
    done = threading.Event()

    def echo() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                data, peer = sock.recvfrom(2048)
                sock.sendto(data, peer)

    server = threading.Thread(target=echo, daemon=True)
    if answers:
        server.start()
    try:
        yield
    finally:
        done.set()
        if answers:
            server.join()
        sock.close()


def test_udp_probes_answered_refused_and_silent(built):
    with udp_bound(f"{built}-b", "198.18.70.11", 9053, answers=True):
        answered = explain(source=f"{built}-a", destination="198.18.70.11:9053", protocol="udp", count=2)
    refused = explain(source=f"{built}-a", destination="198.18.70.11:9054", protocol="udp", count=1)
    with udp_bound(f"{built}-b", "198.18.70.11", 9055, answers=False):
        silent = explain(source=f"{built}-a", destination="198.18.70.11:9055", protocol="udp", timeout=0.3)
    assert (answered.result, answered.walk.verdict, answered.probe.outcome, answered.probe.answered) == (
        "REACHABLE",
        "deliver",
        "answered",
        2,
    )
    assert (refused.result, refused.walk.cause, refused.probe.outcome) == (
        "UNREACHABLE",
        "NOTHING_LISTENING",
        "refused",
    )
    assert _watched(refused)[-1][2:] == (1, 1)  # the datagram reached b, the port unreachable came back
    assert (silent.result, silent.walk.verdict, silent.probe.outcome) == ("REACHABLE", "deliver", "timeout")
    assert "confirmed, the datagram was seen arriving at the destination" in silent.summary
    assert _watched(silent)[-1][:3] == (f"{built}-b", "eth0", 3) and _watched(silent)[-1][3] == 0


def _links_up(namespaces: list[str], timeout: float = 3.0) -> None:
    """Wait until the kernel calls every interface of the namespaces up (operstate follows carrier a
    moment after apply): the walk reads it, and a test asks right away."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [_run(f"ip -n {name} -o link show eth0") for name in namespaces]
        if all("state UP" in state for state in states):
            return
        time.sleep(0.02)
    raise AssertionError(f"interfaces not up after {timeout} s: {states}")


def _run(command: str) -> str:
    return subprocess.run(["sh", "-c", command], check=True, capture_output=True, text=True).stdout


def _ip(command: str) -> None:
    """A shell command in the test's namespace (the child inherits this thread's)."""
    subprocess.run(["sh", "-c", command], check=True, capture_output=True)


OVERLAY = """
name: {topo}
networks:
  ov:
    driver: vxlan
    subnet: 198.18.72.0/24
    vni: 72
    local: 198.18.254.1
    learning: false
    peers: [198.18.254.2]
    remote_nodes: [{{address: 198.18.72.50, vtep: 198.18.254.2}}]
  lone: {{driver: vxlan, subnet: 198.18.73.0/24, vni: 73, local: 198.18.254.1, learning: false}}
nodes:
  a: {{networks: {{ov: {{address: 198.18.72.10}}, lone: {{address: 198.18.73.10}}}}}}
"""


def test_overlays_tunnel_to_the_remote_vtep_or_have_nowhere_to_send(host_ns, topo):
    _ip("ip link add sbul type veth peer name sbul2 && ip addr add 198.18.254.1/24 dev sbul")
    _ip("ip link set sbul up && ip link set sbul2 up")  # the underlay (no dummy links in this kernel)
    topology = spec.loads(OVERLAY.format(topo=topo))
    converge.apply(topology)
    try:
        remote = explain(source=f"{topo}-a", destination="198.18.72.50", count=1, timeout=0.3)
        nowhere = explain(source=f"{topo}-a", destination="198.18.73.99", count=1, timeout=0.3)
    finally:
        converge.destroy(topology)
    assert (remote.walk.verdict, remote.walk.cause, remote.result) == (
        "forward",
        "LEAVES_HOST",
        "UNREACHABLE",
    )
    assert "VTEP 198.18.254.2 by its FDB entry" in remote.walk.hops[-1].decision  # no peer host answers here
    assert (nowhere.walk.verdict, nowhere.walk.cause) == ("drop", "VXLAN_NO_REMOTE")
    assert nowhere.result == "UNREACHABLE"


def test_a_working_path_across_bridge_segments(host_ns, topo, monkeypatch):
    monkeypatch.setattr(desired, "SEGMENT_PORTS", 3)
    nodes = "\n".join(f"  n{i}: {{networks: [lan]}}" for i in range(8))
    topology = spec.loads(f"name: {topo}\nnetworks:\n  lan: {{subnet: 198.18.74.0/24}}\nnodes:\n{nodes}\n")
    converge.apply(topology)
    try:
        _links_up([f"{topo}-n{i}" for i in range(8)])
        answer = explain(source=f"{topo}-n0", destination=f"{topo}-n7", count=1, timeout=2.0)
    finally:
        converge.destroy(topology)
    assert (answer.result, answer.walk.verdict) == ("REACHABLE", "deliver")
    crossed = {h.object for h in answer.walk.hops if h.kind == "fdb"}
    assert len(crossed) >= 2, answer.walk.hops  # the root bridge, then the segment that holds n7


def test_a_working_path_through_a_service_vip_and_a_published_port(host_ns, topo):
    vip = Vip(f"{topo}-lan", "lan/web", ipaddress.ip_address("198.18.75.100"), 80, "tcp", (
        VipTarget(ipaddress.ip_address("198.18.75.11"), 8080, 1),
    ))  # fmt: skip
    topology = spec.loads(f"""
name: {topo}
networks:
  lan: {{subnet: 198.18.75.0/24}}
nodes:
  a: {{networks: {{lan: {{address: 198.18.75.10}}}}}}
  b: {{networks: {{lan: {{address: 198.18.75.11}}}}, ports: ["127.0.0.1:18080:8080"]}}
""")
    _ip("ip link set lo up")  # a host's lo is up: 127.0.0.1 needs it
    converge.apply(topology)
    table = VipTable()
    try:
        _links_up([f"{topo}-a", f"{topo}-b"])
        table.apply([vip])
        with listening(f"{topo}-b", "198.18.75.11", 8080):
            through_vip = explain(source=f"{topo}-a", destination="198.18.75.100:80", count=1, timeout=2.0)
            published = explain(source="host", destination="127.0.0.1:18080", count=1, timeout=2.0)
    finally:
        table.clear()
        converge.destroy(topology)
    for answer in (through_vip, published):
        assert (answer.result, answer.walk.verdict) == ("REACHABLE", "deliver"), answer.walk.hops
        nat = [h for h in answer.walk.hops if h.kind == "nat"]
        assert len(nat) == 1 and "198.18.75.11:8080" in nat[0].decision, answer.walk.hops
        assert answer.walk.hops[-1].netns == f"{topo}-b"


def test_an_mtu_black_hole_between_veth_ends(built):
    _ip(f"ip -n {built}-b link set eth0 mtu 1000")
    small = explain(source=f"{built}-a", destination="198.18.70.11", size=900, count=1, timeout=2.0)
    big = explain(source=f"{built}-a", destination="198.18.70.11", size=1400, count=1, timeout=0.5)
    assert (small.result, small.walk.verdict) == ("REACHABLE", "deliver")
    assert (big.result, big.walk.cause, big.probe.outcome) == ("UNREACHABLE", "MTU_TOO_SMALL", "timeout")
    assert big.walk.hops[-1].netns == f"{built}-b" and "MTU 1000" in big.walk.hops[-1].decision


def test_an_overlay_whose_mtu_was_raised_by_hand_is_a_black_hole(host_ns, topo):
    _ip("ip link add sbul type veth peer name sbul2 && ip addr add 198.18.254.1/24 dev sbul")
    _ip("ip link set sbul up && ip link set sbul2 up")
    topology = spec.loads(OVERLAY.format(topo=topo))
    converge.apply(topology)  # netcore gives the overlay 1450 (the underlay's 1500 less 50): raised by hand
    vxlan, veth = names.vxlan_name(topo, "ov"), names.host_veth_name(topo, "a", "ov")
    _ip(f"ip link set {vxlan} mtu 1500 && ip link set {veth} mtu 1500 && ip link set {topo}-ov mtu 1500")
    _ip(f"ip -n {topo}-a link set eth0 mtu 1500")
    try:
        big = explain(source=f"{topo}-a", destination="198.18.72.50", size=1480, probe=False)
        small = explain(source=f"{topo}-a", destination="198.18.72.50", size=1400, probe=False)
    finally:
        converge.destroy(topology)
    assert (big.walk.verdict, big.walk.cause) == ("drop", "MTU_TOO_SMALL"), big.walk.hops
    assert "1530 bytes on the underlay" in big.walk.hops[-1].decision
    assert (small.walk.verdict, small.walk.cause) == ("forward", "LEAVES_HOST")


# -- across an overlay: two simulated hosts on this machine (test_topology_overlay's lab: host A is the
# test's namespace, "host", with ua 198.18.254.11; host B a namespace of its own with ub 198.18.254.12),
# a1 (198.18.50.10) behind A's VTEP and b1 (198.18.50.11) behind B's, VNI 5000, learning off.


def _overlay(lab: Lab) -> tuple[str, str, str]:
    """The overlay built on both hosts (each the other's peer, each node the other's remote node):
    (a1's namespace, b1's, host B's)."""
    build(lab)
    a1, b1 = f"{lab.a.topo}-a1", f"{lab.b.topo}-b1"
    _links_up([a1, b1])
    assert lab.b.path is not None
    return a1, b1, os.path.basename(lab.b.path)


def test_a_working_path_across_vxlan_goes_through_the_tunnel_to_the_other_host(lab):
    a1, b1, host_b = _overlay(lab)
    with listening(b1, "198.18.50.11", 8080):
        answer = explain(source=a1, destination="198.18.50.11:8080", count=2, timeout=2.0)
    assert (answer.result, answer.walk.verdict, answer.probe.answered) == ("REACHABLE", "deliver", 2), (
        answer.walk.hops
    )
    hops = answer.walk.hops
    tunnel = [(h.netns, h.object, h.cause) for h in hops if h.kind == "vxlan"]
    assert tunnel == [("host", lab.a.vx, ""), (host_b, lab.b.vx, "")], hops
    assert "VTEP 198.18.254.12 by its FDB entry" in next(h for h in hops if h.kind == "vxlan").decision
    underlay = [h for h in hops if h.decision.startswith("underlay to VTEP 198.18.254.12: ")]
    assert [(h.netns, h.kind) for h in underlay] == [("host", "route"), ("host", "veth"), (host_b, "route")]
    assert "dev ua" in underlay[0].decision and f"ua → ub in {host_b}" in underlay[1].decision
    assert all(h.interface == "" for h in underlay)  # the probe is inside: not watched there
    fdb = next(h for h in hops if h.kind == "fdb")  # B's bridge, the frame arriving from its VXLAN port
    assert (fdb.netns, fdb.interface) == (host_b, lab.b.vx) and "02:42:c6:12:32:0b" in fdb.decision
    assert (hops[-1].netns, hops[-1].kind) == (b1, "deliver") and "a socket listens" in hops[-1].decision
    seen = _watched(answer)
    assert {("host", lab.a.vx), (host_b, lab.b.vx), (a1, "eth0"), (b1, "eth0")} <= {s[:2] for s in seen}
    assert all(out >= 2 and back >= 2 for _, _, out, back in seen), seen  # both ways through the tunnel
    assert answer.watched.not_seen is None and _where(answer.watched.last_seen) == (b1, "eth0")


def test_a_missing_fdb_entry_on_an_overlay_floods_then_has_nowhere_to_send(lab):
    a1, b1, host_b = _overlay(lab)
    vx, mac = lab.a.vx, endpoint_mac(ipaddress.ip_address("198.18.50.11"))
    with listening(b1, "198.18.50.11", 8080):
        # the remote node's entry gone: the frame goes to the default (all-zeros) entry's VTEP, B
        lab.a.sh(f"bridge fdb del {mac} dev {vx} self")
        flooded = explain(source=a1, destination="198.18.50.11:8080", count=1, timeout=2.0)
        # the default entry gone too (learning is off): the device has nowhere to send it, and drops it
        lab.a.sh(f"bridge fdb del 00:00:00:00:00:00 dev {vx} dst 198.18.254.12")
        dropped = explain(source=a1, destination="198.18.50.11:8080", count=1, timeout=0.5)
    assert (flooded.result, flooded.walk.verdict, flooded.probe.outcome) == (
        "REACHABLE",
        "deliver",
        "answered",
    )
    sent = next(h for h in flooded.walk.hops if h.kind == "vxlan")
    assert (sent.netns, sent.cause) == (
        "host",
        "FDB_MISS_FLOOD",
    ) and "default (flood) entries" in sent.decision
    assert flooded.walk.hops[-1].netns == b1
    assert (dropped.result, dropped.walk.verdict, dropped.walk.cause, dropped.probe.outcome) == (
        "UNREACHABLE",
        "drop",
        "VXLAN_NO_REMOTE",
        "timeout",
    )
    assert dropped.probe.answered == 0 and (dropped.walk.hops[-1].netns, dropped.walk.hops[-1].object) == (
        "host",
        vx,
    )
    assert _where(dropped.watched.last_seen) == ("host", vx), _watched(dropped)  # seen going in, then dropped
    assert all(h.netns != host_b for h in dropped.walk.hops)


def test_an_overlay_without_an_underlay_route_or_a_device_at_the_remote_vtep(lab):
    a1, b1, host_b = _overlay(lab)
    with listening(b1, "198.18.50.11", 8080):
        lab.a.sh("ip route del 198.18.254.0/24 dev ua")
        no_route = explain(source=a1, destination="198.18.50.11:8080", count=1, timeout=0.5)
        lab.a.sh("ip route add 198.18.254.0/24 dev ua src 198.18.254.11")
        lab.b.sh(f"ip link del {lab.b.vx}")
        no_device = explain(source=a1, destination="198.18.50.11:8080", count=1, timeout=0.5)
    assert (no_route.result, no_route.walk.cause, no_route.probe.outcome) == (
        "UNREACHABLE",
        "NO_ROUTE",
        "timeout",
    )
    last = no_route.walk.hops[-1]
    assert (last.netns, last.kind, last.verdict) == ("host", "route", "drop")
    assert last.decision.startswith("underlay to VTEP 198.18.254.12: the kernel refuses a route"), last
    assert (no_device.result, no_device.walk.cause, no_device.probe.outcome) == (
        "UNREACHABLE",
        "VXLAN_NO_RECEIVER",
        "timeout",
    )
    last = no_device.walk.hops[-1]
    assert (last.netns, last.kind) == (host_b, "vxlan") and "VNI 5000 on UDP port 4789" in last.decision


def test_the_underlay_past_the_first_link_is_checked_for_the_encapsulated_size(lab):
    a1, b1, host_b = _overlay(lab)
    lab.b.sh("ip link set ub mtu 1400")  # ua in A keeps 1500: the black hole is at B's end of the underlay
    small = explain(source=a1, destination="198.18.50.11", size=1300, count=1, timeout=2.0)
    big = explain(source=a1, destination="198.18.50.11", size=1400, count=1, timeout=0.5)
    assert (small.result, small.walk.verdict) == ("REACHABLE", "deliver"), small.walk.hops
    assert (big.result, big.walk.cause, big.probe.outcome) == ("UNREACHABLE", "MTU_TOO_SMALL", "timeout")
    last = big.walk.hops[-1]
    assert (last.netns, last.object) == (host_b, "ub") and "1450-byte encapsulated packet" in last.decision


class _Lab:
    """A walk-only Kernel over a made-up snapshot: each namespace's routes as {prefix: oif}, its own
    addresses local. For what cannot be built safely: a loop of tunnels is a broadcast storm."""

    def __init__(self, routes: dict[str, dict[str, int]], local: dict[str, set[str]]) -> None:
        self.routes, self.local = routes, local

    def ask(self, netns, dst, src, iif):
        if str(dst) in self.local[netns]:
            return RouteAnswer(type="local", oif=1)
        for prefix, oif in self.routes[netns].items():
            if dst in ipaddress.ip_network(prefix):
                return RouteAnswer(type="unicast", oif=oif)
        return RouteAnswer(errno=errno.ENETUNREACH)

    def listening(self, netns, protocol, address, port):
        return None

    def firewall(self, netns, hook, packet):
        return Verdict()

    def nat(self, netns, hook, packet):
        return Verdict()

    def bridge_filters(self, netns):
        return False


def test_tunnels_that_send_the_frame_back_where_it_came_from_are_a_loop():
    """Hosts A and B, each a bridge with VXLAN ports of VNIs 1 and 2: A floods VNI 1 to B, B floods
    VNI 2 back to A, whose bridge would hand it to VNI 1 again."""

    def link(netns, index, name, kind, master=None, peer=None, vni=None):
        vxlan = VxlanInfo(vni, None, None, None, 4789, False, None) if vni else None
        ref = LinkRef(*peer, None) if peer else None
        return Link(netns, index, name, kind, 1500, f"02:00:00:00:0{index}:{len(netns)}", True, "up", master,
                    None, ref, vxlan)  # fmt: skip

    links = [link("n", 2, "eth0", "veth", peer=("A", 5)), link("A", 5, "p", "veth", "br", ("n", 2))]
    for host, other in (("A", "B"), ("B", "A")):
        links += [link(host, 1, "br", "bridge"), link(host, 4, "ul", "veth", peer=(other, 4))]
        links += [link(host, 2, "vx1", "vxlan", "br", vni=1), link(host, 3, "vx2", "vxlan", "br", vni=2)]
    addresses = [
        Address("n", 2, "eth0", 2, "198.18.0.10", 24, "universe"),
        Address("A", 4, "ul", 2, "198.18.254.1", 24, "universe"),
        Address("B", 4, "ul", 2, "198.18.254.2", 24, "universe"),
    ]
    flood = "00:00:00:00:00:00"
    fdb = [
        FdbEntry("A", 2, "vx1", None, flood, "198.18.254.2", None, None, "permanent", True),
        FdbEntry("B", 3, "vx2", None, flood, "198.18.254.1", None, None, "permanent", True),
    ]
    namespaces = tuple(Namespace(name, i, "named") for i, name in enumerate("nAB"))
    snap = Snapshot(namespaces, tuple(links), tuple(addresses), (), (), tuple(fdb))
    kernel = _Lab(
        {"n": {"198.18.0.0/24": 2}, "A": {"198.18.254.0/24": 4}, "B": {"198.18.254.0/24": 4}},
        {"n": {"198.18.0.10"}, "A": {"198.18.254.1"}, "B": {"198.18.254.2"}},
    )
    walk = path_walk(snap, source="n", destination=ipaddress.ip_address("198.18.0.99"), kernel=kernel)
    assert (walk.verdict, walk.cause) == ("drop", "LOOP"), walk.hops
    tunnels = [(h.netns, h.object) for h in walk.hops if h.kind == "vxlan"]
    assert tunnels == [("A", "vx1"), ("B", "vx1"), ("B", "vx2"), ("A", "vx2"), ("A", "vx1"), ("A", "vx1")]
    assert "comes back to VXLAN device vx1" in walk.hops[-1].decision


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.18.1.1", ("198.18.1.1", None)),
        ("198.18.1.1:80", ("198.18.1.1", 80)),
        ("[fd00::1]:80", ("fd00::1", 80)),
        ("fd00::1", ("fd00::1", None)),
        ("docker:3f2a", ("198.19.1.2", None)),  # a Docker namespace's name holds a colon
        ("docker:3f2a:80", ("198.19.1.2", 80)),
    ],
)
def test_destinations_are_addresses_or_namespace_names_with_a_port(text, expected):
    found = Address("docker:3f2a", 2, "eth0", 2, "198.19.1.2", 24, "universe")
    snap = Snapshot(namespaces=(), links=(), addresses=(found,), routes=(), neighbours=(), fdb=())
    address, port = destination_parse(text, snap)
    assert (str(address), port) == expected
