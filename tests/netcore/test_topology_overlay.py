"""Overlays across hosts: each host applies its share of a vxlan network (local, peers, remote_nodes,
learning off), and nodes on different hosts talk through VXLAN with static forwarding state.

Two simulated hosts: host A is the test's own throwaway namespace (host_ns), host B a second one,
driven from a thread that enters it (netcore treats the calling thread's namespace as the host).
They are joined by a veth underlay in 198.18.254.0/24 (ua in A, ub in B). An AF_PACKET socket on
ua sees what crosses the underlay: VXLAN frames, decoded down to their VNI and inner frame.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from netcore import names
from netcore import netns as ns
from netcore.agent.state import state_of
from netcore.errors import InvalidSpec, NetcoreError
from netcore.snapshot import snapshot
from netcore.topology import converge, spec
from netcore.topology.overlay_entries import overlay_drift
from netcore.topology.spec import endpoint_mac
from tests.conftest import RUN, can_connect, tcp_echo

_T = TypeVar("_T")
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_hosts = iter(range(1, 10**6))
VNI = 5000
SUBNET = "198.18.50.0/24"
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6, ETH_P_ARP = 0x0003, 0x0800, 0x86DD, 0x0806


def _in_namespace(path: str, fn: Callable[[], _T]) -> _T:
    """fn() on a thread of its own that has entered the namespace file `path`."""
    box: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            box.append((True, fn()))
        except BaseException as exc:  # handed back to the caller
            box.append((False, exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


@dataclass
class Host:
    """A simulated host: its namespace (None: the test's own), its topology name, underlay and VTEP."""

    label: str
    path: str | None
    topo: str
    underlay: str
    vtep: str
    shares: list[spec.TopologySpec] = field(default_factory=list)

    def call(self, fn: Callable[[], _T]) -> _T:
        return fn() if self.path is None else _in_namespace(self.path, fn)

    def sh(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess:
        args = (
            ["sh", "-c", command]
            if self.path is None
            else ["nsenter", f"--net={self.path}", "sh", "-c", command]
        )
        return subprocess.run(args, capture_output=True, text=True, check=check)

    def apply(self, topology: spec.TopologySpec) -> converge.Result:
        self.shares.append(topology)
        return self.call(lambda: converge.apply(topology))

    def plan(self, topology: spec.TopologySpec) -> list[str]:
        return [str(c) for c in self.call(lambda: converge.plan(topology)).changes]

    def destroy(self) -> None:
        if self.shares:
            last = self.shares[-1]
            self.call(lambda: converge.destroy(last))

    @property
    def vx(self) -> str:
        return names.vxlan_name(self.topo, "mesh")

    def link(self, name: str) -> dict:
        return json.loads(self.sh(f"ip -j -d link show {name}").stdout)[0]

    def fdb(self) -> list[dict]:
        return json.loads(self.sh(f"bridge -j fdb show dev {self.vx}").stdout)

    def drift(self, topology: spec.TopologySpec) -> list[str]:
        """Live drift as the web app gets it: from the agent's state of the host namespace."""
        return overlay_drift(topology, state_of(self.call(lambda: snapshot(namespaces=["host"]))))


@dataclass
class Lab:
    a: Host
    b: Host


@pytest.fixture
def lab(host_ns, topo) -> Iterator[Lab]:
    """Host A (the test's namespace, ua 198.18.254.11) and host B (ub 198.18.254.12) on one underlay."""
    name = f"sbt-{RUN}-ov{next(_hosts)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    path = ns.netns_path(name)
    a = Host("A", None, topo, "ua", "198.18.254.11")
    b = Host("B", path, f"{topo[:7]}b", "ub", "198.18.254.12")  # topo ends in a digit
    try:
        host_ns.run(f"ip link add ua type veth peer name ub && ip link set ub netns {name}")
        for host in (a, b):
            host.sh(f"ip link set lo up && ip addr add {host.vtep}/24 dev {host.underlay}")
            host.sh(f"ip link set {host.underlay} up")
        yield Lab(a, b)
    finally:
        try:
            for host in (a, b):
                host.destroy()
        finally:
            subprocess.run(["ip", "netns", "del", name], check=False)


def share(
    host: Host,
    *,
    nodes: dict[str, str],
    peers: list[Host | str],
    remote: Sequence[tuple[str, Host | str]] = (),
    subnet: str = SUBNET,
    **network: object,
) -> spec.TopologySpec:
    """`host`'s share of the overlay network mesh: its own nodes (name: address), the other hosts as
    peers, and their nodes as remote nodes (address, host or VTEP address)."""

    def vtep(where: Host | str) -> str:
        return where.vtep if isinstance(where, Host) else where

    mesh: dict[str, object] = {
        "driver": "vxlan",
        "subnet": subnet,
        "vni": VNI,
        "local": host.vtep,
        "learning": False,
        "peers": [vtep(p) for p in peers],
        "remote_nodes": [{"address": address, "vtep": vtep(where)} for address, where in remote],
        **network,
    }
    body = {"name": host.topo, "networks": {"mesh": mesh}}
    body["nodes"] = {node: {"networks": {"mesh": {"address": address}}} for node, address in nodes.items()}
    return spec.parse(body)


@dataclass(frozen=True)
class Frame:
    """A VXLAN frame seen on the underlay: outer direction (PACKET_* type), VNI and inner frame."""

    pkttype: int
    vni: int
    inner: bytes

    @property
    def ethertype(self) -> int:
        return struct.unpack("!H", self.inner[12:14])[0]

    def neighbour_solicitation_for(self) -> str | None:
        """The target of an inner ICMPv6 neighbour solicitation, else None."""
        ip6 = self.inner[14:]
        if self.ethertype != ETH_P_IPV6 or len(ip6) < 64 or ip6[6] != 58 or ip6[40] != 135:
            return None
        return str(ipaddress.IPv6Address(ip6[48:64]))


class Capture:
    """Every frame on an interface of the calling thread's namespace, VXLAN ones (UDP 4789) decoded."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.05)
        self.frames: list[Frame] = []
        self.other = 0  # frames on the underlay that are not VXLAN
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> Capture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.1)  # what is in flight
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, address = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            frame = _vxlan(data, address[2])
            if frame is None:
                self.other += 1
            else:
                self.frames.append(frame)


def _vxlan(data: bytes, pkttype: int) -> Frame | None:
    ethertype = struct.unpack("!H", data[12:14])[0]
    if ethertype == ETH_P_IP and data[23] == socket.IPPROTO_UDP:
        udp = 14 + (data[14] & 0x0F) * 4
    elif ethertype == ETH_P_IPV6 and data[20] == socket.IPPROTO_UDP:
        udp = 14 + 40
    else:
        return None
    if struct.unpack("!H", data[udp + 2 : udp + 4])[0] != 4789:
        return None
    header = data[udp + 8 : udp + 16]
    assert header[0] & 0x08, "a VXLAN header has the I flag (a valid VNI)"
    return Frame(pkttype, int.from_bytes(header[4:7], "big"), data[udp + 16 :])


def connect_fails(*, client_ns: str, address: str, port: int = 7009, timeout: float = 1.0) -> bool:
    """True if a TCP connect from client_ns to `address` gets no answer (nothing listens anywhere)."""
    client = ns.netns_run(path=ns.netns_path(client_ns), fn=socket.socket)
    with client:
        client.settimeout(timeout)
        try:
            client.connect((address, port))
        except OSError:
            return True
    return False


def neighbours(netns: str) -> dict[str, dict]:
    shown = subprocess.run(
        ["ip", "-n", netns, "-j", "neigh", "show"], capture_output=True, text=True, check=True
    )
    return {n["dst"]: n for n in json.loads(shown.stdout)}


def build(lab: Lab) -> tuple[spec.TopologySpec, spec.TopologySpec]:
    """a1 (198.18.50.10) on A, b1 (198.18.50.11) on B, each the other's remote node."""
    a = share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], remote=[("198.18.50.11", lab.b)])
    b = share(lab.b, nodes={"b1": "198.18.50.11"}, peers=[lab.a], remote=[("198.18.50.10", lab.a)])
    lab.a.apply(a)
    lab.b.apply(b)
    return a, b


