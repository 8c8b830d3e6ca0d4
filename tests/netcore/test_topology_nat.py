"""Published ports and `nat: true` against the real kernel and the real `nft`, in throwaway namespaces.

Every test runs inside `host_ns`, the namespace netcore treats as the host; servers run as real
processes inside the namespaces the test made, and every check is real traffic: a TCP connection or a
UDP datagram whose answer carries the source address the server saw.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from netcore import names, nft
from netcore import netns as ns
from netcore.errors import AlreadyExists, NetcoreError, Unsupported
from netcore.topology import converge, nat, spec
from tests.conftest import RUN, _counter, machine_nft_tables

pytestmark = pytest.mark.skipif(
    nft.nft_program() is None, reason="nft is not installed (make setup installs it)"
)

# Answers every TCP connection or UDP datagram with what it received, "|" and the peer's address.
SERVER = r"""
import socket, sys
proto, port = sys.argv[1], int(sys.argv[2])
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET6, kind)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port))
if proto == "tcp":
    s.listen(8)
print("ready", flush=True)
while True:
    if proto == "tcp":
        conn, peer = s.accept()
        with conn:
            conn.sendall(conn.recv(64) + b"|" + peer[0].removeprefix("::ffff:").encode())
    else:
        data, peer = s.recvfrom(64)
        s.sendto(data + b"|" + peer[0].removeprefix("::ffff:").encode(), peer)
"""


@pytest.fixture(autouse=True)
def _host_lo_up(host_ns) -> None:
    """A fresh namespace's lo is down; a host's never is, and 127.0.0.1 needs it."""
    host_ns.run("ip link set lo up")


@pytest.fixture
def serve(host_ns) -> Iterator:
    """serve(netns, proto, port): a server process inside /run/netns/<netns>; stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(netns: str, proto: str, port: int) -> None:
        argv = ["nsenter", f"--net={ns.netns_path(netns)}", sys.executable, "-c", SERVER, proto, str(port)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", f"the server in {netns} did not start: {line!r} {proc.stderr.read()}"

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def ask(
    address: str, port: int, *, proto: str = "tcp", where: str | None = None, timeout: float = 3.0
) -> str:
    """Send a payload to address:port from the namespace file `where` (None: this thread's, the host's);
    returns the source address the server saw, after checking the payload came back."""

    def make() -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)

    sock = make() if where is None else ns.netns_run(path=where, fn=make)
    payload = os.urandom(8).hex().encode()
    with sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(payload) if proto == "tcp" else sock.send(payload)
        answer = sock.recv(128)
    echoed, _, seen = answer.partition(b"|")
    assert echoed == payload, f"{address}:{port}/{proto} answered {answer!r}"
    return seen.decode()


def reaches(address: str, port: int, **kwargs) -> bool:
    try:
        ask(address, port, timeout=1.0, **kwargs)
    except OSError:
        return False
    return True


def ruleset(host_ns) -> list[dict]:
    """Everything nft lists in the host namespace (tables, chains, rules, ...), metainfo left out."""
    listed = json.loads(host_ns.run("nft -j list ruleset").stdout)["nftables"]
    return [item for item in listed if "metainfo" not in item]


def tables(host_ns) -> list[str]:
    return sorted(f"{t['table']['family']} {t['table']['name']}" for t in ruleset(host_ns) if "table" in t)


def topology(topo: str, *, ports: str = "[]", nat_on: bool = False, more: str = "") -> spec.TopologySpec:
    return spec.loads(f"""
name: {topo}
networks:
  front: {{subnet: 198.18.20.0/24, nat: {str(nat_on).lower()}}}
nodes:
  web: {{networks: [front], ports: {ports}}}
  other: {{networks: [front]}}
{more}
""")


def changes(result: converge.Result) -> list[str]:
    return [str(c) for c in result.changes]


