"""Service VIPs against the real kernel and the real `nft`, in throwaway namespaces.

Every test runs inside `host_ns`, the namespace netcore treats as the host: it holds a bridge with the
network's gateway; three instance namespaces and a client namespace hang off the bridge by veths, on
the same subnet. Each instance runs a real server that answers every TCP connection and UDP datagram
with its own name and the source address it saw; every check is real traffic.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from netcore import netns as ns
from netcore import nft
from netcore.errors import AlreadyExists, Conflict, InvalidSpec, NetcoreError, NotFound, Unsupported
from netcore.services import vip as vipmod
from netcore.services.catalog import Vip, VipTarget
from netcore.services.vip import VipTable, vip_read
from tests.conftest import RUN, _counter

pytestmark = pytest.mark.skipif(
    nft.nft_program() is None, reason="nft is not installed (make setup installs it)"
)

GATEWAY = "198.18.5.1"
VIP = "198.18.5.100"
INSTANCES = {"i1": "198.18.5.11", "i2": "198.18.5.12", "i3": "198.18.5.13"}
CLIENT = "198.18.5.20"
PORT = 8080

# Answers each TCP message and each UDP datagram with "<instance>|<source it saw>|<what it got>".
SERVER = r"""
import socket, sys, threading
name, port = sys.argv[1], int(sys.argv[2])
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", port))
tcp.listen(512)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", port))

def answer(data, peer):
    return f"{name}|{peer[0]}|".encode() + data

def datagrams():
    while True:
        data, peer = udp.recvfrom(512)
        udp.sendto(answer(data, peer), peer)

def serve(conn, peer):
    with conn:
        while data := conn.recv(512):
            conn.sendall(answer(data, peer))

threading.Thread(target=datagrams, daemon=True).start()
print("ready", flush=True)
while True:
    conn, peer = tcp.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""


@dataclass
class Net:
    """The network a test runs on: bridge, namespaces (instance name → /run/netns name) and servers."""

    bridge: str
    spaces: dict[str, str]
    servers: list[subprocess.Popen] = field(default_factory=list)

    def path(self, who: str) -> str:
        return ns.netns_path(self.spaces[who])


def _sh(host_ns, script: str) -> None:
    proc = host_ns.run(script, check=False)
    assert proc.returncode == 0, f"set-up failed: {script}\n{proc.stderr}"


@pytest.fixture
def net(host_ns) -> Iterator[Net]:
    """Bridge 198.18.5.1/24 in host_ns; instances i1-i3 and a client on it, each with a server."""
    k = next(_counter)
    bridge = f"sb{RUN}v{k}"
    spaces = {who: f"v{RUN}{k}{who}" for who in (*INSTANCES, "c")}
    addresses = {**INSTANCES, "c": CLIENT}
    made = Net(bridge, spaces)
    try:
        _sh(
            host_ns,
            f"ip link set lo up && ip link add {bridge} type bridge && ip addr add {GATEWAY}/24 dev {bridge}"
            f" && ip link set {bridge} up"
            # a new namespace copies the machine's IPv4 settings, and a Docker host forwards: start from off
            f" && echo 0 > /proc/sys/net/ipv4/conf/{bridge}/forwarding",
        )
        for n, (who, space) in enumerate(spaces.items()):
            veth = f"v{RUN}{k}p{n}"
            _sh(
                host_ns,
                f"ip netns add {space} && ip link add {veth} type veth peer name eth0 netns {space}"
                f" && ip link set {veth} master {bridge} up"
                f" && ip -n {space} link set lo up && ip -n {space} addr add {addresses[who]}/24 dev eth0"
                f" && ip -n {space} link set eth0 up && ip -n {space} route add default via {GATEWAY}",
            )
        for who in INSTANCES:
            argv = ["nsenter", f"--net={made.path(who)}", sys.executable, "-c", SERVER, who, str(PORT)]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            made.servers.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line == "ready\n", f"the server in {who} did not start: {line!r}"
        yield made
    finally:
        for proc in made.servers:
            proc.kill()
            proc.wait()
        for space in spaces.values():
            subprocess.run(["ip", "netns", "del", space], check=False, capture_output=True)


@pytest.fixture
def table(host_ns) -> Iterator[VipTable]:
    """A VipTable whose every trace is removed after the test."""
    made = VipTable()
    try:
        yield made
    finally:
        made.clear()


def vip(
    bridge: str, *targets: tuple[str, int], protocol: str = "tcp", port: int = 80, address: str = VIP
) -> Vip:
    """A VIP on `bridge` spreading over (instance name, weight) targets."""
    return Vip(
        bridge=bridge,
        service="front/web",
        address=ipaddress.ip_address(address),
        port=port,
        protocol=protocol,
        targets=tuple(
            VipTarget(ipaddress.ip_address(INSTANCES[who]), PORT, weight) for who, weight in targets
        ),
    )


