"""netcore.docker against the real engine: every network mode tied to the kernel objects under it,
real traffic between containers, requests the engine refuses, and Switchboard's bridges beside
Docker's firewall. The tests run in the machine's namespace, where dockerd puts its bridges."""

from __future__ import annotations

import subprocess
import time

import pytest

from netcore.docker import firewall
from netcore.docker.manage import docker_request
from netcore.docker.read import DockerReader
from netcore.errors import AlreadyExists, Conflict, InvalidSpec, NotFound
from netcore.snapshot import snapshot
from tests.conftest import RUN, can_connect, docker_clean

IMAGE = "switchboard/busybox:latest"
NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}


def _network(client, name: str, subnet: str) -> dict:
    body = {"name": name, "subnets": [{"subnet": subnet}], "options": NO_MASQUERADE}
    return docker_request(client, action="network.create", body=body)


def _run(client, name: str, **body) -> dict:
    return docker_request(
        client, action="container.run", body={"image": IMAGE, "name": name, "command": "sleep 600", **body}
    )


def _names(client) -> tuple[set[str], set[str]]:
    containers = {c.name for c in client.containers.list(all=True) if RUN in c.name}
    networks = {n.name for n in client.networks.list() if RUN in n.name}
    return containers, networks


def test_every_mode_is_tied_to_its_namespace_veth_and_bridge(docker_engine):
    net = f"sb{RUN}m"
    _network(docker_engine, net, "198.19.210.0/24")
    web = _run(docker_engine, f"sb{RUN}web", network=net, ipv4="198.19.210.10", aliases=["www"])
    default = _run(docker_engine, f"sb{RUN}def")
    host = _run(docker_engine, f"sb{RUN}host", mode="host")
    none = _run(docker_engine, f"sb{RUN}none", mode="none")
    side = _run(docker_engine, f"sb{RUN}side", mode="container", container=f"sb{RUN}web")

    state = DockerReader(docker_engine).read()
    by_name = {c.name: c for c in state.containers.values()}
    network = next(n for n in state.networks.values() if n.name == net)
    assert network.bridge == f"br-{network.id[:12]}" and network.subnets[0].subnet == "198.19.210.0/24"

    c = by_name[f"sb{RUN}web"]
    assert c.id == web["container"] and c.mode == "bridge" and c.netns and c.netns.startswith("docker:")
    (endpoint,) = c.endpoints
    assert endpoint.ipv4 == "198.19.210.10/24" and "www" in endpoint.aliases
    kernel = snapshot(namespaces=["host", c.netns], processes=False)
    inside = {link.name: link for link in kernel.links if link.netns == c.netns}
    assert set(inside) == {"lo", "eth0"} and inside["eth0"].mac == endpoint.mac
    peer = inside["eth0"].peer
    assert peer is not None and peer.netns == "host"
    veth = next(link for link in kernel.links if link.netns == "host" and link.index == peer.index)
    assert veth.master == network.bridge  # container → eth0 ⇄ vethXXXX → br-xxxx

    d = by_name[f"sb{RUN}def"]
    assert d.id == default["container"] and d.network_mode == "default" and d.endpoints[0].network == "bridge"
    assert by_name[f"sb{RUN}host"].id == host["container"] and by_name[f"sb{RUN}host"].netns == "host"
    n = by_name[f"sb{RUN}none"]
    assert n.id == none["container"] and n.mode == "none" and n.endpoints == ()
    assert {link.name for link in snapshot(namespaces=[n.netns], processes=False).links} == {"lo"}
    s = by_name[f"sb{RUN}side"]
    assert s.id == side["container"] and s.mode == "container" and s.shares == c.id and s.netns == c.netns
    assert c.dns is not None and c.dns.nameservers == ("127.0.0.11",)  # Docker's embedded DNS


