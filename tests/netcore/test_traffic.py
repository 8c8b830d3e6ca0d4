"""Traffic edges from conntrack, for real: a topology applied in the test's throwaway host, its node
namespaces armed, real TCP and UDP conversations between them, each namespace's table dumped through
netcore's ctnetlink decoder and turned into "talks to" edges. Then the decoder against malformed
replies, through the same checked receive path as rtnetlink's (test_netlink_codec.py)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcore import netns as ns
from netcore.agent.state import Changes
from netcore.agent.traffic_watch import TrafficWatch
from netcore.errors import MalformedMessage, NetcoreError, Unsupported
from netcore.explain.firewall import Packet, firewall_verdict
from netcore.model import Snapshot
from netcore.netlink import codec as c
from netcore.netlink import conntrack as ct
from netcore.nft import nft_list_ruleset
from netcore.snapshot import snapshot
from netcore.topology import converge, spec
from netcore.traffic import arm
from netcore.traffic.edges import traffic_edges
from netcore.traffic.read import traffic_read
from tests.conftest import tcp_echo
from tests.netcore.test_netlink_codec import done_message, fake_kernel

LAN = """
name: {topo}
networks:
  lan: {{subnet: 198.18.74.0/24}}
nodes:
  a: {{networks: {{lan: {{address: 198.18.74.10}}}}}}
  b: {{networks: {{lan: {{address: 198.18.74.11}}}}}}
"""
A, B = "198.18.74.10", "198.18.74.11"
REPO = Path(__file__).resolve().parents[2]
NOBODY = "198.18.74.250"  # on the lan, held by no namespace
VIP = "198.18.75.80"  # a DNAT in a's output chain sends port 80 here to b:7000
WAIT = 5.0  # seconds a test waits for the kernel to show a change before it fails


@pytest.fixture
def nodes(host_ns, topo) -> Iterator[tuple[str, str]]:
    """Nodes a and b on one bridge in the test's namespace, not armed; (a's namespace, b's)."""
    topology = spec.loads(LAN.format(topo=topo))
    converge.apply(topology)
    try:
        a, b = f"{topo}-a", f"{topo}-b"
        _wait(lambda: all("state UP" in _ip(n, "link show eth0") for n in (a, b)), "eth0 up in a and b")
        yield a, b
    finally:
        converge.destroy(topology)


@pytest.fixture
def lan(nodes) -> Iterator[tuple[str, str]]:
    """The nodes, armed."""
    arming = arm.Arming()
    try:
        assert arming.update(_snapshot(*nodes)) == list(nodes)
        yield nodes
    finally:
        arming.disarm_all()


def _snapshot(*names: str) -> Snapshot:
    return snapshot(namespaces=["host", *names], processes=False)


def _paths(*names: str) -> dict[str, str | None]:
    return {"host": None, **{n: ns.netns_path(n) for n in names}}


def _edges(a: str, b: str) -> dict[str, dict[str, Any]]:
    read = traffic_read(_paths(a, b))
    assert read.problems == {}
    return traffic_edges(read.flows, _snapshot(a, b))


