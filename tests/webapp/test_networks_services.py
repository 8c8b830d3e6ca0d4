"""Desired state: topologies recorded through netcore's parser, compiled back into the same document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netcore.topology import spec as topology_spec
from tests.webapp.conftest import Account, link, state_with
from webapp.errors import Conflict, InvalidInput
from webapp.networks import services
from webapp.networks.models import Attachment, Network, Node, PublishedPort, Route, Topology
from webapp.networks.services import (
    topology_create,
    topology_delete,
    topology_document,
    topology_update,
    topology_yaml,
)
from webapp.topology.services import host_state_save

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "docs/examples/demo.yaml").read_text()
PORTS = """\
name: web
networks:
  front: {subnet: 198.18.5.0/24, nat: true}
  six: {subnet: "fd00:5::/64", mtu: 1400}
  over: {driver: vxlan, subnet: 198.18.6.0/24, vni: 7, remote: 198.18.0.9, dstport: 4790, learning: false}
nodes:
  api:
    networks: {front: {address: 198.18.5.80}, six: {}, over: {}}
    ports: ["127.0.0.1:8080:80/tcp", "8081:81", "198.18.5.1:9000-9001:9000-9001/udp", "[fd00::1]:80:80"]
  host1: {mode: host}
routes:
  - {node: api, to: 198.18.8.0/24, dev: eth0}
  - {node: api, to: 198.18.9.0/24, via: 198.18.5.254}
