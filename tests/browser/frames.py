"""Builders for the frames the browser socket sends, with objects shaped exactly like netcore's JSON.

`HostState` assembles one host's state (docs/agent-protocol.md, "State") the way an agent would
report a netcore topology: namespaces with `lo`, bridges, veth pairs whose ends name each other,
addresses, routes, neighbours and FDB entries. `demo_host()` is the small topology most tests use;
`endpoints_host()` is the large one (thousands of namespaces on segment bridges).
"""

from __future__ import annotations

import copy
import ipaddress
from collections import defaultdict
from typing import Any

from netcore.docker.objects import (
    DockerContainer,
    DockerDns,
    DockerEndpoint,
    DockerEngine,
    DockerImage,
    DockerNetwork,
    DockerPair,
    DockerPort,
    DockerSubnet,
)
from netcore.services.catalog import Health
from webapp.topology.schema import KINDS  # the state kinds, as netcore's schemas define them
from webapp.topology.state import snapshot_lists


class HostState:
    """One host's state, keyed as the agent keys it (the keys are opaque to the browser)."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._next_index: dict[str, int] = defaultdict(lambda: 1)
        self.namespace("host", kind="host")

    def namespace(self, name: str, *, kind: str = "named") -> dict[str, Any]:
        ns = {"name": name, "inode": 4026531840 + len(self.state["namespaces"]), "kind": kind}
        self.state["namespaces"][name] = ns
        self.link(name, "lo", kind=None, mac="00:00:00:00:00:00", state="unknown", mtu=65536)
        return ns

    def link(
        self,
        netns: str,
        name: str,
        *,
        kind: str | None,
        master: str | None = None,
        up: bool = True,
        state: str = "up",
        mtu: int = 1500,
        mac: str | None = None,
        alias: str | None = None,
        vxlan: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        index = self._next_index[netns]
        self._next_index[netns] += 1
        if mac is None:
            serial = len(self.state["links"]) + 1
            mac = "02:00:" + ":".join(f"{(serial >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))
        link = {
            "netns": netns,
            "index": index,
            "name": name,
            "kind": kind,
            "mtu": mtu,
            "mac": mac,
            "up": up,
            "state": state,
            "master": master,
            "alias": alias,
            "peer": None,
            "vxlan": vxlan,
        }
        self.state["links"][self.link_key(link)] = link
        return link

    @staticmethod
    def link_key(link: dict[str, Any]) -> str:
        return f"{link['netns']}|{link['index']}"

    def veth(
        self,
        netns: str,
        name: str,
        peer_netns: str,
        peer_name: str,
        *,
        master: str | None = None,
        alias: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A veth pair: `name` in `netns` (a port of `master`), `peer_name` in `peer_netns`."""
        a = self.link(netns, name, kind="veth", master=master, alias=alias)
        b = self.link(peer_netns, peer_name, kind="veth")
        a["peer"] = {"netns": peer_netns, "index": b["index"], "name": peer_name}
        b["peer"] = {"netns": netns, "index": a["index"], "name": name}
        return a, b

    def address(self, link: dict[str, Any], cidr: str, *, scope: str = "universe") -> dict[str, Any]:
        iface = ipaddress.ip_interface(cidr)
        address = {
            "netns": link["netns"],
            "ifindex": link["index"],
            "ifname": link["name"],
            "family": 2 if iface.version == 4 else 10,
            "address": str(iface.ip),
            "prefixlen": iface.network.prefixlen,
            "scope": scope,
        }
        self.state["addresses"][f"{link['netns']}|{link['index']}|{cidr}"] = address
        return address

    def route(
        self,
        link: dict[str, Any],
        dst: str,
        *,
        gateway: str | None = None,
        protocol: str = "static",
        scope: str = "universe",
        metric: int | None = None,
    ) -> dict[str, Any]:
        family = 10 if ":" in dst or (gateway and ":" in gateway) else 2
        route = {
            "netns": link["netns"],
            "family": family,
            "dst": dst,
            "gateway": gateway,
            "dev": link["name"],
            "oif": link["index"],
            "protocol": protocol,
            "scope": scope,
            "metric": metric,
            "prefsrc": None,
            "onlink": False,
        }
        self.state["routes"][f"{link['netns']}|{family}|{dst}|{metric}|{link['index']}"] = route
        return route

    def neighbour(
        self, link: dict[str, Any], address: str, mac: str | None, state: str = "reachable"
    ) -> None:
        self.state["neighbours"][f"{link['netns']}|{link['index']}|{address}"] = {
            "netns": link["netns"],
            "ifindex": link["index"],
            "ifname": link["name"],
            "address": address,
            "mac": mac,
            "state": state,
        }

    def fdb(self, link: dict[str, Any], mac: str, *, dst: str | None = None, self_entry: bool = False) -> str:
        """An FDB entry of `link` (a VXLAN device's own entries: self_entry, with a dst); returns its key."""
        key = f"{link['netns']}|{link['index']}|{mac}|{dst}|None|{self_entry}"
        self.state["fdb"][key] = {
            "netns": link["netns"],
            "ifindex": link["index"],
            "ifname": link["name"],
            "master": None if self_entry else link["master"],
            "mac": mac,
            "dst": dst,
            "vlan": None,
            "vni": None,
            "state": "permanent" if self_entry else "reachable",
            "self_entry": self_entry,
        }
        return key

    def endpoint(
        self, node: str, bridge: str, cidr: str, gateway: str, *, kind: str = "named"
    ) -> dict[str, Any]:
        """A container-like namespace with eth0 on `bridge`: address, on-link and default routes."""
        self.namespace(node, kind=kind)
        _, eth0 = self.veth("host", f"{node}-{bridge.split('-')[-1]}"[:15], node, "eth0", master=bridge)
        self.address(eth0, cidr)
        self.route(eth0, str(ipaddress.ip_interface(cidr).network), protocol="kernel", scope="link")
        self.route(eth0, "default", gateway=gateway)
        return eth0

    def snapshot_frame(self, host: str, *, seq: int = 1, online: bool = True) -> dict[str, Any]:
        return {
            "type": "topology.snapshot",
            "host": host,
            "online": online,
            "seq": seq,
            "state": copy.deepcopy(self.state),
        }

    def as_netcore_snapshot(self) -> dict[str, Any]:
        """The kernel objects as a netcore Snapshot.to_dict() (lists), for schema validation."""
        return snapshot_lists(self.state)


