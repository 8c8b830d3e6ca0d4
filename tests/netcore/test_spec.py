"""The topology file: parsing, resolution of addresses and names, and every validation rule."""

from __future__ import annotations

import copy
import tracemalloc
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcore.errors import InvalidSpec
from netcore.topology import spec as topo
from netcore.topology.spec import AttachmentSpec, NetworkSpec, NodeSpec, RouteSpec

EXAMPLE = """\
name: demo                 # prefix of everything created for this file
networks:
  front:
    driver: bridge
    subnet: 198.18.1.0/24
    gateway: 198.18.1.1
    mtu: 1500
  back:
    driver: vxlan
    subnet: 198.18.2.0/24
    vni: 4242
nodes:
  web1: {networks: [front, back]}
  web2: {networks: {front: {address: 198.18.1.20}}}
  db:   {mode: none}
  side: {mode: "container:web1"}
  h:    {mode: host}
routes:
  - {node: web1, to: 198.18.9.0/24, via: 198.18.1.254}
  - {node: web1, to: 198.18.8.0/24, dev: eth0}
"""

BASE = {
    "name": "demo",
    "networks": {
        "front": {"subnet": "198.18.1.0/24"},
        "back": {"driver": "vxlan", "subnet": "198.18.2.0/24", "vni": 7},
    },
    "nodes": {"web1": {"networks": ["front", "back"]}, "web2": {"networks": ["front"]}},
}


def with_changes(**sections) -> dict:
    """BASE with whole sections replaced or, for dict values under networks/nodes, entries merged in."""
    doc = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def problems_of(data: object) -> list[str]:
    with pytest.raises(InvalidSpec) as caught:
        topo.parse(data)
    assert str(caught.value).splitlines() == [f"<input>: {p}" for p in caught.value.problems]
    return caught.value.problems


def only_problem(data: object) -> str:
    found = problems_of(data)
    assert len(found) == 1, found
    return found[0]


# -- the example ----------------------------------------------------------------------------------------


def test_example_parses_to_resolved_dataclasses():
    spec = topo.loads(EXAMPLE)
    assert spec.name == "demo"
    assert list(spec.networks) == ["front", "back"]
    assert spec.networks["front"] == NetworkSpec(
        name="front",
        driver="bridge",
        subnet=ip_network("198.18.1.0/24"),
        gateway=ip_address("198.18.1.1"),
        mtu=1500,
    )
    assert spec.networks["back"] == NetworkSpec(
        name="back",
        driver="vxlan",
        subnet=ip_network("198.18.2.0/24"),
        gateway=ip_address("198.18.2.1"),  # defaulted
        vni=4242,
        dstport=4789,
        learning=True,
    )
    assert list(spec.nodes) == ["web1", "web2", "db", "side", "h"]
    assert spec.nodes["web1"] == NodeSpec(
        name="web1",
        mode="bridge",
        attachments=(
            AttachmentSpec(network="front", ifname="eth0", address=ip_address("198.18.1.2")),
            AttachmentSpec(network="back", ifname="eth1", address=ip_address("198.18.2.2")),
        ),
    )
    assert spec.nodes["web2"].attachments == (
        AttachmentSpec(network="front", ifname="eth0", address=ip_address("198.18.1.20")),
    )
    assert spec.nodes["db"] == NodeSpec(name="db", mode="none")
    assert spec.nodes["side"] == NodeSpec(name="side", mode="container", container="web1")
    assert spec.nodes["h"] == NodeSpec(name="h", mode="host")
    assert spec.routes == (
        RouteSpec(node="web1", to=ip_network("198.18.9.0/24"), via=ip_address("198.18.1.254")),
        RouteSpec(node="web1", to=ip_network("198.18.8.0/24"), dev="eth0"),
    )


def test_netns_of_follows_container_chains():
    spec = topo.loads(
        EXAMPLE.replace("h:    {mode: host}", 'h:    {mode: host}\n  s2: {mode: "container:side"}')
    )
    assert topo.netns_of(spec, "web1") == "demo-web1"
    assert topo.netns_of(spec, "db") == "demo-db"
    assert topo.netns_of(spec, "side") == "demo-web1"
    assert topo.netns_of(spec, "s2") == "demo-web1"
    assert topo.netns_of(spec, "h") is None
    with pytest.raises(InvalidSpec, match="node nope is not in topology demo"):
        topo.netns_of(spec, "nope")