def nat_changes(result: converge.Result) -> list[str]:
    return [str(c) for c in result.changes if c.kind.startswith("nft") or c.kind == "sysctl"]


def test_tcp_port_published_on_loopback_reaches_the_node_from_the_host(host_ns, topo, serve):
    web = topology(topo, ports='["127.0.0.1:8080:80"]')
    bridge = f"{topo}-front"
    planned = converge.plan(web)
    table = f"switchboard-{topo}"
    assert nat_changes(planned) == [
        f"+ sysctl net.ipv4.conf.{bridge}.route_localnet (1: ports published on 127.0.0.1)",
        f"+ nft table inet {table}",
        f"+ nft chain {table} localnet (type filter hook prerouting priority -300)",
        f"+ nft chain {table} output (type nat hook output priority -100)",
        f"+ nft chain {table} postrouting (type nat hook postrouting priority 100)",
        "+ nft rule output publish 127.0.0.1:8080/tcp (dnat to 198.18.20.2:80, node web)",
        f"+ nft rule postrouting hairpin front (masquerade 198.18.20.0/24 sent back into {bridge}"
        " by a published port)",
        f"+ nft rule postrouting localnet front (masquerade 127.0.0.0/8 leaving by {bridge}"
        " (ports published on 127.0.0.1))",
        f"+ nft rule localnet guard front daddr (drop daddr 127.0.0.0/8 arriving on {bridge}"
        " (it has route_localnet))",
        f"+ nft rule localnet guard front saddr (drop saddr 127.0.0.0/8 arriving on {bridge}"
        " (it has route_localnet))",
    ]
    assert changes(converge.apply(web)) == changes(planned)
    serve(f"{topo}-web", "tcp", 80)
    # a real connection from the host namespace to 127.0.0.1:8080; the node sees the bridge's address
    assert ask("127.0.0.1", 8080) == "198.18.20.1"
    assert host_ns.run(f"sysctl -n net.ipv4.conf.{bridge}.route_localnet").stdout.strip() == "1"
    # only that port, only on loopback: the gateway address is not published
    assert not reaches("127.0.0.1", 8081)
    assert not reaches("198.18.20.1", 8080)

    assert converge.apply(web).changes == ()
    assert converge.plan(web).changes == ()

    destroyed = converge.destroy(web)
    assert f"- nft table inet {table}" in changes(destroyed)
    assert ruleset(host_ns) == []
    assert converge.destroy(web).changes == ()


def test_udp_port_published_on_every_address(host_ns, topo, serve):
    web = topology(topo, ports='["9000:9001/udp"]')
    converge.apply(web)
    serve(f"{topo}-web", "udp", 9001)
    # every address of the host: the gateway on the bridge and 127.0.0.1 (route_localnet)
    assert ask("198.18.20.1", 9000, proto="udp") == "198.18.20.1"
    assert ask("127.0.0.1", 9000, proto="udp") == "198.18.20.1"
    assert not reaches("127.0.0.1", 9000, proto="tcp")  # tcp is not published
    assert converge.plan(web).changes == ()
    converge.destroy(web)
    assert ruleset(host_ns) == []