def link_id(host: str, link: dict[str, Any]) -> str:
    """The graph node id of a link, as the page builds it."""
    return f"{host}|{link['netns']}|{link['index']}"


def demo_host() -> tuple[HostState, dict[str, dict[str, Any]]]:
    """A bridge network with two endpoints, a VXLAN-backed network, a Docker namespace and a down link.

    Returns the state and the links the tests talk about, by role.
    """
    s = HostState()
    eth0 = s.link("host", "eth0", kind=None)
    front = s.link("host", "demo-front", kind="bridge", alias="switchboard:demo:bridge:network=front")
    back = s.link("host", "demo-back", kind="bridge")
    vx = s.link(
        "host",
        "demo-back.vx",
        kind="vxlan",
        master="demo-back",
        vxlan={
            "vni": 4242,
            "local": "198.18.0.1",
            "group": None,
            "remote": "198.18.0.2",
            "dstport": 4789,
            "learning": True,
            "underlay": eth0["index"],
        },
    )
    s.address(front, "198.18.1.1/24")
    s.address(back, "198.18.2.1/24")
    web1 = s.endpoint("demo-web1", "demo-front", "198.18.1.2/24", "198.18.1.1")
    web2 = s.endpoint("demo-web2", "demo-front", "198.18.1.3/24", "198.18.1.1")
    port1 = s.state["links"][f"host|{web1['peer']['index']}"]
    db = s.endpoint("demo-db", "demo-back", "198.18.2.2/24", "198.18.2.1", kind="docker")
    spare = s.link("host", "spare0", kind="veth", up=False, state="down")
    s.neighbour(web1, "198.18.1.1", "02:aa:00:00:00:01")
    s.fdb(port1, web1["mac"])
    s.fdb(vx, "00:00:00:00:00:00", dst="198.18.0.2", self_entry=True)
    docker_demo(s)
    links = {
        "eth0": eth0,
        "front": front,
        "back": back,
        "vxlan": vx,
        "web1": web1,
        "web2": web2,
        "port1": port1,
        "db": db,
        "spare": spare,
    }
    return s, links