def test_load_reads_a_file(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(EXAMPLE)
    assert topo.load(str(path)) == topo.loads(EXAMPLE)


def test_minimal_topology_and_a_node_without_networks():
    spec = topo.parse({"name": "m", "nodes": {"lonely": None, "empty": {}}})
    assert spec.networks == {}
    assert spec.nodes["lonely"] == NodeSpec(name="lonely", mode="bridge")
    assert spec.nodes["empty"].attachments == ()
    assert spec.routes == ()


def test_statics_are_claimed_before_any_allocation():
    doc = {
        "name": "t",
        "networks": {"n": {"subnet": "198.18.1.0/29"}},
        "nodes": {
            "a": {"networks": ["n"]},
            "b": {"networks": {"n": {"address": "198.18.1.2"}}},
            "c": {"networks": {"n": None}},
        },
    }
    spec = topo.parse(doc)
    got = {name: str(node.attachments[0].address) for name, node in spec.nodes.items()}
    assert got == {"a": "198.18.1.3", "b": "198.18.1.2", "c": "198.18.1.4"}
    assert topo.parse(doc) == spec  # deterministic


def test_allocation_runs_in_node_order_then_network_order():
    doc = {
        "name": "t",
        "networks": {"x": {"subnet": "198.18.1.0/24"}, "y": {"subnet": "198.18.2.0/24"}},
        "nodes": {"b": {"networks": ["y", "x"]}, "a": {"networks": ["x", "y"]}},
    }
    spec = topo.parse(doc)
    assert [(a.ifname, a.network, str(a.address)) for a in spec.nodes["b"].attachments] == [
        ("eth0", "y", "198.18.2.2"),
        ("eth1", "x", "198.18.1.2"),
    ]
    assert [str(a.address) for a in spec.nodes["a"].attachments] == ["198.18.1.3", "198.18.2.3"]


def test_vxlan_options():
    doc = with_changes(
        networks={
            "back": {
                "driver": "vxlan",
                "subnet": "198.18.2.0/24",
                "vni": 16777215,
                "local": "198.18.100.1",
                "group": "239.1.1.1",
                "dstport": 8472,
                "learning": False,
            }
        }
    )
    back = topo.parse(doc).networks["back"]
    assert (back.vni, str(back.local), back.remote, str(back.group), back.dstport, back.learning) == (
        16777215,
        "198.18.100.1",
        None,
        "239.1.1.1",
        8472,
        False,
    )


def test_ipv6_topology():
    text = """
name: six
networks:
  v6: {subnet: "fd00:18:1::/64", mtu: 1400}
  dual: {driver: vxlan, subnet: "fd00:18:2::/64", gateway: "fd00:18:2::fe", vni: 9, remote: "fd00:ff::2"}
nodes:
  a: {networks: [v6, dual]}
  b: {networks: {v6: {address: "fd00:18:1::20"}}}
  c: {mode: "container:a"}
routes:
  - {node: a, to: "fd00:99::/48", via: "fd00:18:1::20"}
  - {node: c, to: "fd00:98::/48", via: "fd00:18:2::fe", dev: eth1}
"""
    spec = topo.loads(text)
    assert spec.networks["v6"].gateway == ip_address("fd00:18:1::1")
    assert spec.networks["dual"].remote == ip_address("fd00:ff::2")
    assert [str(a.address) for a in spec.nodes["a"].attachments] == ["fd00:18:1::2", "fd00:18:2::1"]
    assert str(spec.nodes["b"].attachments[0].address) == "fd00:18:1::20"
    assert spec.routes[1] == RouteSpec(
        node="c", to=ip_network("fd00:98::/48"), via=ip_address("fd00:18:2::fe"), dev="eth1"
    )


# -- top level and names --------------------------------------------------------------------------------


def test_unknown_top_level_key():
    assert only_problem(with_changes(colour="red")).startswith("unknown top-level key 'colour'")


def test_missing_name():
    doc = with_changes()
    del doc["name"]
    assert only_problem(doc).startswith("name: missing")


@pytest.mark.parametrize("name", ["Demo", "toolongname", "de_mo", "", 5])
def test_bad_topology_name(name):
    assert "must be 1 to 8 characters of a-z, 0-9 and '-'" in only_problem(with_changes(name=name))


@pytest.mark.parametrize("data", [None, [], "demo"])
def test_not_a_mapping(data):
    assert "topology" in only_problem(data)


def test_sections_of_the_wrong_type():
    found = problems_of({"name": "t", "networks": ["front"], "nodes": "web1", "routes": {}})
    assert found == [
        "networks: must be a mapping, not list",
        "nodes: must be a mapping, not str",
        "routes: must be a list, not dict",
    ]


@pytest.mark.parametrize(
    ("name", "said"),
    [("a" * 16, "is 16 bytes long"), ("a/b", "contains '/'"), ("a b", "whitespace"), ("x:y", "contains ':'")],
)
def test_bad_network_and_node_names(name, said):
    found = problems_of(
        {"name": "t", "networks": {name: {"subnet": "198.18.1.0/24"}}, "nodes": {name: {"networks": [name]}}}
    )
    assert any(p.startswith(f"networks.{name}: ") and said in p for p in found), found
    assert any(p.startswith(f"nodes.{name}: ") and said in p for p in found), found


# -- networks -------------------------------------------------------------------------------------------


def network_problem(**body) -> str:
    return only_problem(with_changes(networks={"front": body}))


def test_unknown_network_key():
    problem = network_problem(subnet="198.18.1.0/24", colour="red")
    assert problem.startswith("networks.front: unknown key 'colour' (expected one of: driver, subnet")


def test_missing_subnet():
    assert network_problem() == "networks.front.subnet: missing"


def test_bad_cidr():
    assert network_problem(subnet="198.18.1.0/33") == (
        "networks.front.subnet: '198.18.1.0/33' is not a CIDR subnet: '33' is not a valid netmask"
    )


def test_host_bits_set():
    assert network_problem(subnet="198.18.1.5/24") == (
        "networks.front.subnet: 198.18.1.5/24 has host bits set (the subnet would be 198.18.1.0/24)"
    )


def test_subnet_too_small():
    assert network_problem(subnet="198.18.1.0/31").startswith("networks.front.subnet: network front: subnet")


def test_gateway_outside_subnet():
    assert network_problem(subnet="198.18.1.0/24", gateway="198.18.3.1") == (
        "networks.front.gateway: 198.18.3.1 is outside subnet 198.18.1.0/24 of network front"
    )


def test_gateway_is_broadcast():
    assert "broadcast address" in network_problem(subnet="198.18.1.0/24", gateway="198.18.1.255")


def test_overlapping_subnets_name_both_networks():
    problem = only_problem(with_changes(networks={"wide": {"subnet": "198.18.0.0/16"}}))
    assert problem == (
        "networks.wide.subnet: subnet 198.18.0.0/16 of network wide"
        " overlaps subnet 198.18.1.0/24 of network front"
    )


def test_unknown_driver():
    assert network_problem(subnet="198.18.1.0/24", driver="macvlan") == (
        "networks.front.driver: unknown driver 'macvlan' (expected bridge or vxlan)"
    )


def test_vni_required_for_vxlan():
    assert network_problem(subnet="198.18.1.0/24", driver="vxlan").startswith("networks.front.vni: missing")


@pytest.mark.parametrize("vni", [0, 16777216, -1, "42", True])
def test_vni_out_of_range(vni):
    assert network_problem(subnet="198.18.1.0/24", driver="vxlan", vni=vni) == (
        f"networks.front.vni: {vni!r} is not an integer in 1..16777215"
    )


@pytest.mark.parametrize("key", ["vni", "remote", "dstport", "learning"])
def test_vxlan_keys_refused_on_bridge(key):
    value = {"vni": 5, "remote": "198.18.100.2", "dstport": 4789, "learning": True}[key]
    assert network_problem(subnet="198.18.1.0/24", **{key: value}) == (
        f"networks.front.{key}: only a vxlan network takes {key}"
    )


@pytest.mark.parametrize("mtu", [67, 65536, "1500", True, 1.5])
def test_mtu_out_of_range(mtu):
    assert network_problem(subnet="198.18.1.0/24", mtu=mtu) == (
        f"networks.front.mtu: {mtu!r} is not an integer in 68..65535"
    )


def test_ipv6_needs_mtu_1280():
    assert network_problem(subnet="fd00:1::/64", mtu=1279).startswith(
        "networks.front.mtu: 1279 is below 1280"
    )


def test_remote_and_group_together():
    found = problems_of(
        with_changes(
            networks={
                "back": {
                    "driver": "vxlan",
                    "subnet": "198.18.2.0/24",
                    "vni": 7,
                    "remote": "198.18.100.2",
                    "group": "239.1.1.1",
                }
            }
        )
    )
    assert found == ["networks.back: give remote or group, not both"]


def test_group_must_be_multicast_and_remote_must_not():
    found = problems_of(
        with_changes(
            networks={
                "back": {"driver": "vxlan", "subnet": "198.18.2.0/24", "vni": 7, "group": "198.18.100.2"},
                "third": {"driver": "vxlan", "subnet": "198.18.3.0/24", "vni": 8, "remote": "239.1.1.1"},
            }
        )
    )
    assert found == [
        "networks.back.group: 198.18.100.2 is not a multicast address",
        "networks.third.remote: 239.1.1.1 is a multicast address (use group)",
    ]


def test_vxlan_underlay_addresses_share_a_version():
    problem = only_problem(
        with_changes(
            networks={
                "back": {
                    "driver": "vxlan",
                    "subnet": "198.18.2.0/24",
                    "vni": 7,
                    "local": "198.18.100.1",
                    "remote": "fd00::2",
                }
            }
        )
    )
    assert problem == "networks.back: local, remote and group must be of the same IP version"


def test_bad_vxlan_address_and_learning():
    found = problems_of(
        with_changes(
            networks={
                "back": {
                    "driver": "vxlan",
                    "subnet": "198.18.2.0/24",
                    "vni": 7,
                    "local": "nowhere",
                    "learning": "yes",
                    "dstport": 0,
                }
            }
        )
    )
    assert found == [
        "networks.back.local: 'nowhere' is not an IP address",
        "networks.back.dstport: 0 is not an integer in 1..65535",
        "networks.back.learning: 'yes' is not true or false",
    ]


# -- nodes and addresses --------------------------------------------------------------------------------


def test_unknown_node_key():
    problem = only_problem(with_changes(nodes={"web3": {"networks": ["front"], "image": "busybox"}}))
    assert problem == "nodes.web3: unknown key 'image' (expected one of: networks, mode, ports)"


def test_unknown_network_in_list_and_mapping():
    found = problems_of(
        with_changes(nodes={"a": {"networks": ["front", "nope"]}, "b": {"networks": {"gone": None}}})
    )
    assert found == [
        "nodes.a.networks[1]: unknown network 'nope'",
        "nodes.b.networks.gone: unknown network 'gone'",
    ]


def test_same_network_twice():
    problem = only_problem(with_changes(nodes={"a": {"networks": ["front", "back", "front"]}}))
    assert problem == "nodes.a.networks[2]: network front is listed twice"


def test_unknown_attachment_key():
    problem = only_problem(
        with_changes(nodes={"a": {"networks": {"front": {"address": "198.18.1.9", "mac": 1}}}})
    )
    assert problem.startswith("nodes.a.networks.front: unknown key 'mac'")


def test_static_address_outside_subnet():
    problem = only_problem(with_changes(nodes={"web2": {"networks": {"front": {"address": "198.18.3.5"}}}}))
    assert problem == (
        "nodes.web2.networks.front.address: 198.18.3.5 is outside subnet 198.18.1.0/24 of network front"
    )


def test_static_address_not_an_address():
    problem = only_problem(with_changes(nodes={"web2": {"networks": {"front": {"address": "web"}}}}))
    assert problem == "nodes.web2.networks.front.address: 'web' is not an IP address"


def test_duplicate_static_address_names_the_holder():
    doc = with_changes(
        nodes={
            "web2": {"networks": {"front": {"address": "198.18.1.20"}}},
            "web3": {"networks": {"front": {"address": "198.18.1.20"}}},
        }
    )
    assert only_problem(doc) == (
        "nodes.web3.networks.front.address: 198.18.1.20 is already held by web2 in network front"
    )


def test_static_address_equal_to_gateway():
    doc = with_changes(nodes={"web2": {"networks": {"front": {"address": "198.18.1.1"}}}})
    assert (
        only_problem(doc) == "nodes.web2.networks.front.address: 198.18.1.1 is the gateway of network front"
    )


def test_subnet_full():
    doc = {
        "name": "t",
        "networks": {"p2p": {"subnet": "198.18.1.0/30"}},
        "nodes": {"a": {"networks": ["p2p"]}, "b": {"networks": ["p2p"]}},
    }
    assert only_problem(doc) == "nodes.b.networks[0]: network p2p: subnet 198.18.1.0/30 is full"


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("none", "no interfaces of its own"),
        ("host", "no interfaces"),
        ("container:web1", "uses the interfaces of node web1"),
    ],
)
def test_modes_without_networks_refuse_networks(mode, why):
    problem = only_problem(with_changes(nodes={"x": {"mode": mode, "networks": ["front"]}}))
    assert problem.startswith(f"nodes.x.networks: a node in mode {mode.split(':')[0]} cannot have networks")
    assert why in problem