# -- traffic ------------------------------------------------------------------------------------------


def test_nodes_on_two_hosts_talk_through_vxlan_and_arp_is_answered_locally(lab):
    text = f"""
name: {lab.a.topo}
networks:
  mesh:
    driver: vxlan
    subnet: 198.18.50.0/24
    vni: 5000
    local: 198.18.254.11
    learning: false
    peers: [198.18.254.12]
    remote_nodes:
      - {{address: 198.18.50.11, vtep: 198.18.254.12}}
nodes:
  a1: {{networks: {{mesh: {{address: 198.18.50.10}}}}}}
"""
    a = spec.loads(text)
    b = share(lab.b, nodes={"b1": "198.18.50.11"}, peers=[lab.a], remote=[("198.18.50.10", lab.a)])
    planned = lab.a.plan(a)
    vx = lab.a.vx
    assert f"+ vxlan {vx} (vni 5000, dstport 4789, proxy, mtu 1450)" in planned
    assert f"+ fdb 00:00:00:00:00:00 dst 198.18.254.12 on {vx} (peer)" in planned
    assert f"+ fdb 02:42:c6:12:32:0b dst 198.18.254.12 on {vx} (remote node 198.18.50.11)" in planned
    assert f"+ neighbour 198.18.50.11 lladdr 02:42:c6:12:32:0b on {vx} (remote node)" in planned
    assert [str(c) for c in lab.a.apply(a).changes] == planned
    lab.b.apply(b)
    a1, b1 = f"{lab.a.topo}-a1", f"{lab.b.topo}-b1"

    with Capture("ua") as seen:
        tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")
        tcp_echo(server_ns=a1, client_ns=b1, address="198.18.50.10")
    # the node resolved its peer's address at once, from the VXLAN device's neighbour entry
    assert neighbours(a1)["198.18.50.11"]["lladdr"] == endpoint_mac(ipaddress.ip_address("198.18.50.11"))
    assert neighbours(b1)["198.18.50.10"]["lladdr"] == "02:42:c6:12:32:0a"
    # everything between the hosts is VXLAN with the network's VNI, both ways, carrying IPv4 and no ARP
    assert seen.frames and {f.vni for f in seen.frames} == {VNI}
    directions = {f.pkttype for f in seen.frames if f.ethertype == ETH_P_IP}
    assert directions == {socket.PACKET_OUTGOING, socket.PACKET_HOST}
    assert not [f for f in seen.frames if f.ethertype == ETH_P_ARP]

    # an address with no neighbour entry: its ARP request is dropped by the device, not flooded
    with Capture("ua") as seen:
        assert connect_fails(client_ns=a1, address="198.18.50.99")
    assert not [f for f in seen.frames if f.ethertype == ETH_P_ARP]
    assert neighbours(a1)["198.18.50.99"]["state"][0] in ("INCOMPLETE", "FAILED")

    vxlan = lab.a.link(vx)
    assert vxlan["linkinfo"]["info_data"]["proxy"] is True
    assert vxlan["linkinfo"]["info_data"]["learning"] is False
    assert vxlan["mtu"] == 1450 and lab.a.link(f"{lab.a.topo}-mesh")["mtu"] == 1450  # underlay 1500 - 50
    assert lab.a.plan(a) == [] and lab.b.plan(b) == []
    assert lab.a.apply(a).changes == ()
    assert lab.a.drift(a) == [] and lab.b.drift(b) == []