def test_containers_on_a_user_defined_bridge_talk_and_publish_ports(docker_engine):
    net = f"sb{RUN}t"
    _network(docker_engine, net, "198.19.211.0/24")
    published = [{"container_port": 8080, "host_port": 18081, "host_ip": "127.0.0.1"}]
    command = "nc -ll -p 8080 -e echo hello"
    _run(docker_engine, f"sb{RUN}srv", network=net, ipv4="198.19.211.20", command=command, ports=published)
    _run(docker_engine, f"sb{RUN}cli", network=net)
    client = docker_engine.containers.get(f"sb{RUN}cli")

    ping = client.exec_run(["ping", "-c", "1", "-W", "3", "198.19.211.20"])
    assert ping.exit_code == 0, ping.output
    for _ in range(50):  # the server's nc starts listening a moment after the container starts
        got = client.exec_run(["sh", "-c", f"nc sb{RUN}srv 8080 </dev/null"])  # by name: embedded DNS
        if got.output.strip() == b"hello":
            break
        time.sleep(0.1)
    assert got.output.strip() == b"hello", got

    state = DockerReader(docker_engine).read()
    srv = next(c for c in state.containers.values() if c.name == f"sb{RUN}srv")
    (port,) = srv.ports
    assert (port.container_port, port.host_ip, port.host_port) == (8080, "127.0.0.1", 18081)
    assert port.nat and "--to-destination 198.19.211.20:8080" in port.nat


def test_bad_requests_are_refused_by_name_and_change_nothing(docker_engine):
    net = f"sb{RUN}b"
    _network(docker_engine, net, "198.19.212.0/24")
    before = _names(docker_engine)
    refusals = [
        (
            Conflict,
            "overlaps",
            "network.create",
            {"name": f"sb{RUN}b2", "subnets": [{"subnet": "198.19.212.128/25"}]},
        ),
        (
            AlreadyExists,
            "already exists",
            "network.create",
            {"name": net, "subnets": [{"subnet": "198.19.213.0/24"}]},
        ),
        (
            InvalidSpec,
            "subnets[0].gateway",
            "network.create",
            {"name": f"sb{RUN}b3", "subnets": [{"subnet": "198.19.214.0/24", "gateway": "198.19.215.1"}]},
        ),
        (NotFound, "image", "container.run", {"image": "nothing-here:1", "name": f"sb{RUN}x1"}),
        (
            NotFound,
            "nothing-here",
            "container.run",
            {"image": IMAGE, "name": f"sb{RUN}x2", "network": "nothing-here"},
        ),
        (
            InvalidSpec,
            "198.19.99.5",
            "container.run",
            {"image": IMAGE, "name": f"sb{RUN}x3", "network": net, "ipv4": "198.19.99.5"},
        ),
        (InvalidSpec, "mode", "container.run", {"image": IMAGE, "mode": "bridged"}),
        (
            InvalidSpec,
            "ports",
            "container.run",
            {"image": IMAGE, "mode": "host", "ports": [{"container_port": 80}]},
        ),
    ]
    for error, words, action, body in refusals:
        with pytest.raises(error) as caught:
            docker_request(docker_engine, action=action, body=body)
        assert words in str(caught.value), (action, body, caught.value)
        assert _names(docker_engine) == before, (action, body)


def test_an_address_taken_fails_the_run_and_leaves_no_container(docker_engine):
    net = f"sb{RUN}a"
    _network(docker_engine, net, "198.19.216.0/24")
    _run(docker_engine, f"sb{RUN}one", network=net, ipv4="198.19.216.5")
    with pytest.raises(Conflict, match="Address already in use"):
        _run(docker_engine, f"sb{RUN}two", network=net, ipv4="198.19.216.5")
    assert _names(docker_engine)[0] == {f"sb{RUN}one"}  # the created container went again


def _talks(src: str, dst: str, address: str) -> bool:
    return can_connect(server_ns=dst, client_ns=src, address=address)


