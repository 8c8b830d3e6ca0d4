"""The agent websocket: token auth, hello/welcome, revocation, and staying up through bad frames."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    link,
    receive_type,
    state_with,
)
from webapp.hosts import consumers as agent_consumers
from webapp.hosts.models import Host
from webapp.hosts.services import host_revoke, host_token_rotate
from webapp.topology.models import HostState
from webapp.topology.services import host_state_save

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _host(name: str = "h1") -> Host:
    return Host.objects.get(name=name)


def _offline_host() -> Host | None:
    host = _host()
    return None if host.online else host


def _state_at(seq: int) -> HostState | None:
    return HostState.objects.filter(host__name="h1", seq=seq).first()


async def test_a_valid_token_connects_and_hello_marks_the_host_online(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/agent/", [(b"authorization", f"Token {h.token}".encode())])
    assert (await ws.connect())[0]
    await ws.send_json_to({"v": 1, "type": "hello", "host": "node1", "agent_version": "0.2", "protocol": 1})
    assert await ws.receive_json_from() == {"v": 1, "type": "welcome", "host": "h1"}

    host = await database_sync_to_async(_host)()
    assert (host.online, host.hostname, host.agent_version) == (True, "node1", "0.2")
    assert host.last_seen is not None

    await ws.disconnect()
    host = await eventually(_offline_host)
    assert host.last_seen is not None


@pytest.mark.parametrize("header", [None, b"Token sbh_unknown", b"Bearer x", b"Token "])
async def test_missing_or_unknown_tokens_are_refused_before_accept(
    sockets: Sockets, make_host: Callable[..., AgentHost], header: bytes | None
) -> None:
    await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/agent/", [(b"authorization", header)] if header else [])
    assert await ws.connect() == (False, 4003)


async def test_a_revoked_token_is_refused(sockets: Sockets, make_host: Callable[..., AgentHost]) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(host_revoke)(host=h.host)
    ws = sockets.open("/ws/agent/", [(b"authorization", f"Token {h.token}".encode())])
    assert await ws.connect() == (False, 4003)


@pytest.mark.parametrize("change", [host_revoke, host_token_rotate])
async def test_revoking_or_rotating_closes_the_live_connection_with_4003(
    sockets: Sockets, make_host: Callable[..., AgentHost], change: Callable[..., object]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = await sockets.agent(h.token)

    await database_sync_to_async(change)(host=await database_sync_to_async(_host)())

    closed = await ws.receive_output(RECEIVE_TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4003)
    await ws.disconnect(code=4003)
    assert not (await database_sync_to_async(_host)()).online


async def test_a_new_connection_of_the_same_host_replaces_the_old(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    old = await sockets.agent(h.token)
    new = await sockets.agent(h.token)

    closed = await old.receive_output(RECEIVE_TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4009)
    await old.disconnect(code=4009)
    assert (await database_sync_to_async(_host)()).online  # the old one leaving does not mark it offline

    await new.send_json_to({"v": 1, "type": "pong", "id": "p1"})
    assert await new.receive_nothing()


BAD_FRAMES = [
    ("not json at all", "not JSON", False),
    (json.dumps([1, 2, 3]), "JSON object", False),
    (json.dumps({"v": 1, "type": "teleport"}), "unknown frame type", False),
    (json.dumps({"v": 1, "type": "delta", "seq": 2}), "missing field 'events'", True),
    (json.dumps({"v": 1, "type": "delta", "seq": 2, "events": "links"}), "'events' must be a list", True),
    (json.dumps({"v": 1, "type": "delta", "seq": 2, "events": [{"kind": "links"}]}), "events[0]", True),
    (json.dumps({"v": 1, "type": "snapshot", "seq": "2", "state": {}}), "'seq' must be an integer", True),
    (
        json.dumps({"v": 1, "type": "hello", "host": "n", "agent_version": "1", "protocol": 2}),
        "protocol 2",
        False,
    ),
]


async def test_malformed_frames_get_protocol_errors_and_the_connection_keeps_working(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = await sockets.agent(h.token)
    seq = 1
    state = state_with(links={"host|1": link("lo", 1)})
    await ws.send_json_to({"v": 1, "type": "snapshot", "seq": seq, "state": state})

    for text, message, resync in BAD_FRAMES:
        await ws.send_to(text_data=text.replace('"seq": 2', f'"seq": {seq + 1}'))
        error = await ws.receive_json_from(RECEIVE_TIMEOUT)
        assert error["v"] == 1 and error["type"] == "error", error
        assert error["error"]["error"] == "ProtocolError"
        assert message in error["error"]["message"], (text, error)
        if resync:  # the host's state is in doubt: the server asks for a fresh snapshot
            assert await ws.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}
            seq += 1
            await ws.send_json_to({"v": 1, "type": "snapshot", "seq": seq, "state": state})
    await ws.send_to(bytes_data=b"\x00\x01")
    assert "binary" in (await receive_type(ws, "error"))["error"]["message"]

    # Still up, and the good frames that follow are used.
    await ws.send_json_to(
        {
            "v": 1,
            "type": "delta",
            "seq": seq + 1,
            "events": [
                {"kind": "links", "action": "set", "key": "host|2", "object": link("br0", 2)},
            ],
        }
    )
    await ws.disconnect()
    stored = await eventually(lambda: _state_at(seq + 1))
    assert set(stored.state["links"]) == {"host|1", "host|2"}


async def test_frames_before_hello_are_refused(sockets: Sockets, make_host: Callable[..., AgentHost]) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/agent/", [(b"authorization", f"Token {h.token}".encode())])
    assert (await ws.connect())[0]
    await ws.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()})
    error = await receive_type(ws, "error")
    assert "first frame must be hello" in error["error"]["message"]


# A strict protocol: the agent is authenticated, not trusted.


def _delta(seq: int, *events: dict) -> dict:
    return {"v": 1, "type": "delta", "seq": seq, "events": list(events)}


def _set_link(key: str, obj: dict) -> dict:
    return {"kind": "links", "action": "set", "key": key, "object": obj}


async def _error(ws: WebsocketCommunicator) -> str:
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "error", frame
    return frame["error"]["message"]


async def _stored_links(seq: int) -> set[str]:
    stored = await eventually(lambda: _state_at(seq))
    return set(stored.state["links"])


async def test_a_delta_out_of_order_is_not_applied_and_a_resync_is_asked_once(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()})
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["seq"] == 1

    await agent.send_json_to(_delta(3, _set_link("host|3", link("if3", 3))))  # 2 was lost
    assert "seq 3 does not follow 1" in await _error(agent)
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}
    status = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (status["type"], status["online"], status["stale"]) == ("host.status", True, True)

    # Deltas already on their way are dropped: no second resync, nothing reaches browsers.
    await agent.send_json_to(_delta(4, _set_link("host|4", link("if4", 4))))
    assert await agent.receive_nothing()
    assert await browser.receive_nothing()

    await agent.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 5, "state": state_with(links={"host|4": link("if4", 4)})}
    )
    await agent.send_json_to(_delta(6, _set_link("host|6", link("if6", 6))))
    snapshot = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (snapshot["type"], snapshot["seq"], snapshot["stale"]) == ("topology.snapshot", 5, False)
    assert (await browser.receive_json_from(RECEIVE_TIMEOUT))["seq"] == 6
    assert await _stored_links(6) == {"host|4", "host|6"}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_delta(2), "seq 2 does not follow 2"),  # repeated
        (_delta(1), "seq 1 does not follow 2"),  # older
        ({"v": 1, "type": "snapshot", "seq": 2, "state": state_with()}, "snapshot seq 2 is not after 2"),
        ({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()}, "snapshot seq 1 is not after 2"),
    ],
    ids=["repeated_delta", "old_delta", "repeated_snapshot", "old_snapshot"],
)
async def test_a_repeated_or_older_seq_is_refused(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost], frame: dict, message: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )
    await agent.send_json_to(_delta(2, _set_link("host|2", link("br0", 2))))
    browser = await sockets.browser(viewer.token)
    assert (await receive_type(browser, "topology.snapshot"))["seq"] == 2

    await agent.send_json_to(frame)
    assert message in await _error(agent)
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}
    assert (await browser.receive_json_from(RECEIVE_TIMEOUT))["type"] == "host.status"
    assert await browser.receive_nothing()
    await agent.disconnect()
    assert await _stored_links(2) == {"host|1", "host|2"}


async def test_only_one_resync_is_outstanding_however_many_frames_are_refused(
    sockets: Sockets, make_host: Callable[..., AgentHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    bad = {"v": 1, "type": "snapshot", "seq": 1, "state": {"links": {"host|1": {"name": "lo"}}}}
    for attempt in range(5):
        await agent.send_json_to(bad)
        assert "missing field" in await _error(agent)
        if attempt == 0:
            assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}
    assert await agent.receive_nothing()

    monkeypatch.setattr(agent_consumers, "RESYNC_RETRY", 0.0)  # an agent that never answers is asked again
    await agent.send_json_to(bad)
    assert "missing field" in await _error(agent)
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}


def _nested(depth: int, *, closed: bool = True) -> str:
    return "[" * depth + ("]" * depth if closed else "")


@pytest.mark.parametrize(
    "text",
    [
        '{"v": 1, "type": "delta", "seq": 2, "events": ' + _nested(100_000) + "}",
        _nested(100_000, closed=False),
        '{"v": 1, "type": "result", "id": "c1", "ok": true, "result": {"x": ' + _nested(100_000) + "}}",
        '{"v": 1, "type": "pong", "id": "p", "x": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
    ],
    ids=["delta", "unclosed", "result", "objects"],
)
async def test_deep_nesting_is_refused_and_the_host_stays_consistent(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost], text: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )
    browser = await sockets.browser(viewer.token)
    await receive_type(browser, "topology.snapshot")

    await agent.send_to(text_data=text)
    message = await _error(agent)
    assert "nest deeper than" in message or "do not balance" in message

    # The socket is still open, the host online, and the next delta follows on.
    assert (await database_sync_to_async(_host)()).online
    await agent.send_json_to(_delta(2, _set_link("host|2", link("br0", 2))))
    delta = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (delta["type"], delta["seq"]) == ("topology.delta", 2)
    assert await agent.receive_nothing()


@pytest.mark.parametrize(
    "text",
    [
        '{"v": 1, "type": "snapshot", "seq": 1180591620717411303424, "state": {}}',  # 2**70
        json.dumps(_delta(2, _set_link("host|2", link("br0", 2)))).replace("1500", str(2**70)),
        '{"v": 1, "type": "pong", "id": "p", "n": ' + "9" * 5000 + "}",
        '{"v": 1, "type": "pong", "id": "p", "n": 1e999}',
    ],
    ids=["seq", "object_field", "5000_digits", "infinite"],
)
async def test_numbers_out_of_range_are_refused(
    sockets: Sockets, make_host: Callable[..., AgentHost], text: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    await agent.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )
    await agent.send_to(text_data=text)
    message = await _error(agent)
    assert "outside ±(2**53 - 1)" in message or "not finite" in message, message

    await agent.send_json_to(_delta(2, _set_link("host|2", link("br0", 2))))
    assert await agent.receive_nothing()
    await agent.disconnect()
    assert await _stored_links(2) == {"host|1", "host|2"}
    assert not (await database_sync_to_async(_host)()).online


BROKEN_LINKS = {
    "missing_name": {k: v for k, v in link("x", 9).items() if k != "name"},
    "old_field_names": {"namespace": "host", "ifindex": 9, "name": "x", "kind": "bridge"},
    "name_not_a_string": {**link("x", 9), "name": 7},
    "name_too_long": {**link("x", 9), "name": "x" * 16},
    "nul_in_alias": {**link("x", 9), "alias": "a\x00b"},
    "extra_field": {**link("x", 9), "colour": "red"},
}


@pytest.mark.parametrize("how", ["snapshot", "delta"])
@pytest.mark.parametrize("broken", list(BROKEN_LINKS))
async def test_an_object_off_the_schema_is_refused_at_the_edge(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost], broken: str, how: str
) -> None:
    good_host, bad_host = [await database_sync_to_async(make_host)(name) for name in ("h0", "h1")]
    good = await sockets.agent(good_host.token)
    await good.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )
    bad = await sockets.agent(bad_host.token)
    await bad.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )
    browser = await sockets.browser(viewer.token)
    assert {(await receive_type(browser, "topology.snapshot"))["host"] for _ in range(2)} == {"h0", "h1"}

    obj = BROKEN_LINKS[broken]
    if how == "snapshot":
        await bad.send_json_to({"v": 1, "type": "snapshot", "seq": 2, "state": {"links": {"host|9": obj}}})
    else:
        await bad.send_json_to(_delta(2, _set_link("host|9", obj)))
    assert "host|9" in await _error(bad)
    assert await bad.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}

    # Browsers hear that h1 is stale, never see the object; h0 goes on as before.
    status = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (status["type"], status["host"], status["stale"]) == ("host.status", "h1", True)
    await good.send_json_to(_delta(2, _set_link("host|2", link("br0", 2))))
    delta = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (delta["host"], delta["seq"]) == ("h0", 2)
    await browser.send_json_to({"type": "resync"})
    for _ in range(2):
        snapshot = await receive_type(browser, "topology.snapshot")
        assert "host|9" not in snapshot["state"]["links"]
    await bad.disconnect()
    assert "host|9" not in await _stored_links(1)


async def test_a_fault_while_handling_a_frame_does_not_close_the_socket_or_leave_the_host_online(
    sockets: Sockets, make_host: Callable[..., AgentHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(**kwargs: object) -> None:
        raise RuntimeError("the disk caught fire")

    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    monkeypatch.setattr(agent_consumers, "host_state_save", broken_save)
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()})
    assert "could not handle" in await _error(agent)
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}

    await agent.send_json_to({"v": 1, "type": "pong", "id": "p1"})
    assert await agent.receive_nothing()  # still open
    monkeypatch.undo()
    await agent.disconnect()
    await eventually(_offline_host)


async def test_hello_naming_another_host_is_recorded_as_the_reported_hostname(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h1, h2 = [await database_sync_to_async(make_host)(name) for name in ("h1", "h2")]
    await database_sync_to_async(host_state_save)(
        host_id=h2.host.id, seq=4, state=state_with(links={"host|1": link("lo", 1)})
    )
    browser = await sockets.browser(viewer.token)
    for _ in range(2):
        await receive_type(browser, "topology.snapshot")

    agent = await sockets.agent(h1.token, hostname="h2")  # asserts the welcome
    status = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (status["type"], status["host"], status["online"]) == ("host.status", "h1", True)
    await agent.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|7": link("br7", 7)})}
    )
    snapshot = await browser.receive_json_from(RECEIVE_TIMEOUT)
    assert (snapshot["host"], list(snapshot["state"]["links"])) == ("h1", ["host|7"])

    first, second = await database_sync_to_async(lambda: (_host("h1"), _host("h2")))()
    assert (first.online, first.hostname) == (True, "h2")
    assert (second.online, second.hostname) == (False, "")
    stored = await database_sync_to_async(lambda: HostState.objects.get(host__name="h2"))()
    assert (stored.seq, list(stored.state["links"])) == (4, ["host|1"])


@pytest.mark.parametrize("hostname", ["", "h2\nh1", "x" * 256, "h2\x1b[31m"])
async def test_hello_with_an_unusable_hostname_is_refused(
    sockets: Sockets, make_host: Callable[..., AgentHost], hostname: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/agent/", [(b"authorization", f"Token {h.token}".encode())])
    assert (await ws.connect())[0]
    await ws.send_json_to({"v": 1, "type": "hello", "host": hostname, "agent_version": "1", "protocol": 1})
    assert "hello: field 'host'" in await _error(ws)
    host = await database_sync_to_async(_host)()
    assert (host.online, host.hostname) == (False, "")
