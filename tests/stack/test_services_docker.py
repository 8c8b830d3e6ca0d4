"""Services from Docker labels through the whole stack: the real engine and agent (in the machine's
namespace, beside dockerd), daphne, real dnsmasq on the Docker network's gateway and a VIP with real
nftables on its bridge. Containers labelled switchboard.service appear as the service's instances,
answer under its name and behind its VIP, and leave with their containers; the service goes with the
last one."""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter

import pytest
from docker.types import IPAMConfig, IPAMPool

from netcore.errors import Unavailable
from netcore.services.dns import dns_query
from tests.conftest import MACHINE, RUN, machine_nft_tables
from tests.stack.harness import Web, until
from tests.stack.scenarios import connected

pytestmark = pytest.mark.asyncio

IMAGE = "switchboard/busybox:latest"
NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
SUBNET, GATEWAY, POOL = "198.19.236.0/24", "198.19.236.1", "198.19.236.128/25"
VIP = "198.19.236.100"  # outside the pool Docker's IPAM hands out
LABELS = {"switchboard.service": "web", "switchboard.port": "80"}


def instances(web: Web) -> dict[str, str] | None:
    """The service's instances by name → address (None while it does not exist)."""
    status, body = web.api("GET", "/api/v1/services/web/instances/")
    return {i["name"]: i["address"] for i in body} if status == 200 else None


def stored(web: Web, network: str) -> bool:
    """Whether the web app stored the host's state with that Docker network (what a VIP is checked on)."""
    status, hosts = web.api("GET", "/api/v1/docker/?host=alpha")
    return status == 200 and any(n["name"] == network for n in hosts[0]["networks"])


def resolve(name: str) -> list[str] | None:
    """The A records the network's DNS answers, asked from the machine's namespace (None: no answer)."""
    try:
        answer = dns_query(server=ipaddress.ip_address(GATEWAY), name=name, netns=MACHINE.path, timeout=1)
    except Unavailable:  # not started yet, or restarting for a new SRV set
        return None
    return sorted(answer.records)


def ask_vip(client) -> Counter[str]:
    """Who answers six connections to the VIP from container `client`."""
    script = f"for i in 1 2 3 4 5 6; do nc -w 2 {VIP} 80 </dev/null; done"
    return Counter(client.exec_run(["sh", "-c", script]).output.decode().split())


async def test_labelled_containers_are_served_by_name_and_vip_and_leave_with_their_containers(
    make_stack, docker_engine
):
    stack = make_stack()
    stack.ns = MACHINE  # beside dockerd: its bridges and firewall are in the machine's namespace
    web, agent, _ = await connected(stack)
    net = f"sb{RUN}svc"
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=SUBNET, gateway=GATEWAY, iprange=POOL)])
    docker_engine.networks.create(net, driver="bridge", ipam=ipam, options=NO_MASQUERADE)
    names = [f"sb{RUN}w1", f"sb{RUN}w2"]
    servers = {
        name: docker_engine.containers.run(
            IMAGE,
            ["nc", "-ll", "-p", "80", "-e", "echo", name],
            name=name,
            network=net,
            labels=LABELS,
            detach=True,
        )
        for name in names
    }  # the docker_engine fixture removes every container and network named with RUN, also on failure
    found = await until(lambda: (i := instances(web)) and len(i) == 2 and i, timeout=15, what="two instances")
    assert set(found) == set(names)
    addresses = sorted(found.values())
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(POOL) for a in addresses), found
    status, service = await web.aapi("GET", "/api/v1/services/web/")
    assert (service["source"], service["topology"], service["network"]) == ("docker", "", net), service
    name = f"web.{net}.sb.internal"
    await until(lambda: resolve(name) == addresses, timeout=10, what=f"{name} answering both")

    await until(lambda: stored(web, net), what="the network in the stored state")
    status, body = await web.aapi("PATCH", "/api/v1/services/web/", {"vip": VIP})
    assert status == 200, body
    client = docker_engine.containers.run(
        IMAGE, ["sleep", "600"], name=f"sb{RUN}c", network=net, dns=[GATEWAY], detach=True
    )  # Docker's own DNS in it answers container names and forwards the rest to the gateway's
    looked_up = client.exec_run(["nslookup", name]).output.decode()
    assert all(a in looked_up for a in addresses), looked_up
    hits = await until(
        lambda: (c := ask_vip(client)) and sum(c.values()) == 6 and c, timeout=10, what="the VIP"
    )
    assert hits == {names[0]: 3, names[1]: 3}, hits

    servers[names[1]].stop(timeout=1)
    await until(lambda: instances(web) == {names[0]: found[names[0]]}, timeout=10, what=f"{names[1]} gone")
    await until(lambda: resolve(name) == [found[names[0]]], timeout=5, what=f"{names[1]} out of DNS")
    assert await asyncio.to_thread(ask_vip, client) == {names[0]: 6}

    servers[names[1]].remove()
    servers[names[0]].remove(force=True)
    await until(
        lambda: web.api("GET", "/api/v1/services/web/")[0] == 404, timeout=10, what="the service gone"
    )
    await until(lambda: resolve(name) is None, timeout=5, what="the network's DNS to stop")
    agent.stop()
    assert ("inet", "switchboard-service-vips") not in machine_nft_tables()
