"""Object edits of a topology through the API (/api/v1/topologies/<name>/networks/, nodes/, attach,
detach, routes): validated by netcore like a file, errors by the edit's own fields, versions, roles."""

from __future__ import annotations

from typing import Any

import pytest

from tests.webapp.conftest import Account
from webapp.audit.models import AuditEntry
from webapp.networks.models import Attachment, Topology

pytestmark = pytest.mark.django_db

BASE = "/api/v1/topologies/lab/"
LAB = """
name: lab
networks:
  front: {subnet: 198.18.40.0/24}
nodes:
  a: {networks: [front]}
  b: {networks: [front]}
  c: {networks: [front]}
"""


@pytest.fixture
def lab(operator: Account, make_host: Any) -> dict[str, Any]:
    make_host("h1")
    response = operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": LAB}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def addresses(body: dict[str, Any]) -> dict[str, list[str]]:
    return {node["name"]: [a["address"] for a in node["attachments"]] for node in body["nodes"]}


def test_add_a_network_and_a_node_on_it(operator: Account, lab: dict[str, Any]) -> None:
    api = operator.api()
    added = api.post(
        f"{BASE}networks/",
        {"version": 1, "name": "back", "subnet": "198.18.41.0/24", "mtu": 1400},
        format="json",
    )
    assert added.status_code == 201, added.json()
    assert added.json()["version"] == 2
    assert added["ETag"] == '"2"'
    back = next(n for n in added.json()["networks"] if n["name"] == "back")
    assert (back["subnet"], back["gateway"], back["mtu"]) == ("198.18.41.0/24", "198.18.41.1", 1400)

    node = api.post(
        f"{BASE}nodes/",
        {
            "version": 2,
            "name": "r",
            "networks": {"front": {}, "back": {"address": "198.18.41.254"}},
            "ports": ["127.0.0.1:18080:80"],
        },
        format="json",
    )
    assert node.status_code == 201, node.json()
    r = next(n for n in node.json()["nodes"] if n["name"] == "r")
    assert [(a["network"], a["ifname"], a["address"], a["static"]) for a in r["attachments"]] == [
        ("front", "eth0", "198.18.40.5", False),
        ("back", "eth1", "198.18.41.254", True),
    ]
    assert [p["text"] for p in r["ports"]] == ["127.0.0.1:18080:80"]
    entry = AuditEntry.objects.filter(action="topology.update").order_by("-id").first()
    assert entry is not None and entry.details["change"] == "add node r"


def test_deleting_a_node_keeps_the_others_addresses(operator: Account, lab: dict[str, Any]) -> None:
    before = addresses(lab)
    response = operator.api().delete(f"{BASE}nodes/a/?version=1")
    assert response.status_code == 200, response.json()
    after = addresses(response.json())
    # netcore allocates in file order: without keeping them, b and c would each move down by one
    assert after == {"b": before["b"], "c": before["c"]}
    assert not Attachment.objects.filter(static=True).exists()
    # and a new node takes the freed address, not one of theirs
    added = operator.api().post(
        f"{BASE}nodes/", {"version": 2, "name": "d", "networks": ["front"]}, format="json"
    )
    assert addresses(added.json())["d"] == before["a"]