def test_ipv6_overlay_answers_neighbour_solicitations_locally(lab):
    subnet = "fd00:50::/64"
    a = share(
        lab.a, nodes={"a1": "fd00:50::10"}, peers=[lab.b], remote=[("fd00:50::11", lab.b)], subnet=subnet
    )
    b = share(
        lab.b, nodes={"b1": "fd00:50::11"}, peers=[lab.a], remote=[("fd00:50::10", lab.a)], subnet=subnet
    )
    lab.a.apply(a)
    lab.b.apply(b)
    a1, b1 = f"{lab.a.topo}-a1", f"{lab.b.topo}-b1"
    with Capture("ua") as seen:
        tcp_echo(server_ns=b1, client_ns=a1, address="fd00:50::11")
    assert neighbours(a1)["fd00:50::11"]["lladdr"] == endpoint_mac(ipaddress.ip_address("fd00:50::11"))
    assert {f.vni for f in seen.frames} == {VNI}
    assert [f for f in seen.frames if f.ethertype == ETH_P_IPV6]
    asked = {f.neighbour_solicitation_for() for f in seen.frames} - {None}
    assert "fd00:50::11" not in asked and "fd00:50::10" not in asked
    assert lab.a.plan(a) == [] and lab.a.drift(a) == []


# -- drift --------------------------------------------------------------------------------------------