@pytest.mark.parametrize("mode", ["bridged", "container:", "container", "Host", 3, ["host"]])
def test_bad_mode(mode):
    assert only_problem(with_changes(nodes={"x": {"mode": mode}})) == (
        f"nodes.x.mode: unknown mode {mode!r} (expected bridge, none, host or container:<node>)"
    )


def test_container_target_unknown():
    assert only_problem(with_changes(nodes={"x": {"mode": "container:ghost"}})) == (
        "nodes.x.mode: unknown node 'ghost'"
    )


def test_container_target_itself():
    assert only_problem(with_changes(nodes={"x": {"mode": "container:x"}})) == (
        "nodes.x.mode: node x cannot share its own namespace"
    )


def test_container_cycle_is_named_once():
    doc = with_changes(
        nodes={
            "in": {"mode": "container:a"},
            "a": {"mode": "container:b"},
            "b": {"mode": "container:c"},
            "c": {"mode": "container:a"},
            "ok": {"mode": "container:web1"},
        }
    )
    assert only_problem(doc) == "nodes.a.mode: container modes form a cycle: a -> b -> c -> a"


def chain(length: int) -> dict:
    """n0 in bridge mode and n1 .. n<length-1>, each sharing the namespace of the one before."""
    nodes = {"n0": {"networks": ["front"]}} | {
        f"n{i}": {"mode": f"container:n{i - 1}"} for i in range(1, length)
    }
    return {"name": "t", "networks": {"front": {"subnet": "198.18.0.0/20"}}, "nodes": nodes}


