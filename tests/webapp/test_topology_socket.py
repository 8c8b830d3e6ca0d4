"""The browser websocket: login required, every host's snapshot on connect, then ordered deltas."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.test import Client

from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    lease_held,
    link,
    receive_type,
    state_with,
)
from webapp.topology import consumers as topology_consumers
from webapp.topology.models import HostState
from webapp.topology.services import host_state_save

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _set(key: str, obj: dict) -> dict:
    return {"kind": "links", "action": "set", "key": key, "object": obj}


def _del(key: str) -> dict:
    return {"kind": "links", "action": "del", "key": key, "object": None}


def _session_cookie(account: Account) -> bytes:
    client = Client()
    client.force_login(account.user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_refused_without_login(sockets: Sockets) -> None:
    assert await sockets.open("/ws/topology/").connect() == (False, 4003)


async def test_refused_with_a_bad_user_token(sockets: Sockets, viewer: Account) -> None:
    ws = sockets.open("/ws/topology/", [(b"authorization", b"Token not-a-token")])
    assert await ws.connect() == (False, 4003)


async def test_refused_with_a_host_token(sockets: Sockets, make_host: Callable[..., AgentHost]) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/topology/", [(b"authorization", f"Token {h.token}".encode())])
    assert await ws.connect() == (False, 4003)


async def test_accepted_with_a_session_and_a_same_site_origin(sockets: Sockets, viewer: Account) -> None:
    cookie = await database_sync_to_async(_session_cookie)(viewer)
    headers = [(b"cookie", cookie), (b"host", b"localhost:8000"), (b"origin", b"http://localhost:8000")]
    assert (await sockets.open("/ws/topology/", headers).connect())[0]


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        (b"localhost:8000", b"https://evil.example"),  # another site
        (b"localhost:8000", b"https://localhost:8000"),  # another scheme
        (b"localhost:8000", b"http://localhost:9999"),  # another port
        (b"localhost:8000", b"http://127.0.0.1:8000"),  # another host, though an allowed one
        (b"evil.example:8000", b"http://evil.example:8000"),  # same origin, on a host not allowed
        (b"", b"http://localhost:8000"),  # no Host to compare with
    ],
)
async def test_refused_from_another_origin_even_with_a_session(
    sockets: Sockets, viewer: Account, host: bytes, origin: bytes
) -> None:
    cookie = await database_sync_to_async(_session_cookie)(viewer)
    headers = [(b"cookie", cookie), (b"host", host), (b"origin", origin)]
    assert (await sockets.open("/ws/topology/", headers).connect())[0] is False


async def test_a_trusted_origin_is_accepted_behind_a_proxy(
    sockets: Sockets, viewer: Account, settings: Any
) -> None:
    """Behind a TLS proxy the request says http://127.0.0.1:8000; the browser's page is at the
    public URL, which SWITCHBOARD_TRUSTED_ORIGINS names."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://switchboard.example"]
    cookie = await database_sync_to_async(_session_cookie)(viewer)
    headers = [(b"cookie", cookie), (b"host", b"127.0.0.1:8000"), (b"origin", b"https://switchboard.example")]
    assert (await sockets.open("/ws/topology/", headers).connect())[0]


