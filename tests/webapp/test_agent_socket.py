"""The agent websocket: token auth, hello/welcome, revocation, and staying up through bad frames."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async

from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    AgentHost,
    Sockets,
    eventually,
    link,
    receive_type,
    state_with,
)
from webapp.hosts.models import Host
from webapp.hosts.services import host_revoke, host_token_rotate
from webapp.topology.models import HostState

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
    await ws.send_json_to(
        {"v": 1, "type": "snapshot", "seq": 1, "state": state_with(links={"host|1": link("lo", 1)})}
    )

    for text, message, resync in BAD_FRAMES:
        await ws.send_to(text_data=text)
        error = await ws.receive_json_from(RECEIVE_TIMEOUT)
        assert error["v"] == 1 and error["type"] == "error", error
        assert error["error"]["error"] == "ProtocolError"
        assert message in error["error"]["message"], (text, error)
        if resync:  # the host's state is in doubt: the server asks for a fresh snapshot
            assert await ws.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "resync"}
    await ws.send_to(bytes_data=b"\x00\x01")
    assert "binary" in (await receive_type(ws, "error"))["error"]["message"]

    # Still up, and the good frames that follow are used.
    await ws.send_json_to(
        {
            "v": 1,
            "type": "delta",
            "seq": 2,
            "events": [
                {"kind": "links", "action": "set", "key": "host|2", "object": link("br0", 2)},
            ],
        }
    )
    await ws.disconnect()
    stored = await eventually(lambda: _state_at(2))
    assert set(stored.state["links"]) == {"host|1", "host|2"}


async def test_frames_before_hello_are_refused(sockets: Sockets, make_host: Callable[..., AgentHost]) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = sockets.open("/ws/agent/", [(b"authorization", f"Token {h.token}".encode())])
    assert (await ws.connect())[0]
    await ws.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state_with()})
    error = await receive_type(ws, "error")
    assert "first frame must be hello" in error["error"]["message"]
