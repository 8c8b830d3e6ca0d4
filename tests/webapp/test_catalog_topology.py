"""Static discovery: a topology file's services: section becomes catalog rows of source "topology",
follows the file's updates and edits, comes back when the file is read, goes with the topology, and
is refused (naming the file's field, nothing written) when it clashes with the catalog."""

from __future__ import annotations

from typing import Any

import pytest

from netcore.services.catalog import catalog_parse
from netcore.topology import spec as topology_spec
from tests.webapp.conftest import Account
from webapp.catalog.models import CatalogIndex, Instance, Service, Source
from webapp.catalog.selectors import catalog_for_host
from webapp.networks.models import Topology
from webapp.networks.services import topology_file

pytestmark = pytest.mark.django_db

BASE = "/api/v1/topologies/shop/"
NETWORKS = """\
name: shop
networks:
  front: {subnet: 198.18.40.0/24}
nodes:
  web1: {networks: {front: {address: 198.18.40.11}}}
  web2: {networks: {front: {address: 198.18.40.12}}}
  web3: {networks: {front: {address: 198.18.40.13}}}
"""
SERVICES = """\
services:
  web:
    network: front
    port: 80
    vip: 198.18.40.100
    tags: [http]
    check: {kind: tcp, interval: 1}
    instances: [web1, {node: web2, weight: 2, port: 8080}, {address: 198.18.40.50, name: legacy}]
"""
SHOP = NETWORKS + SERVICES


def index() -> int:
    return CatalogIndex.objects.filter(pk=1).values_list("value", flat=True).first() or 0


def instances() -> list[tuple[str, str, str, int | None, int, str]]:
    return list(
        Instance.objects.filter(service__name="web")
        .order_by("name")
        .values_list("name", "node", "address", "port", "weight", "source")
    )


@pytest.fixture
def shop(operator: Account, make_host: Any) -> dict[str, Any]:
    make_host("h1")
    response = operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": SHOP}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_the_file_s_services_are_in_the_catalog_and_what_the_agent_is_sent(
    operator: Account, shop: dict[str, Any]
) -> None:
    listed = operator.api().get("/api/v1/services/web/instances/").json()
    assert [(i["name"], i["address"], i["port"], i["weight"], i["source"]) for i in listed] == [
        ("legacy", "198.18.40.50", 80, 1, "topology"),
        ("web1", "198.18.40.11", 80, 1, "topology"),
        ("web2", "198.18.40.12", 8080, 2, "topology"),
    ]
    web = operator.api().get("/api/v1/services/web/").json()
    assert (web["source"], web["vip"], web["tags"], web["dns_name"]) == (
        "topology",
        "198.18.40.100",
        ["http"],
        "web.front.sb.internal",
    )
    (front,) = catalog_parse(catalog_for_host(Topology.objects.get().host_id)).networks
    (served,) = front.services
    assert (str(served.vip), served.check.kind if served.check else None) == ("198.18.40.100", "tcp")
    assert [(i.id, str(i.address), i.port, i.weight, i.netns) for i in served.instances] == [
        ("legacy", "198.18.40.50", 80, 1, None),
        ("web1", "198.18.40.11", 80, 1, "shop-web1"),
        ("web2", "198.18.40.12", 8080, 2, "shop-web2"),
    ]


def test_the_file_read_back_holds_its_services_and_parses_to_the_same_spec(shop: dict[str, Any]) -> None:
    document = topology_file(topology=Topology.objects.get())
    assert document["services"] == {
        "web": {
            "network": "front",
            "port": 80,
            "vip": "198.18.40.100",
            "tags": ["http"],
            "check": {"kind": "tcp", "interval": 1},
            "instances": [
                "web1",
                {"node": "web2", "port": 8080, "weight": 2},
                {"address": "198.18.40.50", "name": "legacy"},
            ],
        }
    }
    assert topology_spec.parse(document).services == topology_spec.loads(SHOP).services