@pytest.mark.parametrize(("proxy_says", "accepted"), [(b"https", True), (b"http", False), (None, False)])
async def test_the_proxys_scheme_counts_only_behind_tls(
    sockets: Sockets, viewer: Account, settings: Any, proxy_says: bytes | None, accepted: bool
) -> None:
    """With SWITCHBOARD_BEHIND_TLS (SECURE_PROXY_SSL_HEADER), a proxy passing the public Host and
    X-Forwarded-Proto: https makes https://<host> the same origin; without the header it is not."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "switchboard.example"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    cookie = await database_sync_to_async(_session_cookie)(viewer)
    headers = [
        (b"cookie", cookie),
        (b"host", b"switchboard.example"),
        (b"origin", b"https://switchboard.example"),
    ]
    if proxy_says is not None:
        headers.append((b"x-forwarded-proto", proxy_says))
    assert (await sockets.open("/ws/topology/", headers).connect())[0] is accepted
    settings.SECURE_PROXY_SSL_HEADER = None  # not behind TLS: a client's own header proves nothing
    assert (await sockets.open("/ws/topology/", [*headers[:3], (b"x-forwarded-proto", b"https")]).connect())[
        0
    ] is False


async def test_accepted_with_a_user_token(sockets: Sockets, viewer: Account) -> None:
    ws = await sockets.browser(viewer.token)
    assert await ws.receive_nothing()  # no hosts yet: nothing to send


async def test_snapshot_then_deltas_reach_the_browser_and_the_api(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    browser = await sockets.browser(viewer.token)
    never_seen = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (never_seen["type"], never_seen["online"], never_seen["seq"]) == ("topology.snapshot", False, 0)
    agent = await sockets.agent(h.token)
    status = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (status["type"], status["host"], status["online"], status["agent_version"]) == (
        "host.status",
        "h1",
        True,
        "0.1.0",
    )

    state = state_with(links={"host|1": link("lo", 1), "host|2": link("br0", 2)})
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state})
    await agent.send_json_to(
        {"v": 1, "type": "delta", "seq": 2, "events": [_set("host|3", link("veth0", 3))]}
    )
    await agent.send_json_to({"v": 1, "type": "delta", "seq": 3, "events": [_del("host|1")]})

    snapshot = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert snapshot == {
        "v": 1,
        "type": "topology.snapshot",
        "host": "h1",
        "online": True,
        "stale": False,
        "seq": 1,
        "state": state,
        "last_seen": None,  # the agent is connected: the host is seen now
    }
    first = await browser.receive_json_from(RECEIVE_TIMEOUT)
    second = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert [(f["type"], f["seq"]) for f in (first, second)] == [("topology.delta", 2), ("topology.delta", 3)]
    assert second["events"] == [_del("host|1")]

    await eventually(lambda: HostState.objects.filter(host__name="h1", seq=3).exists())
    status_code, body = await sockets.http("GET", "/api/v1/topology/?host=h1", token=viewer.token)
    assert status_code == 200
    (entry,) = body["hosts"]
    assert (entry["host"], entry["online"], entry["seq"]) == ("h1", True, 3)
    assert sorted(o["name"] for o in entry["snapshot"]["links"]) == ["br0", "veth0"]


async def test_a_browser_that_connects_late_gets_the_current_state(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()})
    for seq in range(2, 6):
        await agent.send_json_to(
            {"v": 1, "type": "delta", "seq": seq, "events": [_set(f"host|{seq}", link(f"if{seq}", seq))]}
        )
    assert await agent.receive_nothing()  # all frames taken in

    browser = await sockets.browser(viewer.token)
    snapshot = await receive_type(browser, "topology.snapshot")
    assert (snapshot["online"], snapshot["seq"]) == (True, 5)
    assert sorted(snapshot["state"]["links"]) == [f"host|{n}" for n in range(2, 6)]

    await agent.send_json_to({"v": 1, "type": "delta", "seq": 6, "events": [_del("host|2")]})
    delta = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (delta["type"], delta["seq"]) == ("topology.delta", 6)


async def test_offline_hosts_come_from_the_stored_state_and_resync_repeats_snapshots(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    state = state_with(links={"host|7": link("br7", 7)})
    await database_sync_to_async(host_state_save)(host_id=h.host.id, seq=41, state=state)
    h.host.last_seen = datetime.datetime(2026, 11, 29, 12, 30, tzinfo=datetime.UTC)
    await database_sync_to_async(h.host.save)(update_fields=["last_seen"])

    browser = await sockets.browser(viewer.token)
    expected = {
        "v": 1,
        "type": "topology.snapshot",
        "host": "h1",
        "online": False,
        "stale": False,
        "seq": 41,
        "state": state,
        "last_seen": "2026-11-29T12:30:00+00:00",  # so the page can say since when it is offline
    }
    assert await browser.receive_json_from(RECEIVE_TIMEOUT) == expected

    await browser.send_json_to({"type": "resync"})
    assert await browser.receive_json_from(RECEIVE_TIMEOUT) == expected
    await browser.send_json_to({"type": "subscribe"})
    assert (await browser.receive_json_from(RECEIVE_TIMEOUT))["type"] == "error"


async def test_a_host_marked_online_without_an_agent_falls_back_to_its_stored_state(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(host_state_save)(host_id=h.host.id, seq=9, state=state_with())
    await database_sync_to_async(lease_held)(h.host)  # the worker holding its connection died

    browser = await sockets.browser(viewer.token)
    snapshot = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (snapshot["type"], snapshot["host"], snapshot["seq"]) == ("topology.snapshot", "h1", 9)


async def test_deltas_already_in_the_snapshot_are_dropped_and_a_gap_resyncs(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 10, "state": state_with()})
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["seq"] == 10

    layer = get_channel_layer()  # deliver deltas straight to this browser's consumer
    (channel,) = layer.groups["topology"]
    await layer.send(channel, {"type": "topology.delta", "host": "h1", "seq": 9, "events": []})
    await layer.send(channel, {"type": "topology.delta", "host": "h1", "seq": 10, "events": []})
    assert await browser.receive_nothing()
    await layer.send(channel, {"type": "topology.delta", "host": "h1", "seq": 12, "events": []})
    # A gap (11 never came): the browser is sent a fresh snapshot from the agent instead.
    snapshot = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (snapshot["type"], snapshot["seq"]) == ("topology.snapshot", 10)


async def test_a_browser_flooding_resync_gets_bounded_answers_and_the_agent_stays_up(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topology_consumers, "RESYNC_INTERVAL", 0.3)
    live, stored = [await database_sync_to_async(make_host)(name) for name in ("h1", "h2")]
    links = {f"host|{i}": link(f"if{i}", i) for i in range(1, 201)}
    state = state_with(links=links)
    await database_sync_to_async(host_state_save)(host_id=stored.host.id, seq=3, state=state)
    agent = await sockets.agent(live.token)
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links=links)})
    browser = await sockets.browser(viewer.token)
    assert {(await receive_type(browser, "topology.snapshot"))["host"] for _ in range(2)} == {"h1", "h2"}

    for _ in range(500):
        await browser.send_json_to({"type": "resync"})
    # One answer now (or at the end of the interval that the connect started), and every later
    # request shares one more: at most two snapshots per host, however many were asked for.
    answers: list[dict] = []
    while not await browser.receive_nothing(1.0):
        answers.append(await browser.receive_json_from())
    hosts = sorted(a["host"] for a in answers)
    assert hosts in (["h1", "h2"], ["h1", "h1", "h2", "h2"]), hosts
    assert sum(len(json.dumps(a)) for a in answers) < 4 * (len(json.dumps(links)) + 500)

    # The live host's agent answered once, and its connection is still up.
    await agent.send_json_to({"v": 1, "type": "delta", "seq": 2, "events": [_del("host|1")]})
    delta = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (delta["type"], delta["host"], delta["seq"]) == ("topology.delta", "h1", 2)
    assert await agent.receive_nothing()


async def test_a_resync_after_the_interval_is_answered_at_once(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topology_consumers, "RESYNC_INTERVAL", 0.2)
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(host_state_save)(host_id=h.host.id, seq=2, state=state_with())
    browser = await sockets.browser(viewer.token)
    await receive_type(browser, "topology.snapshot")
    for _ in range(3):
        await asyncio.sleep(0.25)
        await browser.send_json_to({"type": "resync"})
        assert (await browser.receive_json_from(0.1))["seq"] == 2


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"type": "resync", "x": "' + "y" * 300 + '"}']
)
async def test_a_browser_frame_that_is_not_a_short_resync_gets_an_error(
    sockets: Sockets, viewer: Account, text: str
) -> None:
    browser = await sockets.browser(viewer.token)
    await browser.send_to(text_data=text)
    assert (await browser.receive_json_from(RECEIVE_TIMEOUT))["type"] == "error"
    await browser.send_json_to({"type": "resync"})
    assert await browser.receive_nothing()  # still open (no hosts: nothing to send)
