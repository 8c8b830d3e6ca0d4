"""A desired topology's status (derived from its latest operation and its host's presence) and the
level-based reconcile: when a host's agent says hello, every topology applied there is planned again;
only creations are restored by an apply, changes or removals are drift (applied only with auto_repair),
an empty plan means ready."""

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
)
from webapp.hosts.models import Host
from webapp.networks import selectors, services
from webapp.networks.models import Topology
from webapp.networks.services import Reconcile, reconcile_decision
from webapp.operations.models import Operation

URL = "/api/v1/topologies/"
RC = """\
name: rc
networks:
  lan: {subnet: 198.18.41.0/24}
nodes:
  a: {networks: {lan: {address: 198.18.41.10}}}
  b: {networks: {lan: {address: 198.18.41.20}}}
"""

# Plans as netcore's converge.plan answered them (netcore.agent.commands: result.to_dict()), taken on
# a throwaway namespace: RC on an empty host, RC applied, RC applied and `ip netns del rc-b`, RC
# applied and an address added by hand in rc-a, then RC with b moved to .30 over that.


def _change(action: str, kind: str, name: str, detail: str = "") -> dict[str, str]:
    return {"action": action, "kind": kind, "name": name, "detail": detail}


def _plan(*changes: dict[str, str]) -> dict[str, Any]:
    counts = {
        action: sum(c["action"] == action for c in changes) for action in ("create", "update", "delete")
    }
    return {"topology": "rc", "applied": False, "counts": counts, "changes": list(changes)}


LOST_B = [
    _change("create", "namespace", "rc-b", "node b"),
    _change("create", "veth", "rc-b-lan", "rc-b:eth0 198.18.41.20/24 on rc-lan"),
    _change("create", "route", "0.0.0.0/0 in rc-b", "via 198.18.41.1 dev eth0"),
]
FRESH = _plan(
    _change("create", "bridge", "rc-lan", "network lan, gateway 198.18.41.1/24"),
    _change("create", "address", "198.18.41.1/24 on rc-lan", "gateway"),
    _change("create", "namespace", "rc-a", "node a"),
    _change("create", "veth", "rc-a-lan", "rc-a:eth0 198.18.41.10/24 on rc-lan"),
    _change("create", "route", "0.0.0.0/0 in rc-a", "via 198.18.41.1 dev eth0"),
    *LOST_B,
)
SAME = _plan()
LOST = _plan(*LOST_B)
EXTRA_ADDRESS = _plan(_change("delete", "address", "198.18.41.11/24 on rc-a:eth0"))
MOVED = _plan(
    _change("delete", "address", "198.18.41.11/24 on rc-a:eth0"),
    _change("delete", "address", "198.18.41.20/24 on rc-b:eth0"),
    _change("create", "address", "198.18.41.30/24 on rc-b:eth0"),
)
BRIDGE_MTU = _plan(_change("update", "bridge", "rc-lan", "mtu 1400"))


@pytest.mark.parametrize(
    ("result", "auto_repair", "decision"),
    [
        (SAME, False, Reconcile.READY),
        (FRESH, False, Reconcile.RESTORE),
        (LOST, False, Reconcile.RESTORE),
        (LOST, True, Reconcile.RESTORE),
        (EXTRA_ADDRESS, False, Reconcile.DRIFTED),
        (MOVED, False, Reconcile.DRIFTED),
        (BRIDGE_MTU, False, Reconcile.DRIFTED),
        (EXTRA_ADDRESS, True, Reconcile.REPAIR),
        (BRIDGE_MTU, True, Reconcile.REPAIR),
        (None, False, Reconcile.READY),
    ],
)
def test_the_decision_follows_the_plans_signs(result: Any, auto_repair: bool, decision: Reconcile) -> None:
    assert reconcile_decision(result=result, auto_repair=auto_repair) is decision


def test_plan_lines_read_as_netcore_prints_them() -> None:
    assert selectors.plan_lines(MOVED) == [
        "- address 198.18.41.11/24 on rc-a:eth0",
        "- address 198.18.41.20/24 on rc-b:eth0",
        "+ address 198.18.41.30/24 on rc-b:eth0",
    ]
    assert selectors.plan_lines(LOST)[0] == "+ namespace rc-b (node b)"
    assert selectors.plan_lines(BRIDGE_MTU) == ["~ bridge rc-lan (mtu 1400)"]


# Status


def _topology(host: Host, *, text: str = RC, auto_repair: bool = False) -> Topology:
    return services.topology_create(host=host, document=text, user=None, auto_repair=auto_repair)