def test_ipv6_port_published_on_an_address_of_the_host(host_ns, topo, serve):
    dual = spec.loads(f"""
name: {topo}
networks:
  v4: {{subnet: 198.18.21.0/24}}
  v6: {{subnet: "fd00:21::/64"}}
nodes:
  web: {{networks: [v4, v6], ports: ["[fd00:21::1]:8080:80", "8081:80"]}}
""")
    planned = [c for c in changes(converge.plan(dual)) if " publish " in c]
    assert planned == [
        "+ nft rule prerouting publish [fd00:21::1]:8080/tcp (dnat to [fd00:21::2]:80, node web)",
        "+ nft rule output publish [fd00:21::1]:8080/tcp (dnat to [fd00:21::2]:80, node web)",
        "+ nft rule prerouting publish 0.0.0.0:8081/tcp (dnat to 198.18.21.2:80, node web)",
        "+ nft rule output publish 0.0.0.0:8081/tcp (dnat to 198.18.21.2:80, node web)",
        "+ nft rule prerouting publish [::]:8081/tcp (dnat to [fd00:21::2]:80, node web)",
        "+ nft rule output publish [::]:8081/tcp (dnat to [fd00:21::2]:80, node web)",
    ]
    converge.apply(dual)
    serve(f"{topo}-web", "tcp", 80)
    assert ask("fd00:21::1", 8080) == "fd00:21::1"
    assert ask("fd00:21::1", 8081) == "fd00:21::1"  # [::] is every IPv6 address of the host
    assert ask("198.18.21.1", 8081) == "198.18.21.1"
    assert ask("127.0.0.1", 8081) == "198.18.21.1"
    # IPv6 loopback is not caught (the kernel cannot route ::1 to another namespace): refused as usual
    with pytest.raises(ConnectionRefusedError):
        ask("::1", 8081)
    converge.destroy(dual)
    assert ruleset(host_ns) == []


def test_a_node_reaches_a_port_published_by_its_own_network_hairpin(host_ns, topo, serve):
    """other -> gateway:8080 -> web, on the same bridge: without the hairpin masquerade web would answer
    other directly and the connection would never be made."""
    host_ns.run("sysctl -qw net.ipv4.ip_forward=1")  # traffic from a node is forwarded by the host
    web = topology(topo, ports='["8080:80"]')
    converge.apply(web)
    serve(f"{topo}-web", "tcp", 80)
    assert ask("198.18.20.1", 8080, where=ns.netns_path(f"{topo}-other")) == "198.18.20.1"
    converge.destroy(web)


def test_route_localnet_does_not_open_the_hosts_loopback_to_the_nodes(host_ns, topo):
    """route_localnet lets the bridge take packets addressed to 127.0.0.0/8: a node could reach a service
    the host keeps on its loopback. The `localnet` chain drops them, and is what stops them."""
    web = topology(topo, ports='["127.0.0.1:8080:80"]')
    converge.apply(web)
    # node `other` routes 127.0.0.0/8 to the gateway instead of its own lo
    inside = f"ip -n {topo}-other"
    host_ns.run(
        f"{inside} rule del pref 0 lookup local && {inside} rule add pref 100 lookup local"
        f" && {inside} route add 127.0.0.0/8 via 198.18.20.1 dev eth0 table 100"
        f" && {inside} rule add to 127.0.0.0/8 lookup 100 pref 10"
    )

    def datagram_arrives() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", 7300))  # in host_ns: a service on the host's loopback
            server.settimeout(1.0)
            sender = ns.netns_run(
                path=ns.netns_path(f"{topo}-other"),
                fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            )
            with sender:
                sender.sendto(b"knock", ("127.0.0.1", 7300))
            try:
                return server.recv(16) == b"knock"
            except TimeoutError:
                return False

    assert not datagram_arrives()
    host_ns.run(f"nft flush chain inet switchboard-{topo} localnet")  # without the guard, it would
    assert datagram_arrives()
    assert nat_changes(converge.apply(web)) == [
        f"+ nft rule localnet guard front daddr (drop daddr 127.0.0.0/8 arriving on {topo}-front"
        " (it has route_localnet))",
        f"+ nft rule localnet guard front saddr (drop saddr 127.0.0.0/8 arriving on {topo}-front"
        " (it has route_localnet))",
    ]
    assert not datagram_arrives()
    converge.destroy(web)