def test_entries_deleted_or_changed_by_hand_are_planned_seen_live_and_repaired(lab):
    a, _ = build(lab)
    a1, b1 = f"{lab.a.topo}-a1", f"{lab.b.topo}-b1"
    vx, mac = lab.a.vx, "02:42:c6:12:32:0b"
    tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")

    # the remote node's entry pointed at another VTEP: traffic to it goes there, and is lost
    lab.a.sh(f"bridge fdb replace {mac} dev {vx} dst 198.18.254.99 self permanent")
    assert not can_connect(server_ns=b1, client_ns=a1, address="198.18.50.11")
    assert lab.a.plan(a) == [
        f"~ fdb {mac} dst 198.18.254.12 on {vx} (remote node 198.18.50.11, was dst 198.18.254.99)"
    ]
    assert lab.a.drift(a) == [f"~ fdb {mac} on {vx} is dst 198.18.254.99, not 198.18.254.12"]
    lab.a.apply(a)
    tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")

    # only the remote node's entry deleted: its frames are flooded to every peer, so they still arrive
    lab.a.sh(f"bridge fdb del {mac} dev {vx} self")
    with Capture("ua") as seen:
        tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")
    assert seen.frames
    assert lab.a.plan(a) == [f"+ fdb {mac} dst 198.18.254.12 on {vx} (remote node 198.18.50.11)"]
    lab.a.apply(a)

    # both forwarding entries deleted: nothing knows where b1 is any more
    lab.a.sh(
        f"bridge fdb del {mac} dev {vx} self && bridge fdb del 00:00:00:00:00:00 dev {vx} dst 198.18.254.12"
    )
    assert not can_connect(server_ns=b1, client_ns=a1, address="198.18.50.11")
    gone = [
        f"+ fdb 00:00:00:00:00:00 dst 198.18.254.12 on {vx} (peer)",
        f"+ fdb {mac} dst 198.18.254.12 on {vx} (remote node 198.18.50.11)",
    ]
    assert lab.a.plan(a) == gone
    assert lab.a.drift(a) == [
        f"- fdb 00:00:00:00:00:00 dst 198.18.254.12 on {vx} is gone",
        f"- fdb {mac} dst 198.18.254.12 on {vx} is gone",
    ]
    assert [str(c) for c in lab.a.apply(a).changes] == gone
    tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")

    # the neighbour entry deleted (and the node's cache flushed): the ARP request is dropped
    lab.a.sh(f"ip neigh del 198.18.50.11 dev {vx} && ip -n {a1} neigh flush all")
    assert not can_connect(server_ns=b1, client_ns=a1, address="198.18.50.11")
    assert lab.a.plan(a) == [f"+ neighbour 198.18.50.11 lladdr {mac} on {vx} (remote node)"]
    assert lab.a.drift(a) == [f"- neighbour 198.18.50.11 lladdr {mac} on {vx} is gone"]
    lab.a.apply(a)
    lab.a.sh(f"ip -n {a1} neigh flush all")
    tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")

    # entries the file does not ask for, added by hand, are removed; learnt ones would be left alone
    lab.a.sh(
        f"bridge fdb append 00:00:00:00:00:00 dev {vx} dst 198.18.254.77"
        f" && bridge fdb add 02:00:00:00:00:77 dev {vx} dst 198.18.254.77 self permanent"
        f" && ip neigh add 198.18.50.77 lladdr 02:00:00:00:00:77 dev {vx} nud permanent"
        f" && ip neigh replace 198.18.50.11 lladdr 02:00:00:00:00:78 dev {vx} nud permanent"
    )
    planned = lab.a.plan(a)
    assert planned == [
        f"- fdb 00:00:00:00:00:00 dst 198.18.254.77 on {vx}",
        f"- fdb 02:00:00:00:00:77 dst 198.18.254.77 on {vx}",
        f"- neighbour 198.18.50.77 lladdr 02:00:00:00:00:77 on {vx}",
        f"~ neighbour 198.18.50.11 lladdr {mac} on {vx}"
        " (remote node, was lladdr 02:00:00:00:00:78 (permanent))",
    ]
    assert sorted(lab.a.drift(a)) == sorted(
        [
            f"+ fdb 00:00:00:00:00:00 dst 198.18.254.77 on {vx} is not in the topology",
            f"+ fdb 02:00:00:00:00:77 dst 198.18.254.77 on {vx} is not in the topology",
            f"+ neighbour 198.18.50.77 lladdr 02:00:00:00:00:77 on {vx} is not in the topology",
            f"~ neighbour 198.18.50.11 on {vx} is lladdr 02:00:00:00:00:78 (permanent), not {mac}",
        ]
    )
    assert [str(c) for c in lab.a.apply(a).changes] == planned
    entries = {(e["mac"], e.get("dst")) for e in lab.a.fdb() if "self" in e["flags"]}
    assert entries == {("00:00:00:00:00:00", "198.18.254.12"), (mac, "198.18.254.12")}
    assert lab.a.plan(a) == [] and lab.a.drift(a) == []

    # the device itself gone: one line of drift, and apply rebuilds it with its entries
    lab.a.sh(f"ip link del {vx}")
    assert lab.a.drift(a) == [f"- vxlan {vx} is gone"]
    lab.a.apply(a)
    tcp_echo(server_ns=b1, client_ns=a1, address="198.18.50.11")