def test_a_switchboard_bridge_carries_traffic_once_docker_user_accepts_it(docker_engine):
    """dockerd's FORWARD DROP with bridge-nf-call-iptables drops frames on any other bridge of its
    namespace: checked here, then undone by the DOCKER-USER rule, which goes again with the bridge."""
    assert firewall.forward_policy() == "DROP" and firewall.bridge_nf_call_iptables()
    bridge, ends = f"sb{RUN}br", [f"sb{RUN}e1", f"sb{RUN}e2"]

    def ip(*args: str, netns: str | None = None) -> None:
        subprocess.run(["ip", *(["-n", netns] if netns else []), *args], check=True)

    try:
        ip("link", "add", bridge, "type", "bridge")
        for i, end in enumerate(ends, start=1):
            ip("netns", "add", end)
            ip("link", "add", f"sb{RUN}v{i}", "type", "veth", "peer", "name", "eth0", "netns", end)
            ip("link", "set", f"sb{RUN}v{i}", "master", bridge, "up")
            ip("addr", "add", f"198.18.77.{i}/24", "dev", "eth0", netns=end)
            ip("link", "set", "eth0", "up", netns=end)
        ip("link", "set", bridge, "up")
        assert not _talks(ends[0], ends[1], "198.18.77.2"), (
            "frames crossed the bridge with dockerd's FORWARD policy DROP"
        )
        assert firewall.bridges_accept({bridge}) is True
        assert bridge in firewall.accepted_bridges()
        assert _talks(ends[0], ends[1], "198.18.77.2")
        assert firewall.bridges_accept(set()) is True
        assert bridge not in firewall.accepted_bridges()
        assert not _talks(ends[0], ends[1], "198.18.77.2")
    finally:
        firewall.bridges_accept(set())
        for name in (bridge, f"sb{RUN}v1", f"sb{RUN}v2"):  # not left to the namespaces' slow teardown
            subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
        for end in ends:
            subprocess.run(["ip", "netns", "del", end], check=False, capture_output=True)


@pytest.fixture
def swarm(docker_engine):
    """This engine as a one-node Swarm manager on 127.0.0.1 (its pools inside 198.18.0.0/15), left
    again afterwards with the gateway bridge it made."""
    had_gateway = any(n.name == "docker_gwbridge" for n in docker_engine.networks.list())
    docker_engine.swarm.init(
        advertise_addr="127.0.0.1", default_addr_pool=["198.19.128.0/18"], subnet_size=24
    )
    try:
        yield docker_engine
    finally:
        docker_clean(docker_engine)  # the test's containers and networks first: the swarm goes after them
        docker_engine.swarm.leave(force=True)
        if not had_gateway:
            for network in docker_engine.networks.list(names=["docker_gwbridge"]):
                network.remove()


def test_an_attachable_overlay_carries_traffic_and_shows_its_vxlan(swarm):
    net = f"sb{RUN}ov"
    body = {"name": net, "driver": "overlay", "attachable": True, "subnets": [{"subnet": "198.19.200.0/24"}]}
    docker_request(swarm, action="network.create", body=body)
    _run(swarm, f"sb{RUN}o1", mode="overlay", network=net, ipv4="198.19.200.11")
    _run(swarm, f"sb{RUN}o2", mode="overlay", network=net, ipv4="198.19.200.12")
    ping = swarm.containers.get(f"sb{RUN}o1").exec_run(["ping", "-c", "1", "-W", "3", f"sb{RUN}o2"])
    assert ping.exit_code == 0, ping.output

    state = DockerReader(swarm).read()
    assert state.engine.swarm == "active" and state.engine.swarm_manager
    network = next(n for n in state.networks.values() if n.name == net)
    assert network.driver == "overlay" and network.scope == "swarm" and network.attachable
    assert [p.value for p in network.peers] == ["127.0.0.1"]
    assert network.netns and network.netns.startswith("docker:1-")  # the overlay's own namespace
    links = snapshot(namespaces=[network.netns], processes=False).links
    vxlan = next(link for link in links if link.kind == "vxlan")
    bridge = next(link for link in links if link.kind == "bridge")
    assert vxlan.master == bridge.name and vxlan.vxlan is not None
    o1 = next(c for c in state.containers.values() if c.name == f"sb{RUN}o1")
    assert o1.mode == "overlay" and any(
        e.network == net and e.ipv4 == "198.19.200.11/24" for e in o1.endpoints
    )