def docker_demo(s: HostState) -> None:
    """A Docker engine with a network, a container on it (in a namespace the demo does not draw) and
    an image: objects of every Docker kind, made by netcore's own dataclasses."""
    pair = DockerPair("com.docker.compose.project", "demo")
    engine = DockerEngine(True, None, "20.10.24", "1.41", "inactive", False, None, "ACCEPT", True, ())
    subnet = DockerSubnet(
        "198.18.9.0/24", "198.18.9.1", "198.18.9.128/25", (DockerPair("spare", "198.18.9.2"),)
    )
    net_id = "d" * 64
    network = DockerNetwork(
        net_id, "demo_default", "bridge", "local", False, False, False, False, "default", (subnet,),
        (DockerPair("com.docker.network.bridge.enable_ip_masquerade", "false"),), (pair,), "br-dddddddddddd",
        None, (), "demo", "2026-11-30T00:00:00Z",
    )  # fmt: skip
    endpoint = DockerEndpoint(
        "demo_default", net_id, "198.18.9.130/24", None, "198.18.9.1", "02:42:c6:12:09:82", ("web",)
    )
    port = DockerPort(
        80, "tcp", "127.0.0.1", 18080, "-A DOCKER -d 127.0.0.1/32 -p tcp -m tcp --dport 18080 -j DNAT"
    )
    container = DockerContainer(
        "c" * 64, "demo-web-1", "switchboard/busybox:latest", "running", "demo_default", "bridge", None,
        "docker:cccccccccccc", 4242, "cccccccccccc", "httpd -f", (endpoint,), (port,),
        DockerDns(("127.0.0.11",), (), ("ndots:0",)), "demo", "web", (pair,), "2026-11-30T00:00:00Z",
    )  # fmt: skip
    image = DockerImage("sha256:" + "e" * 64, ("switchboard/busybox:latest",), 1984168, "1796011363")
    s.state["docker_engine"]["engine"] = engine.to_dict()
    s.state["docker_networks"][network.id] = network.to_dict()
    s.state["docker_containers"][container.id] = container.to_dict()
    s.state["docker_images"][image.id] = image.to_dict()
    for instance, status, rtt in (("web1", "passing", 0.4), ("web2", "critical", None)):
        health = Health(
            "front", "web", instance, status, "TCP connect to 198.18.1.10:80: ok", 1.7e9, 1.7e9, rtt
        )
        where = {"address": "198.18.1.10", "port": 80, "netns": f"demo-{instance}", "bridge": "demo-front"}
        s.state["service_health"][health.key] = {**health.to_dict(), **where, "vip": "198.18.1.100:80/tcp"}
    s.state["traffic"]["demo-web1|demo-web2|tcp|80"] = {
        "client": "demo-web1", "server": "demo-web2", "server_address": "198.18.1.3", "protocol": "tcp",
        "port": 80, "flows": 2, "packets": 40, "bytes": 5400, "seen_in": ["demo-web1", "demo-web2"],
    }  # fmt: skip