# -- changes ------------------------------------------------------------------------------------------


def test_remote_nodes_and_peers_come_and_go_as_entries_only_and_connections_survive(lab):
    a, b = build(lab)
    a1, b1 = f"{lab.a.topo}-a1", f"{lab.b.topo}-b1"
    vx = lab.a.vx

    kept = (vx, f"{lab.a.topo}-mesh", names.host_veth_name(lab.a.topo, "a1", "mesh"))

    def indexes() -> list[int]:
        return [lab.a.link(name)["ifindex"] for name in kept]

    before = indexes()
    listener = ns.netns_run(path=ns.netns_path(b1), fn=lambda: socket.create_server(("198.18.50.11", 7100)))
    client = ns.netns_run(path=ns.netns_path(a1), fn=socket.socket)
    try:
        client.settimeout(3)
        listener.settimeout(3)
        client.connect(("198.18.50.11", 7100))
        server, _ = listener.accept()
        with server:

            def still_connected() -> None:
                client.sendall(b"still here")
                assert server.recv(64) == b"still here"
                server.sendall(b"and back")
                assert client.recv(64) == b"and back"

            # b2 joins on host B: B builds it, A learns of it as a remote node, and a third host's peer
            grown_b = share(
                lab.b,
                nodes={"b1": "198.18.50.11", "b2": "198.18.50.12"},
                peers=[lab.a],
                remote=[("198.18.50.10", lab.a)],
            )
            lab.b.apply(grown_b)
            grown_a = share(
                lab.a,
                nodes={"a1": "198.18.50.10"},
                peers=[lab.b, "198.18.254.13"],
                remote=[("198.18.50.11", lab.b), ("198.18.50.12", lab.b)],
            )
            planned = lab.a.plan(grown_a)
            assert planned == [
                f"+ fdb 00:00:00:00:00:00 dst 198.18.254.13 on {vx} (peer)",
                f"+ fdb 02:42:c6:12:32:0c dst 198.18.254.12 on {vx} (remote node 198.18.50.12)",
                f"+ neighbour 198.18.50.12 lladdr 02:42:c6:12:32:0c on {vx} (remote node)",
            ]
            assert [str(c) for c in lab.a.apply(grown_a).changes] == planned
            assert indexes() == before
            still_connected()
            tcp_echo(server_ns=f"{lab.b.topo}-b2", client_ns=a1, address="198.18.50.12")
            peers = sorted(e["dst"] for e in lab.a.fdb() if e["mac"] == "00:00:00:00:00:00")
            assert peers == ["198.18.254.12", "198.18.254.13"]

            # and leaves again: only its entries (and the third peer) go
            lab.b.apply(b)
            planned = lab.a.plan(a)
            assert planned == [
                f"- fdb 00:00:00:00:00:00 dst 198.18.254.13 on {vx}",
                f"- fdb 02:42:c6:12:32:0c dst 198.18.254.12 on {vx}",
                f"- neighbour 198.18.50.12 lladdr 02:42:c6:12:32:0c on {vx}",
            ]
            assert [str(c) for c in lab.a.apply(a).changes] == planned
            assert indexes() == before
            still_connected()
            assert lab.a.plan(a) == []
    finally:
        client.close()
        listener.close()


def test_a_remote_node_moving_to_another_host_is_one_corrected_entry(lab):
    a, _ = build(lab)
    vx = lab.a.vx
    moved = share(
        lab.a,
        nodes={"a1": "198.18.50.10"},
        peers=[lab.b, "198.18.254.13"],
        remote=[("198.18.50.11", "198.18.254.13")],
    )
    assert lab.a.plan(moved) == [
        f"+ fdb 00:00:00:00:00:00 dst 198.18.254.13 on {vx} (peer)",
        f"~ fdb 02:42:c6:12:32:0b dst 198.18.254.13 on {vx}"
        " (remote node 198.18.50.11, was dst 198.18.254.12)",
    ]
    lab.a.apply(moved)
    assert {(e["mac"], e["dst"]) for e in lab.a.fdb() if e["mac"] == "02:42:c6:12:32:0b"} == {
        ("02:42:c6:12:32:0b", "198.18.254.13")
    }


