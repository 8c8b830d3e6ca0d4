"""Docker through the whole stack: the real engine, the real agent (in the machine's namespace, where
dockerd puts its bridges and firewall, with the machine's /run), daphne and a browser socket.

Containers started and killed by hand appear and go live; the API's requests run on the engine as
operations; bad requests are refused by name and change nothing; a Switchboard network and a Docker
network carry traffic side by side with dockerd's FORWARD policy DROP."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import MACHINE, RUN, can_connect
from tests.stack.harness import until
from tests.stack.scenarios import connected, finished, run_operation, topology_text

pytestmark = pytest.mark.asyncio

IMAGE = "switchboard/busybox:latest"
NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}


def _engine(web) -> dict | None:
    status, hosts = web.api("GET", "/api/v1/docker/?host=alpha")
    assert status == 200, hosts
    return hosts[0]["engine"]


async def _machine_stack(make_stack):
    """A stack whose agent and daphne run beside dockerd (daphne still only on 127.0.0.1), once the
    web app has stored the engine the agent reported (what the API checks requests against)."""
    stack = make_stack()
    stack.ns = MACHINE
    web, agent, browser = await connected(stack)
    await until(lambda: _engine(web), what="the engine stored")
    return web, agent, browser


def _containers(browser, host: str = "alpha") -> dict[str, dict]:
    return {c["name"]: c for c in browser.states.get(host, {}).get("docker_containers", {}).values()}


def _networks(browser, host: str = "alpha") -> dict[str, dict]:
    return {n["name"]: n for n in browser.states.get(host, {}).get("docker_networks", {}).values()}


def _plumbing(web, name: str) -> dict[str, dict] | None:
    """The container's endpoints by network as the API shows them, once each names its host veth."""
    status, hosts = web.api("GET", "/api/v1/docker/?host=alpha")
    assert status == 200, hosts
    (container,) = [c for c in hosts[0]["containers"] if c["name"] == name]
    ends = {e["network"]: e for e in container["endpoints"]}
    return ends if all(e["host_veth"] for e in ends.values()) else None


async def _docker_op(web, method: str, path: str, body: dict | None = None) -> dict:
    status, answer = await web.aapi(method, path, body)
    assert status == 202, answer
    return await finished(web, answer["operation"])


async def test_containers_run_and_killed_by_hand_come_and_go_live(make_stack, docker_engine):
    web, agent, browser = await _machine_stack(make_stack)
    await browser.until(lambda: browser.states["alpha"]["docker_engine"].get("engine"), what="the engine")
    engine = browser.states["alpha"]["docker_engine"]["engine"]
    assert engine["available"] and engine["forward_policy"] == "DROP", engine

    name = f"sb{RUN}hand"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, IMAGE, "sleep", "600"], check=True, capture_output=True
    )

    def running() -> dict | None:
        c = _containers(browser).get(name)
        return c if c and c["netns"] in browser.states["alpha"]["namespaces"] else None

    c = await browser.until(running, what=f"container {name} with its namespace")
    assert c["mode"] == "bridge" and c["network_mode"] == "default" and c["state"] == "running"
    eth0 = await browser.until(lambda: browser.links("alpha", c["netns"]).get("eth0"), what="its eth0")
    assert eth0["mac"] == c["endpoints"][0]["mac"]
    veth = browser.links("alpha")[eth0["peer"]["name"]]
    assert veth["master"] == _networks(browser)["bridge"]["bridge"] == "docker0"

    subprocess.run(["docker", "kill", name], check=True, capture_output=True)
    await browser.until(lambda: _containers(browser)[name]["state"] == "exited", what=f"{name} exited")
    await browser.until(
        lambda: c["netns"] not in browser.states["alpha"]["namespaces"], what="its namespace gone"
    )
    subprocess.run(["docker", "rm", name], check=True, capture_output=True)
    await browser.until(lambda: name not in _containers(browser), what=f"{name} removed")
    assert agent.alive and web.proc.alive