def _operation(topology: Topology, kind: str, status: str, **fields: Any) -> Operation:
    operation = services.topology_operation(topology=topology, kind=kind, user=None)
    Operation.objects.filter(id=operation.id).update(status=status, **fields)
    operation.refresh_from_db()
    return operation


def _status(account: Account, name: str = "rc", host: str = "h1") -> tuple[str, str]:
    detail = account.api().get(f"{URL}{name}/?host={host}").json()
    listed = [t for t in account.api().get(f"{URL}?host={host}").json()["results"] if t["name"] == name]
    assert [(t["status"], t["status_message"]) for t in listed] == [
        (detail["status"], detail["status_message"])
    ]
    return detail["status"], detail["status_message"]


@pytest.mark.django_db
def test_status_through_the_api(viewer: Account, make_host: Callable[..., AgentHost]) -> None:
    host = make_host("h1").host
    topology = _topology(host)
    assert _status(viewer) == ("new", "never applied")

    # queued while the host was never seen, then after it was seen; queued with the host online
    queued = _operation(topology, "apply", "pending")
    assert _status(viewer) == ("waiting", "waiting for host h1 (never connected)")
    seen = timezone.now() - datetime.timedelta(minutes=5)
    Host.objects.filter(id=host.id).update(last_seen=seen)
    assert _status(viewer) == ("waiting", f"waiting for host h1 (offline since {seen.isoformat()})")
    lease_held(Host.objects.get(id=host.id))
    assert _status(viewer) == ("pending", "apply queued on host h1")

    Operation.objects.filter(id=queued.id).update(status="running")
    assert _status(viewer) == ("applying", "applying on host h1")
    Operation.objects.filter(id=queued.id).update(status="succeeded", result=FRESH)
    assert _status(viewer) == ("ready", "applied on host h1")

    # a cancelled operation says nothing; a failed one says why
    _operation(topology, "destroy", "cancelled")
    assert _status(viewer)[0] == "ready"
    _operation(topology, "apply", "failed", error="InvalidSpec: nodes.a: bad address")
    assert _status(viewer) == ("error", "InvalidSpec: nodes.a: bad address")
    _operation(topology, "apply", "succeeded")

    # a plan of the applied topology: nothing to change, or drift (its lines); a plan running
    plan = _operation(topology, "plan", "succeeded", result=SAME)
    assert _status(viewer) == ("ready", "applied on host h1; the last plan found nothing to change")
    Operation.objects.filter(id=plan.id).update(result=EXTRA_ADDRESS)
    assert _status(viewer) == (
        "drifted",
        "host h1 differs from the applied topology:\n- address 198.18.41.11/24 on rc-a:eth0",
    )
    _operation(topology, "plan", "running")
    assert _status(viewer) == ("pending", "planning on host h1")

    # edited since it was applied: changed, and a plan of the edit says what applying it does (no drift)
    _operation(topology, "plan", "succeeded", result=SAME)
    topology = services.topology_update(
        topology=topology, document=RC.replace(".20}", ".21}"), version=1, user=None
    )
    changed = "changed since version 1 was applied on host h1: plan, then apply, to make it so"
    assert _status(viewer) == ("changed", changed)
    _operation(topology, "plan", "succeeded", result=EXTRA_ADDRESS)
    assert _status(viewer) == ("changed", f"{changed}\n- address 198.18.41.11/24 on rc-a:eth0")
    _operation(topology, "apply", "succeeded")
    assert _status(viewer) == ("ready", "applied on host h1")

    # destroyed: a plan of it creates everything, which is no drift
    _operation(topology, "destroy", "succeeded")
    assert _status(viewer) == ("new", "destroyed on host h1")
    _operation(topology, "plan", "succeeded", result=FRESH)
    assert _status(viewer) == ("new", "destroyed on host h1")


@pytest.mark.django_db
def test_listing_statuses_takes_a_constant_number_of_queries(
    viewer: Account, make_host: Callable[..., AgentHost], django_assert_num_queries: Any
) -> None:
    host = make_host("h1").host
    topology = _topology(host)
    _operation(topology, "apply", "succeeded")
    client = viewer.api()
    client.get(URL)  # the session and token are warm
    # lockout of the address, token, count, page, operations, share rows of spanning topologies
    with django_assert_num_queries(6) as once:
        assert client.get(URL).json()["results"][0]["status"] == "ready"
    for index in range(2, 8):
        more = _topology(host, text=RC.replace("rc", f"rc{index}").replace(".41.", f".{41 + index}."))
        _operation(more, "apply", "succeeded")
        _operation(more, "plan", "succeeded", result=MOVED)
    with django_assert_num_queries(len(once.captured_queries)):
        statuses = [t["status"] for t in client.get(URL).json()["results"]]
    assert statuses == ["ready"] + ["drifted"] * 6