def test_a_topology_applied_on_a_docker_host_carries_traffic_at_once(docker_engine, topo):
    """netcore's apply accepts the bridges it makes in DOCKER-USER before it builds the nodes (no
    agent needed), and destroy takes the rules away with the bridges."""
    from netcore.topology import converge, spec

    text = f"""\
name: {topo}
networks:
  lan: {{subnet: 198.18.78.0/24}}
nodes:
  a: {{networks: {{lan: {{address: 198.18.78.10}}}}}}
  b: {{networks: {{lan: {{address: 198.18.78.20}}}}}}
"""
    topology = spec.loads(text)
    bridge = f"{topo}-lan"
    try:
        converge.apply(topology)
        assert bridge in firewall.accepted_bridges()
        assert _talks(f"{topo}-a", f"{topo}-b", "198.18.78.20")
    finally:
        converge.destroy(topology)
    assert bridge not in firewall.accepted_bridges()


def test_a_dual_stack_network_gives_containers_ipv6_addresses_that_carry_traffic(docker_engine):
    net = f"sb{RUN}v6"
    body = {
        "name": net,
        "ipv6": True,
        "subnets": [{"subnet": "198.19.217.0/24"}, {"subnet": "fd00:5b:1::/64", "gateway": "fd00:5b:1::1"}],
        "options": NO_MASQUERADE,
    }
    docker_request(docker_engine, action="network.create", body=body)
    _run(docker_engine, f"sb{RUN}6a", network=net)
    _run(docker_engine, f"sb{RUN}6b", network=net)
    state = DockerReader(docker_engine).read()
    network = next(n for n in state.networks.values() if n.name == net)
    assert network.ipv6 and [s.subnet for s in network.subnets] == ["198.19.217.0/24", "fd00:5b:1::/64"]
    b = next(c for c in state.containers.values() if c.name == f"sb{RUN}6b")
    (endpoint,) = b.endpoints
    assert endpoint.ipv6 and endpoint.ipv6.startswith("fd00:5b:1::") and endpoint.ipv6.endswith("/64")
    a = docker_engine.containers.get(f"sb{RUN}6a")
    for _ in range(40):  # the addresses pass duplicate address detection first
        ping = a.exec_run(["ping", "-c", "1", "-W", "1", endpoint.ipv6.split("/")[0]])
        if ping.exit_code == 0:
            break
        time.sleep(0.1)
    assert ping.exit_code == 0, ping.output


def test_the_cli_says_which_veth_and_bridge_belong_to_which_container(docker_engine):
    """`python -m netcore docker`: what `docker network inspect` does not say (moby#17064)."""
    import json
    import sys

    _run(docker_engine, f"sb{RUN}cli1")
    _run(docker_engine, f"sb{RUN}cli2", mode="container", container=f"sb{RUN}cli1")
    done = subprocess.run(
        [sys.executable, "-m", "netcore", "docker", "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    by_name = {c["name"]: c for c in json.loads(done.stdout)["containers"]}
    (endpoint,) = by_name[f"sb{RUN}cli1"]["endpoints"]
    assert endpoint["interface"] == "eth0" and endpoint["bridge"] == "docker0"
    veth = json.loads(subprocess.run(["ip", "-j", "link", "show", endpoint["host_veth"]], capture_output=True,
                                     text=True, check=True).stdout)[0]  # fmt: skip
    assert veth["master"] == "docker0" and veth["address"] != endpoint["mac"]
    assert by_name[f"sb{RUN}cli2"]["netns"] == by_name[f"sb{RUN}cli1"]["netns"]
    table = subprocess.run([sys.executable, "-m", "netcore", "docker"], capture_output=True, text=True).stdout
    assert f"container:sb{RUN}cli1" in table and endpoint["host_veth"] in table
