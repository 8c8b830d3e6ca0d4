"""Shaping a link through the whole stack: the API queues it, the real agent sets the qdisc, and the
kernel's own qdisc event brings the link's new shaping to the stored state before the operation ends;
netem where the kernel has it, its clear refusal where not; taking it off again."""

from __future__ import annotations

import subprocess

import pytest

from tests.stack.harness import until
from tests.stack.scenarios import applied, connected, finished
from tests.stack.test_services import topology

pytestmark = pytest.mark.asyncio


def _node_link(web, topo: str) -> dict | None:
    """Node a's interface as the web app stored its host's state (None until it is stored)."""
    status, body = web.api("GET", "/api/v1/topology/?host=alpha")
    assert status == 200, body
    links = body["hosts"][0]["snapshot"]["links"]
    return next((x for x in links if x["netns"] == f"{topo}-a" and x["kind"] == "veth"), None)


def _has_netem(netns_path: str) -> bool:
    probe = (
        "ip link add sbnetem0 type veth peer name sbnetem1 && tc qdisc add dev sbnetem0 root netem delay 1ms"
    )
    found = subprocess.run(["nsenter", f"--net={netns_path}", "sh", "-c", probe], capture_output=True)
    subprocess.run(["nsenter", f"--net={netns_path}", "ip", "link", "del", "sbnetem0"], capture_output=True)
    return found.returncode == 0


async def test_a_link_is_shaped_shown_and_unshaped_by_the_real_agent(make_stack, topo):
    stack = make_stack()
    web, agent, _ = await connected(stack)
    await applied(web, topology(topo))
    eth = await until(
        lambda: _node_link(web, topo), timeout=10, what="node a's interface in the stored state"
    )
    url = f"/api/v1/topology/shaping/alpha/{topo}-a/{eth['name']}/"

    status, body = await web.aapi("PUT", url, {"rate": "10mbit", "burst": "32kb"})
    assert status == 202, body
    done = await finished(web, body["operation"])
    assert done["status"] == "succeeded", done
    assert done["result"]["shaping"]["rate"] == 10_000_000
    # the kernel's qdisc event reached the stored state before the operation ended
    assert _node_link(web, topo)["shaping"] == done["result"]["shaping"]
    tc = subprocess.run(
        [
            "nsenter",
            f"--net={stack.netns_path(agent, f'{topo}-a')}",
            "tc",
            "qdisc",
            "show",
            "dev",
            eth["name"],
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "tbf" in tc.stdout and "rate 10Mbit" in tc.stdout

    status, body = await web.aapi("PUT", url, {"delay": "20ms", "loss": "1"})
    assert status == 202, body
    impaired = await finished(web, body["operation"])
    if _has_netem(stack.netns_path(agent, f"{topo}-a")):
        assert impaired["status"] == "succeeded", impaired
        assert _node_link(web, topo)["shaping"]["delay_us"] == 20_000
    else:
        assert impaired["status"] == "failed"
        assert "no netem qdisc" in impaired["error"] and impaired["result"]["object"] == "delay"
        assert _node_link(web, topo)["shaping"]["kind"] == "tbf"  # what it had is untouched

    status, body = await web.aapi("DELETE", url)
    assert status == 202, body
    assert (await finished(web, body["operation"]))["status"] == "succeeded"
    assert _node_link(web, topo)["shaping"] is None
    agent.stop()
