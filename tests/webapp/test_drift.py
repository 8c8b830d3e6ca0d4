"""Drift seen live (webapp.networks.drift): a topology applied on a host shows `drifted` within a
second or two of its veth, namespace or address going, from the agent's own events, and `ready`
again once the kernel holds it all; browsers hear `desired.changed`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from netcore.topology import spec as topology_spec
from tests.webapp.conftest import RECEIVE_TIMEOUT, Account, AgentHost, Sockets, eventually, receive_type
from webapp.hosts.models import Host
from webapp.networks import selectors, services
from webapp.networks.drift import drift_check, missing
from webapp.networks.models import Topology
from webapp.operations.models import Operation
from webapp.topology.models import HostState

DOC = """\
name: dr
networks:
  lan: {subnet: 198.18.45.0/24}
nodes:
  a: {networks: {lan: {address: 198.18.45.10}}}
  b: {mode: host}
"""


def _link(netns: str, index: int, name: str, *, up: bool = True) -> dict[str, Any]:
    return {"netns": netns, "index": index, "name": name, "kind": "veth", "mtu": 1500, "mac": None,
            "up": up, "state": "up" if up else "down", "master": None, "alias": None, "peer": None,
            "vxlan": None}  # fmt: skip


def kernel() -> dict[str, dict[str, dict[str, Any]]]:
    """What applying DOC leaves in the kernel, as the agent reports it (the parts drift reads)."""
    links = [_link("host", 5, "dr-lan"), _link("host", 6, "dr-a-lan"), _link("dr-a", 2, "eth0")]
    address = {"netns": "dr-a", "ifindex": 2, "ifname": "eth0", "family": 2, "address": "198.18.45.10",
               "prefixlen": 24, "scope": "universe"}  # fmt: skip
    default = {"netns": "dr-a", "family": 2, "dst": "default", "gateway": "198.18.45.1", "dev": "eth0",
               "oif": 2, "protocol": "static", "scope": "universe", "metric": None, "prefsrc": None,
               "onlink": False}  # fmt: skip
    return {
        "namespaces": {
            "host": {"name": "host", "inode": 1, "kind": "host"},
            "dr-a": {"name": "dr-a", "inode": 2, "kind": "named"},
        },
        "links": {f"{link['netns']}|{link['index']}": link for link in links},
        "addresses": {"a1": address},
        "routes": {"r1": default},
        "neighbours": {},
        "fdb": {},
    }


def test_nothing_is_missing_from_what_apply_made() -> None:
    assert missing(topology_spec.loads(DOC), kernel()) == []


@pytest.mark.parametrize(
    "change, line",
    [
        (lambda s: s["namespaces"].pop("dr-a"), "- namespace dr-a is gone"),
        (lambda s: s["links"].pop("host|6"), "- veth dr-a-lan is gone"),
        (lambda s: s["links"]["host|6"].update(up=False), "~ veth dr-a-lan is down"),
        (lambda s: s["links"].pop("host|5"), "- bridge dr-lan is gone"),
        (lambda s: s["addresses"].pop("a1"), "- address 198.18.45.10/24 on eth0 in dr-a is gone"),
        (lambda s: s["routes"].pop("r1"), "- route 0.0.0.0/0 in dr-a is gone"),
        (
            lambda s: s["routes"]["r1"].update(gateway="198.18.45.254"),
            "~ route 0.0.0.0/0 in dr-a goes via 198.18.45.254, not 198.18.45.1",
        ),
    ],
    ids=["namespace", "veth", "veth-down", "bridge", "address", "route-gone", "route-changed"],
)
def test_what_is_gone_or_down_is_named(change: Callable[[dict], Any], line: str) -> None:
    state = kernel()
    change(state)
    assert missing(topology_spec.loads(DOC), state) == [line]


def _applied(host: Host) -> Topology:
    topology = services.topology_create(host=host, document=DOC, user=None)
    operation = services.topology_operation(topology=topology, kind="apply", user=None)
    Operation.objects.filter(id=operation.id).update(status="succeeded")
    return topology


def _status(name: str = "dr") -> tuple[str, str]:
    found = selectors.topology_status(selectors.topology_get(name=name, host="h1"))
    return found.status, found.message


@pytest.mark.django_db
def test_drift_is_recorded_only_for_applied_topologies_and_only_when_it_changes(
    make_host: Callable[..., AgentHost],
) -> None:
    host = make_host("h1").host
    other = DOC.replace("name: dr", "name: nw").replace(".45.", ".46.")
    never = services.topology_create(host=host, document=other, user=None)
    topology = _applied(host)
    broken = kernel()
    broken["links"].pop("host|6")
    assert [t.name for t in drift_check(host_id=host.id, state=broken)] == ["dr"]
    assert _status() == ("drifted", "host h1 differs from the applied topology:\n- veth dr-a-lan is gone")
    assert drift_check(host_id=host.id, state=broken) == []  # nothing new: nobody is told twice
    never.refresh_from_db()
    assert never.drift == []  # never applied: it cannot drift
    assert [t.name for t in drift_check(host_id=host.id, state=kernel())] == ["dr"]
    topology.refresh_from_db()
    assert (topology.drift, _status()[0]) == ([], "ready")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_veth_deleted_by_hand_shows_drifted_live_and_browsers_hear_it(
    sockets: Sockets, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(_applied)(h.host)
    browser = await sockets.browser(viewer.token)
    agent = await sockets.agent(h.token)
    plan = await agent.receive_json_from(RECEIVE_TIMEOUT)  # the reconcile on connect
    assert (plan["type"], plan["action"]) == ("command", "plan")
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": kernel()})
    counts = {"create": 0, "update": 0, "delete": 0}
    nothing = {"topology": "dr", "applied": False, "counts": counts, "changes": []}
    await agent.send_json_to({"v": 1, "type": "result", "id": plan["id"], "ok": True, "result": nothing})
    await eventually(lambda: _status()[0] == "ready")

    event = {"kind": "links", "action": "del", "key": "host|6", "object": None}
    await agent.send_json_to({"v": 1, "type": "delta", "seq": 2, "events": [event]})
    # the state is saved, and drift checked, at most a second after the delta
    skips = ("topology.snapshot", "topology.delta", "host.status", "operation.status")
    frame = await receive_type(browser, "desired.changed", skip=skips)
    assert frame == {"v": 1, "type": "desired.changed", "host": "h1", "topology": "dr"}
    assert (await database_sync_to_async(_status)())[0] == "drifted"


@pytest.mark.django_db
def test_auto_repair_queues_an_apply_of_what_was_applied_and_only_once(
    make_host: Callable[..., AgentHost],
) -> None:
    host = make_host("h1").host
    topology = _applied(host)
    applied = Operation.objects.get(topology=topology, kind="apply")
    # an edit nobody applied yet: the repair must not apply it
    services.topology_update(topology=topology, document=DOC.replace(".10}", ".11}"), version=1, user=None)
    broken = kernel()
    broken["links"].pop("host|6")
    drift_check(host_id=host.id, state=broken)
    assert not Operation.objects.filter(kind="apply", status="pending").exists()  # auto_repair is off

    Topology.objects.filter(pk=topology.pk).update(auto_repair=True, drift=[])
    drift_check(host_id=host.id, state=broken)
    repair = Operation.objects.get(kind="apply", status="pending")
    assert (repair.document, repair.reason) == (applied.document, services.RECONCILE_REPAIR)
    Topology.objects.filter(pk=topology.pk).update(drift=[])
    drift_check(host_id=host.id, state=broken)  # the repair is queued: that decides
    assert Operation.objects.filter(kind="apply", status="pending").count() == 1


@pytest.mark.django_db
def test_repair_through_the_api(
    operator: Account, viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    host = make_host("h1").host
    other = services.topology_create(
        host=host, document=DOC.replace("name: dr", "name: nw").replace(".45.", ".46."), user=None
    )
    topology = _applied(host)
    assert viewer.api().post("/api/v1/topologies/dr/repair/").status_code == 403
    response = operator.api().post("/api/v1/topologies/dr/repair/")
    assert response.status_code == 202, response.json()
    repair = Operation.objects.get(id=response.json()["operation"])
    assert (repair.kind, repair.topology, repair.requested_by) == ("apply", topology, operator.user)
    assert repair.document == Operation.objects.get(topology=topology, status="succeeded").document
    never = operator.api().post(f"/api/v1/topologies/{other.name}/repair/")
    assert never.status_code == 409 and "apply it instead" in never.json()["message"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_drift_waits_until_the_changes_of_a_settling_command_are_all_in(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    """An agent answers an apply before its live model has sent what the apply made (`settling`):
    the state it has sent so far lacks part of the topology, which is no drift. Once `settled`, the
    state is whole, and what it still lacks is drift."""
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(_applied)(h.host)
    agent = await sockets.agent(h.token)
    plan = await agent.receive_json_from(RECEIVE_TIMEOUT)  # the reconcile on connect
    counts = {"create": 0, "update": 0, "delete": 0}
    nothing = {"topology": "dr", "applied": False, "counts": counts, "changes": []}
    await agent.send_json_to(
        {"v": 1, "type": "result", "id": plan["id"], "ok": True, "result": nothing, "settling": True}
    )
    partial = kernel()
    partial["links"].pop("host|6")  # not sent yet
    await agent.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": partial})

    def saved() -> bool:
        return HostState.objects.filter(host_id=h.host.id, seq=1).exists()

    await eventually(saved)
    assert (await database_sync_to_async(_status)())[0] == "ready"
    await agent.send_json_to({"v": 1, "type": "settled", "id": plan["id"]})
    await eventually(lambda: _status()[0] == "drifted")
