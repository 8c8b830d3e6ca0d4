"""reach.py: who reaches whom, worked out from a topology file, and what a change breaks (pure; the
kernel test in test_topology_reach.py proves the model against real traffic)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netcore.errors import Unsupported
from netcore.topology import reach, spec


def load(body: str, name: str = "demo") -> spec.TopologySpec:
    return spec.loads(f"name: {name}\n{body}")


TWO_NETWORKS = """
networks:
  red: {subnet: 198.18.6.0/24}
  blue: {subnet: 198.18.7.0/24}
nodes:
  a: {networks: [red]}
  b: {networks: [red]}
  c: {networks: [blue]}
"""


def pairs(topology: spec.TopologySpec, **kwargs) -> dict[tuple[str, str], reach.Pair]:
    """{(source, target address): pair}."""
    return {(p.source, str(p.address)): p for p in reach.reach(topology, **kwargs)}


def test_one_network_is_l2_and_other_networks_need_the_host_to_forward():
    t = load(TWO_NETWORKS)
    off = pairs(t)
    assert off[("a", "198.18.6.3")].how == "L2"
    assert off[("a", "198.18.6.3")].path == ("a", "b", "a")
    cut = off[("a", "198.18.7.2")]
    assert cut.how is None and cut.path == ("a", reach.HOST)
    assert cut.reason == "(host) does not forward (IP forwarding is off there)"
    on = pairs(t, host_forwards=True)[("a", "198.18.7.2")]
    assert on.how == "L3" and on.path == ("a", reach.HOST, "c", reach.HOST, "a")
    assert on.to_dict() == {
        "source": "a",
        "target": "c",
        "network": "blue",
        "address": "198.18.7.2",
        "how": "L3",
        "path": ["a", "(host)", "c", "(host)", "a"],
    }


def test_every_node_to_every_address_of_every_other_node():
    t = load(TWO_NETWORKS.replace("c: {networks: [blue]}", "c: {networks: [blue, red]}\n  n: {mode: none}"))
    keys = [p.key for p in reach.reach(t)]
    assert len(keys) == len(set(keys))
    assert ("a", "c", "red") in keys and ("a", "c", "blue") in keys and ("a", "a", "red") not in keys
    assert not [k for k in keys if k[1] == "n"]  # mode none: no address to reach
    assert all(p.how is None and "has no route" in p.reason for p in reach.reach(t) if p.source == "n")


ROUTER = """
networks:
  red: {subnet: 198.18.6.0/24}
  blue: {subnet: 198.18.7.0/24}
nodes:
  a: {networks: [red]}
  r: {networks: {red: {address: 198.18.6.254}, blue: {address: 198.18.7.254}}}
  c: {networks: [blue]}
  s: {mode: "container:a"}
  h: {mode: host}
routes:
  - {node: a, to: 198.18.7.0/24, via: 198.18.6.254}
"""


def test_a_router_node_forwards_only_when_forwarding_is_on_in_its_namespace_and_the_answer_must_come_back():
    t = load(ROUTER)
    assert pairs(t)[("a", "198.18.7.2")].reason == "r does not forward (IP forwarding is off there)"
    # there through r, but c answers through its default route, the host, which does not forward
    one_way = pairs(t, forwarding=["r"])[("a", "198.18.7.2")]
    assert one_way.how is None and one_way.path == ("a", "r", "c", reach.HOST)
    assert one_way.reason.startswith("the answer from c to 198.18.6.2 is lost: (host) does not forward")
    both = pairs(t, forwarding=["r"], host_forwards=True)[("a", "198.18.7.2")]
    assert both.how == "L3" and both.path == ("a", "r", "c", reach.HOST, "a")
    # a node in container mode shares a's namespace and routes; forwarding named by it counts for a's
    assert pairs(t, forwarding=["s"], host_forwards=True)[("s", "198.18.7.2")].how is None
    assert pairs(t)[("s", "198.18.6.2")].how == "local"
    assert pairs(t)[("h", "198.18.7.2")].how == "L2"  # the host is on every network


def test_masquerade_brings_the_answer_back_through_the_host():
    # c's way back to red is r, which does not forward; masqueraded, b's request reaches c from blue's
    # gateway, so c answers the host, which undoes the masquerade and sends the answer on to b
    routed = ROUTER.replace("{subnet: 198.18.6.0/24}", "{subnet: 198.18.6.0/24, nat: true}").replace(
        "routes:\n", "routes:\n  - {node: c, to: 198.18.6.0/24, via: 198.18.7.254}\n"
    )
    t = load(routed.replace("  r: {", "  b: {networks: [red]}\n  r: {"))
    found = pairs(t, host_forwards=True)[("b", "198.18.7.2")]
    assert found.how == "L3" and found.path == ("b", reach.HOST, "c", reach.HOST, "b")
    plain = load(routed.replace(", nat: true", "").replace("  r: {", "  b: {networks: [red]}\n  r: {"))
    lost = pairs(plain, host_forwards=True)[("b", "198.18.7.2")]
    assert lost.how is None and lost.reason.endswith("r does not forward (IP forwarding is off there)")


def test_no_route_nothing_answering_and_loops_are_named():
    t = load("""