def test_a_container_chain_is_followed():
    spec = topo.parse(chain(40))
    assert topo.netns_of(spec, "n39") == "t-n0"


def test_a_long_container_chain_is_refused_once_for_the_alias_of_the_namespace_it_shares():
    """The namespace's owner alias lists every node sharing it; 2999 names do not fit in 254 bytes.
    One problem, naming the node whose namespace it is, and found without walking the chain per node."""
    problem = only_problem(chain(3000))
    assert problem.startswith(
        "nodes.n0: nodes in container mode share the namespace of node n0 (n1, n10, n100, n1000, n1001,"
        " … (2999 in all))"
    )
    assert "bytes long (an interface alias holds at most 254)" in problem


def test_the_alias_of_a_shared_namespace_must_fit_the_kernels_limit():
    # switchboard:demo:node:node=web1:shared= is 39 bytes; 13 names of 15 bytes and 12 commas are 207,
    # so a 14th name of 7 bytes (and its comma) makes exactly 254, the most netcore can set.
    sharers = {f"s{i:02d}{'x' * 12}": {"mode": "container:web1"} for i in range(13)}
    topo.parse(with_changes(nodes=sharers | {"tail456": {"mode": "container:web1"}}))
    problem = only_problem(with_changes(nodes=sharers | {"tail4567": {"mode": "container:web1"}}))
    assert problem.startswith("nodes.web1: nodes in container mode share the namespace of node web1 (")
    assert "would be 255 bytes long (an interface alias holds at most 254)" in problem
    assert problem.endswith("let fewer nodes share it or give them shorter names")


def test_a_node_in_container_mode_cannot_have_a_comma_in_its_name():
    assert only_problem(with_changes(nodes={"a,b": {"mode": "container:web1"}})) == (
        "nodes.a,b: a node in container mode cannot have ',' in its name (the node whose namespace it"
        " shares lists it in a comma-separated owner alias)"
    )
    topo.parse(with_changes(nodes={"a,b": {"mode": "none"}}))  # a node with a namespace of its own may


# -- published ports and nat ----------------------------------------------------------------------------


def ports_of(*items, networks=("front",), **more) -> tuple[topo.PortSpec, ...]:
    return (
        topo.parse(with_changes(nodes={"web1": {"networks": list(networks), "ports": list(items)}}, **more))
        .nodes["web1"]
        .ports
    )


def test_published_ports_resolve_to_the_nodes_address():
    v4, v6 = ip_address("198.18.1.2"), ip_address("fd00:9::2")
    doc = with_changes(networks={"v6": {"subnet": "fd00:9::/64"}})
    doc["nodes"]["web1"] = {
        "networks": ["front", "v6"],
        "ports": [
            "127.0.0.1:8080:80/tcp",
            "8081:81",
            "198.18.5.1:9000-9001:9100-9101/udp",
            "[fd00::1]:53:53/udp",
        ],
    }
    ports = topo.parse(doc).nodes["web1"].ports
    P = topo.PortSpec
    assert ports == (
        P("tcp", ip_address("127.0.0.1"), 8080, 80, "front", v4),
        P("tcp", ip_address("0.0.0.0"), 8081, 81, "front", v4),  # every address, in both families
        P("tcp", ip_address("::"), 8081, 81, "v6", v6),
        P("udp", ip_address("198.18.5.1"), 9000, 9100, "front", v4),  # a range, port by port
        P("udp", ip_address("198.18.5.1"), 9001, 9101, "front", v4),
        P("udp", ip_address("fd00::1"), 53, 53, "v6", v6),
    )
    assert [p.endpoint for p in ports[1:3]] == ["0.0.0.0:8081/tcp", "[::]:8081/tcp"]
    assert ports[5].target == "[fd00:9::2]:53"


def test_every_address_of_one_family_and_the_same_port_for_two_protocols():
    ports = ports_of("0.0.0.0:80:80", "80:80/udp")
    assert [p.endpoint for p in ports] == ["0.0.0.0:80/tcp", "0.0.0.0:80/udp"]


def test_nat_is_a_network_option():
    spec = topo.parse(with_changes(networks={"front": {"subnet": "198.18.1.0/24", "nat": True}}))
    assert spec.networks["front"].nat is True and spec.networks["back"].nat is False


def test_files_without_ports_or_nat_are_unchanged():
    spec = topo.loads(EXAMPLE)
    assert all(node.ports == () for node in spec.nodes.values())
    assert not any(net.nat for net in spec.networks.values())


