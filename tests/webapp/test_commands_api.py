"""plan/apply/destroy through the API reach the host's agent and come back with its result."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from tests.webapp.conftest import RECEIVE_TIMEOUT, Account, AgentHost, Sockets, lease_held

TOPOLOGY = "topology: demo\nnodes: {web1: {}}\n"
RESULT = {"topology": "demo", "applied": True, "counts": {"links": 2}, "changes": []}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["plan", "apply", "destroy"])
async def test_a_command_round_trips_through_the_agent(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost], action: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)

    request = asyncio.create_task(
        sockets.http("POST", f"/api/v1/hosts/h1/{action}/", token=operator.token, body={"topology": TOPOLOGY})
    )
    command = await agent.receive_json_from(RECEIVE_TIMEOUT)
    assert {k: command[k] for k in ("v", "type", "action", "topology")} == {
        "v": 1,
        "type": "command",
        "action": action,
        "topology": TOPOLOGY,
    }
    await agent.send_json_to({"v": 1, "type": "result", "id": command["id"], "ok": True, "result": RESULT})

    assert await request == (200, RESULT)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("netcore_error", "status"),
    [
        ("InvalidSpec", 400),
        ("NotFound", 404),
        ("AlreadyExists", 409),
        ("Busy", 409),
        ("PermissionDenied", 502),
    ],
)
async def test_a_netcore_error_maps_to_its_status(
    sockets: Sockets, admin: Account, make_host: Callable[..., AgentHost], netcore_error: str, status: int
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    error = {
        "error": netcore_error,
        "message": "nodes.web1: bad address",
        "object": "nodes.web1",
        "errno": None,
    }

    request = asyncio.create_task(
        sockets.http("POST", "/api/v1/hosts/h1/apply/", token=admin.token, body={"topology": TOPOLOGY})
    )
    command = await agent.receive_json_from(RECEIVE_TIMEOUT)
    await agent.send_json_to({"v": 1, "type": "result", "id": command["id"], "ok": False, "error": error})

    assert await request == (status, error)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_agent_leaving_mid_command_is_503(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    request = asyncio.create_task(
        sockets.http("POST", "/api/v1/hosts/h1/apply/", token=operator.token, body={"topology": TOPOLOGY})
    )
    await agent.receive_json_from(RECEIVE_TIMEOUT)
    await agent.disconnect()

    status, body = await request
    assert (status, body["error"]) == (503, "HostOffline")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_host_marked_online_without_an_agent_is_503(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host)

    status, body = await sockets.http(
        "POST", "/api/v1/hosts/h1/plan/", token=operator.token, body={"topology": "x"}
    )
    assert (status, body["error"]) == (503, "HostOffline")


@pytest.mark.django_db
def test_an_offline_host_is_503(operator: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("h1")
    response = operator.api().post("/api/v1/hosts/h1/apply/", {"topology": TOPOLOGY}, format="json")
    assert response.status_code == 503
    assert response.json() == {"error": "HostOffline", "message": "host 'h1' has no agent connected"}


@pytest.mark.django_db
def test_viewers_may_not_run_commands(viewer: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("h1")
    response = viewer.api().post("/api/v1/hosts/h1/apply/", {"topology": TOPOLOGY}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "PermissionDenied"


@pytest.mark.django_db
def test_anonymous_may_not_run_commands(make_host: Callable[..., AgentHost]) -> None:
    make_host("h1")
    response = APIClient().post("/api/v1/hosts/h1/plan/", {"topology": TOPOLOGY}, format="json")
    assert response.status_code == 401


@pytest.mark.django_db
def test_unknown_host_is_404_and_missing_topology_is_400(operator: Account) -> None:
    client = operator.api()
    assert client.post("/api/v1/hosts/nope/plan/", {"topology": "x"}, format="json").status_code == 404
    response = client.post("/api/v1/hosts/nope/plan/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"topology": ["This field is required."]}