networks:
  red: {subnet: 198.18.6.0/24}
  far: {subnet: 198.18.9.0/24}
nodes:
  p: {networks: [red]}
  q: {networks: [red]}
  z: {networks: [far]}
routes:
  - {node: p, to: 198.18.9.0/24, via: 198.18.6.3}
  - {node: q, to: 198.18.9.0/24, via: 198.18.6.2}
  - {node: z, to: 198.18.6.0/24, via: 198.18.9.200}
""")
    looped = pairs(t, forwarding=["p", "q"])[("p", "198.18.9.2")]
    assert looped.how is None and looped.reason == "routing loop: p → q → p"
    nobody = pairs(t, host_forwards=True)[("z", "198.18.6.2")]
    assert nobody.reason == "nothing on network far answers for 198.18.9.200"


def test_default_route_follows_the_first_network_and_a_file_default_replaces_it():
    t = load("""
networks:
  six: {subnet: "fd00:18::/64"}
  red: {subnet: 198.18.6.0/24}
  blue: {subnet: 198.18.7.0/24}
  green: {subnet: 198.18.8.0/24}
nodes:
  a: {networks: [six, red]}
  d: {networks: [red, blue]}
  r: {networks: [blue]}
  e: {networks: [green]}
routes:
  - {node: d, to: 0.0.0.0/0, via: 198.18.7.3}
""")
    found = pairs(t, host_forwards=True)
    # a's default route is IPv6 (its first network's family): no IPv4 way off red
    assert found[("a", "198.18.8.2")].reason == "a has no route to 198.18.8.2"
    assert found[("a", "198.18.6.3")].how == "L2"
    # d's default is the file's, via r, not the one via red's gateway
    assert found[("d", "198.18.8.2")].path == ("d", "r")
    assert found[("d", "198.18.8.2")].reason == "r does not forward (IP forwarding is off there)"
    assert found[("r", "198.18.8.2")].how == "L3"


def test_ipv4_neighbours_answer_for_any_address_of_theirs_ipv6_only_for_the_interface_s():
    body = """
networks:
  x: {subnet: SUBNET_X}
  y: {subnet: SUBNET_Y}
nodes:
  a: {networks: [x]}
  r: {networks: {x: {address: R_X}, y: {address: R_Y}}}
routes:
  - {node: a, to: SUBNET_Y, dev: eth0}
