"""An overlay spanning a lab of three simulated hosts, end to end: the web app as the control plane,
real agents applying each host's share, real TCP between nodes on different hosts through VXLAN
(seen encapsulated with the network's VNI on the underlay, with no ARP crossing it), and the
consistency check finding each break made by hand, naming host and object, until a repair or a
fix by hand clears it."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from lab import Lab, LabHost
from netcore import names
from netcore.netns import netns_run
from netcore.topology.spec import endpoint_mac
from tests.conftest import tcp_echo_at
from tests.stack.harness import Stack, Web, until
from tests.stack.scenarios import finished

pytestmark = pytest.mark.asyncio

VNI = 6100
FILE = {
    "name": "ov",
    "networks": {
        "mesh": {
            "driver": "vxlan",
            "subnet": "198.18.60.0/24",
            "vni": VNI,
            "hosts": ["lab1", "lab2", "lab3"],
        },
    },
    "nodes": {
        "a1": {"networks": ["mesh"]},
        "b1": {"networks": ["mesh"], "host": "lab2"},
        "c1": {"networks": ["mesh"], "host": "lab3"},
    },
}
ADDRESS = {"a1": "198.18.60.2", "b1": "198.18.60.3", "c1": "198.18.60.4"}
VTEP = {"lab1": "198.18.254.11", "lab2": "198.18.254.12", "lab3": "198.18.254.13"}
DEVICE = names.vxlan_name("ov", "mesh")
ETH_P_ALL, ETH_P_IP, ETH_P_ARP = 0x0003, 0x0800, 0x0806


def _mac(node: str) -> str:
    return endpoint_mac(ipaddress.ip_address(ADDRESS[node]))


async def _apply(web: Web, path: str) -> None:
    status, body = await web.aapi("POST", path)
    assert status == 202, body
    for queued in body["span"] or [body]:
        assert (await finished(web, queued["operation"]))["status"] == "succeeded", queued


def _findings(web: Web, *, full: bool = False) -> list:
    """The check's findings now, as (host, kind), or whole."""
    status, body = web.api("GET", "/api/v1/networks/ov.mesh/overlay/")
    assert status == 200, body
    return body["findings"] if full else [(f["host"], f["kind"]) for f in body["findings"]]


def _status(web: Web, host: str) -> str:
    status, body = web.api("GET", f"/api/v1/topologies/ov/?host={host}")
    assert status == 200, body
    return body["status"]


async def _found(web: Web, finding: tuple[str, str]) -> None:
    await until(lambda: finding in _findings(web), timeout=15, what=f"the check to report {finding}")


async def _clear(web: Web) -> None:
    last: list = []

    def consistent() -> bool:
        last[:] = _findings(web, full=True)
        return not last

    try:
        await until(consistent, timeout=15, what="the overlay to check out consistent")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; findings: {last}") from None


def _capture(stack: Stack) -> socket.socket:
    """A packet socket on every interface of the underlay's namespace: the bridge's ports see every
    frame between the hosts (bound to the bridge itself, it would see only frames for the bridge)."""

    def open_() -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setblocking(False)
        return sock

    return netns_run(path=stack.ns.path, fn=open_)


def _vxlan_frames(sock: socket.socket) -> list[tuple[int, int]]:
    """(VNI, inner ethertype) of every VXLAN frame the socket saw since it was opened."""
    seen = []
    while True:
        try:
            frame = sock.recv(65535)
        except BlockingIOError:
            return seen
        if len(frame) < 14 + 20 + 8 + 8 + 14 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            continue
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != socket.IPPROTO_UDP:
            continue
        udp = 14 + ihl
        if struct.unpack("!H", frame[udp + 2 : udp + 4])[0] != 4789:
            continue
        vxlan = udp + 8
        vni = int.from_bytes(frame[vxlan + 4 : vxlan + 7], "big")
        inner_type = struct.unpack("!H", frame[vxlan + 8 + 12 : vxlan + 8 + 14])[0]
        seen.append((vni, inner_type))


def _echo(lab: dict[str, LabHost], server: str, client: str) -> None:
    hosts = {"a1": "lab1", "b1": "lab2", "c1": "lab3"}
    echoed = tcp_echo_at(
        server=lab[hosts[server]].netns_path(f"ov-{server}"),
        client=lab[hosts[client]].netns_path(f"ov-{client}"),
        address=ADDRESS[server],
    )
    assert echoed


