"""plan/apply/destroy through the API are operations: answered 202 at once, queued per host, run by the
host's agent connection one at a time, and streamed to browsers as `operation.status` frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import ANY

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    lease_held,
    receive_type,
)
from webapp.audit.models import AuditEntry
from webapp.hosts import consumers as agent_consumers
from webapp.hosts.services import host_revoke
from webapp.operations.models import Operation
from webapp.operations.services import CANCEL_REQUESTED, DISCONNECTED, operation_create

TOPOLOGY = "topology: demo\nnodes: {web1: {}}\n"
RESULT = {"topology": "demo", "applied": True, "counts": {"links": 2}, "changes": []}
SKIP = ("topology.snapshot", "host.status")


async def create(sockets: Sockets, account: Account, action: str = "apply", host: str = "h1") -> str:
    status, body = await sockets.http(
        "POST", f"/api/v1/hosts/{host}/{action}/", token=account.token, body={"topology": TOPOLOGY}
    )
    assert status == 202, body
    assert body == {
        "operation": body["operation"],
        "status": "pending",
        "url": f"/api/v1/operations/{body['operation']}/",
    }
    return body["operation"]


async def get(sockets: Sockets, account: Account, operation: str) -> dict[str, Any]:
    status, body = await sockets.http("GET", f"/api/v1/operations/{operation}/", token=account.token)
    assert status == 200, body
    return body


async def command(agent: WebsocketCommunicator) -> dict[str, Any]:
    frame = await agent.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "command", frame
    return frame


async def answer(agent: WebsocketCommunicator, command_id: str, **reply: Any) -> None:
    await agent.send_json_to(
        {"v": 1, "type": "result", "id": command_id, **(reply or {"ok": True, "result": RESULT})}
    )


async def operation_frame(browser: WebsocketCommunicator) -> dict[str, Any]:
    frame = await receive_type(browser, "operation.status", skip=SKIP)
    assert set(frame) == {"v", "type", "operation"}
    return frame["operation"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_apply_limited_to_some_nodes_tells_the_agent_which(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    operation = await database_sync_to_async(operation_create)(
        host=h.host, kind="apply", topology_text=TOPOLOGY, user=operator.user, nodes=["web1"]
    )
    sent = await command(agent)
    assert (sent["id"], sent["action"], sent["topology"], sent["nodes"]) == (
        str(operation.id),
        "apply",
        TOPOLOGY,
        ["web1"],
    )


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["plan", "apply", "destroy"])
async def test_a_command_is_an_operation_the_agent_runs(
    sockets: Sockets, operator: Account, viewer: Account, make_host: Callable[..., AgentHost], action: str
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(viewer.token)

    op = await create(sockets, operator, action)
    sent = await command(agent)
    assert sent == {"v": 1, "type": "command", "id": op, "action": action, "topology": TOPOLOGY}
    running = await get(sockets, viewer, op)
    assert (running["status"], running["kind"], running["host"]) == ("running", action, "h1")
    assert running["requested_by"] == "otto" and running["started"] and running["finished"] is None
    assert running["document"] == TOPOLOGY and running["topology"] is None
    await answer(agent, op)

    frames = [await operation_frame(browser) for _ in range(3)]
    assert frames == [
        {"id": op, "host": "h1", "kind": action, "status": s} for s in ("pending", "running", "succeeded")
    ]
    done = await get(sockets, viewer, op)
    assert (done["status"], done["result"], done["error"]) == ("succeeded", RESULT, "")
    assert done["finished"] >= done["started"] >= done["created"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_netcore_error_fails_the_operation_with_it(
    sockets: Sockets, admin: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(admin.token)
    error = {
        "error": "InvalidSpec",
        "message": "nodes.web1: bad address",
        "object": "nodes.web1",
        "errno": None,
    }

    op = await create(sockets, admin)
    await answer(agent, (await command(agent))["id"], ok=False, error=error)
    await eventually(lambda: Operation.objects.get(id=op).status == "failed")  # the consumer took it

    body = await get(sockets, admin, op)
    assert (body["status"], body["result"]) == ("failed", error)
    assert body["error"] == "InvalidSpec: nodes.web1: bad address"
    statuses = [await operation_frame(browser) for _ in range(3)]
    assert statuses[-1] == {
        "id": op,
        "host": "h1",
        "kind": "apply",
        "status": "failed",
        "error": body["error"],
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_operation_waits_for_an_offline_host_and_runs_when_its_agent_connects(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    op = await create(sockets, operator, "plan")
    assert (await get(sockets, operator, op))["status"] == "pending"

    agent = await sockets.agent(h.token)
    sent = await command(agent)
    assert (sent["id"], sent["action"]) == (op, "plan")
    await answer(agent, op)
    await eventually(lambda: Operation.objects.get(id=op).status == "succeeded")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_host_runs_its_operations_in_order_one_at_a_time(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    other = await database_sync_to_async(make_host)("h2")
    agent = await sockets.agent(h.token)
    agent2 = await sockets.agent(other.token)

    first = await create(sockets, operator, "apply")
    assert (await command(agent))["id"] == first
    second = await create(sockets, operator, "plan")
    third = await create(sockets, operator, "destroy")
    elsewhere = await create(sockets, operator, "plan", host="h2")
    assert (await command(agent2))["id"] == elsewhere  # another host's queue does not wait
    assert await agent.receive_nothing(timeout=0.3)  # not while the first runs
    assert [(await get(sockets, operator, op))["status"] for op in (second, third)] == ["pending", "pending"]

    await answer(agent, first)
    assert (await command(agent))["id"] == second
    assert await agent.receive_nothing(timeout=0.2)
    await answer(
        agent, second, ok=False, error={"error": "Busy", "message": "busy", "object": None, "errno": None}
    )
    assert (await command(agent))["id"] == third
    await answer(agent, third)
    await eventually(lambda: Operation.objects.get(id=third).status == "succeeded")
    assert (await get(sockets, operator, second))["status"] == "failed"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_cancelled_pending_operation_never_runs(
    sockets: Sockets, operator: Account, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    browser = await sockets.browser(viewer.token)
    cancelled = await create(sockets, operator, "apply")
    kept = await create(sockets, operator, "plan")

    status, body = await sockets.http("POST", f"/api/v1/operations/{cancelled}/cancel/", token=viewer.token)
    assert (status, body["error"]) == (403, "PermissionDenied")
    status, body = await sockets.http("POST", f"/api/v1/operations/{cancelled}/cancel/", token=operator.token)
    assert (status, body["status"]) == (200, "cancelled") and body["finished"]
    again = await sockets.http("POST", f"/api/v1/operations/{cancelled}/cancel/", token=operator.token)
    assert again == (200, body)  # asking again changes nothing
    assert await cancels_audited(cancelled) == [{"kind": "apply", "status": "cancelled"}]

    agent = await sockets.agent(h.token)
    assert (await command(agent))["id"] == kept
    frames = [await operation_frame(browser) for _ in range(4)]
    assert [(f["id"], f["status"]) for f in frames] == [
        (cancelled, "pending"),
        (kept, "pending"),
        (cancelled, "cancelled"),
        (kept, "running"),
    ]
    assert (await get(sockets, operator, cancelled))["status"] == "cancelled"


async def cancels_audited(operation: str) -> list[dict[str, Any]]:
    """The details of the operation.cancel audit entries of an operation, oldest first."""
    entries = AuditEntry.objects.filter(action="operation.cancel", object_name=operation).order_by("id")
    return await database_sync_to_async(lambda: [e.details for e in entries])()


CANCELLED = {
    "error": "Cancelled",
    "message": "apply of topology demo was cancelled; what it had created was removed",
    "object": "demo",
    "errno": None,
}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_running_operation_is_cancelled_by_its_agent(
    sockets: Sockets, operator: Account, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(viewer.token)
    op = await create(sockets, operator)
    await command(agent)
    status, body = await sockets.http("POST", f"/api/v1/operations/{op}/cancel/", token=viewer.token)
    assert status == 403, body

    status, body = await sockets.http("POST", f"/api/v1/operations/{op}/cancel/", token=operator.token)
    assert (status, body["status"]) == (202, "running") and body["cancel_requested"], body
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "cancel", "id": op}
    status, again = await sockets.http("POST", f"/api/v1/operations/{op}/cancel/", token=operator.token)
    assert (status, again["cancel_requested"]) == (202, body["cancel_requested"])  # idempotent
    assert await agent.receive_json_from(RECEIVE_TIMEOUT) == {"v": 1, "type": "cancel", "id": op}
    running = {"kind": "apply", "status": "running", "cancel": CANCEL_REQUESTED}
    assert await cancels_audited(op) == [running]  # asked once

    await answer(agent, op, ok=False, error=CANCELLED)
    await eventually(lambda: Operation.objects.get(id=op).status == "cancelled")
    done = await get(sockets, viewer, op)
    assert (done["error"], done["result"], done["finished"]) == (CANCELLED["message"], CANCELLED, ANY)
    frames = [await operation_frame(browser) for _ in range(3)]
    assert frames[-1] == {
        "id": op,
        "host": "h1",
        "kind": "apply",
        "status": "cancelled",
        "error": CANCELLED["message"],
    }
    finish = await database_sync_to_async(AuditEntry.objects.get)(action="operation.finish", object_name=op)
    assert (finish.details["status"], finish.error) == ("cancelled", "")

    # ended: asking to cancel it changes nothing, and nothing more is audited
    status, after = await sockets.http("POST", f"/api/v1/operations/{op}/cancel/", token=operator.token)
    assert (status, after) == (200, done)
    assert await cancels_audited(op) == [running]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_cancel_the_agent_answers_too_late_for_leaves_the_operation_as_it_ended(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    """The agent finished before the cancel reached it: the operation succeeded, and says so."""
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    op = await create(sockets, operator)
    await command(agent)
    status, _ = await sockets.http("POST", f"/api/v1/operations/{op}/cancel/", token=operator.token)
    assert status == 202
    assert (await agent.receive_json_from(RECEIVE_TIMEOUT))["type"] == "cancel"
    await answer(agent, op)  # what a real agent does when the cancel came after its last safe point
    await eventually(lambda: Operation.objects.get(id=op).status == "succeeded")
    body = await get(sockets, operator, op)
    assert (body["status"], body["error"], body["cancel_requested"] is not None) == ("succeeded", "", True)


def progress(op: str, done: int, total: int = 300, **more: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "progress",
        "id": op,
        "done": done,
        "total": total,
        "step": "building nodes",
        **more,
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_progress_reaches_browsers_and_the_api_and_ends_with_the_operation(
    sockets: Sockets, operator: Account, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(viewer.token)
    op = await create(sockets, operator)
    await command(agent)
    assert [(await operation_frame(browser))["status"] for _ in range(2)] == ["pending", "running"]

    await agent.send_json_to(progress(op, 128))
    assert await operation_frame(browser) == {
        "id": op,
        "host": "h1",
        "kind": "apply",
        "status": "running",
        "progress": "building nodes 128/300",
        "done": 128,
        "total": 300,
    }
    await eventually(lambda: Operation.objects.get(id=op).progress_done == 128)
    body = await get(sockets, viewer, op)
    assert (body["progress"], body["done"], body["total"]) == ("building nodes 128/300", 128, 300)

    await agent.send_json_to(progress("another-operation", 1))  # not the one running: ignored
    await agent.send_json_to(progress(op, 301))
    refused = await agent.receive_json_from(RECEIVE_TIMEOUT)
    assert refused["error"]["message"] == "progress: 'done' must be from 0 to 'total'"

    await answer(agent, op)
    ended = await operation_frame(browser)  # the ignored and refused reports reached no browser
    assert ended == {"id": op, "host": "h1", "kind": "apply", "status": "succeeded"}
    await eventually(lambda: Operation.objects.get(id=op).status == "succeeded")
    body = await get(sockets, viewer, op)
    assert (body["progress"], body["done"], body["total"]) == ("", None, None)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_progress_is_stored_at_most_once_an_interval(
    sockets: Sockets,
    operator: Account,
    viewer: Account,
    make_host: Callable[..., AgentHost],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Browsers hear every report; the database is written once for a burst of them."""
    monkeypatch.setattr(agent_consumers, "PROGRESS_SAVE_INTERVAL", 3600.0)  # the burst lies within one
    writes: list[int] = []
    real = agent_consumers.operation_progress

    def counted(**kwargs: Any) -> bool:
        writes.append(kwargs["done"])
        return real(**kwargs)

    monkeypatch.setattr(agent_consumers, "operation_progress", counted)
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(viewer.token)
    op = await create(sockets, operator)
    await command(agent)
    for done in range(20):
        await agent.send_json_to(progress(op, done))
    heard = [await operation_frame(browser) for _ in range(22)][2:]
    assert [f["done"] for f in heard] == list(range(20))
    assert writes == [0]
    assert (await get(sockets, viewer, op))["done"] == 0
    await answer(agent, op)
    await eventually(lambda: Operation.objects.get(id=op).status == "succeeded")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_agent_leaving_mid_operation_fails_it_and_a_late_answer_is_kept(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(operator.token)
    op = await create(sockets, operator)
    queued = await create(sockets, operator, "plan")
    await command(agent)
    await agent.disconnect()

    body = await get(sockets, operator, op)
    assert (body["status"], body["error"]) == ("failed", DISCONNECTED)
    assert (await get(sockets, operator, queued))["status"] == "pending"  # kept for the next connection
    frames = [await operation_frame(browser) for _ in range(4)]
    assert frames[-1] == {"id": op, "host": "h1", "kind": "apply", "status": "failed", "error": DISCONNECTED}

    # The agent kept running it and answers on its next connection, which then runs the queued one.
    agent = await sockets.agent(h.token)
    assert (await command(agent))["id"] == queued
    await answer(agent, op)
    await eventually(lambda: Operation.objects.get(id=op).status == "succeeded")
    assert (await get(sockets, operator, op))["error"] == ""


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_operation_left_running_by_a_dead_worker_fails_when_the_agent_reconnects(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(lease_held)(h.host)  # the worker holding the agent died...
    op = await create(sockets, operator)
    await database_sync_to_async(Operation.objects.filter(id=op).update)(status="running")  # ...running it
    nxt = await create(sockets, operator, "plan")

    agent = await sockets.agent(h.token)
    assert (await command(agent))["id"] == nxt
    body = await get(sockets, operator, op)
    assert (body["status"], body["error"]) == ("failed", DISCONNECTED)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_agent_cannot_answer_for_another_hosts_operation(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h1 = await database_sync_to_async(make_host)("h1")
    h2 = await database_sync_to_async(make_host)("h2")
    agent1 = await sockets.agent(h1.token)
    agent2 = await sockets.agent(h2.token)
    op = await create(sockets, operator)
    await command(agent1)
    await answer(agent2, op)
    await answer(agent2, "not-a-uuid")
    assert await agent2.receive_nothing(timeout=0.2)
    assert (await get(sockets, operator, op))["status"] == "running"


@pytest.mark.django_db
def test_viewers_may_read_but_not_create_or_cancel(
    viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    response = viewer.api().post("/api/v1/hosts/h1/apply/", {"topology": TOPOLOGY}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "PermissionDenied"
    assert viewer.api().get("/api/v1/operations/").json()["count"] == 0


@pytest.mark.django_db
def test_anonymous_may_not_run_or_read_operations(make_host: Callable[..., AgentHost]) -> None:
    make_host("h1")
    assert (
        APIClient().post("/api/v1/hosts/h1/plan/", {"topology": TOPOLOGY}, format="json").status_code == 401
    )
    assert APIClient().get("/api/v1/operations/").status_code == 401


@pytest.mark.django_db
def test_unknown_host_is_404_and_missing_topology_is_400(operator: Account) -> None:
    client = operator.api()
    assert client.post("/api/v1/hosts/nope/plan/", {"topology": "x"}, format="json").status_code == 404
    response = client.post("/api/v1/hosts/nope/plan/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"topology": ["This field is required."]}
    assert Operation.objects.count() == 0


@pytest.mark.django_db
def test_a_revoked_host_gets_no_operations(operator: Account, make_host: Callable[..., AgentHost]) -> None:
    host_revoke(host=make_host("h1").host)
    response = operator.api().post("/api/v1/hosts/h1/apply/", {"topology": TOPOLOGY}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "Conflict"


@pytest.mark.django_db
def test_unknown_operations_are_404(viewer: Account, operator: Account) -> None:
    for path in ("/api/v1/operations/nope/", "/api/v1/operations/6f1c1d7e-0000-4000-8000-000000000000/"):
        response = viewer.api().get(path)
        assert (response.status_code, response.json()["error"]) == (404, "NotFound")
    response = operator.api().post("/api/v1/operations/nope/cancel/")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_list_filters_by_host_and_status_newest_first(
    operator: Account, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    make_host("h2")
    client = operator.api()
    made = {}
    for host, kind in [("h1", "plan"), ("h1", "apply"), ("h2", "destroy")]:
        response = client.post(f"/api/v1/hosts/{host}/{kind}/", {"topology": TOPOLOGY}, format="json")
        assert response.status_code == 202
        made[(host, kind)] = response.json()["operation"]
    client.post(f"/api/v1/operations/{made[('h1', 'plan')]}/cancel/")

    def ids(query: str) -> list[str]:
        response = viewer.api().get(f"/api/v1/operations/{query}")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["count"] == len(body["results"])
        return [op["id"] for op in body["results"]]

    assert ids("") == [made[("h2", "destroy")], made[("h1", "apply")], made[("h1", "plan")]]
    assert ids("?host=h1") == [made[("h1", "apply")], made[("h1", "plan")]]
    assert ids("?status=pending") == [made[("h2", "destroy")], made[("h1", "apply")]]
    assert ids("?host=h1&status=cancelled") == [made[("h1", "plan")]]
    assert ids("?host=nope") == []
    page = viewer.api().get("/api/v1/operations/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    response = viewer.api().get("/api/v1/operations/?status=bogus")
    assert response.status_code == 400 and response.json()["fields"]["status"], response.json()
    listed = viewer.api().get("/api/v1/operations/?host=h2").json()["results"][0]
    assert listed["url"] == f"/api/v1/operations/{made[('h2', 'destroy')]}/" and "document" not in listed


@pytest.mark.django_db
def test_the_schema_describes_operations(viewer: Account) -> None:
    response = viewer.api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"]
    assert {"/api/v1/operations/", "/api/v1/operations/{id}/", "/api/v1/operations/{id}/cancel/"} <= set(
        paths
    )
    for action in ("plan", "apply", "destroy"):
        responses = paths[f"/api/v1/hosts/{{name}}/{action}/"]["post"]["responses"]
        assert "202" in responses and "200" not in responses
    listing = paths["/api/v1/operations/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"host", "status", "page", "page_size"}
    assert {"200", "202", "403", "404"} <= set(paths["/api/v1/operations/{id}/cancel/"]["post"]["responses"])