"""


def rows(topology: Topology) -> dict[str, Any]:
    """Everything stored for a topology, without ids and times."""
    return {
        "topology": (topology.host_id, topology.name, topology.auto_repair),
        "networks": list(
            Network.objects.filter(topology=topology).values_list(
                "position", "name", "driver", "subnet", "gateway", "mtu", "nat", "options"
            )
        ),
        "nodes": list(
            Node.objects.filter(topology=topology).values_list("position", "name", "mode", "container_of")
        ),
        "attachments": list(
            Attachment.objects.filter(node__topology=topology)
            .order_by("node__position", "position")
            .values_list("node__name", "network__name", "host_id", "position", "ifname", "address", "static")
        ),
        "routes": list(
            Route.objects.filter(node__topology=topology)
            .order_by("position")
            .values_list("node__name", "position", "to", "via", "dev")
        ),
        "ports": list(
            PublishedPort.objects.filter(node__topology=topology)
            .order_by("node__position", "position")
            .values_list(
                "node__name",
                "position",
                "text",
                "protocol",
                "host_ip",
                "host_port_first",
                "host_port_last",
                "container_port_first",
                "container_port_last",
            )
        ),
    }


@pytest.mark.parametrize("text", [DEMO, PORTS], ids=["demo", "ports"])
def test_create_then_document_reproduces_the_rows_and_the_spec(
    text: str, make_host: Any, operator: Account
) -> None:
    host = make_host("h1").host
    first = topology_create(host=host, document=text, user=operator.user)
    stored = rows(first)
    document = topology_document(topology=first)
    pinned = topology_document(topology=first, pinned=True)
    text_again = topology_yaml(topology=first)
    # netcore reads the original file, the document, its YAML and the pinned document the same way
    expected = topology_spec.loads(text)
    assert topology_spec.parse(document) == expected
    assert topology_spec.loads(text_again) == expected
    assert topology_spec.parse(pinned) == expected
    # and storing the document (object or text) again gives the same rows
    topology_delete(topology=first)
    assert topology_create(host=host, document=document, user=operator.user).version == 1
    assert rows(Topology.objects.get(host=host)) == stored
    Topology.objects.get(host=host).delete()
    again = topology_create(host=host, document=text_again, user=operator.user)
    assert rows(again) == stored


def test_the_demo_rows_hold_the_resolved_addresses(make_host: Any, operator: Account) -> None:
    topology = topology_create(host=make_host("h1").host, document=DEMO, user=operator.user)
    assert topology.version == 1 and topology.created_by == operator.user and not topology.auto_repair
    assert rows(topology)["attachments"] == [
        ("web1", "front", topology.host_id, 0, "eth0", "198.18.1.2", False),
        ("web1", "back", topology.host_id, 1, "eth1", "198.18.2.2", False),
        ("web2", "front", topology.host_id, 0, "eth0", "198.18.1.20", True),
    ]
    assert rows(topology)["nodes"][3] == (3, "side", "container", "web1")
    assert rows(topology)["networks"][1][7] == {"vni": 4242, "dstport": 4789, "learning": True}
    assert topology_document(topology=topology)["nodes"] == {
        "web1": {"networks": ["front", "back"]},
        "web2": {"networks": {"front": {"address": "198.18.1.20"}}},
        "db": {"mode": "none"},
        "side": {"mode": "container:web1"},
    }
    assert topology_document(topology=topology, pinned=True)["nodes"]["web1"] == {
        "networks": {"front": {"address": "198.18.1.2"}, "back": {"address": "198.18.2.2"}}
    }


def test_netcore_problems_are_reported_by_field_and_nothing_is_written(make_host: Any) -> None:
    host = make_host("h1").host
    bad = {
        "name": "Demo!",
        "networks": {"front": {"subnet": "198.18.1.0/33"}, "back": {}},
        "nodes": {"web1": {"networks": ["nope"]}},
        "color": "red",
    }
    with pytest.raises(InvalidInput) as caught:
        topology_create(host=host, document=bad, user=None)
    fields = caught.value.to_dict()["fields"]
    assert set(fields) == {
        "name",
        "networks.front.subnet",
        "networks.back.subnet",
        "nodes.web1.networks[0]",
        "topology",
    }
    assert fields["networks.back.subnet"] == ["missing"]
    assert fields["nodes.web1.networks[0]"] == ["unknown network 'nope'"]
    assert "unknown top-level key 'color'" in fields["topology"][0]
    assert not Topology.objects.exists() and not Network.objects.exists()


def test_yaml_errors_are_reported_on_the_document(make_host: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        topology_create(host=make_host("h1").host, document="name: [demo\n", user=None)
    assert list(caught.value.to_dict()["fields"]) == ["topology"]
    assert "invalid YAML" in caught.value.to_dict()["fields"]["topology"][0]


def test_an_overlapping_subnet_is_refused_naming_both(make_host: Any) -> None:
    host = make_host("h1").host
    topology_create(
        host=host, document={"name": "lab", "networks": {"back": {"subnet": "198.18.1.128/25"}}}, user=None
    )
    with pytest.raises(Conflict) as caught:
        topology_create(host=host, document=DEMO, user=None)
    assert caught.value.message == (
        "network front 198.18.1.0/24 of topology demo overlaps network back 198.18.1.128/25 of topology lab"
        " on host h1"
    )
    assert Topology.objects.count() == 1 and Node.objects.count() == 0
    # another host is another address space
    topology_create(host=make_host("h2").host, document=DEMO, user=None)


def test_a_subnet_the_host_already_routes_is_refused_naming_the_route(make_host: Any) -> None:
    host = make_host("h1").host
    route = {"netns": "host", "family": 2, "gateway": None, "oif": 3, "protocol": "kernel",
             "scope": "link", "metric": None, "prefsrc": None, "onlink": False}  # fmt: skip
    ours = {**link("lab-back", 4), "alias": "switchboard:lab:bridge:network=back"}
    host_state_save(
        host_id=host.id,
        seq=1,
        state=state_with(
            namespaces={"host": {"name": "host", "inode": 1, "kind": "host"}},
            links={"host|3": link("eth1", 3, kind=None), "host|4": ours},
            routes={
                "r1": {**route, "dst": "198.18.2.0/24", "dev": "eth1"},  # not Switchboard's
                "r2": {**route, "dst": "198.18.1.0/24", "dev": "lab-back", "oif": 4},  # a topology's
                "r3": {**route, "dst": "default", "dev": "eth1", "gateway": "198.18.2.254"},
            },
        ),
    )
    with pytest.raises(Conflict) as caught:
        topology_create(host=host, document=DEMO, user=None)
    assert caught.value.message == (
        "network back 198.18.2.0/24 of topology demo overlaps the route 198.18.2.0/24 (dev eth1) that host h1"
        " already has: pick a subnet the host does not route yet"
    )
    assert caught.value.field == "networks.back.subnet" and Topology.objects.count() == 0
    # a bridge of Switchboard's routing the other subnet, and the default route, are no clash
    topology_create(host=host, document=DEMO.replace("198.18.2.", "198.18.3."), user=None)


def test_a_duplicate_name_on_a_host_is_a_conflict(make_host: Any) -> None:
    host = make_host("h1").host
    topology_create(host=host, document=DEMO, user=None)
    other = DEMO.replace("198.18.1.", "198.18.3.").replace("198.18.2.", "198.18.4.")
    with pytest.raises(Conflict, match="topology demo already exists on host h1"):
        topology_create(host=host, document=other, user=None)


def test_update_needs_the_current_version_and_replaces_the_rows(make_host: Any) -> None:
    host = make_host("h1").host
    topology = topology_create(host=host, document=DEMO, user=None)
    changed = DEMO.replace("address: 198.18.1.20", "address: 198.18.1.30")
    updated = topology_update(topology=topology, document=changed, version=1, user=None)
    assert updated.version == 2
    assert Attachment.objects.filter(host=host, address="198.18.1.30", static=True).exists()
    assert not Attachment.objects.filter(address="198.18.1.20").exists()
    with pytest.raises(Conflict, match="is at version 2, not 1") as caught:
        topology_update(topology=topology, document=DEMO, version=1, user=None)
    assert caught.value.field == "version"
    with pytest.raises(InvalidInput, match="a new name is a new topology"):
        topology_update(
            topology=topology, document=DEMO.replace("name: demo", "name: other"), version=2, user=None
        )
    with pytest.raises(Conflict, match="not 1"):
        topology_delete(topology=topology, version=1)
    topology_delete(topology=topology, version=2)
    assert not Topology.objects.exists() and not Attachment.objects.exists()


def test_an_update_may_keep_its_own_subnets(make_host: Any) -> None:
    host = make_host("h1").host
    topology = topology_create(host=host, document=DEMO, user=None)
    assert topology_update(topology=topology, document=DEMO, version=1, user=None).version == 2


def test_the_address_constraint_is_the_last_guard(make_host: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the overlap check ever bypassed, the database still refuses a second owner of an address."""
    host = make_host("h1").host
    topology_create(host=host, document=DEMO, user=None)
    monkeypatch.setattr(services, "_overlaps", lambda **_: None)
    lab = {
        "name": "lab",
        "networks": {"n": {"subnet": "198.18.1.0/24"}},
        "nodes": {"a": {"networks": {"n": {"address": "198.18.1.20"}}}},
    }
    with pytest.raises(Conflict) as caught:
        topology_create(host=host, document=lab, user=None)
    assert caught.value.message == (
        "address 198.18.1.20 of node a on network n of topology lab is already taken by node web2 on"
        " network front of topology demo"
    )
    assert list(Topology.objects.values_list("name", flat=True)) == ["demo"]