@pytest.fixture
def uplink(host_ns) -> Iterator[str]:
    """A fake uplink made inside host_ns: a veth to an "outside" namespace of this test, 198.18.31.1 on
    the host's end and 198.18.31.2 outside. Returns the outside namespace's name. The machine's own
    uplink is never involved: host_ns holds no route to it."""
    outside = f"sbo-{RUN}-{next(_counter)}"
    host_ns.run(
        f"ip netns add {outside} && ip link add upl0 type veth peer name eth0 netns {outside}"
        " && ip addr add 198.18.31.1/24 dev upl0 && ip link set upl0 up"
        f" && ip -n {outside} addr add 198.18.31.2/24 dev eth0 && ip -n {outside} link set eth0 up"
        f" && ip -n {outside} link set lo up"
        # a way back to the network, so that the node's own address can be seen without nat
        f" && ip -n {outside} route add 198.18.20.0/24 via 198.18.31.1"
        " && sysctl -qw net.ipv4.ip_forward=1"
    )
    try:
        yield outside
    finally:
        host_ns.run(f"ip netns del {outside}", check=False)


def test_nat_masquerades_what_leaves_by_another_interface(host_ns, topo, serve, uplink):
    masqueraded = topology(topo, nat_on=True)
    assert nat_changes(converge.plan(masqueraded)) == [
        f"+ nft table inet switchboard-{topo}",
        f"+ nft chain switchboard-{topo} postrouting (type nat hook postrouting priority 100)",
        f"+ nft rule postrouting nat front (masquerade 198.18.20.0/24 leaving by any interface"
        f" but {topo}-front)",
    ]
    converge.apply(masqueraded)
    serve(uplink, "tcp", 7100)
    node = ns.netns_path(f"{topo}-web")
    # out through the fake uplink: the peer sees the host's address on it
    assert ask("198.18.31.2", 7100, where=node) == "198.18.31.1"
    # inside the network nothing is masqueraded: the gateway sees the node's own address
    serve(f"{topo}-other", "tcp", 7101)
    assert ask("198.18.20.3", 7101, where=node) == "198.18.20.2"

    plain = topology(topo, nat_on=False)
    assert nat_changes(converge.apply(plain)) == [
        "- nft rule postrouting nat front",
        f"- nft chain switchboard-{topo} postrouting",
        f"- nft table inet switchboard-{topo}",
    ]
    assert ask("198.18.31.2", 7100, where=node) == "198.18.20.2"  # without nat: the node's address
    assert ruleset(host_ns) == []
    converge.apply(masqueraded)
    assert ask("198.18.31.2", 7100, where=node) == "198.18.31.1"
    converge.destroy(masqueraded)
    assert ruleset(host_ns) == []


def test_changing_a_port_replaces_its_rules_and_drops_what_is_no_longer_needed(host_ns, topo, serve):
    bridge = f"{topo}-front"
    converge.apply(topology(topo, ports='["127.0.0.1:8080:80"]'))
    serve(f"{topo}-web", "tcp", 81)
    moved = topology(topo, ports='["127.0.0.1:8080:81", "198.18.20.1:8082:81"]')
    assert nat_changes(converge.plan(moved)) == [
        f"+ nft chain switchboard-{topo} prerouting (type nat hook prerouting priority -100)",
        "~ nft rule output publish 127.0.0.1:8080/tcp (dnat to 198.18.20.2:81, node web)",
        "+ nft rule prerouting publish 198.18.20.1:8082/tcp (dnat to 198.18.20.2:81, node web)",
        "+ nft rule output publish 198.18.20.1:8082/tcp (dnat to 198.18.20.2:81, node web)",
    ]
    converge.apply(moved)
    assert ask("127.0.0.1", 8080) == "198.18.20.1" and ask("198.18.20.1", 8082) == "198.18.20.1"
    assert converge.plan(moved).changes == ()

    # no port on 127.0.0.1 any more: route_localnet goes back to 0, the guard and its chain go
    gateway_only = topology(topo, ports='["198.18.20.1:8082:81"]')
    assert sorted(nat_changes(converge.apply(gateway_only))) == sorted(
        [
            f"~ sysctl net.ipv4.conf.{bridge}.route_localnet (0: no port published on 127.0.0.1 any more)",
            "- nft rule output publish 127.0.0.1:8080/tcp",
            "- nft rule postrouting localnet front",
            "- nft rule localnet guard front daddr",
            "- nft rule localnet guard front saddr",
            f"- nft chain switchboard-{topo} localnet",
        ]
    )
    assert host_ns.run(f"sysctl -n net.ipv4.conf.{bridge}.route_localnet").stdout.strip() == "0"
    assert not reaches("127.0.0.1", 8080)
    assert ask("198.18.20.1", 8082) == "198.18.20.1"
    assert converge.plan(gateway_only).changes == ()
    converge.destroy(gateway_only)
    assert ruleset(host_ns) == []