def test_a_given_mac_is_used_for_both_entries(lab):
    body = {
        "name": lab.a.topo,
        "networks": {
            "mesh": {
                "driver": "vxlan",
                "subnet": SUBNET,
                "vni": VNI,
                "local": lab.a.vtep,
                "learning": False,
                "peers": [lab.b.vtep],
                "remote_nodes": [{"address": "198.18.50.11", "vtep": lab.b.vtep, "mac": "02:AA:00:00:00:0B"}],
            }
        },
        "nodes": {"a1": {"networks": {"mesh": {"address": "198.18.50.10"}}}},
    }
    lab.a.apply(spec.parse(body))
    neigh = json.loads(lab.a.sh(f"ip -j neigh show dev {lab.a.vx}").stdout)
    assert [(n["dst"], n["lladdr"], n["state"]) for n in neigh] == [
        ("198.18.50.11", "02:aa:00:00:00:0b", ["PERMANENT"])
    ]
    assert ("02:aa:00:00:00:0b", "198.18.254.12") in {(e["mac"], e.get("dst")) for e in lab.a.fdb()}


def test_entries_added_to_an_existing_device_are_rolled_back_with_a_failed_apply(lab, monkeypatch):
    a, _ = build(lab)
    grown = share(
        lab.a,
        nodes={"a1": "198.18.50.10", "a2": "198.18.50.20"},
        peers=[lab.b, "198.18.254.13"],
        remote=[("198.18.50.11", lab.b), ("198.18.50.12", lab.b)],
    )
    from netcore import requests as rq

    real = rq.route_add

    def broken(**kwargs):
        request = real(**kwargs)
        if f"{lab.a.topo}-a2" in request.obj:  # a2's default route: after the entries are added
            return type(request)(
                request.msg_type, request.flags, request.body[:8], request.action, request.obj
            )
        return request

    monkeypatch.setattr(rq, "route_add", broken)
    with pytest.raises(NetcoreError, match=f"{lab.a.topo}-a2"):
        lab.a.call(lambda: converge.apply(grown))
    monkeypatch.undo()
    assert lab.a.plan(a) == []  # the peer and remote node it added are gone again


# -- the underlay -------------------------------------------------------------------------------------


def test_mtu_follows_the_underlay_and_a_larger_one_is_refused(lab):
    lab.a.sh("ip link set ua mtu 9000")
    a = share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], remote=[("198.18.50.11", lab.b)])
    lab.a.apply(a)
    bridge, veth = f"{lab.a.topo}-mesh", names.host_veth_name(lab.a.topo, "a1", "mesh")
    inside = json.loads(lab.a.sh(f"ip -n {lab.a.topo}-a1 -j link show eth0").stdout)[0]
    assert {lab.a.link(n)["mtu"] for n in (lab.a.vx, bridge, veth)} == {8950} and inside["mtu"] == 8950

    # the underlay shrinks: the next plan lowers the overlay in place
    lab.a.sh("ip link set ua mtu 1500")
    planned = lab.a.plan(a)
    assert f"~ vxlan {lab.a.vx} (mtu 1450)" in planned and f"~ veth {veth} (mtu 1450)" in planned
    assert not [line for line in planned if line.startswith(("+", "-"))]

    too_big = share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], mtu=1451)
    with pytest.raises(InvalidSpec) as refused:
        lab.a.plan(too_big)
    assert refused.value.problems == [
        "networks.mesh.mtu: 1451 is more than the underlay allows: local 198.18.254.11 is on ua (MTU 1500),"
        " and VXLAN over IPv4 adds 50 bytes, so at most 1450"
    ]
    lab.a.plan(share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], mtu=1450))  # the largest is fine

    elsewhere = share(lab.a, nodes={}, peers=[lab.b], local="198.18.254.21")
    with pytest.raises(
        InvalidSpec, match=r"networks\.mesh\.local: no interface of the host namespace has 198\.18\.254\.21"
    ):
        lab.a.plan(elsewhere)