@pytest.mark.parametrize(
    ("item", "said"),
    [
        ("8080:99999", "'8080:99999': container port 99999 is not in 1..65535"),
        ("0:80", "'0:80': host port 0 is not in 1..65535"),
        ("8080:http", "'8080:http': container port 'http' is not a port in 1..65535 or a range first-last"),
        ("90-80:90-80", "'90-80:90-80': host port range 90-80 ends before it starts"),
        ("8080-8081:80", "'8080-8081:80': 2 host ports go to one container port; netcore does not choose"),
        (
            "8080-8082:80-81",
            "'8080-8082:80-81': 3 host ports and 2 container ports; a range maps port by port",
        ),
        ("80:80/sctp", "'80:80/sctp': unknown protocol 'sctp' (expected tcp or udp)"),
        ("80:80/TCP", "'80:80/TCP': unknown protocol 'TCP' (expected tcp or udp)"),
        ("localhost:80:80", "'localhost:80:80': host_ip 'localhost' is not an IP address"),
        ("224.0.0.1:80:80", "'224.0.0.1:80:80': host_ip 224.0.0.1 is not a unicast address"),
        ("[::1]:80:80", "'[::1]:80:80': host_ip ::1: the kernel never routes IPv6 loopback traffic"),
        ("fd00::1:80:80", "'fd00::1:80:80': expected [host_ip:]host_port:container_port[/tcp|udp]; IPv6"),
        (
            "[198.18.1.1]:80:80",
            "'[198.18.1.1]:80:80': host_ip [198.18.1.1]: only IPv6 addresses go in brackets",
        ),
        (":8080:80", "':8080:80': host_ip is empty; leave it out, with its ':', to publish on every address"),
        ("8080:80:", "'8080:80:': expected [host_ip:]host_port:container_port[/tcp|udp]: a port is missing"),
        (
            "80",
            "'80': a container port alone: netcore does not choose host ports; write host_port:",
        ),
        (
            4822,
            '4822 is a number, not a port mapping such as "8080:80" (a quoted string); YAML reads an'
            ' unquoted 80:22 as the base-60 number 4822: write "80:22"',
        ),
        (True, "True is not a port mapping such as"),
        ({"target": 80}, "{'target': 80} is not a port mapping such as"),
        ("[fd00::1]:80:80", "'[fd00::1]:80:80' publishes on IPv6, but node web1 has no IPv6 address to send"),
    ],
)
def test_bad_published_port(item, said):
    problem = only_problem(with_changes(nodes={"web1": {"networks": ["front"], "ports": [item]}}))
    assert problem.startswith(f"nodes.web1.ports[0]: {said}"), problem


def test_ports_from_a_yaml_file_unquoted_are_explained():
    text = EXAMPLE.replace("web2: {networks:", "web2: {ports: [80:22, 8080:80], networks:")
    with pytest.raises(InvalidSpec) as caught:
        topo.loads(text)
    assert caught.value.problems == [
        'nodes.web2.ports[0]: 4822 is a number, not a port mapping such as "8080:80" (a quoted string);'
        ' YAML reads an unquoted 80:22 as the base-60 number 4822: write "80:22"'
    ]  # 8080:80 is not base 60 (80 > 59): YAML keeps it a string, and it is fine


@pytest.mark.parametrize(
    ("node", "said"),
    [
        ({"mode": "none"}, "a node in mode none cannot publish ports: it has no address to send them to"),
        ({"mode": "host"}, "a node in mode host cannot publish ports: it is in the host namespace"),
        (
            {"mode": "container:web1"},
            "a node in mode container cannot publish ports: it shares the namespace"
            " of node web1 (publish them there)",
        ),
        ({}, "node x has no address on a network to send published ports to; give it networks"),
    ],
)
def test_a_node_without_an_address_of_its_own_cannot_publish(node, said):
    problem = only_problem(with_changes(nodes={"x": {**node, "ports": ["8080:80"]}}))
    assert problem == f"nodes.x.ports: {said}" or problem.startswith(f"nodes.x.ports: {said}"), problem


def test_a_node_without_ipv4_cannot_publish_on_ipv4():
    doc = with_changes(
        networks={"v6": {"subnet": "fd00:9::/64"}},
        nodes={"x": {"networks": ["v6"], "ports": ["127.0.0.1:80:80"]}},
    )
    assert only_problem(doc) == (
        "nodes.x.ports[0]: '127.0.0.1:80:80' publishes on IPv4, but node x has no IPv4 address to send it to"
        " (its networks: v6 fd00:9::/64)"
    )


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        (
            "127.0.0.1:8080:80",
            "127.0.0.1:8080:81",
            "127.0.0.1:8080/tcp is already published by node a (nodes.a.ports[0])",
        ),
        (
            "8080:80",
            "127.0.0.1:8080:81",
            "127.0.0.1:8080/tcp is already published by node a (nodes.a.ports[0]:"
            " 0.0.0.0:8080/tcp, every IPv4 address of the host)",
        ),
        (
            "127.0.0.1:8080:81",
            "0.0.0.0:8080:80",
            "0.0.0.0:8080/tcp is already published by node a (nodes.a.ports[0]:"
            " 127.0.0.1:8080/tcp, inside 0.0.0.0, every IPv4 address of the host)",
        ),
        (
            "9000-9010:9000-9010/udp",
            "9005:53/udp",
            "0.0.0.0:9005/udp is already published by node a (nodes.a.ports[0])",
        ),
    ],
)
def test_two_nodes_publishing_the_same_host_port_are_both_named(first, second, said):
    doc = with_changes(
        nodes={
            "a": {"networks": ["front"], "ports": [first]},
            "b": {"networks": ["front"], "ports": [second]},
        }
    )
    assert only_problem(doc) == f"nodes.b.ports[0]: {said}; a host address and port go to one node only"


def test_the_same_port_twice_in_one_node_is_refused_too():
    problem = only_problem(
        with_changes(nodes={"a": {"networks": ["front"], "ports": ["8080:80", "8080:81"]}})
    )
    assert problem.startswith(
        "nodes.a.ports[1]: 0.0.0.0:8080/tcp is already published by node a (nodes.a.ports[0])"
    )


