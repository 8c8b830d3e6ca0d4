"""Dynamic discovery from Docker labels (webapp.catalog.docker): the containers a host's agent reports
become service instances on their Docker network, made and removed with the containers; labels that
cannot be registered are skipped with the reason kept; nothing is written when nothing changed; and a
service on a Docker network is served, checked and given a VIP like one on a managed network."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from netcore.docker.objects import (
    DockerContainer,
    DockerEndpoint,
    DockerEngine,
    DockerNetwork,
    DockerPair,
    DockerSubnet,
)
from netcore.services.catalog import catalog_parse
from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    lease_held,
    state_with,
)
from webapp.audit.models import AuditEntry
from webapp.catalog.docker import docker_registrations_sync
from webapp.catalog.models import CatalogIndex, HostCatalog, Instance, Service
from webapp.catalog.selectors import catalog_for_host, resolve_plan, service_get
from webapp.catalog.services import health_apply
from webapp.networks.services import topology_create
from webapp.topology.services import host_state_save

pytestmark = pytest.mark.django_db

ENGINE = DockerEngine(True, None, "20.10.24", "1.41", "inactive", False, None, "DROP", True, ()).to_dict()
CREATED = "2026-11-30T00:00:00Z"


def network(name: str, subnet: str, *, driver: str = "bridge") -> dict[str, Any]:
    net_id = hashlib.sha256(name.encode()).hexdigest()
    pool = DockerSubnet(subnet, str(next(ipaddress.ip_network(subnet).hosts())), None, ())
    bridge = f"br-{net_id[:12]}" if driver == "bridge" else None
    return DockerNetwork(
        net_id, name, driver, "local", False, False, False, False, "default", (pool,), (), (), bridge, None,
        (), None, CREATED,
    ).to_dict()  # fmt: skip


SHOP = network("shop_default", "198.18.60.0/24")
SIDE = network("side", "198.18.61.0/24")
MACVLAN = network("lan", "198.18.62.0/24", driver="macvlan")
NETWORKS = (SHOP, SIDE, MACVLAN)


def container(
    name: str, *ends: tuple[dict[str, Any], str], labels: dict[str, str], state: str = "running"
) -> dict[str, Any]:
    """A container with an address on each of `ends` (network, address), labelled."""
    cid = hashlib.sha256(name.encode()).hexdigest()
    running = state == "running"
    endpoints = tuple(
        DockerEndpoint(n["name"], n["id"], f"{a}/24", None, n["subnets"][0]["gateway"], None, ())
        for n, a in ends
    )
    pairs = tuple(DockerPair(k, v) for k, v in sorted(labels.items()))
    return DockerContainer(
        cid, name, "switchboard/busybox:latest", state, ends[0][0]["name"], "bridge", None,
        f"docker:{cid[:12]}" if running else None, 4242 if running else None, cid[:12], "httpd -f", endpoints,
        (), None, None, None, pairs, CREATED,
    ).to_dict()  # fmt: skip


def web(name: str, address: str, **labels: str) -> dict[str, Any]:
    """A container of service web on shop_default (labels: port=..., weight=..., state=...)."""
    state = labels.pop("state", "running")
    wanted = {"switchboard.service": "web", **{f"switchboard.{k}": v for k, v in labels.items()}}
    return container(name, (SHOP, address), labels=wanted, state=state)


def report(
    h: AgentHost, *containers: dict[str, Any], engine: dict[str, Any] | None = ENGINE, seq: int = 1
) -> bool:
    """What the agent's connection does with a state: store it, then register its containers."""
    networks = {n["id"]: n for n in NETWORKS}
    by_id = {c["id"]: c for c in containers}
    state = state_with(
        docker_engine={"engine": engine} if engine else {}, docker_networks=networks, docker_containers=by_id
    )
    host_state_save(host_id=h.host.id, seq=seq, state=state)
    return docker_registrations_sync(host_id=h.host.id, engine=engine, networks=networks, containers=by_id)


def written() -> tuple[int, int, int, int]:
    """What a sync that changes nothing must leave as it was."""
    return (
        Service.objects.count(),
        Instance.objects.count(),
        CatalogIndex.objects.filter(pk=1).values_list("value", flat=True).first() or 0,
        AuditEntry.objects.count(),
    )


def problems_of(h: AgentHost) -> dict[str, str]:
    said = HostCatalog.objects.get(host=h.host).docker_problems
    return {name: p["problem"] for name, p in said.items()}


@pytest.fixture
def h1(make_host: Callable[..., AgentHost]) -> AgentHost:
    return make_host("h1")


