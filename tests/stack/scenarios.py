"""Steps the whole-stack test modules share: connect everything, hand-made links, a topology's life."""

from __future__ import annotations

import json

from netcore import names
from tests.conftest import RUN, HostNs, tcp_echo_at
from tests.stack.harness import Browser, Proc, Stack, Web, agent_connected, until

SUBNET, GATEWAY, NODE_B = "198.18.40.0/24", "198.18.40.1", "198.18.40.20"


def topology_text(topo: str) -> str:
    """Two nodes on one bridge network."""
    return f"""\
name: {topo}
networks:
  lan: {{driver: bridge, subnet: {SUBNET}}}
nodes:
  a: {{networks: [lan]}}
  b: {{networks: {{lan: {{address: {NODE_B}}}}}}}
"""


def kernel_links(ns: HostNs) -> set[str]:
    """Names of the links in the namespace, as `ip` sees them."""
    return {link["ifname"] for link in json.loads(ns.run("ip -j link show").stdout)}


async def live(browser: Browser, host: str, *, timeout: float = 10.0) -> None:
    """Wait for the host's live snapshot (online, with at least lo)."""
    await browser.until(
        lambda: browser.online.get(host) and "lo" in browser.links(host),
        timeout=timeout,
        what=f"a live snapshot of {host}",
    )


FINISHED = {"succeeded", "failed", "cancelled"}


async def queue(web: Web, host: str, action: str, text: str) -> str:
    """POST plan/apply/destroy: answered 202 at once with the queued operation's id."""
    status, body = await web.aapi("POST", f"/api/v1/hosts/{host}/{action}/", {"topology": text})
    assert status == 202, body
    assert body == {
        "operation": body["operation"],
        "status": "pending",
        "url": f"/api/v1/operations/{body['operation']}/",
    }
    return body["operation"]


async def finished(web: Web, operation: str, *, timeout: float = 30.0) -> dict:
    """The operation once it has ended, as the API shows it."""

    def check() -> dict | None:
        status, body = web.api("GET", f"/api/v1/operations/{operation}/")
        assert status == 200, body
        return body if body["status"] in FINISHED else None

    return await until(check, timeout=timeout, what=f"operation {operation} to end")


async def applied(web: Web, text: str, *, host: str = "alpha") -> None:
    """Record the topology `text` on `host` and apply it; fails unless the apply succeeds."""
    status, body = await web.aapi("POST", "/api/v1/topologies/", {"host": host, "topology": text})
    assert status == 201, body
    name = body["name"]
    status, body = await web.aapi("POST", f"/api/v1/topologies/{name}/apply/?host={host}")
    assert status == 202, body
    assert (await finished(web, body["operation"]))["status"] == "succeeded"


async def run_operation(
    web: Web, host: str, action: str, text: str, *, browser: Browser | None = None
) -> dict:
    """Queue an operation, wait for it to end and return it; a watching browser heard it run."""
    operation = await queue(web, host, action, text)
    body = await finished(web, operation)
    if browser is not None:
        await browser.until(
            lambda: (
                [f["operation"]["status"] for f in browser.operation_frames(operation)][-1:]
                == [body["status"]]
            ),
            what=f"operation.status {body['status']} of {operation}",
        )
        statuses = [f["operation"]["status"] for f in browser.operation_frames(operation)]
        assert statuses == ["pending", "running", body["status"]], statuses
    return body


async def connected(
    stack: Stack, *, host: str = "alpha", web: Web | None = None
) -> tuple[Web, Proc, Browser]:
    """A daphne worker, the real agent of `host` connected to it, and a browser holding its snapshot."""
    web = web or stack.start_web()
    agent = stack.start_agent(web, token=stack.host_tokens[host])
    await agent_connected(agent)
    browser = await stack.browser(web)
    await live(browser, host)
    return web, agent, browser