"""
    v4 = {"SUBNET_X": "198.18.6.0/24", "SUBNET_Y": "198.18.7.0/24", "R_X": "198.18.6.9", "R_Y": "198.18.7.9"}
    v6 = {
        "SUBNET_X": '"fd00:6::/64"',
        "SUBNET_Y": '"fd00:7::/64"',
        "R_X": '"fd00:6::9"',
        "R_Y": '"fd00:7::9"',
    }
    for values, how in ((v4, "L2"), (v6, None)):
        text = body
        for key, value in values.items():
            text = text.replace(key, value)
        target = str(ip_address(values["R_Y"].strip('"')))
        assert pairs(load(text))[("a", target)].how == how


def test_diff_of_nothing_applied_gains_every_reachable_pair():
    after = load(TWO_NETWORKS)
    result = reach.diff(None, after)
    assert result.pairs_before == 0 and result.pairs_after == 2  # a ↔ b
    assert {(p.source, p.target) for p in result.gained} == {("a", "b"), ("b", "a")}
    assert result.lost == result.interrupted == result.recreated == ()
    assert result.to_dict()["counts"] == {"gained": 2, "lost": 0, "interrupted": 0, "recreated": 0}


def test_diff_names_pairs_lost_with_why_and_the_nodes_a_change_interrupts():
    before = load(
        TWO_NETWORKS.replace("c: {networks: [blue]}", "c: {networks: [blue]}\n  d: {networks: [red]}")
    )
    after = load(
        TWO_NETWORKS.replace("198.18.6.0/24", "198.18.16.0/24").replace(
            "c: {networks: [blue]}", "c: {mode: none}"
        )
    )
    result = reach.diff(before, after)
    lost = {(p.source, p.target): p for p in result.lost}
    assert set(lost) == {("a", "d"), ("b", "d"), ("d", "a"), ("d", "b")}
    assert lost[("a", "d")].reason == "the node or its network is removed"
    interrupted = {i["node"]: i["why"] for i in result.interrupted}
    assert interrupted == {
        "a": "address 198.18.6.2 → 198.18.16.2 on red (its subnet moves)",
        "b": "address 198.18.6.3 → 198.18.16.3 on red (its subnet moves)",
        "c": "mode bridge → none",
    }
    assert result.recreated == ()


def test_diff_knows_what_converge_recreates_and_what_it_changes_in_place():
    before = load("""
networks:
  red: {subnet: 198.18.6.0/24}
  blue: {subnet: 198.18.7.0/24}
  over: {driver: vxlan, subnet: 198.18.8.0/24, vni: 10}
nodes:
  a: {networks: [red, blue]}
  b: {networks: {red: {address: 198.18.6.20}}}
  s: {mode: "container:a"}
""")
    after = load("""
networks:
  red: {subnet: 198.18.6.0/24, mtu: 1400, gateway: 198.18.6.254}
  blue: {subnet: 198.18.7.0/24}
  over: {driver: vxlan, subnet: 198.18.8.0/24, vni: 11}
nodes:
  a: {networks: [blue]}
  b: {networks: {red: {address: 198.18.6.21}}}
  s: {mode: "container:a"}
  new: {networks: [red]}
""")
    result = reach.diff(before, after)
    assert sorted(result.recreated, key=str) == sorted(
        [
            {"kind": "vxlan", "network": "over", "why": "its VXLAN options change"},
            {"kind": "veth", "node": "a", "network": "blue", "why": "eth1 becomes eth0"},
        ],
        key=str,
    )
    interrupted = {i["node"]: i["why"] for i in result.interrupted}
    assert interrupted == {
        "a": "its interface on blue is recreated (eth1 becomes eth0)",
        "b": "address 198.18.6.20 → 198.18.6.21 on red",  # the MTU changes in place
        "s": "shares the namespace of a",
    }
    assert "new" not in interrupted  # a new node is created, nothing of it breaks
    assert reach.diff(after, after).to_dict() == {
        "gained": [],
        "lost": [],
        "interrupted": [],
        "recreated": [],
        "counts": {"gained": 0, "lost": 0, "interrupted": 0, "recreated": 0},
        "pairs_before": result.pairs_after,
        "pairs_after": result.pairs_after,
    }


def test_to_dict_lists_at_most_the_limit_and_counts_all():
    t = load(
        "networks:\n  red: {subnet: 198.18.6.0/24}\nnodes:\n"
        + "".join(f"  n{i}: {{networks: [red]}}\n" for i in range(6))
    )
    out = reach.diff(None, t).to_dict(limit=4)
    assert len(out["gained"]) == 4 and out["counts"]["gained"] == 30 and out["pairs_after"] == 30


def test_a_topology_with_too_many_pairs_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(reach, "MAX_PAIRS", 29)
    t = load(
        "networks:\n  red: {subnet: 198.18.6.0/24}\nnodes:\n"
        + "".join(f"  n{i}: {{networks: [red]}}\n" for i in range(6))
    )
    with pytest.raises(Unsupported, match="topology demo has about 36 pairs .* at most 29"):
        reach.reach(t)
    monkeypatch.setattr(reach, "MAX_PAIRS", 36)
    assert len(reach.reach(t)) == 30