def test_an_ipv6_underlay_costs_70_bytes(lab):
    lab.a.sh("ip addr add fd00:254::11/64 dev ua nodad")
    lab.b.sh("ip addr add fd00:254::12/64 dev ub nodad")
    lab.a.vtep, lab.b.vtep = "fd00:254::11", "fd00:254::12"
    a = share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], remote=[("198.18.50.11", lab.b)])
    b = share(lab.b, nodes={"b1": "198.18.50.11"}, peers=[lab.a], remote=[("198.18.50.10", lab.a)])
    lab.a.apply(a)
    lab.b.apply(b)
    assert lab.a.link(lab.a.vx)["mtu"] == 1430
    with Capture("ua") as seen:
        tcp_echo(server_ns=f"{lab.b.topo}-b1", client_ns=f"{lab.a.topo}-a1", address="198.18.50.11")
    assert {f.vni for f in seen.frames} == {VNI} and not [f for f in seen.frames if f.ethertype == ETH_P_ARP]
    with pytest.raises(InvalidSpec, match=r"at most 1430"):
        lab.a.plan(share(lab.a, nodes={"a1": "198.18.50.10"}, peers=[lab.b], mtu=1431))


# -- bad input ----------------------------------------------------------------------------------------


def _mesh(**changes: object) -> dict:
    mesh: dict[str, object] = {
        "driver": "vxlan",
        "subnet": SUBNET,
        "vni": VNI,
        "local": "198.18.254.11",
        "learning": False,
        "peers": ["198.18.254.12", "198.18.254.13"],
        "remote_nodes": [{"address": "198.18.50.11", "vtep": "198.18.254.12"}],
    }
    mesh.update(changes)
    return {
        "name": "ov",
        "networks": {"mesh": mesh},
        "nodes": {"a1": {"networks": {"mesh": {"address": "198.18.50.10"}}}, "a2": {"networks": ["mesh"]}},
    }


def _remote(**item: object) -> list[dict]:
    return [{"address": "198.18.50.11", "vtep": "198.18.254.12", **item}]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"remote": "198.18.254.12"}, "networks.mesh.peers: not with remote"),
        ({"group": "239.1.1.1"}, "networks.mesh.peers: not with group"),
        ({"peers": "198.18.254.12"}, "networks.mesh.peers: must be a list of addresses"),
        (
            {"peers": ["198.18.254.12", "198.18.254.12"]},
            "networks.mesh.peers[1]: 198.18.254.12 is listed twice",
        ),
        ({"peers": ["198.18.254.11"]}, "networks.mesh.peers[0]: 198.18.254.11 is local"),
        ({"peers": ["fd00::12"]}, "networks.mesh.peers[0]: fd00::12 is not of the same IP version as local"),
        ({"peers": ["239.1.1.1"]}, "networks.mesh.peers[0]: 239.1.1.1 is not a unicast address"),
        ({"peers": ["nope"]}, "networks.mesh.peers[0]: 'nope' is not an IP address"),
        (
            {"remote_nodes": _remote(vtep="198.18.254.99")},
            "networks.mesh.remote_nodes[0].vtep: 198.18.254.99 is not one of peers",
        ),
        (
            {"remote_nodes": _remote(address="198.18.60.11")},
            "networks.mesh.remote_nodes[0].address: 198.18.60.11 is outside subnet",
        ),
        (
            {"remote_nodes": _remote(address="198.18.50.1")},
            "networks.mesh.remote_nodes[0].address: 198.18.50.1 is the gateway",
        ),
        (
            {"remote_nodes": _remote(address="198.18.50.10")},
            "networks.mesh.remote_nodes[0].address: 198.18.50.10 is the address of node a1",
        ),
        (
            {"remote_nodes": [*_remote(), {"address": "198.18.50.11", "vtep": "198.18.254.13"}]},
            "networks.mesh.remote_nodes[1].address: 198.18.50.11 is already held by remote node"
            " networks.mesh.remote_nodes[0]",
        ),
        (
            {
                "remote_nodes": [
                    *_remote(mac="02:00:00:00:00:01"),
                    {"address": "198.18.50.12", "vtep": "198.18.254.13", "mac": "02:00:00:00:00:01"},
                ]
            },
            "networks.mesh.remote_nodes[1].mac: 02:00:00:00:00:01 is already the MAC of"
            " networks.mesh.remote_nodes[0]",
        ),
        # a2 is allocated 198.18.50.2 (remote nodes' addresses are never allocated): MAC 02:42:c6:12:32:02
        (
            {"remote_nodes": _remote(mac="02:42:c6:12:32:02")},
            "networks.mesh.remote_nodes[0].mac: 02:42:c6:12:32:02 is already the MAC of node a2"
            " (198.18.50.2)",
        ),
        (
            {"remote_nodes": _remote(mac="01:00:5e:00:00:01")},
            "networks.mesh.remote_nodes[0].mac: 01:00:5e:00:00:01 is a multicast MAC",
        ),
        (
            {"remote_nodes": _remote(mac="00:00:00:00:00:00")},
            "networks.mesh.remote_nodes[0].mac: 00:00:00:00:00:00 is all zeros",
        ),
        (
            {"remote_nodes": _remote(mac="02-00-00-00-00-01")},
            "networks.mesh.remote_nodes[0].mac: '02-00-00-00-00-01' is not a MAC address",
        ),
        ({"remote_nodes": [{"vtep": "198.18.254.12"}]}, "networks.mesh.remote_nodes[0].address: missing"),
        ({"remote_nodes": [{"address": "198.18.50.11"}]}, "networks.mesh.remote_nodes[0].vtep: missing"),
        ({"remote_nodes": _remote(colour="red")}, "networks.mesh.remote_nodes[0]: unknown key 'colour'"),
        (
            {"remote_nodes": {"address": "198.18.50.11"}},
            "networks.mesh.remote_nodes: must be a list of mappings",
        ),
        (
            {"driver": "bridge", "vni": None, "local": None, "learning": None},
            "networks.mesh.peers: only a vxlan network takes peers",
        ),
    ],
)
def test_bad_overlay_input_is_refused_naming_the_field(changes, problem):
    document = _mesh(**changes)
    document["networks"]["mesh"] = {k: v for k, v in document["networks"]["mesh"].items() if v is not None}
    with pytest.raises(InvalidSpec) as refused:
        spec.parse(document)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def test_remote_nodes_addresses_are_left_out_of_allocation_and_macs_default_to_the_address():
    parsed = spec.parse(_mesh(remote_nodes=[{"address": "198.18.50.2", "vtep": "198.18.254.12"}]))
    assert parsed.nodes["a2"].attachments[0].address == ipaddress.ip_address("198.18.50.3")
    [remote] = parsed.networks["mesh"].remote_nodes
    assert remote.mac == "02:42:c6:12:32:02" == endpoint_mac(remote.address)
    assert parsed.networks["mesh"].proxy
    assert not spec.parse(_mesh(learning=True)).networks["mesh"].proxy


