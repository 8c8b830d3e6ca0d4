"""Explain through the whole stack: the API, daphne, and the real agent walking its host's live state
and probing from a node's namespace: a port nothing listens on is UNREACHABLE for that reason, and the
same question once a listener is up is REACHABLE, hop by hop."""

from __future__ import annotations

import pytest

from tests.stack.scenarios import applied, connected
from tests.stack.test_services import NODES, Server, topology

pytestmark = pytest.mark.asyncio


async def test_the_agent_answers_why_and_proves_it(make_stack, topo):
    stack = make_stack()
    web, agent, _ = await connected(stack)
    await applied(web, topology(topo))
    question = {
        "host": "alpha",
        "source": f"{topo}/a",
        "destination": f"{topo}/b:8080",
        "count": 2,
        "timeout": 0.5,
    }

    status, answer = await web.aapi("POST", "/api/v1/explain/", question)
    assert status == 200, answer
    assert (answer["result"], answer["walk"]["cause"], answer["probe"]["outcome"]) == (
        "UNREACHABLE",
        "NOTHING_LISTENING",
        "refused",
    )
    assert answer["walk"]["destination"] == NODES["b"] and answer["walk"]["advice"]

    server = Server.start("b", stack.netns_path(agent, f"{topo}-b"), NODES["b"], 8080)
    try:
        status, answer = await web.aapi("POST", "/api/v1/explain/", question)
    finally:
        server.stop()
    assert status == 200, answer
    assert (answer["result"], answer["probe"]["answered"]) == ("REACHABLE", 2)
    assert [h["netns"] for h in answer["walk"]["hops"]][0] == f"{topo}-a"
    assert answer["walk"]["hops"][-1] == {
        "netns": f"{topo}-b",
        "kind": "deliver",
        "object": "tcp/8080",
        "decision": f"a socket listens on tcp/8080 on {NODES['b']} in {topo}-b",
        "verdict": "deliver",
        "cause": "",
        "interface": "",  # delivery crosses no interface: nothing to watch there
        "probe_seen": None,
    }
    watched = [h["probe_seen"] for h in answer["walk"]["hops"] if h["kind"] == "veth"]
    assert watched and all(seen["out"] >= 2 and seen["back"] >= 2 for seen in watched), watched

    status, refused = await web.aapi("POST", "/api/v1/explain/", {**question, "source": "nowhere"})
    assert status == 404 and "nowhere" in refused["message"], refused
    agent.stop()
