"""Desired state end to end, with the real agent and daphne: a request made while the agent is away,
drift by hand repaired on request, and a published port reached on loopback, each with real traffic."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from netcore import names
from netcore import netns as ns
from tests.conftest import tcp_echo_at
from tests.stack.harness import Stack, Web, agent_connected, until
from tests.stack.scenarios import NODE_B, connected, finished, topology_text

pytestmark = pytest.mark.asyncio


async def create_and(web: Web, topo: str, action: str, text: str | None = None) -> dict:
    """Record the topology on alpha, queue `action` of it; the 202 body."""
    status, body = await web.aapi(
        "POST", "/api/v1/topologies/", {"host": "alpha", "topology": text or topology_text(topo)}
    )
    assert status == 201, body
    status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/{action}/?host=alpha")
    assert status == 202, body
    return body


def topology_status(web: Web, topo: str) -> dict:
    status, body = web.api("GET", f"/api/v1/topologies/{topo}/?host=alpha")
    assert status == 200, body
    return body


def nft_tables(stack: Stack) -> str:
    return stack.ns.run("nft list tables").stdout


async def test_a_topology_applied_while_its_agent_is_away_waits_then_runs(make_stack, topo) -> None:
    stack = make_stack()
    web = stack.start_web()
    queued = await create_and(web, topo, "apply")
    assert topology_status(web, topo)["status"] == "waiting"
    agent = stack.start_agent(web, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    assert (await finished(web, queued["operation"]))["status"] == "succeeded"
    assert stack.netns_names(agent) == [f"{topo}-a", f"{topo}-b"]
    await until(lambda: topology_status(web, topo)["status"] == "ready", what="the topology ready")
    node_a, node_b = stack.netns_path(agent, f"{topo}-a"), stack.netns_path(agent, f"{topo}-b")
    tcp_echo_at(server=node_b, client=node_a, address=NODE_B)


async def test_a_veth_deleted_by_hand_shows_drift_and_repair_brings_traffic_back(make_stack, topo) -> None:
    stack = make_stack()
    web, agent, _ = await connected(stack)
    queued = await create_and(web, topo, "apply")
    assert (await finished(web, queued["operation"]))["status"] == "succeeded"
    node_a, node_b = stack.netns_path(agent, f"{topo}-a"), stack.netns_path(agent, f"{topo}-b")
    tcp_echo_at(server=node_b, client=node_a, address=NODE_B)

    veth = names.host_veth_name(topo, "b", "lan")
    stack.ns.run(f"ip link del {veth}")
    drifted = await until(
        lambda: (body := topology_status(web, topo))["status"] == "drifted" and body,
        timeout=10,
        what="the topology flagged drifted from the agent's events",
    )
    assert f"veth {veth} is gone" in drifted["status_message"]
    with pytest.raises(OSError):
        tcp_echo_at(server=node_b, client=node_a, address=NODE_B, timeout=1.0)

    status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/repair/?host=alpha")
    assert status == 202, body
    assert (await finished(web, body["operation"]))["status"] == "succeeded"
    await until(lambda: topology_status(web, topo)["status"] == "ready", timeout=10, what="ready again")
    # at once: b's rebuilt interface has the MAC a cached (netcore derives it from the address)
    tcp_echo_at(server=node_b, client=node_a, address=NODE_B, timeout=1.0)


def ask_published(*, host: str, node: str, port: int, published: int) -> None:
    """Real TCP from the host namespace `host` to 127.0.0.1:`published`, echoed by a listener on
    every address of namespace `node` at `port` (sockets are made in their namespaces, used here)."""

    def listen() -> socket.socket:
        listener = socket.socket()
        listener.bind(("0.0.0.0", port))
        listener.listen(1)
        return listener

    listener = ns.netns_run(path=node, fn=listen)
    sender = ns.netns_run(path=host, fn=socket.socket)
    listener.settimeout(3)
    sender.settimeout(3)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.sendall(conn.recv(64))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    payload = os.urandom(8).hex().encode()
    try:
        sender.connect(("127.0.0.1", published))
        sender.sendall(payload)
        echoed = sender.recv(64)
    finally:
        sender.close()
        thread.join(3)
        listener.close()
    assert echoed == payload, f"127.0.0.1:{published} echoed {echoed!r}"


async def test_a_port_published_by_an_edit_is_reached_on_loopback_and_destroy_leaves_nothing(
    make_stack, topo
) -> None:
    stack = make_stack()
    stack.ns.run("ip link set lo up")
    web, agent, _ = await connected(stack)
    queued = await create_and(web, topo, "apply")
    assert (await finished(web, queued["operation"]))["status"] == "succeeded"
    version = topology_status(web, topo)["version"]
    # the node edit publishes a port: b keeps its address, and a is not rebuilt
    status, body = await web.aapi(
        "PATCH",
        f"/api/v1/topologies/{topo}/nodes/b/?host=alpha",
        {"version": version, "ports": ["127.0.0.1:18080:7000/tcp"]},
    )
    assert status == 200, body
    status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/apply/?host=alpha")
    assert status == 202, body
    applied = await finished(web, body["operation"])
    assert applied["status"] == "succeeded", applied
    assert not [c for c in applied["result"]["changes"] if c["kind"] == "namespace"], applied["result"]
    # the stack's namespace is the agent's host: the client connects from its loopback
    node_b = stack.netns_path(agent, f"{topo}-b")
    ask_published(host=stack.ns.path, node=node_b, port=7000, published=18080)
    assert f"switchboard-{topo}" in nft_tables(stack)

    status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/destroy/?host=alpha")
    assert (await finished(web, body["operation"]))["status"] == "succeeded"
    assert stack.netns_names(agent) == []
    assert f"switchboard-{topo}" not in nft_tables(stack)
    assert names.bridge_name(topo, "lan") not in stack.ns.run("ip -o link show").stdout
    status, _ = await web.aapi("DELETE", f"/api/v1/topologies/{topo}/?host=alpha")
    assert status == 204