# Reconcile on connect (a fake agent)


async def _command(agent: Any) -> dict[str, Any]:
    frame = await agent.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "command", frame
    return frame


async def _answer(agent: Any, frame: dict[str, Any], result: dict[str, Any]) -> None:
    await agent.send_json_to({"v": 1, "type": "result", "id": frame["id"], "ok": True, "result": result})


def _applied(host: Host, *, auto_repair: bool = False) -> tuple[Topology, Operation]:
    topology = _topology(host, auto_repair=auto_repair)
    return topology, _operation(topology, "apply", "succeeded", result=FRESH)


def _state(name: str = "rc") -> tuple[str, str]:
    found = selectors.topology_status(selectors.topology_get(name=name, host="h1"))
    return found.status, found.message


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_hello_plans_the_applied_topologies_only(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")

    def arrange() -> Operation:
        topology, applied = _applied(h.host)
        # edited since it was applied: reconcile plans what was applied, not the edit
        services.topology_update(topology=topology, document=RC.replace(".20}", ".21}"), version=1, user=None)
        _topology(h.host, text=RC.replace("rc", "nw").replace(".41.", ".42."))  # never applied
        gone = _topology(h.host, text=RC.replace("rc", "gone").replace(".41.", ".43."))
        _operation(gone, "apply", "succeeded")
        _operation(gone, "destroy", "succeeded")
        broken = _topology(h.host, text=RC.replace("rc", "bad").replace(".41.", ".44."))
        _operation(broken, "apply", "failed", error="x")
        return applied

    applied = await database_sync_to_async(arrange)()
    browser = await sockets.browser(viewer.token)
    agent = await sockets.agent(h.token)
    plan = await _command(agent)
    assert (plan["action"], plan["topology"]) == ("plan", applied.document)
    frame = await receive_type(browser, "operation.status", skip=("topology.snapshot", "host.status"))
    assert frame["operation"] == {
        "id": plan["id"],
        "host": "h1",
        "kind": "plan",
        "status": "pending",
        "topology": "rc",
    }
    queued = await database_sync_to_async(lambda: list(Operation.objects.filter(kind="plan")))()
    assert [(str(o.id), o.reason, o.requested_by_id) for o in queued] == [
        (plan["id"], "reconcile on connect", None)
    ]
    status, body = await sockets.http("GET", f"/api/v1/operations/{plan['id']}/", token=viewer.token)
    assert (status, body["topology"], body["reason"]) == (200, "rc", "reconcile on connect")
    assert await agent.receive_nothing()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("result", "auto_repair", "apply_reason", "status"),
    [
        (LOST, False, "reconcile: restore what the host lost", "ready"),
        (EXTRA_ADDRESS, False, None, "drifted"),
        (BRIDGE_MTU, False, None, "drifted"),
        (MOVED, True, "reconcile: repair drift (auto_repair)", "ready"),
        (SAME, False, None, "ready"),
    ],
)
async def test_what_the_reconcile_plan_finds_decides_the_apply(
    sockets: Sockets,
    make_host: Callable[..., AgentHost],
    result: dict[str, Any],
    auto_repair: bool,
    apply_reason: str | None,
    status: str,
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    _, applied = await database_sync_to_async(_applied)(h.host, auto_repair=auto_repair)
    agent = await sockets.agent(h.token)
    plan = await _command(agent)
    await _answer(agent, plan, result)
    if apply_reason is None:
        assert await agent.receive_nothing()
        assert await database_sync_to_async(Operation.objects.filter(status="pending").count)() == 0
        state = await database_sync_to_async(_state)()
        assert state[0] == status
        if status == "drifted":
            assert state[1].splitlines()[1:] == selectors.plan_lines(result)
        return
    apply = await _command(agent)
    assert (apply["action"], apply["topology"]) == ("apply", applied.document)
    queued = await database_sync_to_async(Operation.objects.get)(id=apply["id"])
    assert (queued.reason, queued.topology_id) == (apply_reason, applied.topology_id)
    assert (await database_sync_to_async(_state)())[0] == "applying"
    await _answer(agent, apply, {**result, "applied": True})
    await eventually(lambda: _state() == ("ready", "applied on host h1"))
    assert await agent.receive_nothing()
