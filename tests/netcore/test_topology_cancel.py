"""Cancelling plan/apply/destroy against the real kernel: the run stops at its next safe point and
leaves nothing of what it made (namespaces, veths, bridges, sysctls, nft table)."""

from __future__ import annotations

import json
import os

import pytest

from netcore import netns as ns
from netcore.errors import Cancelled
from netcore.topology import converge, spec

NODES = 10


def ported(topo: str) -> spec.TopologySpec:
    """NODES nodes on a NAT network, one publishing a port on 127.0.0.1 (a sysctl and an nft table)."""
    nodes = "\n".join(f"  n{i}: {{networks: [lan]}}" for i in range(1, NODES))
    return spec.loads(f"""
name: {topo}
networks:
  lan: {{subnet: 198.18.30.0/24, nat: true}}
nodes:
  n0: {{networks: [lan], ports: ["127.0.0.1:8081:80"]}}
{nodes}
""")


def host_links(host_ns) -> list[str]:
    return sorted(x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout))


def namespaces_of(topo: str) -> list[str]:
    return [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-")]


def nft_tables(host_ns) -> list[str]:
    listed = json.loads(host_ns.run("nft -j list tables").stdout)["nftables"]
    return [x["table"]["name"] for x in listed if "table" in x]


@pytest.mark.parametrize("at_call", [1, 2], ids=["before-any-node", "after-a-chunk"])
def test_an_apply_cancelled_at_a_progress_call_leaves_nothing(host_ns, topo, monkeypatch, at_call):
    monkeypatch.setattr(converge, "CHUNK", 4)  # NODES nodes in chunks of 4: three safe points among them
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        assert host_links(host_ns) != ["lo"]  # the bridge is there (and after a chunk, veths too)
        if len(calls) == 2:
            assert len(namespaces_of(topo)) == 4

    with pytest.raises(Cancelled, match=f"apply of topology {topo} was cancelled; what it had created"):
        converge.apply(ported(topo), progress=progress, cancelled=lambda: len(calls) >= at_call)

    assert calls == [(0, NODES), (4, NODES)][:at_call]
    assert host_links(host_ns) == ["lo"]
    assert namespaces_of(topo) == []
    assert nft_tables(host_ns) == []
    # nothing half-built stands in the way of the next apply
    result = converge.apply(ported(topo))
    assert len(namespaces_of(topo)) == NODES and nft_tables(host_ns) == [f"switchboard-{topo}"]
    assert result.counts()["create"] > NODES
    converge.destroy(ported(topo))
    assert host_links(host_ns) == ["lo"] and nft_tables(host_ns) == []


def test_a_cancel_after_the_last_node_is_too_late_and_the_apply_completes(host_ns, topo):
    """Past the last chunk there is no safe point left: the run finishes (nft included)."""
    calls: list[tuple[int, int]] = []
    converge.apply(
        ported(topo),
        progress=lambda done, total: calls.append((done, total)),
        cancelled=lambda: calls[-1:] == [(NODES, NODES)],
    )
    assert calls[-1] == (NODES, NODES)
    assert len(namespaces_of(topo)) == NODES and nft_tables(host_ns) == [f"switchboard-{topo}"]
    converge.destroy(ported(topo))


def test_a_cancelled_plan_or_destroy_changes_nothing(host_ns, topo):
    with pytest.raises(Cancelled, match=f"^plan of topology {topo} was cancelled$"):
        converge.plan(ported(topo), cancelled=lambda: True)
    converge.apply(ported(topo))
    before = host_links(host_ns)
    with pytest.raises(Cancelled, match=f"^destroy of topology {topo} was cancelled; what it had created"):
        converge.destroy(ported(topo), cancelled=lambda: True)  # asked before the first removal
    assert host_links(host_ns) == before and len(namespaces_of(topo)) == NODES
    assert converge.destroy(ported(topo), cancelled=lambda: False).counts()["delete"] > NODES
    assert host_links(host_ns) == ["lo"] and namespaces_of(topo) == [] and nft_tables(host_ns) == []
