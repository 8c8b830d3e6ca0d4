"""Several daphne workers sharing a private PostgreSQL and a private Redis channel layer."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.conftest import RUN
from tests.stack.harness import agent_connected, start_postgres, start_redis, until
from tests.stack.scenarios import (
    finished,
    kernel_links,
    live,
    queue,
    run_operation,
    topology_life,
    topology_text,
)

pytestmark = pytest.mark.asyncio

PAIRS = 20


@pytest.fixture
def scaled_stack(make_stack):
    """A stack on PostgreSQL + Redis (migrated, with an operator and a host), no web worker yet."""
    stack = make_stack()
    stack.redis_url = start_redis(stack)
    stack.db_url = start_postgres(stack)
    stack.manage("migrate", "--noinput")
    stack.user_token = stack.manage("adduser", "op", "--role", "operator").strip().splitlines()[-1]
    stack.host_token("alpha")
    return stack


async def test_two_workers_show_the_same_stream_and_relay_commands(scaled_stack, topo):
    stack = scaled_stack
    web_a, web_b = stack.start_web(name="daphne-a"), stack.start_web(name="daphne-b")
    agent = stack.start_agent(web_a, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    on_a, on_b = await stack.browser(web_a), await stack.browser(web_b)
    await live(on_a, "alpha")
    await live(on_b, "alpha")  # worker B asked worker A's agent connection over Redis
    start = max(on_a.snapshot_seqs["alpha"][-1], on_b.snapshot_seqs["alpha"][-1])

    made = {f"sc{RUN}{i:02d}{end}" for i in range(PAIRS) for end in "ab"}
    batch = "".join(f"link add sc{RUN}{i:02d}a type veth peer name sc{RUN}{i:02d}b\n" for i in range(PAIRS))
    stack.ns.run(["ip", "-batch", "-"], input=batch)
    for browser in (on_a, on_b):
        await browser.until(lambda br=browser: made <= set(br.links("alpha")), what="all 40 veth ends")

    # The same seq stream on both workers. The agent also reports the named namespaces of anything
    # else running on this machine, which may add deltas: wait until both sockets reached the same
    # seq, then compare everything after both snapshots.
    await on_a.until(lambda: on_a.seq["alpha"] == on_b.seq["alpha"], what="both workers at the same seq")
    end = on_a.seq["alpha"]
    seqs_a = [s for s in on_a.delta_seqs["alpha"] if start < s <= end]
    seqs_b = [s for s in on_b.delta_seqs["alpha"] if start < s <= end]
    assert seqs_a == seqs_b == list(range(start + 1, end + 1))
    assert all(on_a.deltas["alpha"][s] == on_b.deltas["alpha"][s] for s in seqs_a)
    assert len(on_a.snapshot_seqs["alpha"]) == len(on_b.snapshot_seqs["alpha"]) == 1  # no resync needed
    assert set(on_a.links("alpha")) == set(on_b.links("alpha")) == kernel_links(stack.ns)
    assert not on_a.problems and not on_b.problems, on_a.problems + on_b.problems

    # worker B's REST API: the host online with those links (its state is saved at most 1 s late)
    def stored() -> bool:
        status, body = web_b.api("GET", "/api/v1/topology/?host=alpha")
        assert status == 200, body
        (host,) = body["hosts"]
        names = {link["name"] for link in host["snapshot"]["links"] if link["netns"] == "host"}
        return host["online"] and made <= names

    await until(stored, timeout=5, what="worker B's API showing alpha online with the new links")
    assert web_b.healthz()["agents"] == web_a.healthz()["agents"] == 1

    # Commands sent through worker B reach the agent held by worker A.
    await topology_life(stack, web_b, agent, on_a, topo=topo)
    assert agent.alive and web_a.proc.alive and web_b.proc.alive


async def test_a_command_is_answered_while_a_browser_watches_the_same_worker(make_stack, topo):
    stack = make_stack(redis=True)
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    browser = await stack.browser(web)  # the dashboard is open
    await live(browser, "alpha")
    op = await run_operation(web, "alpha", "plan", topology_text(topo), browser=browser)
    assert op["status"] == "succeeded", op
    assert op["result"]["counts"]["create"] > 0 and op["result"]["applied"] is False, op


async def test_sockets_stay_open_when_the_channel_layer_is_quiet(make_stack):
    stack = make_stack(redis=True)
    web = stack.start_web()
    browser = await stack.browser(web)
    await browser.until(lambda: {"alpha", "beta"} <= set(browser.states), what="stored snapshots")
    await asyncio.sleep(6.5)  # no agent, nothing on the channel layer
    assert not browser.done, f"the server closed the browser socket: {browser.closed}"  # fails
    await browser.ws.send('{"type": "resync"}')
    await browser.until(lambda: len(browser.snapshot_seqs["alpha"]) == 2, what="the resync's snapshots")


LEASE = 2.0  # seconds: the workers' presence lease in the test below


async def test_a_host_whose_worker_dies_goes_offline_on_the_others_and_comes_back_on_reconnect(
    scaled_stack, topo
):
    stack = scaled_stack
    stack.lease = LEASE
    web_a, web_b = stack.start_web(name="daphne-a"), stack.start_web(name="daphne-b")
    agent = stack.start_agent(web_a, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    browser = await stack.browser(web_b)  # the dashboard, open on the other worker
    await live(browser, "alpha")

    # An idle agent (no frames at all) stays online: its connection renews the lease.
    seen = len(browser.frames)
    await asyncio.sleep(3 * LEASE)
    assert [f["type"] for f in browser.frames[seen:]] == [], "an idle host's frames"
    assert web_b.healthz()["agents"] == 1
    status, hosts = await web_b.aapi("GET", "/api/v1/hosts/")
    assert status == 200 and [h["online"] for h in hosts if h["name"] == "alpha"] == [True]

    # Worker A dies with the connection: nobody runs its disconnect, the lease runs out, and worker B
    # tells its browser, within LEASE (the last renewal was at most LEASE / 3 before the kill) plus
    # one look of B's presence watch (LEASE / 3), with 2 s of slack.
    agent.send_signal(signal.SIGSTOP)  # it must not reconnect yet
    try:
        web_a.proc.stop(signal.SIGKILL)
        killed = time.monotonic()
        await browser.until(
            lambda: browser.online["alpha"] is False,
            timeout=LEASE * 4 / 3 + 2,
            what="host.status alpha offline",
        )
        (frame,) = [f for f in browser.frames[seen:] if f["type"] == "host.status"]
        assert (frame["host"], frame["online"]) == ("alpha", False) and frame["last_seen"], frame
        assert time.monotonic() - killed > LEASE / 2  # it was the lease that ran out, not a disconnect
        assert web_b.healthz()["agents"] == 0
        status, hosts = await web_b.aapi("GET", "/api/v1/hosts/")
        assert status == 200 and [h["online"] for h in hosts if h["name"] == "alpha"] == [False]
        status, body = await web_b.aapi("GET", "/api/v1/topology/?host=alpha")
        assert status == 200 and body["hosts"][0]["online"] is False
        queued = await queue(web_b, "alpha", "plan", topology_text(topo))  # kept until alpha is back
        await asyncio.sleep(0.5)
        status, body = await web_b.aapi("GET", f"/api/v1/operations/{queued}/")
        assert (status, body["status"]) == (200, "pending"), body
    finally:
        agent.send_signal(signal.SIGCONT)

    # The agent reconnects (to a new worker at A's address) and takes the lease over: online again.
    web_a = stack.start_web(port=web_a.port, name="daphne-a2")
    await agent_connected(agent, times=2, timeout=40)  # backoff: 0.5 s doubling, with jitter
    await browser.until(lambda: browser.online["alpha"] is True, what="host.status alpha online, over Redis")
    await live(browser, "alpha")
    assert web_a.healthz()["agents"] == web_b.healthz()["agents"] == 1
    status, hosts = await web_b.aapi("GET", "/api/v1/hosts/")
    assert [h["online"] for h in hosts if h["name"] == "alpha"] == [True]
    op = await finished(web_b, queued)  # run by the agent's new connection, on worker A2
    assert op["status"] == "succeeded" and op["result"]["counts"]["create"] > 0, op
    # the frame crosses Redis after the row is written: the API can tell first
    await browser.until(
        lambda: any(f["operation"]["status"] == "succeeded" for f in browser.operation_frames(queued)),
        what=f"operation.status succeeded of {queued}, over Redis",
    )
    assert [f["operation"]["status"] for f in browser.operation_frames(queued)] == [
        "pending",
        "running",
        "succeeded",
    ]
    assert not browser.problems, browser.problems