def test_no_conflict_across_protocols_addresses_or_families():
    doc = with_changes(networks={"v6": {"subnet": "fd00:9::/64"}})
    doc["nodes"] = {
        "a": {"networks": ["front"], "ports": ["8080:80", "127.0.0.1:9000:80"]},
        "b": {"networks": ["front"], "ports": ["8080:80/udp", "127.0.0.2:9000:80"]},
        "c": {"networks": ["v6"], "ports": ["8080:80"]},  # [::]:8080, another family
    }
    assert len(topo.parse(doc).nodes["c"].ports) == 1


def test_published_ports_are_limited():
    doc = with_changes(nodes={"a": {"networks": ["front"], "ports": ["1-1024:1-1024", "2000:80"]}})
    assert only_problem(doc) == (
        f"nodes.a.ports[1]: more than {topo.MAX_PUBLISHED_PORTS} published ports in the topology"
        " (every port of a range and every IP family counts); publish fewer"
    )


@pytest.mark.parametrize("value", ["80:80", {"a": 1}, 8080])
def test_ports_must_be_a_list(value):
    assert only_problem(with_changes(nodes={"a": {"networks": ["front"], "ports": value}})).startswith(
        'nodes.a.ports: must be a list of "[host_ip:]host_port:container_port[/tcp|udp]" strings'
    )


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_nat_must_be_true_or_false(value):
    if value is None:
        assert topo.parse(with_changes(networks={"front": {"subnet": "198.18.1.0/24", "nat": None}}))
        return
    assert network_problem(subnet="198.18.1.0/24", nat=value) == (
        f"networks.front.nat: {value!r} is not true or false (true: masquerade outbound traffic)"
    )


def test_a_broken_network_does_not_also_blame_the_ports():
    problems = problems_of(with_changes(nodes={"a": {"networks": ["nope"], "ports": ["8080:80"]}}))
    assert problems == ["nodes.a.networks[0]: unknown network 'nope'"]


# -- routes ---------------------------------------------------------------------------------------------


def route_problems(*routes, nodes=None) -> list[str]:
    return problems_of(with_changes(routes=list(routes), nodes=nodes or {}))


def test_unknown_route_key():
    found = route_problems({"node": "web1", "to": "198.18.9.0/24", "dev": "eth0", "metric": 5})
    assert found == ["routes[0]: unknown key 'metric' (expected one of: node, to, via, dev)"]


def test_route_unknown_node():
    assert route_problems({"node": "ghost", "to": "198.18.9.0/24", "dev": "eth0"}) == [
        "routes[0].node: unknown node 'ghost'"
    ]


def test_route_on_host_node_refused():
    found = route_problems({"node": "h", "to": "198.18.9.0/24", "dev": "eth0"}, nodes={"h": {"mode": "host"}})
    assert found == ["routes[0].node: node h is in host mode; netcore does not change the host's routes"]


def test_route_on_node_sharing_the_host_namespace_refused():
    found = route_problems(
        {"node": "s", "to": "198.18.9.0/24", "dev": "eth0"},
        nodes={"h": {"mode": "host"}, "s": {"mode": "container:h"}},
    )
    assert found == [
        "routes[0].node: node s (in the namespace of node h) is in host mode;"
        " netcore does not change the host's routes"
    ]


@pytest.mark.parametrize(
    ("to", "said"),
    [
        ("198.18.9.1/24", "198.18.9.1/24 has host bits set"),
        ("198.18.9.0/40", "is not a CIDR subnet"),
        ("default", "is not a CIDR subnet"),
    ],
)
def test_route_bad_to(to, said):
    (problem,) = route_problems({"node": "web1", "to": to, "dev": "eth0"})
    assert problem.startswith("routes[0].to: ") and said in problem


def test_route_missing_fields():
    assert route_problems({"node": "web1"}) == [
        "routes[0].to: missing",
        "routes[0]: a route needs via, dev or both",
    ]
    assert route_problems({"to": "198.18.9.0/24", "dev": "eth0"}) == ["routes[0].node: missing"]
    assert route_problems("web1 198.18.9.0/24")[0].startswith("routes[0]: must be a mapping")


def test_route_via_outside_attached_subnets():
    assert route_problems({"node": "web2", "to": "198.18.9.0/24", "via": "198.18.2.254"}) == [
        "routes[0].via: 198.18.2.254 is not inside a subnet node web2 is attached to (front 198.18.1.0/24)"
    ]


def test_route_via_must_match_dev():
    assert route_problems({"node": "web1", "to": "198.18.9.0/24", "via": "198.18.2.254", "dev": "eth0"}) == [
        "routes[0].via: 198.18.2.254 is not inside a subnet node web1 is attached to on eth0"
        " (front 198.18.1.0/24)"
    ]


def test_route_via_own_address():
    assert route_problems({"node": "web1", "to": "198.18.9.0/24", "via": "198.18.1.2"}) == [
        "routes[0].via: 198.18.1.2 is the address of node web1 itself on eth0"
    ]


def test_route_via_other_ip_version():
    found = route_problems({"node": "web1", "to": "198.18.9.0/24", "via": "fd00::1"})
    assert found[0] == "routes[0].via: fd00::1 is not of the same IP version as 198.18.9.0/24"


def test_route_dev_the_node_does_not_have():
    assert route_problems({"node": "web2", "to": "198.18.9.0/24", "dev": "eth1"}) == [
        "routes[0].dev: node web2 has no interface 'eth1' (it has lo, eth0)"
    ]


def test_route_through_container_target_uses_its_interfaces():
    spec = topo.parse(
        with_changes(
            nodes={"side": {"mode": "container:web1"}},
            routes=[{"node": "side", "to": "198.18.9.0/24", "via": "198.18.2.254", "dev": "eth1"}],
        )
    )
    assert spec.routes[0].node == "side"
    assert route_problems(
        {"node": "side", "to": "198.18.9.0/24", "dev": "eth2"}, nodes={"side": {"mode": "container:web1"}}
    ) == [
        "routes[0].dev: node side (in the namespace of node web1) has no interface 'eth2'"
        " (it has lo, eth0, eth1)"
    ]