def test_labelled_containers_make_their_service_served_on_their_docker_network(
    h1: AgentHost, viewer: Account
) -> None:
    assert report(
        h1, web("shop_web.2", "198.18.60.11", weight="3"), web("shop_web_1", "198.18.60.10", port="80")
    )

    service = service_get("web")
    assert (service.source, service.topology, service.network, service.port, service.protocol) == (
        "docker",
        "",
        "shop_default",
        80,
        "tcp",
    )
    listed = viewer.api().get("/api/v1/services/web/instances/").json()
    assert [(i["name"], i["address"], i["port"], i["weight"], i["source"]) for i in listed] == [
        ("shop-web-1", "198.18.60.10", 80, 1, "docker"),
        ("shop-web-2", "198.18.60.11", 80, 3, "docker"),
    ]
    assert listed[0]["dns_name"] == "shop-web-1.web.shop-default.sb.internal"
    short_id = hashlib.sha256(b"shop_web_1").hexdigest()[:12]
    assert listed[0]["meta"] == {"container": "shop_web_1", "container_id": short_id}
    (row,) = viewer.api().get("/api/v1/services/").json()
    assert (row["network_present"], row["problems"], row["service"]["dns_name"]) == (
        True,
        [],
        "web.shop-default.sb.internal",
    )

    catalog = catalog_parse(catalog_for_host(h1.host.id))  # what the agent is sent, it accepts
    (shop,) = catalog.networks
    assert (shop.name, shop.bridge, [str(g) for g in shop.gateways], [str(s) for s in shop.subnets]) == (
        "shop-default",
        SHOP["bridge"],
        ["198.18.60.1"],
        ["198.18.60.0/24"],
    )
    assert shop.nodes == ()  # Docker's own DNS names the containers
    (served,) = shop.services
    assert [(i.id, str(i.address), i.port, i.weight, i.netns) for i in served.instances] == [
        ("shop-web-1", "198.18.60.10", 80, 1, None),
        ("shop-web-2", "198.18.60.11", 80, 3, None),
    ]


def test_stopped_and_removed_containers_leave_and_the_last_one_takes_its_service(h1: AgentHost) -> None:
    one, two = web("web1", "198.18.60.10", port="80"), web("web2", "198.18.60.11", port="80")
    assert report(h1, one, two)
    assert report(h1, web("web1", "198.18.60.10", port="80", state="exited"), two)
    assert list(Instance.objects.values_list("name", flat=True)) == ["web2"]
    assert report(h1)  # web2 removed
    assert not Service.objects.exists()
    catalog = AuditEntry.objects.filter(object_kind__in=("service", "instance")).order_by("id")
    actions = list(catalog.values_list("action", "object_kind", "object_name"))
    assert actions == [
        ("create", "service", "web"),
        ("register", "instance", "web/web1"),
        ("register", "instance", "web/web2"),
        ("deregister", "instance", "web/web1"),
        ("deregister", "instance", "web/web2"),
        ("delete", "service", "web"),
    ]
    assert set(catalog.values_list("source", flat=True)) == {"agent"}


def test_a_container_that_changes_moves_its_instance_and_nothing_else_is_written(
    h1: AgentHost, django_assert_max_num_queries: Any
) -> None:
    bad = container("odd", (SHOP, "198.18.60.30"), labels={"switchboard.service": "odd"})  # no port
    assert report(h1, web("web1", "198.18.60.10", port="80"), bad)
    before = written()
    with django_assert_max_num_queries(8):  # the state stored, then five reads (in a savepoint): no write
        assert not report(h1, web("web1", "198.18.60.10", port="80"), bad)  # the same again
    assert not report(h1, web("web1", "198.18.60.10", port="80"), bad, engine=None)  # engine not read yet
    unavailable = {**ENGINE, "available": False, "error": "the Docker engine stopped answering"}
    assert not report(h1, engine=unavailable)  # what runs is not known: registrations stay
    assert written() == before

    assert report(h1, web("web1", "198.18.60.12", port="8080", weight="5"), bad)
    instance = Instance.objects.get()
    assert (instance.address, instance.port, instance.weight) == ("198.18.60.12", 8080, 5)
    assert written()[1:3] == (1, before[2] + 1)