def test_attach_detach_and_routes(operator: Account, lab: dict[str, Any]) -> None:
    api = operator.api()
    v = api.post(
        f"{BASE}networks/", {"version": 1, "name": "back", "subnet": "198.18.41.0/24"}, format="json"
    ).json()["version"]
    attached = api.post(
        f"{BASE}nodes/a/attach/", {"version": v, "network": "back", "address": "198.18.41.9"}, format="json"
    )
    assert attached.status_code == 200, attached.json()
    assert addresses(attached.json())["a"] == ["198.18.40.2", "198.18.41.9"]
    v = attached.json()["version"]
    again = api.post(f"{BASE}nodes/a/attach/", {"version": v, "network": "back"}, format="json")
    assert again.status_code == 409 and again.json()["fields"] == {
        "network": ["node a is already on network back"]
    }

    route = api.post(
        f"{BASE}nodes/b/routes/", {"version": v, "to": "198.18.41.0/24", "via": "198.18.40.2"}, format="json"
    )
    assert route.status_code == 201, route.json()
    v = route.json()["version"]
    listed = api.get("/api/v1/routes/?topology=lab").json()["results"]
    assert listed == [
        {
            "host": "h1",
            "topology": "lab",
            "node": "b",
            "to": "198.18.41.0/24",
            "via": "198.18.40.2",
            "dev": "",
        }
    ]
    bad = api.post(
        f"{BASE}nodes/b/routes/", {"version": v, "to": "198.18.42.0/24", "via": "198.18.99.1"}, format="json"
    )
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["via"], bad.json()

    gone = api.delete(f"{BASE}nodes/b/routes/?to=198.18.41.0/24&version={v}")
    assert gone.status_code == 200 and api.get("/api/v1/routes/?topology=lab").json()["results"] == []
    v = gone.json()["version"]
    busy = api.delete(f"{BASE}networks/back/?version={v}")
    assert busy.status_code == 409 and "(a)" in busy.json()["message"]
    detached = api.post(f"{BASE}nodes/a/detach/", {"version": v, "network": "back"}, format="json")
    assert addresses(detached.json())["a"] == ["198.18.40.2"]
    assert api.delete(f"{BASE}networks/back/?version={v + 1}").status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "fields"),
    [
        ("networks/", {"name": "back", "subnet": "198.18.41.0/33"}, ["subnet"]),
        ("networks/", {"name": "Bad Name!", "subnet": "198.18.41.0/24"}, ["name"]),
        ("networks/", {"name": "back", "subnet": "198.18.41.0/24", "mtu": 70000}, ["mtu"]),
        ("networks/", {"name": "back", "subnet": "198.18.41.0/24", "colour": "red"}, ["colour"]),
        ("nodes/", {"name": "d", "networks": ["nowhere"]}, ["networks[0]"]),
        (
            "nodes/",
            {"name": "d", "networks": {"front": {"address": "198.18.99.9"}}},
            ["networks.front.address"],
        ),
        ("nodes/", {"name": "d", "networks": ["front"], "ports": ["127.0.0.1:99999:80"]}, ["ports[0]"]),
        ("nodes/a/attach/", {"network": "front"}, ["network"]),
        ("nodes/", {"name": "d"}, ["version"]),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    operator: Account, lab: dict[str, Any], path: str, body: dict[str, Any], fields: list[str]
) -> None:
    if fields != ["version"]:
        body = {"version": 1, **body}
    response = operator.api().post(f"{BASE}{path}", body, format="json")
    assert response.status_code in (400, 409), response.json()
    assert list(response.json()["fields"]) == fields, response.json()
    assert Topology.objects.get(name="lab").version == 1
    assert Attachment.objects.count() == 3


def test_a_clash_with_another_topology_names_both(operator: Account, lab: dict[str, Any]) -> None:
    other = (
        "name: two\nnetworks:\n  net: {subnet: 198.18.50.0/24}\n"
        "nodes:\n  x: {networks: {net: {address: 198.18.50.9}}}\n"
    )
    assert (
        operator.api()
        .post("/api/v1/topologies/", {"host": "h1", "topology": other}, format="json")
        .status_code
        == 201
    )
    overlap = operator.api().post(
        f"{BASE}networks/", {"version": 1, "name": "back", "subnet": "198.18.50.0/25"}, format="json"
    )
    assert overlap.status_code == 409
    assert overlap.json()["fields"] == {"subnet": [overlap.json()["message"]]}
    assert "topology two" in overlap.json()["message"] and "topology lab" in overlap.json()["message"]


def test_stale_versions_409_or_412_with_if_match(operator: Account, lab: dict[str, Any]) -> None:
    api = operator.api()
    assert api.post(f"{BASE}nodes/", {"version": 1, "name": "d"}, format="json").status_code == 201
    stale = api.post(f"{BASE}nodes/", {"version": 1, "name": "e"}, format="json")
    assert stale.status_code == 409 and list(stale.json()["fields"]) == ["version"]
    precondition = api.post(f"{BASE}nodes/", {"name": "e"}, format="json", HTTP_IF_MATCH='"1"')
    assert precondition.status_code == 412
    assert api.post(f"{BASE}nodes/", {"name": "e"}, format="json", HTTP_IF_MATCH='"2"').status_code == 201
    put = api.put(BASE, {"topology": LAB}, format="json", HTTP_IF_MATCH='"2"')
    assert put.status_code == 412
    assert api.delete(BASE, HTTP_IF_MATCH='"3"').status_code == 204


def test_missing_objects_are_404_and_viewers_403(
    operator: Account, viewer: Account, lab: dict[str, Any]
) -> None:
    assert (
        operator.api().patch(f"{BASE}nodes/zz/", {"version": 1, "mode": "none"}, format="json").status_code
        == 404
    )
    assert operator.api().delete(f"{BASE}networks/zz/?version=1").status_code == 404
    assert operator.api().delete(f"{BASE}nodes/a/routes/?to=198.18.1.0/24&version=1").status_code == 404
    assert viewer.api().post(f"{BASE}nodes/", {"version": 1, "name": "d"}, format="json").status_code == 403
    assert Topology.objects.get(name="lab").version == 1
