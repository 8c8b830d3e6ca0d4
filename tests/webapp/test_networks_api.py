"""Desired-state API: /api/v1/topologies/ (create, read, update, delete, export, plan/apply/destroy),
/api/v1/networks/ and /api/v1/nodes/, by role."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_framework.test import APIClient

from netcore.topology import spec as topology_spec
from tests.webapp.conftest import Account, make_account, run_on_database
from webapp.accounts.models import Role
from webapp.hosts.services import host_create
from webapp.networks import services
from webapp.networks.models import Attachment, Topology
from webapp.operations.models import Operation

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "docs/examples/demo.yaml").read_text()
URL = "/api/v1/topologies/"


def create(account: Account, body: dict[str, Any]) -> Any:
    return account.api().post(URL, body, format="json")


def test_create_answers_the_stored_topology_and_export_gives_the_file_back(
    operator: Account, viewer: Account, make_host: Any
) -> None:
    make_host("h1")
    response = create(operator, {"host": "h1", "topology": DEMO})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {key: body[key] for key in ("name", "host", "version", "auto_repair", "created_by", "url")} == {
        "name": "demo",
        "host": "h1",
        "version": 1,
        "auto_repair": False,
        "created_by": "otto",
        "url": "/api/v1/topologies/demo/?host=h1",
    }
    assert [network["name"] for network in body["networks"]] == ["front", "back"]
    assert body["networks"][1]["options"] == {"vni": 4242, "dstport": 4789, "learning": True}
    web1 = body["nodes"][0]
    assert web1["attachments"] == [
        {"network": "front", "ifname": "eth0", "address": "198.18.1.2", "static": False},
        {"network": "back", "ifname": "eth1", "address": "198.18.2.2", "static": False},
    ]
    assert web1["routes"] == [{"to": "198.18.9.0/24", "via": "198.18.1.254", "dev": ""}]
    assert viewer.api().get(body["url"]).json() == body

    export = viewer.api().get("/api/v1/topologies/demo/export/")
    assert export.status_code == 200
    assert export["Content-Type"].startswith("application/yaml")
    assert topology_spec.loads(export.content.decode()) == topology_spec.loads(DEMO)
    # the exported file, as an object this time, makes the same topology on another host
    make_host("h2")
    again = create(operator, {"host": "h2", "topology": yaml.safe_load(export.content)})
    assert again.status_code == 201
    assert {
        **again.json(),
        "host": "h1",
        "url": body["url"],
        "created": body["created"],
        "updated": body["updated"],
    } == body
    pinned = viewer.api().get("/api/v1/topologies/demo/export/?host=h1&pinned=true").content.decode()
    assert "address: 198.18.1.2\n" in pinned


def test_validation_errors_name_the_fields(operator: Account, make_host: Any) -> None:
    make_host("h1")
    bad = DEMO.replace("subnet: 198.18.2.0/24", "subnet: 198.18.2.0/99").replace("vni: 4242", "vni: 0")
    response = create(operator, {"host": "h1", "topology": bad})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "InvalidInput"
    assert set(body["fields"]) == {"networks.back.subnet", "networks.back.vni"}
    assert body["fields"]["networks.back.vni"] == ["0 is not an integer in 1..16777215"]
    assert create(operator, {"host": "h1", "topology": 42}).json()["fields"] == {
        "topology": ["a topology is YAML text or a JSON object, not int"]
    }
    assert create(operator, {"host": "nope", "topology": DEMO}).json()["fields"] == {
        "host": ["no host named 'nope'"]
    }
    assert create(operator, {"topology": DEMO}).json()["fields"] == {"host": ["This field is required."]}
    assert not Topology.objects.exists()


def test_conflicts_are_409(operator: Account, make_host: Any) -> None:
    make_host("h1")
    lab = {"name": "lab", "networks": {"back": {"subnet": "198.18.1.128/25"}}}
    assert create(operator, {"host": "h1", "topology": lab}).status_code == 201
    response = create(operator, {"host": "h1", "topology": DEMO})
    assert response.status_code == 409
    assert response.json()["message"] == (
        "network front 198.18.1.0/24 of topology demo overlaps network back 198.18.1.128/25 of topology lab"
        " on host h1"
    )
    lab["networks"] = {"back": {"subnet": "198.18.7.0/24"}}
    assert create(operator, {"host": "h1", "topology": lab}).json() == {
        "error": "Conflict",
        "message": "topology lab already exists on host h1",
        "fields": {"name": ["topology lab already exists on host h1"]},
    }


def test_update_with_a_stale_version_is_409(operator: Account, make_host: Any) -> None:
    make_host("h1")
    create(operator, {"host": "h1", "topology": DEMO})
    api = operator.api()
    changed = DEMO.replace("mtu: 1500", "mtu: 1400")
    response = api.put("/api/v1/topologies/demo/", {"topology": changed, "version": 1}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2 and response.json()["networks"][0]["mtu"] == 1400
    stale = api.put("/api/v1/topologies/demo/", {"topology": DEMO, "version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["fields"] == {"version": [stale.json()["message"]]}
    assert "is at version 2, not 1" in stale.json()["message"]
    assert api.delete("/api/v1/topologies/demo/?version=1").status_code == 409
    assert api.delete("/api/v1/topologies/demo/?version=2").status_code == 204
    assert api.get("/api/v1/topologies/demo/").status_code == 404


def test_a_name_on_several_hosts_needs_the_host(operator: Account, make_host: Any) -> None:
    for name in ("h1", "h2"):
        make_host(name)
        assert create(operator, {"host": name, "topology": DEMO}).status_code == 201
    response = operator.api().get("/api/v1/topologies/demo/")
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "host": ["topology 'demo' exists on several hosts: say which with ?host=NAME"]
    }
    assert operator.api().get("/api/v1/topologies/demo/?host=h2").json()["host"] == "h2"
    listed = operator.api().get(f"{URL}?host=h2").json()
    assert listed["count"] == 1
    assert listed["results"][0] | {"created": None, "updated": None} == {
        "name": "demo",
        "host": "h2",
        "version": 1,
        "auto_repair": False,
        "created_by": "otto",
        "created": None,
        "updated": None,
        "url": "/api/v1/topologies/demo/?host=h2",
        "status": "new",
        "status_message": "never applied",
        "span": None,
        "network_count": 2,
        "node_count": 4,
    }
    assert operator.api().get(URL).json()["count"] == 2


def test_apply_queues_an_operation_carrying_the_compiled_document(operator: Account, make_host: Any) -> None:
    host = make_host("h1").host
    create(operator, {"host": "h1", "topology": DEMO})
    for kind in ("plan", "apply", "destroy"):
        response = operator.api().post(f"/api/v1/topologies/demo/{kind}/")
        assert response.status_code == 202, response.json()
        operation = Operation.objects.get(id=response.json()["operation"])
        assert response.json()["url"] == f"/api/v1/operations/{operation.id}/"
        assert (operation.kind, operation.status, operation.host, operation.requested_by) == (
            kind,
            "pending",
            host,
            operator.user,
        )
        assert operation.topology == Topology.objects.get() and operation.reason == ""
        # the pinned document as JSON (YAML too, and read by agents at a fraction of the cost)
        assert json.loads(operation.document) == yaml.safe_load(
            services.topology_yaml(topology=operation.topology, pinned=True)
        )
        assert topology_spec.loads(operation.document) == topology_spec.loads(DEMO)
        listed = operator.api().get(f"/api/v1/operations/{operation.id}/").json()
        assert (listed["topology"], listed["reason"]) == ("demo", "")


def test_networks_and_nodes_are_listed_and_filtered(
    viewer: Account, operator: Account, make_host: Any
) -> None:
    make_host("h1")
    create(operator, {"host": "h1", "topology": DEMO})
    create(
        operator, {"host": "h1", "topology": {"name": "lab", "networks": {"n": {"subnet": "198.18.7.0/24"}}}}
    )
    networks = viewer.api().get("/api/v1/networks/?topology=demo").json()
    assert [(n["host"], n["topology"], n["name"], n["subnet"]) for n in networks["results"]] == [
        ("h1", "demo", "front", "198.18.1.0/24"),
        ("h1", "demo", "back", "198.18.2.0/24"),
    ]
    assert viewer.api().get("/api/v1/networks/?host=h1").json()["count"] == 3
    assert viewer.api().get("/api/v1/networks/?host=h9").json()["count"] == 0
    nodes = viewer.api().get("/api/v1/nodes/?host=h1&topology=demo").json()["results"]
    assert [node["name"] for node in nodes] == ["web1", "web2", "db", "side"]
    assert nodes[3] | {"attachments": []} == {
        "host": "h1",
        "topology": "demo",
        "name": "side",
        "mode": "container",
        "container": "web1",
        "attachments": [],
        "ports": [],
        "routes": [],
    }


def big(count: int) -> dict[str, Any]:
    return {
        "name": "big",
        "networks": {"n": {"subnet": "198.18.32.0/20"}},
        "nodes": {
            f"n{index}": {"networks": ["n"], "ports": [f"{10000 + index}:80"]} for index in range(count)
        },
        "routes": [{"node": "n0", "to": "198.18.9.0/24", "via": "198.18.32.254"}],
    }


def test_listing_nodes_takes_a_constant_number_of_queries(
    viewer: Account, make_host: Any, django_assert_num_queries: Any
) -> None:
    host = make_host("h1").host
    client = viewer.api()
    services.topology_create(host=host, document=big(3), user=None)
    client.get("/api/v1/nodes/?page_size=1")  # the token's first use notes its last_used (once a minute)
    # lockout of the address, token, count, page of ids, then the nodes, attachments, ports, routes
    with django_assert_num_queries(8):
        assert len(client.get("/api/v1/nodes/?page_size=2000").json()["results"]) == 3
    services.topology_delete(topology=Topology.objects.get())
    services.topology_create(host=host, document=big(1000), user=None)
    services.topology_create(host=make_host("h2").host, document={**big(1000), "name": "big2"}, user=None)
    with django_assert_num_queries(8):
        nodes = client.get("/api/v1/nodes/?page_size=2000").json()["results"]
    assert len(nodes) == 2000
    assert nodes[999]["ports"][0]["text"] == "10999:80"
    with django_assert_num_queries(4):  # lockout, token, count, page
        assert len(client.get("/api/v1/networks/?page_size=2000").json()["results"]) == 2


# Roles: every endpoint by role. Viewers read; operators and admins write.

READS = [
    ("get", "/api/v1/topologies/"),
    ("get", "/api/v1/topologies/demo/"),
    ("get", "/api/v1/topologies/demo/export/"),
    ("get", "/api/v1/networks/"),
    ("get", "/api/v1/nodes/"),
]
WRITES = [
    ("post", "/api/v1/topologies/", 201),
    ("put", "/api/v1/topologies/demo/", 200),
    ("post", "/api/v1/topologies/demo/plan/", 202),
    ("post", "/api/v1/topologies/demo/apply/", 202),
    ("post", "/api/v1/topologies/demo/destroy/", 202),
    ("delete", "/api/v1/topologies/demo/", 204),
]
BODIES = {
    # another name and other subnets, so that only the role decides
    ("post", "/api/v1/topologies/"): {
        "host": "h1",
        "topology": DEMO.replace("name: demo", "name: other").replace("198.18.", "198.19."),
    },
    ("put", "/api/v1/topologies/demo/"): {"topology": DEMO, "version": 1},
}


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "admin"])
def test_roles(role: str, make_host: Any) -> None:
    make_host("h1")
    owner = make_account("owen", Role.OPERATOR)
    client = APIClient() if role == "anonymous" else make_account(f"u-{role}", Role(role)).api()
    for method, url in READS:
        Topology.objects.all().delete()
        create(owner, {"host": "h1", "topology": DEMO})
        expected = 401 if role == "anonymous" else 200
        assert getattr(client, method)(url).status_code == expected, (method, url)
    for method, url, status in WRITES:
        Topology.objects.all().delete()
        assert create(owner, {"host": "h1", "topology": DEMO}).status_code == 201
        expected = {"anonymous": 401, "viewer": 403}.get(role, status)
        response = getattr(client, method)(url, BODIES.get((method, url)), format="json")
        assert response.status_code == expected, (method, url, response.content)


def test_the_schema_documents_the_desired_state_api(viewer: Account) -> None:
    schema = viewer.api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/topologies/"])
    assert {"get", "put", "delete"} <= set(paths["/api/v1/topologies/{name}/"])
    assert set(paths["/api/v1/topologies/{name}/apply/"]["post"]["responses"]) == {
        "202",
        "400",
        "403",
        "404",
        "409",
    }
    assert (
        "application/yaml" in paths["/api/v1/topologies/{name}/export/"]["get"]["responses"]["200"]["content"]
    )
    assert {"/api/v1/networks/", "/api/v1/nodes/"} <= set(paths)


# Concurrency, in a child process on SQLite and on PostgreSQL (run_on_database says why): topologies
# created at the same moment, one thread each. The checks pause after reading the host's other
# topologies (names, then subnets): without the host lock every request would pass them, and the
# constraints would turn the losers into 500s or into address conflicts instead of these 409s.

PAUSE = 0.2


def _concurrent_creates(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """In the child process: an operator POSTs every document for host h1 at once."""
    account = make_account("rita", Role.OPERATOR)
    host_create(name="h1")
    check = services._overlaps

    def slow_check(**kwargs: Any) -> None:
        check(**kwargs)
        time.sleep(PAUSE)

    services._overlaps = slow_check
    barrier = threading.Barrier(len(documents))

    def post(document: dict[str, Any]) -> tuple[int, str]:
        barrier.wait()
        response = create(account, {"host": "h1", "topology": document})
        return response.status_code, response.json().get("message", "")

    with ThreadPoolExecutor(len(documents)) as pool:
        results = list(pool.map(post, documents))
    return {
        "results": results,
        "topologies": sorted(Topology.objects.values_list("name", flat=True)),
        "addresses": list(Attachment.objects.filter(host__name="h1").values_list("address", flat=True)),
    }


def _topology(name: str, subnet: str, nodes: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "networks": {"n": {"subnet": subnet}}, "nodes": nodes}


@pytest.mark.django_db(False)
def test_concurrent_creates_of_one_address_exactly_one_wins(database_url: str) -> None:
    static = {"a": {"networks": {"n": {"address": "198.18.1.20"}}}}
    documents = [_topology("one", "198.18.1.0/24", static), _topology("two", "198.18.1.0/25", static)]
    result = run_on_database(_concurrent_creates, database_url, documents)
    statuses = sorted(status for status, _ in result["results"])
    assert statuses == [201, 409], result
    winner = result["topologies"]
    assert len(winner) == 1
    assert result["addresses"] == ["198.18.1.20"]
    loser = ({"one", "two"} - set(winner)).pop()
    message = next(text for status, text in result["results"] if status == 409)
    assert message.startswith(
        f"network n 198.18.1.0/{24 if loser == 'one' else 25} of topology {loser} overlaps"
    )


@pytest.mark.django_db(False)
def test_concurrent_creates_of_one_name_exactly_one_wins(database_url: str) -> None:
    documents = [_topology("same", f"198.18.{30 + i}.0/24", {"a": {"networks": ["n"]}}) for i in range(4)]
    result = run_on_database(_concurrent_creates, database_url, documents)
    assert sorted(status for status, _ in result["results"]) == [201, 409, 409, 409], result
    assert {text for status, text in result["results"] if status == 409} == {
        "topology same already exists on host h1"
    }
    assert result["topologies"] == ["same"]
    assert len(result["addresses"]) == 1


@pytest.mark.django_db(False)
def test_concurrent_allocations_give_every_address_once(database_url: str) -> None:
    # eight topologies of three allocated addresses each, two on each of four subnets: one per subnet
    # wins, with all its addresses, and no address is handed out twice
    nodes = {name: {"networks": ["n"]} for name in ("a", "b", "c")}
    documents = [_topology(f"t{i}", f"198.18.{20 + i // 2}.0/24", nodes) for i in range(8)]
    result = run_on_database(_concurrent_creates, database_url, documents)
    assert sorted(status for status, _ in result["results"]) == [201] * 4 + [409] * 4, result
    assert all(" overlaps network n " in text for status, text in result["results"] if status == 409), result
    assert len(result["topologies"]) == 4
    assert {int(name[1:]) // 2 for name in result["topologies"]} == {0, 1, 2, 3}
    assert len(result["addresses"]) == 12
    assert len(set(result["addresses"])) == 12