async def test_an_overlay_across_three_hosts_carries_traffic_and_its_breaks_are_found(make_stack) -> None:
    stack = make_stack()
    web = stack.start_web()
    lab = Lab(
        hosts=3, port=web.port, workdir=stack.workdir, manage=stack.host_token, netns_path=stack.ns.path
    )
    stack.cleanups.add(lab.stop)
    lab.start()
    hosts = {name: lab.host(name) for name in VTEP}

    status, body = await web.aapi("POST", "/api/v1/topologies/", {"host": "lab1", "topology": FILE})
    assert status == 201, body
    capture = _capture(stack)
    stack.cleanups.add(capture.close)
    await _apply(web, "/api/v1/topologies/ov/apply/")

    # real TCP between nodes on different hosts, through the tunnels, with the network's VNI on the
    # underlay and no ARP inside them: each host's VXLAN device answers ARP for the remote nodes
    _vxlan_frames(capture)  # what the apply itself sent
    _echo(hosts, "b1", "a1")
    _echo(hosts, "c1", "b1")
    frames = _vxlan_frames(capture)
    assert frames and {vni for vni, _ in frames} == {VNI}
    assert ETH_P_ARP not in {inner for _, inner in frames}
    await _clear(web)

    # a forwarding entry deleted by hand: found on its host, cleared once put back by hand (traffic
    # still flows meanwhile: the flood entries carry unknown unicast to every peer)
    lab1, lab2, lab3 = hosts["lab1"], hosts["lab2"], hosts["lab3"]
    browser = await stack.browser(web)
    told = len(browser.frames)
    entry = [_mac("a1"), "dev", DEVICE, "dst", VTEP["lab1"], "self"]
    assert lab2.run(["bridge", "fdb", "del", *entry]).returncode == 0
    await _found(web, ("lab2", "MISSING_FDB"))
    # browsers hear of it with no one polling: the home row's topology changed (they read the check)
    ov = {"v": 1, "type": "desired.changed", "host": "lab1", "topology": "ov"}
    await browser.until(lambda: ov in browser.frames[told:], timeout=15, what="browsers told of the finding")
    await until(lambda: _status(web, "lab2") == "drifted", timeout=15, what="lab2's share to show drift")
    assert lab2.run(["bridge", "fdb", "add", *entry, "permanent"]).returncode == 0
    await _clear(web)
    await until(lambda: _status(web, "lab2") == "ready", timeout=15, what="lab2's share to be ready again")

    # an entry pointed at the wrong VTEP: found on its host, traffic to that node broken (its frames
    # go to a host that cannot deliver them), and a repair of that host brings it back
    wrong = ["bridge", "fdb", "replace", _mac("c1"), "dev", DEVICE, "dst", VTEP["lab2"], "self", "permanent"]
    assert lab1.run(wrong).returncode == 0
    await _found(web, ("lab1", "WRONG_VTEP"))
    with pytest.raises(OSError):
        tcp_echo_at(
            server=lab3.netns_path("ov-c1"), client=lab1.netns_path("ov-a1"), address=ADDRESS["c1"], timeout=1
        )
    await _apply(web, "/api/v1/topologies/ov/apply/?host=lab1")
    await _clear(web)
    _echo(hosts, "c1", "a1")

    # an MTU the underlay cannot carry; then a missing route to the other VTEPs
    assert lab3.run(["ip", "link", "set", DEVICE, "mtu", "1480"]).returncode == 0
    await _found(web, ("lab3", "MTU_TOO_BIG"))
    await _apply(web, "/api/v1/topologies/ov/apply/?host=lab3")
    await _clear(web)
    route = ["198.18.254.0/24", "dev", "eth0"]
    assert lab3.run(["ip", "route", "del", *route]).returncode == 0
    await _found(web, ("lab3", "NO_UNDERLAY_ROUTE"))
    assert lab3.run(["ip", "route", "add", *route, "src", VTEP["lab3"]]).returncode == 0
    await _clear(web)
    _echo(hosts, "c1", "a1")

    # an agent restart (as its service manager would) keeps the overlay: what it made stays, and the
    # reconcile on its hello finds nothing to change
    welcomed = "the web app knows this host as lab2"
    before = lab2.log.read_text().count(welcomed)
    lab2.restart_agent()
    await until(lambda: lab2.log.read_text().count(welcomed) > before, timeout=20, what="lab2's agent back")
    _echo(hosts, "b1", "c1")
    await _clear(web)
    await until(lambda: _status(web, "lab2") == "ready", timeout=15, what="lab2 ready after reconcile")

    # destroy on every host leaves no VXLAN device anywhere
    await _apply(web, "/api/v1/topologies/ov/destroy/")
    for host in hosts.values():
        assert DEVICE not in host.run(["ip", "-o", "link", "show"]).stdout
