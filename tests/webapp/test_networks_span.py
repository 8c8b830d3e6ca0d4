"""Topologies spanning hosts in the web app: one file on its home host, a share per host, kept in step."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.webapp.conftest import Account, AgentHost
from webapp.networks.models import Node, Topology
from webapp.operations.models import Operation

pytestmark = pytest.mark.django_db

URL = "/api/v1/topologies/"
FILE = {
    "name": "ov",
    "networks": {
        "mesh": {
            "driver": "vxlan",
            "subnet": "198.18.50.0/24",
            "vni": 5000,
            "hosts": ["lab1", "lab2", "lab3"],
        },
        "pair": {"driver": "vxlan", "subnet": "198.18.52.0/24", "vni": 5002, "hosts": ["lab1", "lab2"]},
        "side": {"subnet": "198.18.51.0/24"},
    },
    "nodes": {
        "a1": {"networks": ["mesh", "side", "pair"]},
        "b1": {"networks": ["mesh", "pair"], "host": "lab2"},
        "c1": {"networks": ["mesh"], "host": "lab3"},
    },
}


@pytest.fixture
def labs(make_host: Callable[..., AgentHost]) -> dict[str, AgentHost]:
    hosts = {name: make_host(name) for name in ("lab1", "lab2", "lab3")}
    for index, h in enumerate(hosts.values(), start=11):
        h.host.underlay = f"198.18.254.{index}"
        h.host.save()
    return hosts


def _file(**nodes: Any) -> dict[str, Any]:
    """FILE (a deep copy: tests change it), with `nodes` added."""
    document = copy.deepcopy(FILE)
    document["nodes"].update(nodes)
    return document


def _create(operator: Account, document: dict[str, Any]) -> Any:
    return operator.api().post(URL, {"host": "lab1", "topology": document}, format="json")


def _share(operator: Account, host: str) -> dict[str, Any]:
    text = operator.api().get(f"{URL}ov/export/?host={host}&pinned=1").content.decode()
    return yaml.safe_load(text)


def _versions() -> dict[str, int]:
    return dict(Topology.objects.values_list("host__name", "version"))


def test_each_host_gets_its_share_and_the_file_stays_whole(operator: Account, labs: dict) -> None:
    created = _create(operator, _file())
    assert created.status_code == 201, created.json()
    assert created.json()["span"] == {"home": "lab1", "hosts": ["lab1", "lab2", "lab3"]}
    assert sorted(_versions()) == ["lab1", "lab2", "lab3"]
    whole = yaml.safe_load(operator.api().get(f"{URL}ov/export/").content)
    assert whole["networks"]["mesh"]["hosts"] == ["lab1", "lab2", "lab3"]  # the file as given
    lab2 = _share(operator, "lab2")
    assert list(lab2["nodes"]) == ["b1"] and list(lab2["networks"]) == ["mesh", "pair"]
    mesh = lab2["networks"]["mesh"]
    assert (mesh["local"], mesh["peers"]) == ("198.18.254.12", ["198.18.254.11", "198.18.254.13"])
    assert mesh["remote_nodes"] == [
        {"address": "198.18.50.2", "vtep": "198.18.254.11"},
        {"address": "198.18.50.4", "vtep": "198.18.254.13"},
    ]
    shown = operator.api().get(f"{URL}ov/?host=lab3").json()
    assert shown["span"] == {"home": "lab1", "hosts": ["lab1", "lab2", "lab3"]}
    assert [n["name"] for n in shown["nodes"]] == ["c1"]


def test_a_node_added_on_one_host_changes_the_shares_it_reaches_only(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    before = _versions()
    lab1_nodes = set(Node.objects.filter(topology__host__name="lab1").values_list("id", "name"))
    updated = operator.api().put(
        f"{URL}ov/",
        {"topology": _file(b2={"networks": ["pair"], "host": "lab2"}), "version": 1},
        format="json",
    )
    assert updated.status_code == 200, updated.json()
    after = _versions()
    # lab1 (the file, and b2's entries on pair) and lab2 (b2 itself) change; lab3 is not on pair
    assert (after["lab1"], after["lab2"], after["lab3"]) == (
        before["lab1"] + 1,
        before["lab2"] + 1,
        before["lab3"],
    )
    pair = _share(operator, "lab1")["networks"]["pair"]
    assert {"address": "198.18.52.3", "vtep": "198.18.254.12"} in pair["remote_nodes"]
    # only lab1's forwarding entries changed: its node rows are the same rows, not written again
    assert set(Node.objects.filter(topology__host__name="lab1").values_list("id", "name")) == lab1_nodes


def test_addresses_stay_when_a_node_goes(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    document = _file()
    del document["nodes"]["a1"]
    assert (
        operator.api().put(f"{URL}ov/", {"topology": document, "version": 1}, format="json").status_code
        == 200
    )
    assert _share(operator, "lab3")["nodes"]["c1"]["networks"]["mesh"]["address"] == "198.18.50.4"


def test_apply_queues_every_hosts_share_on_that_host(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    answer = operator.api().post(f"{URL}ov/apply/").json()
    assert [op["host"] for op in answer["span"]] == ["lab1", "lab2", "lab3"]
    for op in answer["span"]:
        operation = Operation.objects.get(id=op["operation"])
        share = yaml.safe_load(operation.document)
        assert operation.host.name == op["host"] and operation.kind == "apply"
        assert all("hosts" not in body for body in share["networks"].values())
    one = operator.api().post(f"{URL}ov/plan/?host=lab2").json()
    assert one["host"] == "lab2" and one["span"] is None  # one host's share alone (repair that host)


def test_an_apply_after_one_that_succeeded_converges_only_what_changed(operator: Account, labs: dict) -> None:
    """The operation names the nodes whose namespaces the agent must read (netcore.topology.scope):
    none where only other hosts' endpoints changed, the new node where it was added; every node
    (null) on a first apply, for a plan, and on a host that drifted."""
    _create(operator, _file())
    operator.api().post(f"{URL}ov/apply/")
    assert set(Operation.objects.values_list("nodes", flat=True)) == {None}  # nothing applied before
    Operation.objects.update(status="succeeded")
    updated = operator.api().put(
        f"{URL}ov/",
        {"topology": _file(b2={"networks": ["mesh"], "host": "lab2"}), "version": 1},
        format="json",
    )
    assert updated.status_code == 200, updated.json()
    Topology.objects.filter(host__name="lab3").update(drift=[{"object": "ov-c1", "problem": "missing"}])
    queued = operator.api().post(f"{URL}ov/apply/").json()["span"]
    scope = {op["host"]: Operation.objects.get(id=op["operation"]).nodes for op in queued}
    assert scope == {"lab1": [], "lab2": ["b2"], "lab3": None}
    detail = operator.api().get(f"/api/v1/operations/{queued[1]['operation']}/").json()
    assert detail["nodes"] == ["b2"]
    for op in operator.api().post(f"{URL}ov/plan/").json()["span"]:
        assert Operation.objects.get(id=op["operation"]).nodes is None


def test_listing_spanning_topologies_takes_a_constant_number_of_queries(
    operator: Account, labs: dict, django_assert_num_queries: Any
) -> None:
    _create(operator, _file())
    client = operator.api()
    client.get(URL)  # the token's first use notes its last_used (once a minute)
    # lockout of the address, token, count, page, latest operations, shares of home rows, of share rows
    with django_assert_num_queries(7) as once:
        listed = client.get(URL).json()["results"]
    queries = len(once.captured_queries)  # read now: the next request resets the connection's log
    assert [t["span"] for t in listed] == [{"home": "lab1", "hosts": ["lab1", "lab2", "lab3"]}] * 3
    second = _file()
    second["name"] = "ov2"
    for body in second["networks"].values():
        body["subnet"] = body["subnet"].replace("198.18.5", "198.18.6")
    second["networks"]["mesh"]["vni"], second["networks"]["pair"]["vni"] = 6000, 6002
    assert _create(operator, second).status_code == 201
    with django_assert_num_queries(queries):
        assert len(client.get(URL).json()["results"]) == 6


def test_a_share_changes_only_with_the_whole_file(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    share = operator.api().get(f"{URL}ov/export/?host=lab2").content.decode()
    refused = operator.api().put(f"{URL}ov/?host=lab2", {"topology": share, "version": 1}, format="json")
    assert refused.status_code == 409 and "change it there" in refused.json()["message"]
    assert operator.api().delete(f"{URL}ov/?host=lab2").status_code == 409
    assert operator.api().delete(f"{URL}ov/").status_code == 204  # the whole span goes
    assert not Topology.objects.exists()


def test_a_host_leaves_the_span_unless_applied_there(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    document = _file()
    del document["nodes"]["c1"]
    document["networks"]["mesh"]["hosts"] = ["lab1", "lab2"]
    assert (
        operator.api().put(f"{URL}ov/", {"topology": document, "version": 1}, format="json").status_code
        == 200
    )
    assert sorted(_versions()) == ["lab1", "lab2"]
    operator.api().post(f"{URL}ov/apply/")
    Operation.objects.filter(kind="apply").update(status="succeeded")
    document["networks"]["pair"]["hosts"] = ["lab1"]
    document["networks"]["mesh"]["hosts"] = ["lab1"]
    document["nodes"] = {"a1": _file()["nodes"]["a1"]}
    refused = operator.api().put(f"{URL}ov/", {"topology": document, "version": 2}, format="json")
    assert refused.status_code == 409 and "destroy it there first" in refused.json()["message"]
    assert sorted(_versions()) == ["lab1", "lab2"]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (
            lambda d: d["networks"]["mesh"].update(hosts=["lab1", "lab4"]),
            "networks.mesh.hosts.lab4",
            "no underlay",
        ),
        (
            lambda d: d["nodes"]["c1"].update(networks=["pair"]),
            "nodes.c1.networks.pair",
            "does not reach host lab3",
        ),
        (lambda d: d["nodes"].update(x={"mode": "none", "host": "lab9"}), "topology", "no host named lab9"),
        (
            lambda d: d["networks"]["side"].update(hosts=["lab2"]),
            "networks.side.hosts",
            "only a vxlan network",
        ),
    ],
)
def test_bad_spans_are_refused_by_field_and_write_nothing(
    operator: Account, labs: dict, change: Callable, field: str, says: str | None
) -> None:
    document = _file()
    change(document)
    refused = _create(operator, document)
    assert refused.status_code == 400, refused.json()
    assert any(key.startswith(field) for key in refused.json()["fields"]), refused.json()
    if says:
        assert says in str(refused.json()["fields"])
    assert not Topology.objects.exists()


def test_a_host_without_an_underlay_address_is_named(operator: Account, labs: dict) -> None:
    labs["lab3"].host.underlay = None
    labs["lab3"].host.save()
    refused = _create(operator, _file())
    assert "no underlay address known for host lab3" in str(
        refused.json()["fields"]["networks.mesh.hosts.lab3"]
    )


def test_object_edits_span_hosts_too(operator: Account, labs: dict) -> None:
    _create(operator, _file())
    added = operator.api().post(
        f"{URL}ov/nodes/", {"name": "c2", "networks": ["mesh"], "host": "lab3", "version": 1}, format="json"
    )
    assert added.status_code == 201, added.json()
    assert list(_share(operator, "lab3")["nodes"]) == ["c1", "c2"]
    mesh = _share(operator, "lab1")["networks"]["mesh"]
    assert {"address": "198.18.50.5", "vtep": "198.18.254.13"} in mesh["remote_nodes"]
    changed = operator.api().patch(
        f"{URL}ov/networks/pair/", {"hosts": ["lab1", "lab3"], "version": 2}, format="json"
    )
    assert changed.status_code == 400, changed.json()  # b1 on lab2 would lose network pair
    assert "does not reach host lab2" in str(changed.json())
