"""Progress and cancel of a running operation with the real daphne, agent and kernel."""

from __future__ import annotations

import json

import pytest

from tests.stack.harness import Browser, Stack
from tests.stack.scenarios import connected, finished, kernel_links, queue

pytestmark = pytest.mark.asyncio

NODES = 1000  # eight chunks of netcore's 128: seven safe points after the first progress report


def many_nodes(topo: str) -> str:
    """NODES nodes on one NAT network publishing a port (a sysctl and an nft table when applied).

    The network's name is one letter so that "<topology>-n999-l" fits IFNAMSIZ: hashed names of
    hundreds of nodes may collide (netcore refuses the file then).
    """
    nodes = "".join(f"  n{i}: {{networks: [l]}}\n" for i in range(1, NODES))
    return (
        f"name: {topo}\nnetworks:\n  l: {{subnet: 198.18.48.0/21, nat: true}}\n"
        f'nodes:\n  n0: {{networks: [l], ports: ["127.0.0.1:8082:80"]}}\n{nodes}'
    )


def nft_tables(stack: Stack) -> list[str]:
    listed = json.loads(stack.ns.run("nft -j list tables").stdout)["nftables"]
    return [x["table"]["name"] for x in listed if "table" in x]


def progress_of(browser: Browser, operation: str) -> list[dict]:
    frames = browser.operation_frames(operation, progress=True)
    return [f["operation"] for f in frames if "progress" in f["operation"]]


async def test_a_running_apply_shows_progress_and_is_cancelled_leaving_the_kernel_clean(make_stack, topo):
    stack = make_stack()
    web, agent, browser = await connected(stack)
    links_before = kernel_links(stack.ns)

    op = await queue(web, "alpha", "apply", many_nodes(topo))
    await browser.until(lambda: progress_of(browser, op), timeout=60, what=f"progress of {op}")
    status, body = await web.aapi("POST", f"/api/v1/operations/{op}/cancel/")
    assert (status, body["status"]) == (202, "running"), body
    done = await finished(web, op, timeout=120)

    assert done["status"] == "cancelled", done
    assert done["error"] == f"apply of topology {topo} was cancelled; what it had created was removed"
    assert (done["progress"], done["done"], done["total"]) == ("", None, None)
    first = progress_of(browser, op)[0]
    assert first["status"] == "running" and (first["done"], first["total"]) == (0, NODES), first
    assert first["progress"] == f"building nodes 0/{NODES}"
    await browser.until(
        lambda: browser.operation_frames(op)[-1]["operation"]["status"] == "cancelled",
        what=f"operation.status cancelled of {op}",
    )
    # the kernel is as it was: no namespace, veth, bridge or nft table of the topology
    assert stack.netns_names(agent) == []
    assert kernel_links(stack.ns) == links_before
    assert f"switchboard-{topo}" not in nft_tables(stack)
    assert agent.alive and web.proc.alive