@pytest.mark.parametrize(
    ("name", "labels", "ends", "problem"),
    [
        ("c1", {"switchboard.service": "Web_1", "switchboard.port": "80"}, "shop", "is not a DNS label"),
        ("c2", {"switchboard.service": "new", "switchboard.port": "http"}, "shop", "'http' is not a number"),
        ("c3", {"switchboard.service": "new", "switchboard.port": "70000"}, "shop", "from 1 to 65535"),
        ("c4", {"switchboard.service": "new"}, "shop", "switchboard.port is required"),
        ("c5", {"switchboard.service": "web", "switchboard.weight": "0"}, "shop", "from 1 to 100"),
        ("c6", {"switchboard.service": "web", "switchboard.protocol": "sctp"}, "shop", "is not tcp or udp"),
        ("c7", {"switchboard.service": "web", "switchboard.protocol": "udp"}, "shop", "web is tcp, not udp"),
        ("c8", {"switchboard.service": "web", "switchboard.network": "nowhere"}, "shop", "'nowhere'"),
        ("c9", {"switchboard.service": "web"}, "macvlan", "no IPv4 address on a local bridge network"),
        ("c10", {"switchboard.service": "web"}, "side", "lives on Docker network shop_default on host h1"),
        ("c11_", {"switchboard.service": "web"}, "shop", "makes no DNS label"),
        ("WEB1", {"switchboard.service": "web"}, "shop", "already has an instance web1"),
    ],
)
def test_labels_that_cannot_be_registered_are_skipped_with_the_reason_kept_and_logged_once(
    h1: AgentHost,
    viewer: Account,
    caplog: pytest.LogCaptureFixture,
    name: str,
    labels: dict[str, str],
    ends: str,
    problem: str,
) -> None:
    on = {"shop": SHOP, "side": SIDE, "macvlan": MACVLAN}[ends]
    refused = container(name, (on, "198.18.60.50" if on is SHOP else "198.18.61.50"), labels=labels)
    good = web("web1", "198.18.60.10", port="80")
    caplog.set_level(logging.WARNING, logger="webapp.catalog.docker")
    assert report(h1, good, refused)
    assert report(h1, good, refused, seq=2) is False
    assert list(Instance.objects.values_list("name", flat=True)) == ["web1"]
    assert list(Service.objects.values_list("name", flat=True)) == ["web"]
    (why,) = problems_of(h1).values()
    assert problem in why, why
    logged = [r.getMessage() for r in caplog.records if f"container {name} " in r.getMessage()]
    assert len(logged) == 1 and problem in logged[0], logged
    (row,) = viewer.api().get("/api/v1/services/").json()
    if labels["switchboard.service"] == "web":  # the service's row says why a container is not in it
        assert row["problems"] == [f"container {name}: {why}"]
    else:
        assert row["problems"] == []
    assert report(h1, good, seq=3)  # the container went: its problem too (the page is woken)
    assert problems_of(h1) == {}


def test_a_service_from_elsewhere_keeps_its_name_and_its_network_name(
    h1: AgentHost, operator: Account
) -> None:
    topology = "name: shop\nnetworks:\n  front: {subnet: 198.18.40.0/24}\nnodes:\n  n1: {networks: [front]}\n"
    topology_create(host=h1.host, document=topology, user=operator.user)
    body = {"name": "web", "host": "h1", "network": "front", "port": 80}
    assert operator.api().post("/api/v1/services/", body, format="json").status_code == 201
    front = network("Front", "198.18.63.0/24")  # its DNS name would be front's
    by_id = {n["id"]: n for n in (*NETWORKS, front)}
    containers = [
        web("web1", "198.18.60.10", port="80"),
        container(
            "api1", (front, "198.18.63.10"), labels={"switchboard.service": "api", "switchboard.port": "80"}
        ),
    ]
    state = state_with(docker_engine={"engine": ENGINE}, docker_networks=by_id)
    host_state_save(host_id=h1.host.id, seq=1, state=state)
    changed = docker_registrations_sync(
        host_id=h1.host.id, engine=ENGINE, networks=by_id, containers={c["id"]: c for c in containers}
    )
    assert changed  # the problems were kept
    assert problems_of(h1) == {
        "web1": "service web lives on network front of topology shop on host h1",
        "api1": "network name front in DNS is already that of network front of topology shop on host h1",
    }
    assert list(Service.objects.values_list("name", "source")) == [("web", "api")]
    assert not Instance.objects.exists()
    catalog_parse(catalog_for_host(h1.host.id))


def test_a_docker_service_takes_a_free_vip_of_its_network_and_a_container_cannot_take_it(
    h1: AgentHost, operator: Account
) -> None:
    report(h1, web("web1", "198.18.60.10", port="80"))
    api = operator.api()
    refusals = [
        ("198.18.60.1", 409, "gateway"),
        ("198.18.99.5", 400, "not a host address of Docker network shop_default"),
        ("198.18.60.255", 400, "not a host address"),
        ("198.18.60.10", 409, "container web1's address"),
        ("fd00::5", 400, "IPv4"),
    ]
    for vip, code, message in refusals:
        answer = api.patch("/api/v1/services/web/", {"vip": vip}, format="json")
        assert answer.status_code == code and message in answer.json()["message"], (vip, answer.json())
    answer = api.patch("/api/v1/services/web/", {"vip": "198.18.60.100"}, format="json")
    assert answer.status_code == 200, answer.json()
    (shop,) = catalog_parse(catalog_for_host(h1.host.id)).networks
    assert str(shop.services[0].vip) == "198.18.60.100"

    # Docker's IPAM does not know the VIP: a container given it is refused, not served
    assert report(h1, web("web1", "198.18.60.10"), web("web2", "198.18.60.100"), seq=2)
    assert problems_of(h1) == {"web2": "its address 198.18.60.100 is service web's VIP"}
    catalog_parse(catalog_for_host(h1.host.id))


