"""netcore.topology.scope: which nodes an apply converges when the host matched the last document."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netcore.agent.commands import run_command
from netcore.topology.scope import changed_nodes

BEFORE: dict[str, Any] = {
    "name": "sc",
    "networks": {
        "mesh": {
            "driver": "vxlan",
            "subnet": "198.18.50.0/24",
            "gateway": "198.18.50.1",
            "vni": 5000,
            "local": "198.18.254.11",
            "peers": ["198.18.254.12"],
            "remote_nodes": [{"address": "198.18.50.3", "vtep": "198.18.254.12"}],
        },
    },
    "nodes": {
        "a": {"networks": {"mesh": {"address": "198.18.50.2"}}},
        "b": {"networks": {"mesh": {"address": "198.18.50.4"}}},
        "side": {"mode": "container:b"},
    },
    "routes": [{"node": "a", "to": "198.18.60.0/24", "via": "198.18.50.9"}],
}


def _after(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(BEFORE)
    edit(document)
    return document


def test_the_same_document_converges_no_node() -> None:
    assert changed_nodes(BEFORE, copy.deepcopy(BEFORE)) == []


def test_forwarding_entries_alone_converge_no_node() -> None:
    def more_remote_nodes(d: dict) -> None:
        d["networks"]["mesh"]["remote_nodes"].append({"address": "198.18.50.5", "vtep": "198.18.254.12"})
        d["networks"]["mesh"]["peers"].append("198.18.254.13")

    assert changed_nodes(BEFORE, _after(more_remote_nodes)) == []


@pytest.mark.parametrize(
    ("edit", "nodes"),
    [
        pytest.param(
            lambda d: d["nodes"].update(c={"networks": {"mesh": {"address": "198.18.50.6"}}}),
            ["c"],
            id="added",
        ),
        pytest.param(lambda d: d["nodes"].pop("a"), ["a"], id="removed"),
        pytest.param(
            lambda d: d["nodes"]["a"]["networks"]["mesh"].update(address="198.18.50.7"), ["a"], id="moved"
        ),
        pytest.param(lambda d: d["routes"].clear(), ["a"], id="route-removed"),
        # a node in container mode lives in its container's namespace: that one is converged
        pytest.param(lambda d: d["nodes"].pop("side"), ["b", "side"], id="container-mode-removed"),
    ],
)
def test_changed_nodes_are_named(edit: Any, nodes: list[str]) -> None:
    assert changed_nodes(BEFORE, _after(edit)) == nodes


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: d["networks"]["mesh"].update(mtu=1400), id="network-changed"),
        pytest.param(lambda d: d["networks"].update(lan={"subnet": "198.18.51.0/24"}), id="network-added"),
        pytest.param(lambda d: d.update(name="other"), id="renamed"),
        pytest.param(lambda d: d.update(services={}), id="unknown-key"),
        pytest.param(lambda d: d.update(routes="nonsense"), id="malformed-routes"),
    ],
)
def test_anything_beyond_nodes_converges_every_node(edit: Any) -> None:
    assert changed_nodes(BEFORE, _after(edit)) is None


def test_a_document_that_is_not_a_mapping_converges_every_node() -> None:
    assert changed_nodes("name: sc", BEFORE) is None


def test_the_agent_refuses_nodes_that_are_not_a_list_of_names() -> None:
    answer = run_command("apply", "name: sc\n", nodes="web1")
    assert answer["ok"] is False and answer["error"]["object"] == "nodes", answer
