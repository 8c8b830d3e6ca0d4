"""The real agent, the real web app (daphne) and websocket/HTTP clients, all in a throwaway namespace."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import RUN, tcp_echo_at
from tests.stack.harness import agent_connected, log_count, until, ws_connect
from tests.stack.scenarios import (
    NODE_B,
    connected,
    finished,
    hand_made_links,
    kernel_links,
    live,
    queue,
    topology_life,
    topology_text,
)

pytestmark = pytest.mark.asyncio


async def test_agent_mirrors_the_host_and_runs_topologies(make_stack, topo):
    stack = make_stack()
    stack.ns.run(f"ip link add sb{RUN}pa type veth peer name sb{RUN}pb")  # there before the agent
    web, agent, browser = await connected(stack)

    # the snapshot is the throwaway namespace, link for link
    assert set(browser.links("alpha")) == kernel_links(stack.ns)
    assert {f"sb{RUN}pa", f"sb{RUN}pb", "lo"} <= set(browser.links("alpha"))
    assert web.healthz()["agents"] == 1

    await hand_made_links(stack, [browser])
    await topology_life(stack, web, agent, browser, topo=topo)
    assert agent.alive and web.proc.alive


async def test_operations_queued_together_run_one_at_a_time_in_order(make_stack, topo):
    """Five operations sent at once (the old synchronous API failed a fifth concurrent plan) are all
    answered 202 at once and run by the real agent one after the other, in the order they came."""
    stack = make_stack()
    web, agent, browser = await connected(stack)
    text = topology_text(topo)
    actions = ["plan", "apply", "plan", "plan", "destroy"]
    ops = [await queue(web, "alpha", action, text) for action in actions]
    done = [await finished(web, op) for op in ops]

    assert [op["status"] for op in done] == ["succeeded"] * 5, done
    for before, after in zip(done, done[1:], strict=False):
        assert before["finished"] <= after["started"], (before, after)  # never two at once
    first_plan, apply, later_plan, _, destroy = (op["result"] for op in done)
    assert first_plan["applied"] is False and first_plan["counts"]["create"] > 0, first_plan
    assert apply["applied"] is True and apply["counts"]["create"] == first_plan["counts"]["create"], apply
    assert later_plan["changes"] == [] and later_plan["counts"] == {"create": 0, "update": 0, "delete": 0}
    assert destroy["counts"]["delete"] > 0 and stack.netns_names(agent) == []
    running = [
        f["operation"]["id"]
        for f in browser.frames
        if f["type"] == "operation.status"
        and f["operation"]["status"] == "running"
        and "progress" not in f["operation"]  # an apply's progress reports say running too
    ]
    assert running == ops  # the browser heard them start in order


LARGE_PAIRS = 3000  # 6001 links: a snapshot frame of about 1.35 MB


async def test_a_host_with_a_large_state_comes_online(make_stack):
    stack = make_stack()
    batch = "".join(
        f"link add lg{RUN}{i:04d}a type veth peer name lg{RUN}{i:04d}b\n" for i in range(LARGE_PAIRS)
    )
    stack.ns.run(["ip", "-batch", "-"], input=batch)
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    browser = await stack.browser(web)
    await live(browser, "alpha", timeout=5)  # fails: the snapshot never gets through
    assert len(browser.links("alpha")) == 2 * LARGE_PAIRS + 1
    assert log_count(agent, "connected to") == 1


async def test_agent_reconnects_after_the_web_app_restarts(make_stack):
    stack = make_stack()
    web, agent, old = await connected(stack)
    web.proc.stop(signal.SIGKILL)
    await old.until(lambda: old.done, what="the browser socket closing with the web app")

    web = stack.start_web(port=web.port)  # same port, same database
    await agent_connected(agent, times=2, timeout=40)  # backoff: 0.5 s doubling, with jitter
    browser = await stack.browser(web)
    await live(browser, "alpha")
    assert web.healthz()["agents"] == 1
    await hand_made_links(stack, [browser], tag="r")  # the new connection is live, not a stored state
    assert log_count(agent, "connected to") == 2
    assert not browser.problems, browser.problems


LEASE = 2.0  # seconds: the presence lease of stacks whose tests wait for one to run out


async def test_host_shows_offline_when_the_web_app_restarts_without_its_agent(make_stack):
    stack = make_stack(lease=LEASE)
    web, agent, _ = await connected(stack)
    agent.send_signal(signal.SIGSTOP)  # the host is gone for now (it must not reconnect during the test)
    try:
        web.proc.stop(signal.SIGKILL)  # the connection's disconnect never runs
        deadline = time.monotonic() + LEASE + 2  # the lease ends at most LEASE after; 2 s of slack
        web = stack.start_web(port=web.port)
        await until(
            lambda: web.healthz()["agents"] == 0,
            timeout=max(0.0, deadline - time.monotonic()),
            what="/healthz counting no agent once the lease ran out",
        )
        status, hosts = await web.aapi("GET", "/api/v1/hosts/")
        assert status == 200 and {h["name"]: h["online"] for h in hosts} == {"alpha": False, "beta": False}
        browser = await stack.browser(web)  # gets alpha's stored state once no agent answers for it
        await browser.until(lambda: "alpha" in browser.online, what="alpha's snapshot")
        assert browser.online["alpha"] is False
    finally:
        agent.send_signal(signal.SIGCONT)

    await agent_connected(agent, times=2, timeout=40)  # back: online again
    await live(browser, "alpha")
    assert web.healthz()["agents"] == 1


@pytest.mark.parametrize(
    "redis",
    [
        pytest.param(True, id="redis-layer"),
        pytest.param(
            False,
            id="in-memory-layer",
        ),
    ],
)
async def test_revoking_the_token_disconnects_the_agent(make_stack, redis):
    stack = make_stack(redis=redis)
    web, agent, browser = await connected(stack)
    stack.manage("hosttoken", "alpha", "--revoke")

    await browser.until(lambda: browser.online.get("alpha") is False, what="host.status alpha offline")
    await until(lambda: "4003" in agent.output(), what=f"the agent closed with 4003:\n{agent.tail()}")
    await until(lambda: "HTTP 403" in agent.output(), what=f"the agent refused on reconnect:\n{agent.tail()}")
    assert web.healthz()["agents"] == 0
    assert agent.alive  # it keeps trying, and keeps being refused
    status, body = await web.aapi("POST", "/api/v1/hosts/alpha/plan/", {"topology": "name: x\n"})
    assert (status, body["error"]) == (409, "Conflict"), body  # a revoked host gets no operations


async def test_an_unknown_token_never_comes_online(make_stack):
    stack = make_stack()
    web = stack.start_web()
    agent = stack.start_agent(web, token="sbh_" + "x" * 43)
    stranger = stack.start_agent(web, token="not-even-a-host-token", name="stranger")
    await until(
        lambda: log_count(agent, "HTTP 403") >= 2 and log_count(stranger, "HTTP 403") >= 2,
        timeout=10,
        what="two refused attempts of each agent",
    )
    assert web.healthz()["agents"] == 0
    browser = await stack.browser(web)
    await browser.until(lambda: {"alpha", "beta"} <= set(browser.states), what="stored snapshots")
    assert browser.online == {"alpha": False, "beta": False}
    assert not any(f["type"] == "topology.delta" for f in browser.frames)
    queued = await queue(web, "alpha", "plan", "name: x\n")  # kept, queued until alpha's agent connects
    await asyncio.sleep(0.5)
    status, body = await web.aapi("GET", f"/api/v1/operations/{queued}/")
    assert (status, body["status"], body["started"]) == (200, "pending", None), body
    for token in (stack.host_tokens["alpha"], "nope", None):  # browsers need a user's token
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(stack.ns, web.port, "/ws/topology/", token=token)
        assert refused.value.response.status_code == 403


async def test_malformed_agent_frames_get_errors_and_the_connection_survives(make_stack):
    stack = make_stack()
    web = stack.start_web()
    ws = await stack.raw_agent(web, token=stack.host_tokens["beta"])

    async def reply() -> dict:
        return json.loads(await asyncio.wait_for(ws.recv(), 5))

    async def refused(frame: str | bytes, says: str, *, resync: bool = False) -> None:
        """An error frame saying `says`; then, for a bad snapshot or delta, a request for a snapshot."""
        await ws.send(frame)
        answer = await reply()
        assert answer["v"] == 1 and answer["type"] == "error", answer
        assert answer["error"]["error"] == "ProtocolError", answer
        assert says in answer["error"]["message"], answer
        if resync:
            assert await reply() == {"v": 1, "type": "resync"}

    hello = {"v": 1, "type": "hello", "host": "raw", "agent_version": "9.9", "protocol": 1}
    await refused("{not json", "not JSON")
    await refused("[1, 2]", "must be a JSON object, not a list")
    await refused(json.dumps({"v": 1, "type": "gossip"}), "unknown frame type 'gossip'")
    await refused(json.dumps({"v": 1, "type": "hello", "host": "raw"}), "missing field 'agent_version'")
    await refused(
        json.dumps({"v": 1, "type": "delta", "seq": 1, "events": {}}), "'events' must be a list", resync=True
    )
    await refused(b"\x00\x01", "not binary")
    await refused(
        json.dumps({"v": 1, "type": "snapshot", "seq": 1, "state": {}}), "first frame must be hello"
    )
    assert web.healthz() == {"status": "ok", "agents": 0}
    assert web.proc.alive

    await ws.send(json.dumps(hello))  # the same connection still works
    assert await reply() == {"v": 1, "type": "welcome", "host": "beta"}
    await ws.send(json.dumps({"v": 1, "type": "snapshot", "seq": 1, "state": {}}))
    bad_events = {"v": 1, "type": "delta", "seq": 2, "events": "nope"}
    await refused(json.dumps(bad_events), "'events' must be a list", resync=True)
    # Until the snapshot asked for comes, deltas are dropped and no second resync is asked.
    await ws.send(json.dumps({"v": 1, "type": "delta", "seq": 3, "events": []}))
    await ws.send(json.dumps({"v": 1, "type": "snapshot", "seq": 2, "state": {}}))
    bad_event = {"v": 1, "type": "delta", "seq": 3, "events": [{"kind": "moods"}]}
    await refused(json.dumps(bad_event), "events[0]", resync=True)
    await ws.send(json.dumps({"v": 1, "type": "snapshot", "seq": 3, "state": {}}))
    link = {"netns": "host", "index": 1, "name": "lo", "kind": None}  # not netcore's shape: refused
    event = {"kind": "links", "action": "set", "key": "host|1", "object": link}
    shapeless = {"v": 1, "type": "delta", "seq": 4, "events": [event]}
    await refused(json.dumps(shapeless), "missing field", resync=True)
    await ws.send(json.dumps({"v": 1, "type": "snapshot", "seq": 4, "state": {}}))
    link.update(mtu=65536, mac="00:00:00:00:00:00", up=True, state="unknown", master=None, alias=None)
    link.update(peer=None, vxlan=None)
    await ws.send(json.dumps({"v": 1, "type": "delta", "seq": 5, "events": [event]}))
    assert web.healthz() == {"status": "ok", "agents": 1}

    browser = await stack.browser(web)
    await live(browser, "beta")
    assert browser.seq["beta"] == 5 and set(browser.links("beta")) == {"lo"}
    await ws.send(json.dumps({"v": 1, "type": "pong", "id": "p1"}))
    await ws.send(json.dumps({"v": 1, "type": "result", "id": "nobody-asked", "ok": True, "result": {}}))
    await ws.send(json.dumps({"v": 1, "type": "delta", "seq": 6, "events": [dict(event, action="del")]}))
    await browser.until(lambda: not browser.links("beta"), what="the raw agent's delta")
    assert not browser.problems, browser.problems
    try:
        extra = await asyncio.wait_for(ws.recv(), 0.3)
    except TimeoutError:
        extra = None
    except ConnectionClosed as exc:
        raise AssertionError(f"the server closed the connection: {exc}") from exc
    assert extra is None, f"valid frames got an answer: {extra}"


async def test_a_rebooted_host_gets_its_applied_topology_back(make_stack, topo):
    """A desired topology applied through /api/v1/topologies/; the agent stops and the topology's
    namespaces go (its private /run goes with it: what a reboot does); the agent comes back, says
    hello, and the web app's reconcile plans the topology, sees only creations and applies it."""
    stack = make_stack()
    web, agent, _ = await connected(stack)
    status, body = await web.aapi(
        "POST", "/api/v1/topologies/", {"host": "alpha", "topology": topology_text(topo)}
    )
    assert status == 201, body
    status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/apply/?host=alpha")
    assert status == 202, body
    assert (await finished(web, body["operation"]))["status"] == "succeeded"
    wanted = [f"{topo}-a", f"{topo}-b"]
    assert stack.netns_names(agent) == wanted

    agent.stop()
    agent = stack.start_agent(web, token=stack.host_tokens["alpha"])
    await agent_connected(agent)

    def restored() -> dict | None:
        status, body = web.api("GET", f"/api/v1/topologies/{topo}/?host=alpha")
        assert status == 200, body
        return body if body["status"] == "ready" and stack.netns_names(agent) == wanted else None

    await until(restored, timeout=30, what="the topology restored by reconcile")
    status, body = web.api("GET", "/api/v1/operations/?host=alpha")
    reconciled = [(op["kind"], op["status"], op["reason"], op["topology"]) for op in body["results"][:2]]
    assert reconciled == [
        ("apply", "succeeded", "reconcile: restore what the host lost", topo),
        ("plan", "succeeded", "reconcile on connect", topo),
    ], body["results"]
    node_a, node_b = stack.netns_path(agent, f"{topo}-a"), stack.netns_path(agent, f"{topo}-b")
    tcp_echo_at(server=node_b, client=node_a, address=NODE_B)