def _ip(netns: str, args: str) -> str:
    return subprocess.run(
        ["nsenter", f"--net={ns.netns_path(netns)}", "sh", "-c", f"ip {args}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _nft(netns: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    argv = ["nsenter", f"--net={ns.netns_path(netns)}", "nft", *args]
    return subprocess.run(argv, input=input, capture_output=True, text=True, check=False)


def _acct(netns: str) -> str:
    return ns.netns_run(path=ns.netns_path(netns), fn=arm._read_acct)


def _wait(condition: Callable[[], object], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"after {timeout} s, still not: {what}"
        time.sleep(0.05)


def _in(netns: str, fn: Callable[[], Any]) -> Any:
    return ns.netns_run(path=ns.netns_path(netns), fn=fn)


@contextlib.contextmanager
def tcp_conversation(
    client: str,
    server: str,
    *,
    connect_to: str,
    listen_on: str,
    port: int,
    connect_port: int | None = None,
) -> Iterator[None]:
    """An open TCP connection from `client` to `connect_to`:port (`connect_port` through a DNAT),
    accepted by a listener on `listen_on`:port in `server`, with 1000 bytes sent each way; both ends
    closed after the block."""

    def listener() -> socket.socket:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((listen_on, port))
        s.listen(4)
        s.settimeout(WAIT)
        return s

    server_sock = _in(server, listener)
    client_sock = _in(client, socket.socket)
    client_sock.settimeout(WAIT)
    conn = None
    try:
        client_sock.connect((connect_to, connect_port or port))
        conn, _ = server_sock.accept()
        client_sock.sendall(b"q" * 1000)
        assert len(conn.recv(4096)) > 0
        conn.sendall(b"r" * 1000)
        assert len(client_sock.recv(4096)) > 0
        yield
    finally:
        client_sock.close()
        if conn is not None:
            conn.close()
        server_sock.close()


def test_arming_tracks_only_our_namespaces_decides_nothing_and_is_undone(nodes, topo) -> None:
    a, b = nodes
    arming = arm.Arming()
    try:
        snap = _snapshot(a, b)
        assert arm.our_namespaces(snap) == {n.name: n.inode for n in snap.namespaces if n.name in (a, b)}
        assert (_acct(a), _acct(b)) == ("0", "0")
        assert arming.update(snap) == [a, b]
        assert arming.update(snap) == []  # already armed: nothing is run again
        assert arm.arm(name=a, inode=arming.armed[a].inode).acct_before == "1"  # arming twice ...
        listed = json.loads(_nft(a, "-j", "list", "table", "inet", arm.TABLE).stdout)["nftables"]
        assert len([x for x in listed if "rule" in x]) == 1  # ... leaves one rule
        assert (_acct(a), _acct(b)) == ("1", "1")
        # the host (the test's namespace) is read, never changed
        assert (
            arm.TABLE not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        )
        # explain's firewall interpreter sees a chain that decides nothing and that it can read
        ruleset = _in(a, nft_list_ruleset)
        verdict = firewall_verdict(
            ruleset, hook="output", packet=Packet(None, ip_address(B), "tcp", dport=80)
        )
        assert (verdict.verdict, verdict.unread) == ("accept", [])
        # converge finds nothing to change in armed namespaces: the table is no drift
        assert converge.plan(spec.loads(LAN.format(topo=topo))).changes == ()
        arming.disarm_all()
        assert _nft(a, "list", "table", "inet", arm.TABLE).returncode != 0
        assert (_acct(a), _acct(b)) == ("0", "0")
    finally:
        arming.disarm_all()


def test_a_tcp_conversation_is_one_edge_and_goes_when_it_ends(lan) -> None:
    a, b = lan
    key = f"{a}|{b}|tcp|7000"
    with tcp_conversation(a, b, connect_to=B, listen_on=B, port=7000):
        edges = _edges(a, b)
        assert list(edges) == [key], edges
        edge = edges[key]
        assert {k: edge[k] for k in ("client", "server", "server_address", "protocol", "port", "flows")} == {
            "client": a,
            "server": b,
            "server_address": B,
            "protocol": "tcp",
            "port": 7000,
            "flows": 1,
        }
        assert edge["seen_in"] == [a, b]  # shown by both tables, counted once
        assert edge["packets"] >= 6 and edge["bytes"] > 2000  # handshake + data each way, with headers
    _wait(lambda: key not in _edges(a, b), "the edge gone after the connection closed")
    # gone because the conversation ended, not because the kernel forgot it: its entries are still there
    ended = [f for f in traffic_read(_paths(a, b)).flows[a] if f.reply_sport == 7000]
    states = [ct.TCP_STATES[f.tcp_state] for f in ended if f.tcp_state is not None]
    assert states in (["time_wait"], ["close"])


def test_a_conversation_conftest_tcp_echo_had_is_over_and_makes_no_edge(lan) -> None:
    a, b = lan
    tcp_echo(server_ns=b, client_ns=a, address=B, port=7006)
    read = traffic_read(_paths(a, b))
    assert any(f.reply_sport == 7006 for f in read.flows[a])  # the kernel still holds it ...
    assert f"{a}|{b}|tcp|7006" not in traffic_edges(read.flows, _snapshot(a, b))  # ... ended


def test_an_ipv6_exchange_is_an_edge_that_follows_the_schema(lan) -> None:
    a, b = lan
    _ip(a, "-6 addr add fd00:74::10/64 dev eth0 nodad")
    _ip(b, "-6 addr add fd00:74::11/64 dev eth0 nodad")
    server = _in(b, lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    client = _in(a, lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
    try:
        server.bind(("fd00:74::11", 53))
        server.settimeout(WAIT)
        client.sendto(b"v6?", ("fd00:74::11", 53))
        server.recvfrom(64)
        edges = _edges(a, b)
    finally:
        server.close()
        client.close()
    edge = edges[f"{a}|{b}|udp|53"]
    assert (edge["server_address"], edge["packets"], edge["seen_in"]) == ("fd00:74::11", 1, [a, b])
    schema = json.loads((REPO / "netcore" / "schema" / "traffic.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate({"traffic": list(edges.values())})
    assert not validator.is_valid({"traffic": [{**edge, "flows": 0}]})


def test_two_connections_to_one_port_are_two_flows_of_one_edge(lan) -> None:
    a, b = lan

    def listener() -> socket.socket:
        s = socket.socket()
        s.bind((B, 7005))
        s.listen(4)
        s.settimeout(WAIT)
        return s

    server = _in(b, listener)
    clients = [_in(a, socket.socket) for _ in range(2)]
    accepted = []
    try:
        for client in clients:
            client.settimeout(WAIT)
            client.connect((B, 7005))
            accepted.append(server.accept()[0])
        edges = _edges(a, b)
    finally:
        for sock in (*clients, *accepted, server):
            sock.close()
    assert list(edges) == [f"{a}|{b}|tcp|7005"]
    assert (edges[f"{a}|{b}|tcp|7005"]["flows"], edges[f"{a}|{b}|tcp|7005"]["seen_in"]) == (2, [a, b])


def test_each_server_port_and_direction_is_an_edge_of_its_own(lan) -> None:
    a, b = lan
    with (
        tcp_conversation(a, b, connect_to=B, listen_on=B, port=7001),
        tcp_conversation(a, b, connect_to=B, listen_on=B, port=7002),
        tcp_conversation(b, a, connect_to=A, listen_on=A, port=7001),
    ):
        edges = _edges(a, b)
    assert sorted(edges) == sorted([f"{a}|{b}|tcp|7001", f"{a}|{b}|tcp|7002", f"{b}|{a}|tcp|7001"])
    assert {e["flows"] for e in edges.values()} == {1}


def test_a_udp_exchange_is_an_edge(lan) -> None:
    a, b = lan
    server = _in(b, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    client = _in(a, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        server.bind((B, 5353))
        server.settimeout(WAIT)
        client.settimeout(WAIT)
        client.sendto(b"question", (B, 5353))
        data, sender = server.recvfrom(64)
        server.sendto(b"answer", sender)
        assert client.recv(64) == b"answer"
        edge = _edges(a, b)[f"{a}|{b}|udp|5353"]
    finally:
        server.close()
        client.close()
    assert (edge["client"], edge["server"], edge["flows"], edge["packets"]) == (a, b, 1, 2)
    assert edge["bytes"] == 2 * 28 + len(b"question") + len(b"answer")  # IP + UDP headers, both ways


def test_a_dnat_reports_the_real_server_and_port(lan) -> None:
    a, b = lan
    _ip(a, f"route add {VIP}/32 dev eth0")
    rules = (
        "add table ip dnat-test; add chain ip dnat-test out { type nat hook output priority -100; };"
        f" add rule ip dnat-test out ip daddr {VIP} tcp dport 80 dnat to {B}:7000"
    )
    done = _nft(a, "-f", "-", input=rules)
    assert done.returncode == 0, done.stderr
    with tcp_conversation(a, b, connect_to=VIP, listen_on=B, port=7000, connect_port=80):
        edges = _edges(a, b)
    assert list(edges) == [f"{a}|{b}|tcp|7000"], edges
    edge = edges[f"{a}|{b}|tcp|7000"]
    assert (edge["server_address"], edge["flows"], edge["seen_in"]) == (B, 1, [a, b])


def test_an_address_no_namespace_holds_is_a_server_outside(lan) -> None:
    a, b = lan
    client = _in(a, socket.socket)
    client.setblocking(False)
    try:
        assert client.connect_ex((NOBODY, 9090)) == errno.EINPROGRESS  # a SYN nobody answers
        edges = _wait(lambda: _edges(a, b), "an edge for the unanswered connection")
    finally:
        client.close()
    assert edges == {
        f"{a}||tcp|9090": {
            "client": a,
            "server": "",
            "server_address": NOBODY,
            "protocol": "tcp",
            "port": 9090,
            "flows": 1,
            "packets": edges[f"{a}||tcp|9090"]["packets"],
            "bytes": edges[f"{a}||tcp|9090"]["bytes"],
            "seen_in": [a],
        }
    }


def test_the_agent_watch_arms_reads_sends_changes_and_disarms(nodes) -> None:
    """TrafficWatch as the agent runs it: a conversation's edge reaches on_state, goes when the
    conversation ends, Changes turns that into set and del events, and stopping disarms."""
    a, b = nodes
    states: list[dict] = []
    watch = TrafficWatch(
        on_state=states.append, snapshot=lambda: _snapshot(a, b), interval=0.1, processes=False
    )
    changes = Changes()
    key = f"{a}|{b}|tcp|7003"

    async def scenario() -> list[dict]:
        task = asyncio.create_task(watch.run())
        events: list[dict] = []

        async def until(condition: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + WAIT
            while not condition():
                assert time.monotonic() < deadline, f"after {WAIT} s, still not: {what}"
                await asyncio.sleep(0.05)

        try:
            await until(lambda: watch.arming.armed.keys() == {a, b}, "a and b armed by the watch")
            with tcp_conversation(a, b, connect_to=B, listen_on=B, port=7003):
                await until(lambda: bool(states) and key in states[-1]["traffic"], "the edge sent")
                changes.replace(states[-1])
                events += changes.take()
            await until(lambda: key not in states[-1]["traffic"], "the edge gone")
            changes.replace(states[-1])
            events += changes.take()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return events

    events = asyncio.run(scenario())
    assert [(e["kind"], e["action"], e["key"]) for e in events] == [
        ("traffic", "set", key),
        ("traffic", "del", key),
    ]
    assert events[0]["object"]["client"] == a
    for name in (a, b):  # disarmed when it stopped
        assert _nft(name, "list", "table", "inet", arm.TABLE).returncode != 0
        assert _acct(name) == "0"


# --- the decoder against bad input -------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tuple(src: str, dst: str, proto: int, sport: int, dport: int) -> bytes:
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    src_type = ct.CTA_IP_V6_SRC if family == socket.AF_INET6 else ct.CTA_IP_V4_SRC
    ip = c.attr_nested(
        ct.CTA_TUPLE_IP,
        c.attr(src_type, socket.inet_pton(family, src)),
        c.attr(src_type + 1, socket.inet_pton(family, dst)),
    )
    ports = c.attr_be16(ct.CTA_PROTO_SRC_PORT, sport) + c.attr_be16(ct.CTA_PROTO_DST_PORT, dport)
    return ip + c.attr_nested(ct.CTA_TUPLE_PROTO, c.attr_u8(ct.CTA_PROTO_NUM, proto), ports)


def entry(
    src: str = A,
    dst: str = B,
    *,
    sport: int = 40000,
    dport: int = 80,
    proto: int = 6,
    state: int = 3,
    seq: int = 0,
) -> bytes:
    """An IPCTNL_MSG_CT_NEW message laid out as the kernel writes one (6.18: the attributes in its
    order, nests flagged NLA_F_NESTED, counters as big-endian u64)."""
    body = ct.NFGENMSG.pack(socket.AF_INET6 if ":" in src else socket.AF_INET, 0, 0)
    body += c.attr_nested(ct.CTA_TUPLE_ORIG, _tuple(src, dst, proto, sport, dport))
    body += c.attr_nested(ct.CTA_TUPLE_REPLY, _tuple(dst, src, proto, dport, sport))
    body += c.attr(ct.CTA_STATUS, struct.pack("!I", 0x18E))
    body += c.attr(7, struct.pack("!I", 431999))  # CTA_TIMEOUT: skipped
    for kind, packets, octets in ((ct.CTA_COUNTERS_ORIG, 4, 300), (ct.CTA_COUNTERS_REPLY, 3, 200)):
        body += c.attr_nested(
            kind,
            c.attr(ct.CTA_COUNTERS_PACKETS, struct.pack("!Q", packets)),
            c.attr(ct.CTA_COUNTERS_BYTES, struct.pack("!Q", octets)),
        )
    if proto == 6:
        tcp = c.attr_nested(ct.CTA_PROTOINFO_TCP, c.attr_u8(ct.CTA_PROTOINFO_TCP_STATE, state))
        body += c.attr_nested(ct.CTA_PROTOINFO, tcp)
    return c.message(ct.CT_NEW, c.NLM_F_MULTI, seq, body)


def _decode(message: bytes) -> ct.Flow:
    buf = bytearray(message)
    return ct.flow(buf, 16, len(buf))


def test_an_entry_decodes_every_field_on_both_paths() -> None:
    flow = _decode(entry())
    assert flow == ct.Flow(
        6,
        socket.inet_aton(A),
        socket.inet_aton(B),
        40000,
        80,
        socket.inet_aton(B),
        socket.inet_aton(A),
        80,
        40000,
        3,
        0x18E,
        7,
        500,
    )
    v6 = _decode(entry("fd00::1", "fd00::2", sport=1, dport=65535))
    assert (v6.src, v6.reply_sport, v6.packets) == (socket.inet_pton(socket.AF_INET6, "fd00::1"), 65535, 7)
    # the same entry with its nests unflagged (kernels before 5.2) or with an extra attribute in a tuple
    # takes the attribute walk instead of the fixed layout, to the same result
    unflagged = bytearray(entry())
    pos = 16 + 4
    for kind, a, _end in c.attrs(unflagged, pos, len(unflagged)):
        struct.pack_into("=H", unflagged, a - 2, kind)  # the top-level ones
    assert _decode(bytes(unflagged)) == flow
    assert _decode(entry(proto=17)).tcp_state is None


@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        ("cut", "attribute"),
        ("no-reply", "lacks CTA_TUPLE_REPLY"),
        ("short-address", "CTA_IP_V4_SRC has 3 bytes of payload, expected 4"),
        ("short-port", "CTA_PROTO_SRC_PORT has 1 bytes of payload, expected 2"),
        ("long-status", "CTA_STATUS has 8 bytes of payload, expected 4"),
        ("counter32", None),
        ("no-nfgenmsg", "shorter than its nfgenmsg"),
    ],
)
def test_a_malformed_entry_is_named(damage: str, complaint: str | None) -> None:
    status = c.attr(ct.CTA_STATUS, struct.pack("!I", 0x18E))
    body = entry()[16:]
    if damage == "cut":
        body = body[:-3]
    elif damage == "no-reply":
        orig = c.attr_nested(ct.CTA_TUPLE_ORIG, _tuple(A, B, 6, 1, 2))
        body = ct.NFGENMSG.pack(2, 0, 0) + orig + status
    elif damage == "short-address":
        bad_ip = c.attr_nested(ct.CTA_TUPLE_IP, c.attr(1, b"\xc6\x12\x4a"), c.attr(2, socket.inet_aton(B)))
        tup = bad_ip + c.attr_nested(ct.CTA_TUPLE_PROTO, c.attr_u8(1, 6))
        body = ct.NFGENMSG.pack(2, 0, 0) + c.attr_nested(1, tup) + c.attr_nested(2, tup)
    elif damage == "short-port":
        ip = c.attr_nested(ct.CTA_TUPLE_IP, c.attr(1, socket.inet_aton(A)), c.attr(2, socket.inet_aton(B)))
        tup = ip + c.attr_nested(ct.CTA_TUPLE_PROTO, c.attr_u8(1, 6), c.attr(2, b"\1"), c.attr_be16(3, 80))
        body = ct.NFGENMSG.pack(2, 0, 0) + c.attr_nested(1, tup) + c.attr_nested(2, tup)
    elif damage == "long-status":
        body = body + c.attr(ct.CTA_STATUS, b"\0" * 8)
    elif damage == "counter32":  # old kernels' 32-bit counters decode too
        counters = c.attr(ct.CTA_COUNTERS32_PACKETS, struct.pack("!I", 9))
        counters += c.attr(ct.CTA_COUNTERS32_BYTES, struct.pack("!I", 900))
        body = entry(proto=17)[16:] + c.attr_nested(ct.CTA_COUNTERS_ORIG, counters)
    elif damage == "no-nfgenmsg":
        body = b"\2\0"
    message = c.message(ct.CT_NEW, 0, 9, body)
    if complaint is None:
        assert (_decode(message).packets, _decode(message).bytes) == (7 + 9, 500 + 900)
        return
    with pytest.raises(MalformedMessage) as raised:
        _decode(message)
    assert str(raised.value).startswith("malformed conntrack message, message type 256 seq 9 at offset 0")
    assert complaint in str(raised.value)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Entries with some bytes changed, a length rewritten and/or cut short."""
    picks = [entry(), entry("fd00::1", "fd00::2", proto=17), entry(proto=1)]
    data = bytearray(draw(st.sampled_from(picks)))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(16, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(16, len(data) - 2)) & ~1
        struct.pack_into("=H", data, at, draw(st.integers(0, 0xFFFF)))
    return bytes(data[: draw(st.integers(16, len(data)))])


@FUZZ
@given(message=mutated())
def test_mutated_entries_decode_or_raise_only_malformed_message(message: bytes) -> None:
    buf = bytearray(message + b"\xaa" * 64)  # stale bytes after the message: never read
    with contextlib.suppress(MalformedMessage):
        flow = ct.flow(buf, 16, len(message))
        assert len(flow.src) in (4, 16) and len(flow.src) == len(flow.dst)


def test_a_dump_reads_every_datagram_then_done_and_names_a_bad_one() -> None:
    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        assert kind == ct.CT_GET
        first = b"".join(entry(sport=40000 + i, seq=seq) for i in range(3))
        return [first, entry(sport=50000, seq=seq), done_message(seq)]

    with fake_kernel(answer) as kernel:
        flows = ct.conntrack_dump(kernel.sock, netns="x")
    assert [f.sport for f in flows] == [40000, 40001, 40002, 50000]

    def broken(kind: int, seq: int, nth: int) -> list[bytes]:
        bad = bytearray(entry(seq=seq))
        struct.pack_into("=I", bad, 0, len(bad) + 40)  # a message longer than its datagram
        return [bytes(bad), done_message(seq)]

    with fake_kernel(broken) as kernel, pytest.raises(MalformedMessage, match="^conntrack of x: "):
        ct.conntrack_dump(kernel.sock, netns="x")

    def refused(kind: int, seq: int, nth: int) -> list[bytes]:
        return [done_message(seq, err=errno.EOPNOTSUPP)]

    with fake_kernel(refused) as kernel, pytest.raises(Unsupported, match="nf_conntrack_netlink"):
        ct.conntrack_dump(kernel.sock, netns="x")

    def other(kind: int, seq: int, nth: int) -> list[bytes]:
        return [done_message(seq, err=errno.EPERM)]

    with fake_kernel(other) as kernel, pytest.raises(NetcoreError, match="EPERM"):
        ct.conntrack_dump(kernel.sock, netns="x")


def test_the_kernel_entries_decode_as_the_fixed_layout_expects(lan) -> None:
    """A real dump: every entry of a TCP and a UDP conversation takes the fixed-layout path."""
    a, b = lan
    walked: list[int] = []
    original = ct._walk_tuple

    def counting(buf: bytearray, start: int, end: int):  # noqa: ANN202
        walked.append(1)
        return original(buf, start, end)

    with tcp_conversation(a, b, connect_to=B, listen_on=B, port=7004):
        ct._walk_tuple = counting
        try:
            sock = _in(a, ct.conntrack_socket)
            try:
                flows = ct.conntrack_dump(sock, netns=a)
            finally:
                sock.close()
        finally:
            ct._walk_tuple = original
    assert [(f.protocol, f.dport, f.tcp_state) for f in flows] == [(6, 7004, 3)]
    assert walked == []