def test_drift_in_the_table_is_planned_and_repaired(host_ns, topo, serve):
    web = topology(topo, ports='["127.0.0.1:8080:80"]')
    converge.apply(web)
    table = f"switchboard-{topo}"
    listed = ruleset(host_ns)
    output = [r["rule"] for r in listed if r.get("rule", {}).get("chain") == "output"]
    host_ns.run(f"nft delete rule inet {table} output handle {output[0]['handle']}")
    host_ns.run(f"sysctl -qw net.ipv4.conf.{topo}-front.route_localnet=0")
    assert nat_changes(converge.plan(web)) == [
        f"~ sysctl net.ipv4.conf.{topo}-front.route_localnet (1: ports published on 127.0.0.1)",
        "+ nft rule output publish 127.0.0.1:8080/tcp (dnat to 198.18.20.2:80, node web)",
    ]
    converge.apply(web)
    serve(f"{topo}-web", "tcp", 80)
    assert ask("127.0.0.1", 8080) == "198.18.20.1"
    assert converge.plan(web).changes == ()
    converge.destroy(web)


def test_destroy_removes_only_this_topologys_rules(host_ns, topo):
    """Another topology's table, a table of someone else, and a rule someone added to our table by hand
    all stay; the table of the destroyed topology stays only as long as it holds that rule."""
    other = f"{topo[:-2]}zz"
    web = topology(topo, ports='["127.0.0.1:8080:80"]')
    converge.apply(web)
    theirs = spec.loads(f"""
name: {other}
networks:
  lan: {{subnet: 198.18.22.0/24, nat: true}}
nodes:
  x: {{networks: [lan], ports: ["127.0.0.1:8090:80"]}}
""")
    converge.apply(theirs)
    host_ns.run(
        "nft add table inet keepme && nft add chain inet keepme c && nft add rule inet keepme c accept"
    )
    host_ns.run(f"nft add rule inet switchboard-{topo} output counter comment handmade")
    converge.destroy(web)
    left = ruleset(host_ns)
    assert tables(host_ns) == sorted(["inet keepme", f"inet switchboard-{other}", f"inet switchboard-{topo}"])
    mine = [x for x in left if x.get("rule", {}).get("table") == f"switchboard-{topo}"]
    assert [r["rule"]["comment"] for r in mine] == ["handmade"]
    chains = [x["chain"]["name"] for x in left if x.get("chain", {}).get("table") == f"switchboard-{topo}"]
    assert chains == ["output"]  # the others were ours and empty
    # the other topology is whole
    assert converge.plan(theirs).changes == ()
    host_ns.run(f"nft delete table inet switchboard-{topo} && nft delete table inet keepme")
    assert converge.destroy(web).changes == ()
    converge.destroy(theirs)
    assert ruleset(host_ns) == []


def test_a_chain_of_our_name_with_another_hook_is_refused_before_anything_changes(host_ns, topo):
    host_ns.run(
        f"nft add table inet switchboard-{topo}"
        f" && nft add chain inet switchboard-{topo} output '{{ type filter hook output priority 0; }}'"
    )
    with pytest.raises(
        AlreadyExists, match="chain output of table inet switchboard-.* type filter hook output"
    ):
        converge.apply(topology(topo, ports='["127.0.0.1:8080:80"]'))
    assert json.loads(host_ns.run("ip -j link show").stdout)[0]["ifname"] == "lo"
    assert len(json.loads(host_ns.run("ip -j link show").stdout)) == 1
    assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]
    host_ns.run(f"nft delete table inet switchboard-{topo}")