def test_duplicate_route_in_one_namespace():
    found = route_problems(
        {"node": "web1", "to": "198.18.9.0/24", "dev": "eth0"},
        {"node": "side", "to": "198.18.9.0/24", "via": "198.18.1.254"},
        nodes={"side": {"mode": "container:web1"}},
    )
    assert found == ["routes[1]: routes[0] already routes 198.18.9.0/24 in the namespace of node web1"]


# -- generated names ------------------------------------------------------------------------------------


def test_generated_bridge_and_veth_names_collide():
    doc = {
        "name": "t",
        "networks": {"a-b": {"subnet": "198.18.1.0/24"}, "b": {"subnet": "198.18.2.0/24"}},
        "nodes": {"a": {"networks": ["b"]}},
    }
    assert only_problem(doc) == (
        "nodes.a.networks[0]: generated interface name 't-a-b' of the host-side veth of node a on network b"
        " collides with the bridge of network a-b"
    )


def test_generated_vxlan_name_collides_with_a_bridge():
    doc = {
        "name": "t",
        "networks": {
            "x": {"driver": "vxlan", "subnet": "198.18.1.0/24", "vni": 1},
            "x.vx": {"subnet": "198.18.2.0/24"},
        },
    }
    assert only_problem(doc) == (
        "networks.x.vx: generated interface name 't-x.vx' of the bridge of network x.vx"
        " collides with the VXLAN device of network x"
    )


def test_shortened_names_that_stay_distinct_are_fine():
    doc = {
        "name": "longname",
        "networks": {"frontend-1": {"subnet": "198.18.1.0/24"}, "frontend-2": {"subnet": "198.18.2.0/24"}},
        "nodes": {"webserver": {"networks": ["frontend-1", "frontend-2"]}},
    }
    assert len(topo.parse(doc).nodes["webserver"].attachments) == 2


# -- reporting ------------------------------------------------------------------------------------------