def test_an_update_makes_the_services_what_the_file_says_and_keeps_api_registrations(
    operator: Account, shop: dict[str, Any]
) -> None:
    api = operator.api()
    added = api.post("/api/v1/services/web/instances/", {"node": "web3"}, format="json")
    assert added.status_code == 201, added.json()
    Instance.objects.filter(name="web1").update(status="passing")  # the agent's word stays on a kept row
    changed = SHOP.replace("{node: web2, weight: 2, port: 8080}, ", "").replace("port: 80\n", "port: 81\n", 1)
    before = index()
    response = api.put(BASE, {"topology": changed, "version": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert index() > before
    assert Service.objects.get(name="web").port == 81
    assert instances() == [
        ("legacy", "", "198.18.40.50", None, 1, "topology"),
        ("web1", "web1", "", None, 1, "topology"),
        ("web3", "web3", "", None, 1, "api"),
    ]
    assert Instance.objects.get(name="web1").status == "passing"

    without = api.put(BASE, {"topology": NETWORKS, "version": 2}, format="json")
    assert without.status_code == 200, without.json()
    assert not Service.objects.exists()


def test_deleting_or_detaching_a_node_takes_it_out_of_the_file_s_services(
    operator: Account, shop: dict[str, Any]
) -> None:
    api = operator.api()
    assert api.delete(f"{BASE}nodes/web1/?version=1").status_code == 200
    assert [i[0] for i in instances()] == ["legacy", "web2"]
    detached = api.post(f"{BASE}nodes/web2/detach/", {"version": 2, "network": "front"}, format="json")
    assert detached.status_code == 200, detached.json()
    assert [i[0] for i in instances()] == ["legacy"]


def test_deleting_the_topology_deletes_its_file_s_services(operator: Account, shop: dict[str, Any]) -> None:
    api = operator.api()
    assert api.delete(f"{BASE}?version=1").status_code == 204
    assert not Service.objects.exists() and not Instance.objects.exists()
    assert api.get("/api/v1/services/web/").status_code == 404


@pytest.mark.parametrize(
    ("document", "field", "says"),
    [
        (SHOP.replace("port: 80\n", "port: 0\n", 1), "services.web.port", "not a port"),
        (SHOP.replace("vip: 198.18.40.100", "vip: 198.18.40.11"), "services.web.vip", "node web1's address"),
        (SHOP.replace("[web1,", "[nobody,"), "services.web.instances[0].node", "not a node on"),
        (
            SHOP.replace("front\n    port", "back\n    port"),
            "services.web.network",
            "not a network of the file",
        ),
    ],
)
def test_a_bad_services_section_is_refused_by_its_field_and_nothing_is_written(
    operator: Account, make_host: Any, document: str, field: str, says: str
) -> None:
    make_host("h1")
    response = operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": document}, format="json")
    assert response.status_code == 400, response.json()
    assert any(says in text for text in response.json()["fields"][field]), response.json()
    assert not Topology.objects.exists() and not Service.objects.exists()


def test_a_service_name_the_catalog_has_from_elsewhere_is_a_conflict_naming_the_file_s_service(
    operator: Account, make_host: Any
) -> None:
    make_host("h1")
    api = operator.api()
    other = "name: lab\nnetworks:\n  lan: {subnet: 198.18.41.0/24}\nnodes:\n  a: {networks: [lan]}\n"
    assert (
        api.post("/api/v1/topologies/", {"host": "h1", "topology": other}, format="json").status_code == 201
    )
    made = api.post(
        "/api/v1/services/", {"name": "web", "host": "h1", "network": "lan", "port": 80}, format="json"
    )
    assert made.status_code == 201, made.json()
    before = (index(), Service.objects.count(), Topology.objects.count())
    response = api.post("/api/v1/topologies/", {"host": "h1", "topology": SHOP}, format="json")
    assert response.status_code == 409, response.json()
    assert list(response.json()["fields"]) == ["services.web"]
    assert "already exists" in response.json()["message"]
    assert (index(), Service.objects.count(), Topology.objects.count()) == before
    assert Service.objects.get().source == Source.API


def test_an_api_instance_named_like_the_file_s_is_a_conflict(operator: Account, shop: dict[str, Any]) -> None:
    api = operator.api()
    assert api.post("/api/v1/services/web/instances/", {"node": "web3"}, format="json").status_code == 201
    clashing = SHOP.replace("name: legacy}", "name: web3}")
    response = api.put(BASE, {"topology": clashing, "version": 1}, format="json")
    assert response.status_code == 409, response.json()
    assert list(response.json()["fields"]) == ["services.web.instances"]
    assert Topology.objects.get().version == 1
    assert [i[0] for i in instances()] == ["legacy", "web1", "web2", "web3"]


def test_a_spanning_topology_with_services_is_refused(operator: Account, make_host: Any) -> None:
    make_host("h1")
    make_host("h2")
    spanning = """\
name: mesh
networks:
  ov:
    driver: vxlan
    subnet: 198.18.50.0/24
    vni: 50
    hosts: {h1: {local: 198.18.254.1}, h2: {local: 198.18.254.2}}
nodes:
  a: {host: h1, networks: [ov]}
  b: {host: h2, networks: [ov]}
services:
  web: {network: ov, port: 80, instances: [a, b]}
"""
    response = operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": spanning}, format="json")
    assert response.status_code == 400, response.json()
    assert "services" in response.json()["fields"], response.json()
    assert not Topology.objects.exists()


def test_the_catalog_api_leaves_the_file_s_services_to_the_file(
    operator: Account, shop: dict[str, Any]
) -> None:
    api = operator.api()
    for response in (
        api.patch("/api/v1/services/web/", {"port": 81}, format="json"),
        api.delete("/api/v1/services/web/"),
        api.delete("/api/v1/services/web/instances/web1/"),
    ):
        assert response.status_code == 409, response.json()
        assert "topology shop's file" in response.json()["message"]
    assert Service.objects.get().port == 80
    assert len(instances()) == 3