def test_a_port_a_host_socket_listens_on_is_refused_before_anything_changes(host_ns, topo):
    """Its traffic would go to the node instead (Docker calls such a port "already allocated")."""
    with (
        socket.create_server(("0.0.0.0", 8080)),
        pytest.raises(
            AlreadyExists, match=r"port 127.0.0.1:8080/tcp of node web: a socket listens on 0.0.0.0:8080/tcp"
        ),
    ):
        converge.plan(topology(topo, ports='["127.0.0.1:8080:80"]'))
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as bound:
        bound.bind(("::", 5353))  # dual-stack: IPv4 too
        with pytest.raises(
            AlreadyExists, match=r"0.0.0.0:5353/udp of node web: a socket is bound to 0.0.0.0:5353"
        ):
            converge.apply(topology(topo, ports='["5353:53/udp"]'))
    assert [x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout)] == ["lo"]
    # another address, or the same port of the other protocol, is no clash
    with socket.create_server(("127.0.0.2", 8080)), socket.create_server(("0.0.0.0", 9000)):
        web = topology(topo, ports='["127.0.0.1:8080:80", "9000:80/udp"]')
        converge.apply(web)
    converge.destroy(web)


def test_a_port_another_topology_publishes_is_refused_naming_it(host_ns, topo):
    first = topology(topo, ports='["127.0.0.1:8080:80"]')
    converge.apply(first)
    other = f"{topo[:-2]}zz"
    second = spec.loads(f"""
name: {other}
networks:
  lan: {{subnet: 198.18.22.0/24}}
nodes:
  x: {{networks: [lan], ports: ["8080:80"]}}
""")
    with pytest.raises(AlreadyExists) as caught:
        converge.apply(second)
    assert str(caught.value) == (
        f"published port 0.0.0.0:8080/tcp of node x is already published by topology {topo}"
        f" (127.0.0.1:8080/tcp, nftables table inet switchboard-{topo}); a host address and port go to"
        " one topology only"
    )
    assert tables(host_ns) == [f"inet switchboard-{topo}"]
    converge.destroy(first)
    converge.apply(second)  # free now
    converge.destroy(second)
    assert ruleset(host_ns) == []


def _break_the_batch(monkeypatch, topo: str) -> None:
    """Make the committing nft batch fail in the kernel (the check passes): one more command at its end
    adds a rule to a chain that does not exist, so the whole transaction is refused."""
    real = nft.nft_apply

    def broken(*, batch, obj, check=False):
        if not check:
            bad = {
                "family": "inet",
                "table": f"switchboard-{topo}",
                "chain": "nowhere",
                "expr": [{"accept": None}],
            }
            batch = [*batch, {"add": {"rule": bad}}]
        return real(batch=batch, obj=obj, check=check)

    monkeypatch.setattr(nft, "nft_apply", broken)


def test_a_failed_nft_batch_rolls_back_the_whole_apply(host_ns, topo, monkeypatch):
    _break_the_batch(monkeypatch, topo)
    with pytest.raises(NetcoreError, match=f"change nftables table inet switchboard-{topo}"):
        converge.apply(topology(topo, ports='["127.0.0.1:8080:80"]', nat_on=True))
    assert ruleset(host_ns) == []
    assert [x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout)] == ["lo"]
    assert not [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]