def test_all_problems_are_reported_together():
    doc = {
        "name": "Bad Name",
        "colour": 1,
        "networks": {
            "front": {"subnet": "198.18.1.0/33"},
            "back": {"driver": "vxlan", "subnet": "198.18.2.0/24"},
        },
        "nodes": {"a": {"networks": ["front", "nope"]}, "b": {"mode": "container:b"}},
        "routes": [{"node": "ghost", "to": "198.18.9.0/24"}],
    }
    with pytest.raises(InvalidSpec) as caught:
        topo.parse(doc, source="bad.yaml")
    found = caught.value.problems
    assert len(found) == 8, found
    for fragment in [
        "colour",
        "name:",
        "networks.front.subnet",
        "networks.back.vni",
        "nodes.a.networks[1]",
        "nodes.b.mode",
        "routes[0].node",
        "routes[0]: a route needs",
    ]:
        assert any(fragment in p for p in found), fragment
    assert all(line.startswith("bad.yaml: ") for line in str(caught.value).splitlines())
    assert caught.value.exit_code == 2


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: demo\nnetworks:\n  front: {subnet: 198.18.1.0/24\nnodes: {}\n")
    with pytest.raises(InvalidSpec, match=rf"^{path}:4:\d+: invalid YAML: ") as caught:
        topo.load(str(path))
    assert caught.value.obj == str(path)


def test_yaml_duplicate_key_is_an_error_not_silently_merged():
    with pytest.raises(InvalidSpec, match=r"^<string>:4:3: invalid YAML: duplicate key 'web1'"):
        topo.loads("name: demo\nnodes:\n  web1: {}\n  web1: {mode: host}\n")


def test_yaml_anchors_aliases_and_merge_keys_are_refused_with_their_line():
    with pytest.raises(InvalidSpec, match=r"^<string>:3:10: YAML anchors and aliases \(&n\) are not allowed"):
        topo.loads(
            "name: demo\nnetworks:\n  front: &n {subnet: 198.18.1.0/24, mtu: 9000}\n"
            "  back: {<<: *n, subnet: 198.18.2.0/24}\n"
        )
    with pytest.raises(InvalidSpec, match=r"^<string>:3:\d+: YAML anchors and aliases \(\*n\)"):
        topo.loads("name: demo\nnetworks:\n  front: {subnet: 198.18.1.0/24, mtu: *n}\n")


def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level nine aliases of the one before, all expanded in one field."""
    text = "name: demo\nl0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    for level in range(1, levels + 1):
        text += f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]\n"
    return text + f"networks: {{front: {{subnet: 198.18.1.0/24, mtu: *l{levels}}}}}\n"


def test_alias_bomb_is_refused_small_and_cheap():
    # 9**8 = 43 million strings once expanded; refused from the event stream before anything is built
    text = alias_bomb(8)
    assert len(text) < 500
    tracemalloc.start()
    try:
        with pytest.raises(InvalidSpec) as caught:
            topo.loads(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(caught.value) == (
        "<string>:2:5: YAML anchors and aliases (&l0) are not allowed in a topology file; write the value out"
    )
    assert peak < 1_000_000


def test_long_anchor_names_are_cut():
    with pytest.raises(InvalidSpec) as caught:
        topo.loads(f"name: &{'a' * 5000} demo\n")
    assert len(str(caught.value)) < 200 and "aaaa…" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{subnet: 198.18.1.0/24, mtu: NUMBER}", "networks.front.mtu"),
        ("{driver: vxlan, subnet: 198.18.1.0/24, vni: NUMBER}", "networks.front.vni"),
        ("{driver: vxlan, subnet: 198.18.1.0/24, vni: 7, dstport: -NUMBER}", "networks.front.dstport"),
        ("{subnet: NUMBER}", "networks.front.subnet"),
        ("{subnet: 198.18.1.0/24, gateway: NUMBER}", "networks.front.gateway"),
    ],
)
def test_a_number_too_long_to_convert_names_its_field(body, field):
    number = "9" * 5000  # more digits than int() converts (4300)
    with pytest.raises(InvalidSpec) as caught:
        topo.loads(f"name: demo\nnetworks:\n  front: {body.replace('NUMBER', number)}\n")
    (problem,) = caught.value.problems
    assert problem.startswith(f"{field}: ") and "… (an integer of 500" in problem
    assert len(problem) < 200


def test_a_long_number_as_a_name_or_address_is_an_error_not_a_crash():
    number = "1" * 5000
    with pytest.raises(InvalidSpec) as caught:
        topo.loads(
            "name: demo\nnetworks:\n  front: {subnet: 198.18.1.0/24}\n"
            f"nodes:\n  a: {{networks: {{front: {{address: {number}}}}}}}\n  b: {{networks: [{number}]}}\n"
        )
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "nodes.b.networks[0]",
        "nodes.a.networks.front.address",
    ]
    assert all(len(p) < 200 for p in caught.value.problems)


_LONG = 100_000
_NET = "198.18.1.0/24"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (with_changes(networks={"front": {"subnet": "x" * _LONG}}), "networks.front.subnet"),
        (with_changes(networks={"front": {"subnet": _NET, "driver": "x" * _LONG}}), "networks.front"),
        (with_changes(networks={"front": {"subnet": _NET, "mtu": 10**5000}}), "networks.front.mtu"),
        (with_changes(nodes={"web1": {"mode": ["host"] * _LONG}}), "nodes.web1.mode"),
        (with_changes(nodes={"x" * _LONG: {}}), "nodes.'xxxx"),
        (with_changes(nodes={"web1": {"networks": {"front": {"address": "1" * _LONG}}}}), "nodes.web1"),
        (with_changes(routes=[{"node": "web1", "to": "198.18.9.0/24", "dev": "e" * _LONG}]), "routes[0].dev"),
    ],
)
def test_messages_quote_only_an_excerpt_of_a_value(doc, field):
    with pytest.raises(InvalidSpec) as caught:
        topo.parse(doc)
    assert any(p.startswith(field) for p in caught.value.problems), caught.value.problems
    assert all(len(p) < 250 for p in caught.value.problems), caught.value.problems


def test_document_size_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(topo, "MAX_DOCUMENT_BYTES", 1000)
    text = "name: demo\n" + "# padding\n" * 100
    with pytest.raises(InvalidSpec, match=r"^<string>: the topology is larger than 1000 bytes$"):
        topo.loads(text)
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(10**9)  # sparse: only the first 1001 bytes are ever read
    with pytest.raises(InvalidSpec, match=rf"^{path}: the file is larger than 1000 bytes$"):
        topo.load(path)


def test_node_count_is_capped(monkeypatch):
    monkeypatch.setattr(topo, "MAX_NODES", 3)
    doc = with_changes()
    doc["nodes"] = {f"n{i}": {"networks": ["front"]} for i in range(4)}
    assert only_problem(doc) == "nodes: 4 nodes; a topology holds at most 3"
    doc["nodes"].pop("n3")
    assert len(topo.parse(doc).nodes) == 3


def test_yaml_values_and_depth_are_capped(monkeypatch):
    monkeypatch.setattr(topo, "MAX_YAML_VALUES", 50)
    with pytest.raises(InvalidSpec, match=r"^<string>:2:\d+: more than 50 values in one topology$"):
        topo.loads("name: demo\nnodes: {" + ", ".join(f"n{i}: {{}}" for i in range(30)) + "}\n")
    with pytest.raises(InvalidSpec, match=r"^<string>:2:\d+: nested more than 32 levels deep$"):
        topo.loads("name: demo\nx: " + "[" * 40 + "]" * 40 + "\n")


def test_the_message_lists_at_most_100_problems_and_keeps_them_all():
    nodes = {f"n{i}": {"networks": ["nowhere"]} for i in range(150)}
    with pytest.raises(InvalidSpec) as caught:
        topo.parse(with_changes(nodes=nodes))
    lines = str(caught.value).splitlines()
    assert len(lines) == 101 and lines[-1] == "<input>: ... and 50 more problems"
    assert len(caught.value.problems) == 150


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(InvalidSpec, match=rf"^{path}: cannot read the topology file: No such file"):
        topo.load(str(path))


def test_unquoted_sexagesimal_looking_address_gets_a_hint():
    # YAML 1.1 reads 1:2:3 as the integer 3723.
    (problem,) = problems_of(with_changes(nodes={"web2": {"networks": {"front": {"address": 3723}}}}))
    assert problem.endswith("3723 is not an IP address (quote addresses in YAML)")


_words = st.sampled_from(
    [
        "name",
        "networks",
        "nodes",
        "routes",
        "driver",
        "subnet",
        "gateway",
        "mtu",
        "vni",
        "local",
        "remote",
        "group",
        "dstport",
        "learning",
        "peers",
        "remote_nodes",
        "vtep",
        "mac",
        "02:42:c6:12:01:02",
        "mode",
        "address",
        "node",
        "to",
        "via",
        "dev",
        "front",
        "web1",
        "demo",
        "vxlan",
        "bridge",
        "host",
        "none",
        "container:web1",
        "eth0",
        "198.18.1.0/24",
        "198.18.1.1",
        "fd00::/64",
        "239.1.1.1",
        "",
        "a\nb",
    ]
)
_leaves = st.none() | st.booleans() | st.integers(-5, 70000) | _words | st.text(max_size=5)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_words, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_any_input_gives_a_spec_or_invalid_spec(data):
    try:
        topo.parse(data)
    except InvalidSpec as exc:
        assert exc.problems and all(problem and "\n" not in problem for problem in exc.problems)


@settings(max_examples=200)
@given(st.dictionaries(_words, _values, max_size=4), st.dictionaries(_words, _values, max_size=4))
def test_any_network_and_node_bodies_give_a_spec_or_invalid_spec(network, node):
    try:
        topo.parse(with_changes(networks={"front": network}, nodes={"web1": node}))
    except InvalidSpec as exc:
        assert exc.problems


def test_the_documented_example_is_valid():
    demo = topo.load(Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo.yaml")
    assert demo.name == "demo" and set(demo.nodes) == {"web1", "web2", "db", "side"}
    assert [a.ifname for a in demo.nodes["web1"].attachments] == ["eth0", "eth1"]