def test_the_check_of_a_docker_service_asks_from_the_host(h1: AgentHost, operator: Account) -> None:
    report(h1, web("web1", "198.18.60.10", port="80"))
    answer = operator.api().post("/api/v1/services/web/resolve/", {"client": "web1"}, format="json")
    assert answer.status_code == 400 and "client" in answer.json()["fields"], answer.json()
    lease_held(h1.host)
    plan = resolve_plan(service_get("web"))
    assert (plan["client"], plan["netns"], plan["server"]) == ("", None, "198.18.60.1")
    assert [q["name"] for q in plan["questions"]] == [
        "web.shop-default.sb.internal",
        "web.shop-default.sb.internal",
        "web.shop-default.sb.internal",
        "_web._tcp.shop-default.sb.internal",
    ]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_agent_connection_registers_on_snapshots_and_container_deltas(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(make_host)("h1")
    ws = await sockets.agent(h.token)
    one = web("web1", "198.18.60.10", port="80")
    networks = {n["id"]: n for n in NETWORKS}
    state = state_with(
        docker_engine={"engine": ENGINE}, docker_networks=networks, docker_containers={one["id"]: one}
    )
    await ws.send_json_to({"v": 1, "type": "snapshot", "seq": 1, "state": state})
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert frame["type"] == "catalog", frame
    (shop,) = frame["catalog"]["networks"]
    assert (shop["name"], [i["id"] for i in shop["services"][0]["instances"]]) == ("shop-default", ["web1"])

    # a network made and a container started on it in the deltas before the state is stored: the
    # catalog the agent gets has the network from the connection's live state
    fresh = network("fresh", "198.18.64.0/24")
    two = container(
        "api1", (fresh, "198.18.64.10"), labels={"switchboard.service": "api", "switchboard.port": "81"}
    )
    events = [
        {"kind": "docker_networks", "action": "set", "key": fresh["id"], "object": fresh},
        {"kind": "docker_containers", "action": "set", "key": two["id"], "object": two},
    ]
    await ws.send_json_to({"v": 1, "type": "delta", "seq": 2, "events": events})
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert [n["name"] for n in frame["catalog"]["networks"]] == ["fresh", "shop-default"]

    stopped = {**one, "state": "exited", "netns": None, "pid": None}
    events = [{"kind": "docker_containers", "action": "set", "key": one["id"], "object": stopped}]
    await ws.send_json_to({"v": 1, "type": "delta", "seq": 3, "events": events})
    frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
    assert [n["name"] for n in frame["catalog"]["networks"]] == ["fresh"]
    await eventually(lambda: list(Service.objects.values_list("name", flat=True)) == ["api"])


def test_health_reported_under_the_network_s_dns_name_reaches_the_docker_instances(
    h1: AgentHost, operator: Account
) -> None:
    report(h1, web("web1", "198.18.60.10", port="80"))
    now = int(time.time() * 1000)
    health = {
        "network": "shop-default",  # the agent serves shop_default under its DNS label
        "service": "web",
        "instance": "web1",
        "status": "passing",
        "output": "TCP connect to 198.18.60.10:80: ok",
        "checked_ms": now,
        "since_ms": now,
        "rtt_us": 300,
    }
    assert health_apply(host_id=h1.host.id, reports={"k": health})
    passing = operator.api().get("/api/v1/services/web/instances/?passing=1").json()
    assert [i["name"] for i in passing] == ["web1"]


def test_a_docker_service_takes_its_instances_from_labels_not_registrations(
    h1: AgentHost, operator: Account
) -> None:
    report(h1, web("web1", "198.18.60.10", port="80"))
    answer = operator.api().post(
        "/api/v1/services/web/instances/", {"address": "198.18.60.20"}, format="json"
    )
    assert answer.status_code == 409, answer.json()
    assert "Docker network shop_default" in answer.json()["message"] and "labels" in answer.json()["message"]
    assert Instance.objects.count() == 1


def test_what_containers_made_goes_with_the_containers_not_through_the_api(
    h1: AgentHost, operator: Account
) -> None:
    report(h1, web("web1", "198.18.60.10", port="80"))
    api = operator.api()
    for response in (api.delete("/api/v1/services/web/"), api.delete("/api/v1/services/web/instances/web1/")):
        assert response.status_code == 409, response.json()
        assert "switchboard.service" in response.json()["message"]
    assert Instance.objects.count() == 1