def test_live_drift_of_a_synthetic_state():
    """overlay_drift reads an agent's state: a device's own (self) entries and its neighbours only."""
    topology = spec.parse(_mesh())
    vx = names.vxlan_name("ov", "mesh")
    link = {"netns": "host", "index": 7, "name": vx, "up": True}

    def fdb(mac: str, dst: str, state: str = "noarp|permanent", self_entry: bool = True) -> dict:
        return {
            "netns": "host",
            "ifindex": 7,
            "mac": mac,
            "dst": dst,
            "vni": None,
            "state": state,
            "self_entry": self_entry,
        }

    state = {
        "namespaces": {"host": {"name": "host", "kind": "host"}},
        "links": {"host|7": link},
        "fdb": {
            "1": fdb("00:00:00:00:00:00", "198.18.254.12"),
            "2": fdb("02:42:c6:12:32:0b", "198.18.254.13"),
            "3": fdb("02:00:00:00:00:99", "198.18.254.13", state="reachable"),  # learnt: not drift
            "4": fdb("02:42:c6:12:32:0b", None, self_entry=False),  # the bridge's entry for the port
        },
        "neighbours": {
            "n": {
                "netns": "host",
                "ifindex": 7,
                "address": "198.18.50.11",
                "mac": "02:42:c6:12:32:0b",
                "state": "permanent",
            }
        },
    }
    assert overlay_drift(topology, state) == [
        f"- fdb 00:00:00:00:00:00 dst 198.18.254.13 on {vx} is gone",
        f"~ fdb 02:42:c6:12:32:0b on {vx} is dst 198.18.254.13, not 198.18.254.12",
    ]
    assert overlay_drift(topology, {**state, "links": {"host|7": {**link, "up": False}}}) == [
        f"~ vxlan {vx} is down"
    ]
    assert overlay_drift(topology, {**state, "links": {}}) == [f"- vxlan {vx} is gone"]
    assert overlay_drift(spec.parse({"name": "ov", "networks": {"n": {"subnet": SUBNET}}}), state) == []