def test_a_failed_nft_batch_leaves_the_previous_rules_and_settings(host_ns, topo, serve, monkeypatch):
    before = topology(topo, ports='["198.18.20.1:8082:80"]')
    converge.apply(before)
    rules_before = [x for x in ruleset(host_ns) if "rule" in x]
    _break_the_batch(monkeypatch, topo)
    with pytest.raises(NetcoreError):
        converge.apply(topology(topo, ports='["198.18.20.1:8082:80", "127.0.0.1:8080:80"]', nat_on=True))
    assert [x for x in ruleset(host_ns) if "rule" in x] == rules_before
    # route_localnet was set for the new port before the batch failed, and is back to 0
    assert host_ns.run(f"sysctl -n net.ipv4.conf.{topo}-front.route_localnet").stdout.strip() == "0"
    serve(f"{topo}-web", "tcp", 80)
    assert ask("198.18.20.1", 8082) == "198.18.20.1"
    monkeypatch.undo()
    assert converge.plan(before).changes == ()
    converge.destroy(before)


def test_without_nft_ports_are_unsupported_and_everything_else_works(host_ns, topo, monkeypatch):
    monkeypatch.setattr(nft, "NFT", "/nonexistent/nft")
    with pytest.raises(Unsupported, match=f"topology {topo} publishes ports .* nft program is not installed"):
        converge.plan(topology(topo, ports='["8080:80"]'))
    with pytest.raises(Unsupported, match="nft program is not installed"):
        converge.apply(topology(topo, nat_on=True))
    assert [x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout)] == ["lo"]
    plain = topology(topo)
    converge.apply(plain)
    assert converge.plan(plain).changes == ()
    converge.destroy(plain)


def test_a_kernel_without_masquerade_is_named(host_ns, topo, monkeypatch):
    """A kernel lacking an expression makes nft fail with ENOENT (or EOPNOTSUPP); netcore probes each
    feature on its own to say which one. Simulated at the nft program's boundary: every batch that
    uses masquerade fails as it would on such a kernel."""
    real = nft._run

    def no_masquerade(args, *, stdin, what):
        if stdin and '"masquerade"' in stdin:
            message = f"internal:0:0-0: Error: Could not process rule: {os.strerror(errno.ENOENT)}\n"
            return subprocess.CompletedProcess(args, 1, "", message)
        return real(args, stdin=stdin, what=what)

    monkeypatch.setattr(nft, "_run", no_masquerade)
    with pytest.raises(Unsupported, match=r"this kernel lacks nftables masquerade \(nft_masq\)"):
        converge.apply(topology(topo, nat_on=True))
    assert [x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout)] == ["lo"]
    assert ruleset(host_ns) == []


def test_rules_are_made_in_the_topologys_host_namespace_only(host_ns, topo):
    """netcore runs nft as a child of the calling thread, which is in host_ns: the machine's own
    namespace never sees the table."""
    web = topology(topo, ports='["127.0.0.1:8080:80"]')
    converge.apply(web)
    assert ("inet", f"switchboard-{topo}") not in machine_nft_tables()
    assert tables(host_ns) == [f"inet switchboard-{topo}"]
    converge.destroy(web)


def test_rule_comments_are_ours_and_fit(host_ns, topo):
    longest = spec.loads(f"""
name: {topo}
networks:
  v6: {{subnet: "fd00:1234:5678:9abc::/64"}}
nodes:
  n23456789abcdef: {{networks: [v6], ports: ["[fd00:1234:5678:9abc:ffff:ffff:ffff:fffe]:65535:65535/udp"]}}
""")
    want = nat.nat_wants(longest)
    comments = [nat.rule_comment(topo, r.key, r.digest) for r in want.rules]
    assert all(len(c.encode()) <= nft.MAX_COMMENT_BYTES for c in comments)
    assert all(nat.parse_rule_comment(c, topo) is not None for c in comments)
    assert nat.parse_rule_comment(comments[0], "other") is None
    converge.apply(longest)
    listed = [x["rule"]["comment"] for x in ruleset(host_ns) if "rule" in x]
    assert sorted(listed) == sorted(comments)
    converge.destroy(longest)
    assert names.ALIAS_PREFIX == "switchboard"