def endpoints_host(count: int, *, per_bridge: int = 125) -> HostState:
    """`count` single-veth namespaces spread over bridges of `per_bridge` ports, like netcore segments."""
    s = HostState()
    for segment in range(-(-count // per_bridge)):
        s.link("host", f"big-net.{segment}", kind="bridge")
    for i in range(count):
        bridge = f"big-net.{i // per_bridge}"
        node = f"big-n{i}"
        s.namespace(node)
        _, eth0 = s.veth("host", f"big-n{i}-p", node, "eth0", master=bridge)
        s.address(eth0, f"198.18.{16 + i // 250}.{i % 250 + 2}/20")
    return s


def networks_host(count: int, *, networks: int = 2) -> HostState:
    """`count` endpoints over `networks` bridges of the host namespace, and a router on all of them."""
    s = HostState()
    s.link("host", "eth0", kind=None)
    for n in range(networks):
        bridge = s.link("host", f"net{n}", kind="bridge", alias=f"switchboard:lab:bridge:network=net{n}")
        s.address(bridge, f"198.18.{n}.1/24")
    for i in range(count):
        n = i % networks
        s.endpoint(f"lab-ep{i}", f"net{n}", f"198.18.{n}.{i // networks + 2}/24", f"198.18.{n}.1")
    s.namespace("lab-router")
    for n in range(networks):
        _, eth = s.veth("host", f"lab-router-{n}", "lab-router", f"eth{n}", master=f"net{n}")
        s.address(eth, f"198.18.{n}.254/24")
    return s


ZERO_MAC = "00:00:00:00:00:00"


def vtep(index: int) -> str:
    """Lab host `index`'s underlay address, its VTEP (lab/underlay.py: 198.18.254.(10+N))."""
    return f"198.18.254.{10 + index}"


def overlay_mac(index: int) -> str:
    """The MAC of lab host `index`'s endpoint on the spanning network."""
    return f"02:42:c6:12:64:{index:02x}"


def overlay_endpoint(host: int, k: int) -> tuple[str, str, str]:
    """Lab host `host`'s k-th endpoint on the spanning network: (node suffix, address, MAC). The first
    (k = 0) is n<host>, 198.18.100.<host + 1>, overlay_mac(host); further ones have their own /24s."""
    if k == 0:
        return f"n{host}", f"198.18.100.{host + 1}", overlay_mac(host)
    return (
        f"n{host}x{k}",
        f"198.18.{100 + 8 * host + k // 250}.{k % 250 + 2}",
        f"02:42:c6:{host:02x}:{k >> 8:02x}:{k & 255:02x}",
    )


def overlay_hosts(
    count: int = 3, *, endpoints: int = 1, topology: str = "ov", network: str = "mesh", vni: int = 5000
) -> list[tuple[HostState, dict[str, dict[str, Any]]]]:
    """Hosts lab1..lab<count> of a vxlan network spanning them, as netcore builds each host's share.

    On each host: the underlay `eth0` with the host's VTEP address, the network's bridge
    `<topology>-<network>` with its VXLAN device `<topology>-<network>.vx` (VNI `vni`, local = the
    VTEP, learning off) and `endpoints` endpoints `<topology>-<suffix>` (overlay_endpoint). Its FDB
    holds, for every other host, the all-zeros flood entry and one entry for each of that host's
    endpoint MACs, all with dst = that host's VTEP, and a permanent neighbour entry address -> MAC.
    Returns [(state, links by role: eth0, bridge, vxlan, endpoint (the first), port)] in host order.
    """
    bridge_name = f"{topology}-{network}"
    hosts = []
    for i in range(1, count + 1):
        s = HostState()
        eth0 = s.link("host", "eth0", kind="veth")
        s.address(eth0, f"{vtep(i)}/24")
        s.route(eth0, "198.18.254.0/24", protocol="kernel", scope="link")
        bridge = s.link(
            "host", bridge_name, kind="bridge", alias=f"switchboard:{topology}:bridge:network={network}"
        )
        vx = s.link(
            "host",
            f"{bridge_name}.vx",
            kind="vxlan",
            master=bridge_name,
            mtu=1450,
            alias=f"switchboard:{topology}:vxlan:network={network}",
            vxlan={
                "vni": vni,
                "local": vtep(i),
                "group": None,
                "remote": None,
                "dstport": 4789,
                "learning": False,
                "underlay": eth0["index"],
            },
        )
        first = None
        for k in range(endpoints):
            suffix, address, mac = overlay_endpoint(i, k)
            endpoint = s.endpoint(f"{topology}-{suffix}", bridge_name, f"{address}/24", "198.18.100.1")
            endpoint["mac"] = mac
            first = first or endpoint
        assert first is not None, "at least one endpoint"
        port = s.state["links"][f"host|{first['peer']['index']}"]
        hosts.append((s, {"eth0": eth0, "bridge": bridge, "vxlan": vx, "endpoint": first, "port": port}))
    for i, (s, links) in enumerate(hosts, start=1):
        for j in range(1, count + 1):
            if j == i:
                continue
            s.fdb(links["vxlan"], ZERO_MAC, dst=vtep(j), self_entry=True)
            for k in range(endpoints):
                _, address, mac = overlay_endpoint(j, k)
                s.fdb(links["vxlan"], mac, dst=vtep(j), self_entry=True)
                s.neighbour(links["vxlan"], address, mac, state="permanent")
    return hosts