async def hand_made_links(
    stack: Stack, browsers: list[Browser], *, host: str = "alpha", tag: str = "x"
) -> None:
    """`ip link add` a veth pair by hand: set events for both ends; `ip link del`: del events."""
    a, b = f"sb{RUN}{tag}a", f"sb{RUN}{tag}b"
    stack.ns.run(f"ip link add {a} type veth peer name {b}")
    for browser in browsers:
        await browser.until(
            lambda br=browser: {a, b} <= br.link_events(host, "set"), what=f"set events for {a} and {b}"
        )
        assert {a, b} <= set(browser.links(host))
        assert browser.links(host)[a]["kind"] == "veth"
    stack.ns.run(f"ip link del {a}")
    for browser in browsers:
        await browser.until(
            lambda br=browser: {a, b} <= br.link_events(host, "del"), what=f"del events for {a} and {b}"
        )
        assert not {a, b} & set(browser.links(host))


async def topology_life(
    stack: Stack, web: Web, agent: Proc, browser: Browser, *, topo: str, host: str = "alpha"
) -> None:
    """apply through the API (an operation) → namespaces, traffic, deltas; plan → nothing; an invalid
    spec → a failed operation, bad input → 400; destroy. The browser hears each operation run."""
    text = topology_text(topo)
    base = f"/api/v1/hosts/{host}"
    node_a, node_b = stack.netns_path(agent, f"{topo}-a"), stack.netns_path(agent, f"{topo}-b")

    op = await run_operation(web, host, "apply", text, browser=browser)
    assert op["status"] == "succeeded", op
    body = op["result"]
    assert body["topology"] == topo and body["applied"] is True, body
    assert body["counts"]["create"] > 0 and body["counts"]["delete"] == 0, body["counts"]
    assert stack.netns_names(agent) == [f"{topo}-a", f"{topo}-b"]
    tcp_echo_at(server=node_b, client=node_a, address=NODE_B)
    tcp_echo_at(server=stack.ns.path, client=node_b, address=GATEWAY)  # the bridge, in the stack's ns

    veth_a, veth_b = names.host_veth_name(topo, "a", "lan"), names.host_veth_name(topo, "b", "lan")
    bridge = f"{topo}-lan"

    def arrived() -> bool:
        links = browser.links(host)
        peer = (links.get(veth_a) or {}).get("peer") or {}
        return (
            {f"{topo}-a", f"{topo}-b"} <= browser.namespaces(host)
            and {veth_a, veth_b, bridge} <= set(links)
            and peer.get("netns") == f"{topo}-a"
            and peer.get("name") == "eth0"
        )

    await browser.until(arrived, timeout=5, what=f"{topo}'s namespaces and veths (peer resolved)")
    assert {f"{topo}-a", f"{topo}-b"} <= browser.namespace_events(host, "set")
    assert {veth_a, veth_b, bridge} <= browser.link_events(host, "set")
    assert browser.links(host)[veth_a]["master"] == bridge
    assert "eth0" in browser.links(host, f"{topo}-a")

    op = await run_operation(web, host, "plan", text, browser=browser)
    assert op["status"] == "succeeded", op
    body = op["result"]
    assert body["applied"] is False and body["changes"] == [], body
    assert body["counts"] == {"create": 0, "update": 0, "delete": 0}

    bad = text.replace(SUBNET, "198.18.400.0/24")
    op = await run_operation(web, host, "apply", bad, browser=browser)
    assert op["status"] == "failed", op
    assert op["result"]["error"] == "InvalidSpec" and "networks.lan.subnet" in op["result"]["message"], op
    assert op["error"].startswith("InvalidSpec: ") and "networks.lan.subnet" in op["error"], op
    status, body = await web.aapi("POST", f"{base}/apply/", {})
    assert status == 400, body
    assert body["error"] == "InvalidInput" and "topology" in body["fields"], body

    op = await run_operation(web, host, "destroy", text, browser=browser)
    assert op["status"] == "succeeded", op
    body = op["result"]
    assert body["applied"] is True and body["counts"]["delete"] > 0, body
    assert stack.netns_names(agent) == []
    assert not [name for name in kernel_links(stack.ns) if name.startswith(topo)]

    def gone() -> bool:
        return not any(n and n.startswith(topo) for n in browser.netns_of_objects(host)) and not any(
            name.startswith(topo) for name in browser.links(host)
        )

    await browser.until(gone, timeout=5, what=f"every object of {topo} deleted in the browser's state")
    assert not browser.problems, browser.problems
