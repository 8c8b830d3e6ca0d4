"""The service catalog's API and services: registrations checked against the host's topologies and by
the agent's own parser, refusals that change nothing, leases, health from agents, blocking queries,
and the catalog each agent is sent."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from netcore.services.catalog import catalog_parse
from tests.webapp.conftest import RECEIVE_TIMEOUT, Account, AgentHost, Sockets
from webapp.audit.models import AuditEntry
from webapp.catalog.models import CatalogIndex, HealthPoint, Instance, Service
from webapp.catalog.selectors import catalog_for_host, catalog_index
from webapp.catalog.services import health_apply, leases_expire
from webapp.networks.services import topology_create

SHOP = """\
name: shop
networks:
  front: {subnet: 198.18.40.0/24}
  back: {subnet: 198.18.41.0/24}
nodes:
  web1: {networks: {front: {address: 198.18.40.11}}}
  web2: {networks: {front: {address: 198.18.40.12}}}
  side: {mode: "container:web1"}
  db: {networks: [back]}
"""
WEB = {"name": "web", "host": "h1", "network": "front", "port": 80, "vip": "198.18.40.100"}
API = {**WEB, "name": "api", "vip": "198.18.40.101"}


@pytest.fixture
def shop(make_host: Callable[..., AgentHost], operator: Account) -> AgentHost:
    h = make_host("h1")
    topology_create(host=h.host, document=SHOP, user=operator.user)
    return h


def _snapshot() -> tuple[int, int, int, int]:
    """What a refused request must leave as it was."""
    return (
        Service.objects.count(),
        Instance.objects.count(),
        CatalogIndex.objects.filter(pk=1).values_list("value", flat=True).first() or 0,
        AuditEntry.objects.filter(object_kind__in=("service", "instance")).count(),
    )


pytestmark = pytest.mark.django_db


def test_a_service_and_its_node_instances_are_what_the_agent_is_sent(
    shop: AgentHost, operator: Account
) -> None:
    api = operator.api()
    created = api.post("/api/v1/services/", {**WEB, "check": {"kind": "tcp", "interval": 1}}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["dns_name"] == "web.front.sb.internal"
    for node in ("web1", "web2"):
        answer = api.post("/api/v1/services/web/instances/", {"node": node, "port": 8080}, format="json")
        assert answer.status_code == 201, answer.json()
    listed = api.get("/api/v1/services/web/instances/").json()
    assert [(i["name"], i["address"], i["port"], i["status"]) for i in listed] == [
        ("web1", "198.18.40.11", 8080, "unknown"),
        ("web2", "198.18.40.12", 8080, "unknown"),
    ]

    catalog = catalog_parse(catalog_for_host(shop.host.id))  # what the agent parses, it accepts
    (front,) = catalog.networks
    assert (front.name, front.bridge, [str(g) for g in front.gateways]) == (
        "front",
        "shop-front",
        ["198.18.40.1"],
    )
    nodes = {n.name: ([str(a) for a in n.addresses], n.netns) for n in front.nodes}
    assert nodes == {"web1": (["198.18.40.11"], "shop-web1"), "web2": (["198.18.40.12"], "shop-web2")}
    (web,) = front.services
    assert (str(web.vip), web.check.kind if web.check else None) == ("198.18.40.100", "tcp")
    assert [(i.id, str(i.address), i.port, i.netns) for i in web.instances] == [
        ("web1", "198.18.40.11", 8080, "shop-web1"),
        ("web2", "198.18.40.12", 8080, "shop-web2"),
    ]


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [
        ("/api/v1/services/", {**API, "network": "nowhere"}, 404, "network"),
        ("/api/v1/services/", {**API, "port": 70000}, 400, "port"),
        ("/api/v1/services/", {**API, "name": "Web_1"}, 400, "name"),
        ("/api/v1/services/", {**API, "vip": "198.18.99.5"}, 400, "vip"),
        ("/api/v1/services/", {**API, "vip": "198.18.40.11"}, 409, "vip"),
        ("/api/v1/services/", {**API, "vip": "198.18.40.1"}, 409, "vip"),
        ("/api/v1/services/", {**API, "vip": "198.18.40.100"}, 409, "vip"),
        ("/api/v1/services/", {**API, "host": "nohost"}, 404, None),
        ("/api/v1/services/", {**API, "check": {"kind": "icmp"}}, 400, "check"),
        ("/api/v1/services/", {**API, "check": {"kind": "tcp", "interval": 1, "timeout": 5}}, 400, "timeout"),
        ("/api/v1/services/", {**API, "name": "db"}, 409, "name"),
        ("/api/v1/services/web/instances/", {"node": "db"}, 404, "node"),
        ("/api/v1/services/web/instances/", {"node": "web1"}, 409, "name"),
        ("/api/v1/services/web/instances/", {"address": "198.18.40.11", "port": 8080}, 409, "address"),
        ("/api/v1/services/web/instances/", {"address": "198.18.9.9"}, 400, "address"),
        ("/api/v1/services/web/instances/", {"address": "198.18.40.100"}, 409, "address"),  # web's VIP
        ("/api/v1/services/web/instances/", {"address": "198.18.40.1"}, 409, "address"),  # the gateway
        ("/api/v1/services/web/instances/", {"address": "198.18.40.50", "name": "Bad_1"}, 400, "name"),
        ("/api/v1/services/web/instances/", {"address": "198.18.40.50", "port": 0}, 400, "port"),
        ("/api/v1/services/web/instances/", {"node": "web2", "address": "198.18.40.50"}, 400, "node"),
        ("/api/v1/services/web/instances/", {"address": "198.18.40.50", "ttl": 0}, 400, "ttl"),
        ("/api/v1/services/nope/instances/", {"address": "198.18.40.50"}, 404, None),
    ],
)
def test_bad_registrations_are_refused_naming_the_field_and_change_nothing(
    shop: AgentHost, operator: Account, path: str, body: dict[str, Any], code: int, field: str | None
) -> None:
    api = operator.api()
    for created in (
        api.post("/api/v1/services/", {**WEB, "name": "db", "network": "back", "vip": ""}, format="json"),
        api.post("/api/v1/services/", WEB, format="json"),
        api.post("/api/v1/services/web/instances/", {"node": "web1", "port": 8080}, format="json"),
    ):
        assert created.status_code == 201, created.json()
    before = _snapshot()

    answer = api.post(path, body, format="json")

    assert answer.status_code == code, answer.json()
    if field:
        fields = answer.json().get("fields", {})
        assert any(field in key or field in str(value) for key, value in fields.items()), answer.json()
    assert _snapshot() == before


def test_viewers_read_and_cannot_register(shop: AgentHost, operator: Account, viewer: Account) -> None:
    assert operator.api().post("/api/v1/services/", WEB, format="json").status_code == 201
    assert viewer.api().get("/api/v1/services/").status_code == 200
    refused = viewer.api().post("/api/v1/services/web/instances/", {"node": "web1"}, format="json")
    assert refused.status_code == 403
    assert Instance.objects.count() == 0


def test_registering_again_renews_and_a_lease_that_runs_out_removes_the_instance(
    shop: AgentHost, operator: Account
) -> None:
    api = operator.api()
    api.post("/api/v1/services/", WEB, format="json")
    body = {"address": "198.18.40.50", "port": 9000, "ttl": 30, "name": "client-a"}
    assert api.post("/api/v1/services/web/instances/", body, format="json").status_code == 201
    again = api.post("/api/v1/services/web/instances/", {**body, "ttl": 60}, format="json")
    assert again.status_code == 200 and again.json()["ttl"] == 60
    renewed = api.post("/api/v1/services/web/instances/client-a/renew/")
    assert renewed.status_code == 200
    index = catalog_index()

    Instance.objects.filter(name="client-a").update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert api.get("/api/v1/services/web/instances/").json() == []  # expired: no longer answered
    assert leases_expire() == 1
    assert not Instance.objects.filter(name="client-a").exists()
    assert catalog_index() > index
    assert api.post("/api/v1/services/web/instances/client-a/renew/").status_code == 404


def _health(instance: str, status: str, checked_ms: int, output: str = "ok") -> dict[str, Any]:
    return {
        "network": "front",
        "service": "web",
        "instance": instance,
        "status": status,
        "output": output,
        "checked_ms": checked_ms,
        "since_ms": checked_ms,
        "rtt_us": 400,
    }


def test_health_from_the_agent_decides_passing_and_keeps_a_history(
    shop: AgentHost, operator: Account
) -> None:
    api = operator.api()
    api.post("/api/v1/services/", WEB, format="json")
    for node in ("web1", "web2"):
        api.post("/api/v1/services/web/instances/", {"node": node}, format="json")
    now = int(timezone.now().timestamp() * 1000)
    index = catalog_index()

    changed = health_apply(
        host_id=shop.host.id,
        reports={"a": _health("web1", "passing", now), "b": _health("web2", "critical", now, "refused")},
    )

    assert changed and catalog_index() > index
    passing = api.get("/api/v1/services/web/instances/?passing=1").json()
    assert [i["name"] for i in passing] == ["web1"]
    rows = {r["service"]["name"]: r["counts"] for r in api.get("/api/v1/services/").json()}
    assert rows["web"] == {"passing": 1, "warning": 0, "critical": 1, "unknown": 0}
    assert [r["service"]["name"] for r in api.get("/api/v1/services/?health=critical").json()] == ["web"]

    index = catalog_index()
    assert not health_apply(host_id=shop.host.id, reports={"a": _health("web1", "passing", now + 1000)})
    assert catalog_index() == index  # only a change of state moves the index
    health_apply(host_id=shop.host.id, reports={"b": _health("web2", "passing", now + 2000)})
    detail = api.get("/api/v1/services/web/instances/web2/").json()
    assert [(p["status"], p["output"]) for p in detail["history"]] == [
        ("critical", "refused"),
        ("passing", "ok"),
    ]

    health_apply(host_id=shop.host.id, reports={}, whole=True)  # the agent no longer reports them
    assert {i.status for i in Instance.objects.all()} == {"unknown"}
    assert HealthPoint.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_blocking_query_answers_when_the_catalog_changes(shop: AgentHost, operator: Account) -> None:
    api = operator.api()
    api.post("/api/v1/services/", WEB, format="json")
    first = api.get("/api/v1/services/web/instances/")
    index = int(first["X-Switchboard-Index"])
    client, auth = AsyncClient(), {"Authorization": f"Token {operator.token}"}

    async def scenario() -> tuple[Any, Any, float]:
        url = f"/api/v1/services/web/instances/?index={index}"
        timed_out = await client.get(f"{url}&wait=200ms", headers=auth)
        waiting = asyncio.ensure_future(client.get(f"{url}&wait=20s", headers=auth))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        started = asyncio.get_running_loop().time()
        posted = await client.post(
            "/api/v1/services/web/instances/", {"node": "web1"}, content_type="application/json", headers=auth
        )
        assert posted.status_code == 201, posted.json()
        answer = await asyncio.wait_for(waiting, 10)
        return timed_out, answer, asyncio.get_running_loop().time() - started

    timed_out, answer, took = asyncio.run(scenario())
    assert timed_out.status_code == 200 and int(timed_out["X-Switchboard-Index"]) == index
    assert answer.status_code == 200 and int(answer["X-Switchboard-Index"]) > index
    assert [i["name"] for i in answer.json()] == ["web1"]
    assert took < 5
    bad = api.get(f"/api/v1/services/web/instances/?index={index}&wait=soon")
    assert bad.status_code == 400 and "wait" in bad.json()["fields"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_agent_gets_its_catalog_on_hello_and_on_every_change(
    sockets: Sockets, make_host: Callable[..., AgentHost], operator: Account
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    await database_sync_to_async(topology_create)(host=h.host, document=SHOP, user=operator.user)
    api = operator.api()
    ws = await sockets.agent(h.token)
    assert await ws.receive_nothing(0.2)  # no services, and the agent serves none: nothing to send

    await database_sync_to_async(api.post)("/api/v1/services/", WEB, format="json")
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "catalog"
    assert [s["name"] for s in frame["catalog"]["networks"][0]["services"]] == ["web"]
    await database_sync_to_async(api.post)("/api/v1/services/web/instances/", {"node": "web2"}, format="json")
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert [i["id"] for i in frame["catalog"]["networks"][0]["services"][0]["instances"]] == ["web2"]
    await ws.send_json_to(
        {"v": 1, "type": "catalog.applied", "ok": True, "version": frame["catalog"]["version"]}
    )
    await ws.disconnect()

    again = await sockets.agent(h.token)
    frame = await again.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "catalog" and frame["catalog"]["networks"][0]["name"] == "front"