def _socket(where: str | None, kind: int) -> socket.socket:
    def make() -> socket.socket:
        return socket.socket(socket.AF_INET, kind)

    return make() if where is None else ns.netns_run(path=where, fn=make)


def _parse(answer: bytes, payload: bytes) -> tuple[str, str]:
    name, seen, echoed = answer.split(b"|", 2)
    assert echoed == payload, f"the answer {answer!r} does not carry {payload!r}"
    return name.decode(), seen.decode()


def ask(where: str | None, *, port: int = 80, protocol: str = "tcp", timeout: float = 2.0) -> tuple[str, str]:
    """(instance, source it saw) for one new connection (or datagram) to VIP:port from namespace file
    `where` (None: the host)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with _socket(where, kind) as sock:
        sock.settimeout(timeout)
        sock.connect((VIP, port))
        sock.send(b"hello")
        return _parse(sock.recv(512), b"hello")


def spread(net: Net, count: int, **kwargs) -> Counter[str]:
    """Which instance answered each of `count` new connections from the client, checking each one saw
    the gateway as the source (hairpin masquerade)."""
    hits: Counter[str] = Counter()
    for _ in range(count):
        name, seen = ask(net.path("c"), **kwargs)
        assert seen == GATEWAY, f"{name} saw the client as {seen}, not as the gateway {GATEWAY}"
        hits[name] += 1
    return hits


def ruleset(host_ns) -> list[dict]:
    listed = json.loads(host_ns.run("nft -j list ruleset").stdout)["nftables"]
    return [item for item in listed if "metainfo" not in item]


def handles(host_ns) -> list[tuple[str, int]]:
    return sorted(
        (kind, body["handle"]) for item in ruleset(host_ns) for kind, body in item.items() if "handle" in body
    )


def forwarding(bridge: str) -> int:
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding") as f:
        return int(f.read())


def assert_nothing_left(host_ns, bridge: str) -> None:
    assert ruleset(host_ns) == [], "the nft table is still there"
    state = vip_read()
    assert state.routes == () and not state.table, state
    assert host_ns.run("ip route show table local proto 0xb5").stdout.strip() == "", "a local route is left"
    assert forwarding(bridge) == 0


# -- spreading ------------------------------------------------------------------------------------


def test_equal_weights_spread_round_robin_and_instances_see_the_gateway(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1), ("i2", 1), ("i3", 1))])
    hits = spread(net, 300)
    assert hits == {"i1": 100, "i2": 100, "i3": 100}, hits  # numgen inc: exact; the goal is ±10 %


def test_weights_two_one_one(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 2), ("i2", 1), ("i3", 1))])
    hits = spread(net, 300)
    assert hits == {"i1": 150, "i2": 75, "i3": 75}, hits


def test_the_host_itself_reaches_the_vip(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1), ("i2", 1))])
    seen = {ask(None) for _ in range(4)}
    assert seen == {("i1", GATEWAY), ("i2", GATEWAY)}, seen


def test_udp_datagrams_are_answered_by_the_instances(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1), ("i2", 1), ("i3", 1), protocol="udp", port=53)])
    hits = spread(net, 30, protocol="udp", port=53)
    assert hits == {"i1": 10, "i2": 10, "i3": 10}, hits


def test_tcp_and_udp_on_the_same_address_and_port_are_separate_vips(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1), port=53), vip(net.bridge, ("i2", 1), protocol="udp", port=53)])
    assert ask(net.path("c"), port=53)[0] == "i1"
    assert ask(net.path("c"), port=53, protocol="udp")[0] == "i2"


# -- membership changes ---------------------------------------------------------------------------


def test_a_removed_instance_gets_no_new_connection_and_keeps_its_established_one(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1), ("i2", 1), ("i3", 1))])
    with _socket(net.path("c"), socket.SOCK_STREAM) as held:
        held.settimeout(2.0)
        held.connect((VIP, 80))
        held.send(b"before")
        removed, _ = _parse(held.recv(512), b"before")

        table.apply([vip(net.bridge, *((who, 1) for who in INSTANCES if who != removed))])

        hits = spread(net, 60)
        assert removed not in hits and sum(hits.values()) == 60, hits
        held.send(b"after")
        assert _parse(held.recv(512), b"after")[0] == removed, "the established connection moved or broke"


def test_an_instance_added_back_gets_connections_again(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1))])
    assert set(spread(net, 4)) == {"i1"}
    table.apply([vip(net.bridge, ("i1", 1), ("i2", 1))])
    assert spread(net, 4) == {"i1": 2, "i2": 2}


def test_a_vip_without_targets_refuses_at_once(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1)), vip(net.bridge, protocol="udp", port=53)])
    table.apply([vip(net.bridge), vip(net.bridge, protocol="udp", port=53)])
    with pytest.raises(ConnectionRefusedError):
        ask(net.path("c"), timeout=1.0)  # a RST, not a timeout
    with pytest.raises(ConnectionRefusedError):
        ask(net.path("c"), protocol="udp", port=53, timeout=1.0)  # ICMP port unreachable
    with pytest.raises(ConnectionRefusedError):
        ask(None, timeout=1.0)
    table.apply([vip(net.bridge, ("i2", 1))])
    assert ask(net.path("c"))[0] == "i2"


def test_a_vip_never_reaches_the_hosts_own_sockets(host_ns, net, table):
    """What the VIP does not DNAT (no target; another port) is refused, even where the host listens."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", 80))
        listener.listen(8)
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            other.bind(("0.0.0.0", 81))
            other.listen(8)
            table.apply([vip(net.bridge)])
            with pytest.raises(ConnectionRefusedError):
                ask(net.path("c"), timeout=1.0)
            with pytest.raises(ConnectionRefusedError):
                ask(net.path("c"), port=81, timeout=1.0)
            # the gateway address itself is the host's as before
            with _socket(net.path("c"), socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect((GATEWAY, 81))


def test_apply_nothing_and_clear_remove_everything(host_ns, net, table):
    assert forwarding(net.bridge) == 0
    table.apply([vip(net.bridge, ("i1", 1))])
    assert forwarding(net.bridge) == 1
    assert host_ns.run("ip route show table local proto 0xb5").stdout.split() == [
        "local",
        VIP,
        "dev",
        net.bridge,
        "scope",
        "host",
    ]
    table.apply([])
    assert_nothing_left(host_ns, net.bridge)
    with pytest.raises(OSError):
        ask(net.path("c"), timeout=0.5)
    table.apply([vip(net.bridge, ("i1", 1))])
    assert ask(net.path("c"))[0] == "i1"
    VipTable().clear()  # another agent's table cleans up after this one: it reads the kernel
    assert_nothing_left(host_ns, net.bridge)


def test_forwarding_that_was_on_stays_on(host_ns, net, table):
    host_ns.run(f"echo 1 > /proc/sys/net/ipv4/conf/{net.bridge}/forwarding")
    table.apply([vip(net.bridge, ("i1", 1))])
    assert vip_read().forwarding == ()
    table.clear()
    assert forwarding(net.bridge) == 1


def test_a_vip_moving_to_another_address_and_port(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 1))])
    other = "198.18.5.101"
    table.apply([vip(net.bridge, ("i2", 1), address=other, port=8000)])
    state = vip_read()
    assert [str(r.address) for r in state.routes] == [other]
    with _socket(net.path("c"), socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        sock.connect((other, 8000))
        sock.send(b"x")
        assert _parse(sock.recv(512), b"x")[0] == "i2"


# -- idempotence and read-back ----------------------------------------------------------------------


def test_applying_the_same_vips_again_changes_nothing(host_ns, net, table):
    wanted = [vip(net.bridge, ("i1", 2), ("i2", 1)), vip(net.bridge, ("i3", 1), protocol="udp", port=53)]
    table.apply(wanted)
    before, changes = handles(host_ns), table.changes
    routes = host_ns.run("ip route show table local").stdout
    table.apply(list(reversed(wanted)))  # another order, same VIPs
    table.apply([vip(net.bridge, ("i2", 1), ("i1", 2)), wanted[1]])  # targets in another order
    assert table.changes == changes
    assert handles(host_ns) == before
    assert host_ns.run("ip route show table local").stdout == routes
    table.apply(wanted, force=True)  # forgets what it applied: reads the kernel and sends the batch again
    assert handles(host_ns) != before and table.changes == changes + 1


def test_vip_read_gives_back_what_was_applied(host_ns, net, table):
    wanted = [
        vip(net.bridge, ("i1", 2), ("i2", 1), ("i3", 3)),
        vip(net.bridge, protocol="udp", port=53),
    ]
    table.apply(wanted)
    state = vip_read()
    assert state.table
    assert state.vips == tuple(wanted)  # already in the order the table keeps
    assert [(str(r.address), r.bridge) for r in state.routes] == [(VIP, net.bridge)]
    assert state.forwarding == (net.bridge,)
    assert state.to_dict()["vips"][0]["targets"][0] == {"address": INSTANCES["i1"], "port": PORT, "weight": 2}


def test_the_rules_are_the_documented_ones(host_ns, net, table):
    table.apply([vip(net.bridge, ("i1", 2), ("i2", 1)), vip(net.bridge, protocol="udp", port=53)])
    text = host_ns.run(f"nft list table inet {vipmod.TABLE}").stdout
    for line in (
        f"ip daddr {VIP} tcp dport 80 dnat ip to numgen inc mod 3 map {{ 0-1 : {INSTANCES['i1']} . 8080,"
        f" 2 : {INSTANCES['i2']} . 8080 }}",
        f'ip daddr {VIP} udp dport 53 return comment "front/web"',
        "ct status dnat ct original ip daddr @vips masquerade",
        "ct direction original ip daddr @vips meta l4proto tcp reject with tcp reset",
    ):
        assert line in text, f"{line!r} not in\n{text}"


# -- bad input and failures -------------------------------------------------------------------------


def test_an_unknown_bridge_is_not_found_and_nothing_is_left(host_ns, net, table):
    missing = f"sb{RUN}nope"
    with pytest.raises(NotFound) as caught:
        table.apply([vip(net.bridge, ("i1", 1)), vip(missing, ("i2", 1), address="198.18.5.101")])
    assert missing in str(caught.value) and "front/web" in str(caught.value)
    assert caught.value.obj == missing
    assert_nothing_left(host_ns, net.bridge)


def test_an_ipv6_vip_is_unsupported(host_ns, net, table):
    v6 = Vip(net.bridge, "front/web", ipaddress.ip_address("fd00:5::100"), 80, "tcp", ())
    with pytest.raises(Unsupported, match="IPv6 service addresses are not supported yet"):
        table.apply([v6])
    assert_nothing_left(host_ns, net.bridge)


def test_bad_vips_are_refused_before_anything_changes(host_ns, net, table):
    bad = [
        (InvalidSpec, [vip(net.bridge, ("i1", 1), protocol="sctp")]),
        (InvalidSpec, [vip(net.bridge, ("i1", 0))]),
        (InvalidSpec, [vip(net.bridge, port=0)]),
        (
            InvalidSpec,
            [vip(net.bridge, ("i1", 1), address=INSTANCES["i1"]), vip(net.bridge, ("i1", 1), port=81)],
        ),
        (Conflict, [vip(net.bridge, ("i1", 1)), vip(net.bridge, ("i2", 1))]),
        (Conflict, [vip(net.bridge, ("i1", 1)), vip("lo", ("i2", 1), port=81)]),
        (InvalidSpec, [vip("a" * 16, ("i1", 1))]),
    ]
    for error, vips in bad:
        with pytest.raises(error):
            table.apply(vips)
    assert_nothing_left(host_ns, net.bridge)


def test_a_vip_that_is_already_the_hosts_address_is_refused(host_ns, net, table):
    with pytest.raises(AlreadyExists, match=f"VIP {GATEWAY} of service front/web"):
        table.apply([vip(net.bridge, ("i1", 1), address=GATEWAY)])
    assert_nothing_left(host_ns, net.bridge)
    assert f"local {GATEWAY} dev {net.bridge} proto kernel" in host_ns.run("ip route show table local").stdout


def test_a_failed_nft_batch_undoes_routes_and_forwarding(host_ns, net, table, monkeypatch):
    table.apply([vip(net.bridge, ("i1", 1))])
    before = vip_read()

    def broken(*, batch, obj, check=False):
        raise NetcoreError(f"change nftables {obj}: nft said: injected failure", obj=obj, errno=errno.EIO)

    monkeypatch.setattr(nft, "nft_apply", broken)
    with pytest.raises(NetcoreError, match="injected failure"):
        table.apply([vip(net.bridge, ("i1", 1)), vip(net.bridge, ("i2", 1), address="198.18.5.101")])
    assert vip_read() == before
    assert ask(net.path("c"))[0] == "i1"
    monkeypatch.undo()
    table.apply([vip(net.bridge, ("i1", 1)), vip(net.bridge, ("i2", 1), address="198.18.5.101")])
    assert [str(r.address) for r in vip_read().routes] == [VIP, "198.18.5.101"]


def test_a_route_removed_behind_its_back_comes_back_with_force(host_ns, net, table):
    wanted = [vip(net.bridge, ("i1", 1))]
    table.apply(wanted)
    host_ns.run("ip route flush table local proto 0xb5")
    table.apply(wanted)  # unchanged input: trusted, nothing read
    assert vip_read().routes == ()
    table.apply(wanted, force=True)
    assert [r.bridge for r in vip_read().routes] == [net.bridge]
    assert ask(net.path("c"))[0] == "i1"


def test_without_nft_vips_are_unsupported_and_nothing_is_left(host_ns, net, monkeypatch):
    monkeypatch.setattr(nft, "NFT", "/nonexistent/nft")
    table = VipTable()
    with pytest.raises(Unsupported, match="service VIPs need nftables: .*nft program is not installed"):
        table.apply([vip(net.bridge, ("i1", 1))])
    assert host_ns.run("ip route show table local proto 0xb5").stdout.strip() == ""
    assert forwarding(net.bridge) == 0
    table.apply([])  # nothing to remove: fine without nft
    table.clear()
