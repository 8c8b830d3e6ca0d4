"""Spanning topologies: one file validated and allocated once, split into each host's share."""

from __future__ import annotations

import pytest

from netcore.errors import InvalidSpec
from netcore.topology import spec as topology_spec
from netcore.topology.span import span_split, spans_hosts

VTEPS = {"lab1": "198.18.254.11", "lab2": "198.18.254.12", "lab3": "198.18.254.13"}


def doc(**extra: object) -> dict:
    return {
        "name": "ov",
        "networks": {
            "mesh": {
                "driver": "vxlan",
                "subnet": "198.18.50.0/24",
                "vni": 5000,
                "hosts": ["lab1", "lab2", "lab3"],
            },
            "side": {"subnet": "198.18.51.0/24"},
        },
        "nodes": {
            "a1": {"networks": ["mesh", "side"]},
            "b1": {"networks": ["mesh"], "host": "lab2"},
            "b2": {"networks": ["mesh"], "host": "lab2"},
            "c1": {"networks": {"mesh": {"address": "198.18.50.99"}}, "host": "lab3"},
        },
        "routes": [{"node": "b1", "to": "198.18.60.0/24", "via": "198.18.50.1"}],
        **extra,
    }


def test_each_host_gets_its_networks_nodes_routes_and_the_others_forwarding_state() -> None:
    span = span_split(doc(), home="lab1", vteps=VTEPS)
    assert list(span.shares) == ["lab1", "lab2", "lab3"]
    lab1, lab2 = span.shares["lab1"], span.shares["lab2"]
    assert list(lab1["networks"]) == ["mesh", "side"] and list(lab2["networks"]) == ["mesh"]
    assert list(lab1["nodes"]) == ["a1"] and list(lab2["nodes"]) == ["b1", "b2"]
    mesh = lab2["networks"]["mesh"]
    assert (mesh["local"], mesh["peers"], mesh["learning"]) == (
        "198.18.254.12",
        ["198.18.254.11", "198.18.254.13"],
        False,
    )
    # addresses are allocated once, over the whole file: unique across hosts
    assert mesh["remote_nodes"] == [
        {"address": "198.18.50.2", "vtep": "198.18.254.11"},
        {"address": "198.18.50.99", "vtep": "198.18.254.13"},
    ]
    assert lab2["nodes"]["b1"]["networks"] == {"mesh": {"address": "198.18.50.3"}}
    assert lab2["nodes"]["b2"]["networks"] == {"mesh": {"address": "198.18.50.4"}}
    assert lab2["routes"] == [{"node": "b1", "to": "198.18.60.0/24", "via": "198.18.50.1"}]
    assert "routes" not in lab1
    for share in span.shares.values():  # each share is an ordinary topology file without span keys
        topology_spec.parse({**share, "networks": {
            name: {k: v for k, v in body.items() if k not in ("peers", "remote_nodes")}
            for name, body in share["networks"].items()
        }})  # fmt: skip


def test_a_node_added_on_one_host_changes_the_others_shares_only_in_their_entries() -> None:
    before = span_split(doc(), home="lab1", vteps=VTEPS)
    grown = doc()
    grown["nodes"]["c2"] = {"networks": ["mesh"], "host": "lab3"}
    after = span_split(grown, home="lab1", vteps=VTEPS)
    assert after.shares["lab1"]["nodes"] == before.shares["lab1"]["nodes"]
    added = {"address": "198.18.50.5", "vtep": "198.18.254.13"}
    assert after.shares["lab1"]["networks"]["mesh"]["remote_nodes"] == [
        *before.shares["lab1"]["networks"]["mesh"]["remote_nodes"],
        added,
    ]


def test_vteps_given_in_the_file_win_and_learning_keeps_peers_only() -> None:
    document = doc()
    document["networks"]["mesh"]["hosts"] = {"lab1": "198.18.254.21", "lab2": None, "lab3": "198.18.254.23"}
    document["networks"]["mesh"]["learning"] = True
    mesh = span_split(document, home="lab1", vteps=VTEPS).shares["lab2"]["networks"]["mesh"]
    assert (mesh["local"], mesh["peers"]) == ("198.18.254.12", ["198.18.254.21", "198.18.254.23"])
    assert "remote_nodes" not in mesh


def test_a_file_without_hosts_is_one_share_on_its_home() -> None:
    document = doc()
    del document["networks"]["mesh"]["hosts"]
    for node in document["nodes"].values():
        node.pop("host", None)
    assert not spans_hosts(document) and spans_hosts(doc())
    span = span_split(document, home="lab1", vteps={})
    assert list(span.shares) == ["lab1"] and "local" not in span.shares["lab1"]["networks"]["mesh"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["networks"]["side"].update(hosts=["lab1"]), "networks.side.hosts: only a vxlan network"),
        (
            lambda d: d["networks"]["mesh"].update(local="198.18.254.1"),
            "networks.mesh.local: set for each host",
        ),
        (
            lambda d: d["networks"]["mesh"].update(hosts=["lab1", "lab9"]),
            "networks.mesh.hosts.lab9: no underlay",
        ),
        (
            lambda d: d["networks"]["mesh"].update(hosts={"lab1": "nope"}),
            "networks.mesh.hosts.lab1: 'nope' is not",
        ),
        (
            lambda d: d["networks"]["mesh"].update(hosts=["lab1", "lab1"]),
            "networks.mesh.hosts.lab1: named twice",
        ),
        (
            lambda d: d["networks"]["mesh"].update(hosts={"lab1": "198.18.254.5", "lab2": "198.18.254.5"}),
            "networks.mesh.hosts: two hosts have the VTEP address 198.18.254.5",
        ),
        (
            lambda d: d["nodes"]["b2"].update(networks=["side"]),
            "nodes.b2.networks.side: network side does not reach",
        ),
        (
            lambda d: d["nodes"].update(s1={"mode": "container:a1", "host": "lab2"}),
            "nodes.s1.host: it shares the namespace of node a1, which is on host lab1",
        ),
        (lambda d: d["nodes"]["b1"].update(host=7), "nodes.b1.host: 7 is not a host name"),
    ],
)
def test_bad_spans_are_refused_naming_the_field(change, problem: str) -> None:
    document = doc()
    change(document)
    with pytest.raises(InvalidSpec) as raised:
        span_split(document, home="lab1", vteps=VTEPS)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_netcore_problems_come_with_the_span_problems() -> None:
    document = doc()
    document["networks"]["mesh"]["hosts"] = ["lab1", "lab9"]
    document["networks"]["mesh"]["vni"] = 0
    with pytest.raises(InvalidSpec) as raised:
        span_split(document, home="lab1", vteps=VTEPS)
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "networks.mesh.hosts.lab9",
        "networks.mesh.vni",
    ]
