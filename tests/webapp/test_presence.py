"""Host presence is a lease: renewed by the agent's connection, seen by every reader, and when it
runs out unrenewed (the worker holding the connection died) browsers are told the host is offline."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    lease_held,
    receive_type,
    state_with,
)
from webapp.hosts.models import Host
from webapp.hosts.selectors import hosts_gone, hosts_online_count
from webapp.hosts.services import host_revoke
from webapp.operations.models import Operation
from webapp.operations.services import DISCONNECTED, operation_create
from webapp.topology.services import host_state_save

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

LEASE = 0.3  # seconds; renewed, and looked at by the presence watch, every 0.1 s


@pytest.fixture(autouse=True)
def _short_lease(settings: Any) -> None:
    settings.AGENT_LEASE = LEASE


def _host(name: str = "h1") -> Host:
    return Host.objects.get(name=name)


async def _api_online(sockets: Sockets, account: Account, host: str = "h1") -> tuple[bool, bool, int]:
    """(online in /api/v1/hosts/, online in /api/v1/topology/, agents in /healthz)."""
    _, hosts = await sockets.http("GET", "/api/v1/hosts/", token=account.token)
    _, topology = await sockets.http("GET", f"/api/v1/topology/?host={host}", token=account.token)
    _, health = await sockets.http("GET", "/healthz", token=account.token)
    (entry,) = [h for h in hosts if h["name"] == host]
    return entry["online"], topology["hosts"][0]["online"], health["agents"]


async def test_an_idle_agent_stays_online_over_many_lease_periods(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await sockets.agent(h.token)  # says hello, then nothing at all
    first = (await database_sync_to_async(_host)()).online_until
    browser = await sockets.browser(viewer.token)
    snapshot = await receive_type(browser, "topology.snapshot")
    assert (snapshot["host"], snapshot["online"]) == ("h1", True)

    assert await browser.receive_nothing(timeout=5 * LEASE, interval=0.05)  # no host.status offline
    host = await database_sync_to_async(_host)()
    assert host.online and host.online_until > first + datetime.timedelta(seconds=3 * LEASE)
    assert host.last_seen > first - datetime.timedelta(seconds=LEASE)  # renewals move last_seen
    assert await _api_online(sockets, viewer) == (True, True, 1)


async def test_a_lease_nobody_renews_runs_out_for_every_reader_and_open_browsers_hear_it(
    sockets: Sockets, viewer: Account, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(host_state_save)(host_id=h.host.id, seq=3, state=state_with())
    await database_sync_to_async(lease_held)(h.host, seconds=1.0)  # its worker died with the agent
    assert await _api_online(sockets, viewer) == (True, True, 1)

    browsers = [await sockets.browser(viewer.token) for _ in range(2)]
    for browser in browsers:  # no agent answers: the stored state, online while the lease runs
        snapshot = await receive_type(browser, "topology.snapshot")
        assert (snapshot["host"], snapshot["online"], snapshot["seq"]) == ("h1", True, 3)
    for browser in browsers:
        status = await receive_type(browser, "host.status")
        assert (status["host"], status["online"], status["stale"]) == ("h1", False, False)
        assert status["last_seen"] is not None
    # within a look of the watch (LEASE / 3) after the lease ran out, with a second of slack
    assert timezone.now() - h.host.online_until < datetime.timedelta(seconds=LEASE / 3 + 1)

    for browser in browsers:  # told once, not at every look
        assert await browser.receive_nothing(timeout=3 * LEASE, interval=0.05)
    assert await _api_online(sockets, viewer) == (False, False, 0)
    status, body = await sockets.http(
        "POST", "/api/v1/hosts/h1/plan/", token=operator.token, body={"topology": "name: x\n"}
    )
    assert (status, body["status"]) == (202, "pending")  # queued until an agent of h1 connects
    assert (await sockets.http("GET", body["url"], token=viewer.token))[1]["status"] == "pending"


async def test_a_browser_that_never_saw_the_host_online_is_not_told_it_went_offline(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host, seconds=-1)
    browser = await sockets.browser(viewer.token)
    snapshot = await receive_type(browser, "topology.snapshot")
    assert (snapshot["host"], snapshot["online"]) == ("h1", False)
    assert await browser.receive_nothing(timeout=3 * LEASE, interval=0.05)


async def test_a_revoked_host_whose_worker_died_is_shown_offline(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host)  # a long lease: only the revocation ends it
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["online"] is True

    await database_sync_to_async(host_revoke)(host=h.host)  # the agent.revoke reaches no connection
    status = await receive_type(browser, "host.status")
    assert (status["host"], status["online"]) == ("h1", False)
    assert await database_sync_to_async(hosts_online_count)() == 0


async def test_a_reconnect_takes_the_lease_over_and_its_disconnect_ends_it(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host, seconds=60)
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["online"] is True

    agent = await sockets.agent(h.token)  # the agent reconnects, to this worker
    status = await receive_type(browser, "host.status")
    assert (status["host"], status["online"]) == ("h1", True)
    host = await database_sync_to_async(_host)()
    assert host.lease_holder.startswith("specific.") and host.lease_holder != "specific.deadworker!gone"

    await agent.disconnect()
    status = await receive_type(browser, "host.status")
    assert (status["host"], status["online"]) == ("h1", False)
    host = await database_sync_to_async(_host)()
    assert (host.online, host.online_until, host.lease_holder) == (False, None, "")


async def test_a_connection_whose_lease_a_newer_one_took_closes_and_leaves_the_host_online(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    old = await sockets.agent(h.token)
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["online"] is True

    # A newer connection took the host over on another worker, and its agent.replace was lost.
    def take_over() -> None:
        Host.objects.filter(name="h1").update(
            lease_holder="specific.otherworker!new",
            online_until=timezone.now() + datetime.timedelta(seconds=60),
        )

    await database_sync_to_async(take_over)()
    closed = await old.receive_output(RECEIVE_TIMEOUT)  # at its next renewal
    assert (closed["type"], closed["code"]) == ("websocket.close", 4009)
    await old.disconnect(code=4009)

    assert await browser.receive_nothing(timeout=3 * LEASE, interval=0.05)  # never shown offline
    host = await database_sync_to_async(_host)()
    assert (host.online, host.lease_holder) == (True, "specific.otherworker!new")


async def test_a_connection_whose_token_was_revoked_elsewhere_closes_with_4003(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)

    def revoke_quietly() -> None:  # as a worker the channel layer does not reach would
        Host.objects.filter(name="h1").update(revoked_at=timezone.now(), online_until=None)

    await database_sync_to_async(revoke_quietly)()
    closed = await agent.receive_output(RECEIVE_TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4003)
    await agent.disconnect(code=4003)
    await eventually(lambda: _host().lease_holder == "")


def _gone_names() -> set[str]:
    return {host.name for host in hosts_gone()}


async def test_hosts_gone_are_those_heard_from_without_a_running_lease(
    make_host: Callable[..., AgentHost],
) -> None:
    def setup() -> None:
        make_host("never")  # never heard from: no browser was ever told it is online
        lease_held(make_host("live").host)
        lease_held(make_host("expired").host, seconds=-1)
        left = make_host("left").host
        left.last_seen = timezone.now()
        left.save(update_fields=["last_seen"])
        revoked = lease_held(make_host("revoked").host)
        host_revoke(host=revoked)

    await database_sync_to_async(setup)()
    assert await database_sync_to_async(_gone_names)() == {"expired", "left", "revoked"}


async def test_an_operation_left_running_when_the_lease_runs_out_is_failed(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host, seconds=1.0)  # its worker died with the agent...
    op = await database_sync_to_async(operation_create)(
        host=h.host, kind="apply", topology_text="x", user=None
    )
    await database_sync_to_async(Operation.objects.filter(id=op.id).update)(status="running")  # ...running it
    browser = await sockets.browser(viewer.token)

    frame = await receive_type(browser, "operation.status", skip=("topology.snapshot", "host.status"))
    assert frame["operation"] == {
        "id": str(op.id),
        "host": "h1",
        "kind": "apply",
        "status": "failed",
        "error": DISCONNECTED,
    }
    assert not (await database_sync_to_async(_host)()).online  # not before the lease ran out
    assert (await database_sync_to_async(Operation.objects.get)(id=op.id)).status == "failed"