async def test_the_api_manages_networks_and_containers_through_the_engine(make_stack, docker_engine):
    web, agent, browser = await _machine_stack(make_stack)
    net, other = f"sb{RUN}api", f"sb{RUN}api2"
    pool = {
        "subnet": "198.19.230.0/24",
        "gateway": "198.19.230.1",
        "ip_range": "198.19.230.128/25",
        "aux_addresses": {"spare": "198.19.230.2"},
    }
    body = {
        "host": "alpha",
        "name": net,
        "subnets": [pool],
        "labels": {"team": "net"},
        "options": NO_MASQUERADE,
    }
    op = await _docker_op(web, "POST", "/api/v1/docker/networks/", body)
    assert op["status"] == "succeeded" and op["kind"] == "docker", op
    body = {
        "host": "alpha",
        "name": other,
        "subnets": [{"subnet": "198.19.231.0/24"}],
        "options": NO_MASQUERADE,
    }
    assert (await _docker_op(web, "POST", "/api/v1/docker/networks/", body))["status"] == "succeeded"
    network = await browser.until(lambda: _networks(browser).get(net), what=f"network {net}")
    assert network["subnets"][0] == {**pool, "aux_addresses": [{"name": "spare", "value": "198.19.230.2"}]}

    run = {"host": "alpha", "image": IMAGE, "name": f"sb{RUN}w", "network": net, "ipv4": "198.19.230.10"}
    run |= {"aliases": ["web"], "command": "sleep 600"}
    assert (await _docker_op(web, "POST", "/api/v1/docker/containers/", run))["status"] == "succeeded"
    await browser.until(
        lambda: (c := _containers(browser).get(f"sb{RUN}w")) and c["netns"], what="the container"
    )
    connect = {"container": f"sb{RUN}w", "ipv4": "198.19.231.50"}
    assert (await _docker_op(web, "POST", f"/api/v1/docker/networks/alpha/{other}/connect/", connect))[
        "status"
    ] == "succeeded"
    await browser.until(
        lambda: len(_containers(browser)[f"sb{RUN}w"]["endpoints"]) == 2, what="the second network"
    )

    ends = await until(
        lambda: _plumbing(web, f"sb{RUN}w"), timeout=10, what="the endpoints tied to their veths"
    )
    assert ends[net]["ipv4"] == "198.19.230.10/24" and ends[net]["interface"].startswith("eth")
    assert ends[net]["bridge"] == network["bridge"] and ends[other]["ipv4"] == "198.19.231.50/24"

    disconnect = {"container": f"sb{RUN}w"}
    assert (await _docker_op(web, "POST", f"/api/v1/docker/networks/alpha/{other}/disconnect/", disconnect))[
        "status"
    ] == "succeeded"
    assert (await _docker_op(web, "POST", f"/api/v1/docker/containers/alpha/sb{RUN}w/stop/"))[
        "status"
    ] == "succeeded"
    await browser.until(lambda: _containers(browser)[f"sb{RUN}w"]["state"] == "exited", what="stopped")
    assert (await _docker_op(web, "DELETE", f"/api/v1/docker/containers/alpha/sb{RUN}w/"))[
        "status"
    ] == "succeeded"
    for name in (net, other):
        assert (await _docker_op(web, "DELETE", f"/api/v1/docker/networks/alpha/{name}/"))[
            "status"
        ] == "succeeded"
    await browser.until(lambda: not {net, other} & set(_networks(browser)), what="the networks gone")
    assert f"sb{RUN}w" not in _containers(browser)


async def test_bad_requests_are_refused_by_field_and_queue_nothing(make_stack, docker_engine):
    web, agent, browser = await _machine_stack(make_stack)
    net = f"sb{RUN}bad"
    body = {
        "host": "alpha",
        "name": net,
        "subnets": [{"subnet": "198.19.232.0/24"}],
        "options": NO_MASQUERADE,
    }
    assert (await _docker_op(web, "POST", "/api/v1/docker/networks/", body))["status"] == "succeeded"
    await browser.until(lambda: net in _networks(browser), what=f"network {net}")
    _, before = await web.aapi("GET", "/api/v1/operations/?host=alpha")
    nets, runs = "/api/v1/docker/networks/", "/api/v1/docker/containers/"

    def pool(subnet: str, **more: str) -> list[dict]:
        return [{"subnet": subnet, **more}]

    refusals = [
        ("POST", nets, {"name": f"sb{RUN}o", "subnets": pool("198.19.232.64/26")}, 409, "subnets[0].subnet"),
        ("POST", nets, {"name": net, "subnets": pool("198.19.233.0/24")}, 409, "name"),
        ("POST", nets, {"name": f"sb{RUN}g", "subnets": pool("198.19.234.0/24", gateway="198.19.1.1")}, 400,
         "subnets[0].gateway"),
        ("POST", nets, {"name": f"sb{RUN}ov", "driver": "overlay"}, 409, "driver"),  # not a Swarm manager
        ("POST", runs, {"image": IMAGE, "network": f"sb{RUN}none"}, 404, "network"),
        ("POST", runs, {"image": IMAGE, "network": net, "ipv4": "198.19.9.9"}, 400, "ipv4"),
        ("POST", runs, {"image": "no-such-image:1"}, 404, "image"),
        ("POST", runs, {"image": IMAGE, "mode": "host", "network": net}, 400, "network"),
        ("POST", runs, {"image": IMAGE, "host": "nohost"}, 404, "host"),
        ("DELETE", "/api/v1/docker/networks/alpha/bridge/", None, 409, "network"),
        ("POST", f"/api/v1/docker/containers/alpha/sb{RUN}ghost/stop/", None, 404, "container"),
    ]  # fmt: skip
    for method, path, body, code, field in refusals:
        if body is not None:
            body = {"host": "alpha", **body}
        status, answer = await web.aapi(method, path, body)
        assert status == code and field in answer.get("fields", {}), (path, body, status, answer)
    _, after = await web.aapi("GET", "/api/v1/operations/?host=alpha")
    assert after["count"] == before["count"], "a refused request queued an operation"
    names = {n.name for n in docker_engine.networks.list()} | {
        c.name for c in docker_engine.containers.list(all=True)
    }
    assert {n for n in names if RUN in n} == {net}


async def test_a_switchboard_network_and_a_docker_network_both_carry_traffic(make_stack, docker_engine, topo):
    """dockerd's FORWARD DROP would drop frames on Switchboard's bridge: the agent accepts it in
    DOCKER-USER as it appears (and stops when it goes); Docker's own network works beside it."""
    web, agent, browser = await _machine_stack(make_stack)
    text = topology_text(topo)
    try:
        op = await run_operation(web, "alpha", "apply", text)
        assert op["status"] == "succeeded", op
        bridge = f"{topo}-lan"
        await browser.until(
            lambda: bridge in browser.states["alpha"]["docker_engine"]["engine"]["accepted_bridges"],
            what=f"DOCKER-USER accepting {bridge}",
        )
        assert can_connect(server_ns=f"{topo}-b", client_ns=f"{topo}-a", address="198.18.40.20")

        net = f"sb{RUN}side"
        body = {
            "host": "alpha",
            "name": net,
            "subnets": [{"subnet": "198.19.235.0/24"}],
            "options": NO_MASQUERADE,
        }
        assert (await _docker_op(web, "POST", "/api/v1/docker/networks/", body))["status"] == "succeeded"
        for name, address in ((f"sb{RUN}s1", "198.19.235.11"), (f"sb{RUN}s2", "198.19.235.12")):
            run = {
                "host": "alpha",
                "image": IMAGE,
                "name": name,
                "network": net,
                "ipv4": address,
                "command": "nc -ll -p 7 -e cat",
            }
            assert (await _docker_op(web, "POST", "/api/v1/docker/containers/", run))["status"] == "succeeded"
        got = docker_engine.containers.get(f"sb{RUN}s1").exec_run(
            ["sh", "-c", "echo hi | nc -w 2 198.19.235.12 7"]
        )
        assert got.output.strip() == b"hi", got
        assert can_connect(server_ns=f"{topo}-b", client_ns=f"{topo}-a", address="198.18.40.20")
    finally:
        await run_operation(web, "alpha", "destroy", text)
    await browser.until(
        lambda: bridge not in browser.states["alpha"]["docker_engine"]["engine"]["accepted_bridges"],
        what=f"the DOCKER-USER rule of {bridge} gone with it",
    )


async def test_without_an_engine_docker_requests_say_how_to_start_one(make_stack):
    """A host without Docker (this agent's private /run has no engine socket): the state says so,
    requests answer 503 with how to start an engine, and the rest of the host is mirrored as ever."""
    stack = make_stack()
    web, agent, browser = await connected(stack)
    engine = await until(lambda: _engine(web), what="the engine's absence stored")
    assert engine["available"] is False and "make docker" in engine["error"], engine
    body = {"host": "alpha", "name": f"sb{RUN}x"}
    status, answer = await web.aapi("POST", "/api/v1/docker/networks/", body)
    assert status == 503 and "has no Docker engine" in answer["message"], answer
    assert "make docker" in answer["message"]
    assert "lo" in browser.links("alpha")
