"""A topology file's services: section: what it declares, and every refusal naming its field."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from netcore.errors import InvalidSpec
from netcore.topology import spec as topo
from netcore.topology.services_section import FileInstance, address_name

BASE = """\
name: shop
networks:
  front: {subnet: 198.18.7.0/24}
  back: {subnet: 198.18.8.0/24}
  over: {driver: vxlan, subnet: 198.18.9.0/24, vni: 9, local: 198.18.254.1, peers: [198.18.254.2],
         remote_nodes: [{address: 198.18.9.50, vtep: 198.18.254.2}]}
nodes:
  web1: {networks: [front]}
  web2: {networks: {front: {address: 198.18.7.20}, over: {}}}
  db: {networks: [back]}
  side: {mode: "container:web1"}
"""


def parse(services: str) -> topo.TopologySpec:
    return topo.loads(BASE + "services:\n" + services)


def test_a_service_keeps_what_the_file_says_with_node_and_address_instances() -> None:
    spec = parse(
        """\
  web:
    network: front
    port: 80
    vip: 198.18.7.100
    tags: [http]
    meta: {team: shop}
    check: {kind: http, path: /healthz, interval: 2}
    instances:
      - web1
      - {node: web2, weight: 3, port: 8080}
      - {address: 198.18.7.50}
      - {address: 198.18.7.51, port: 81}
  dns: {network: back, port: 53, protocol: udp, instances: [db]}
"""
    )
    web = spec.services["web"]
    assert (web.network, web.port, web.protocol, web.vip) == ("front", 80, "tcp", ip_address("198.18.7.100"))
    assert (web.tags, dict(web.meta), web.check) == (
        ("http",),
        {"team": "shop"},
        {"kind": "http", "path": "/healthz", "interval": 2},
    )
    assert web.instances == (
        FileInstance(name="web1", node="web1"),
        FileInstance(name="web2", node="web2", port=8080, weight=3),
        FileInstance(name="a-198-18-7-50", address=ip_address("198.18.7.50")),
        FileInstance(name="a-198-18-7-51-81", address=ip_address("198.18.7.51"), port=81),
    )
    assert spec.services["dns"].protocol == "udp"
    assert list(spec.services) == ["web", "dns"]


def test_a_file_without_services_has_none() -> None:
    assert topo.loads(BASE).services == {}


def test_address_names_carry_their_own_port() -> None:
    assert (address_name("198.18.7.5"), address_name("fd00::5", 81)) == ("a-198-18-7-5", "a-fd00--5-81")


@pytest.mark.parametrize(
    ("services", "field", "says"),
    [
        ("[web]", "services", "must be a mapping"),
        ("{Web: {network: front, port: 80}}", "services.Web", "DNS label"),
        (f"{{{'a' * 63}: {{network: front, port: 80}}}}", f"services.{'a' * 63}", "at most 62"),
        ("{web: [front]}", "services.web", "must be a mapping"),
        ("{web: {network: front, port: 80, color: red}}", "services.web", "unknown key 'color'"),
        ("{web: {port: 80}}", "services.web.network", "not a network of the file"),
        ("{web: {network: mid, port: 80}}", "services.web.network", "'mid' is not a network"),
        ("{web: {network: front}}", "services.web.port", "not a port"),
        ("{web: {network: front, port: 70000}}", "services.web.port", "not a port"),
        ("{web: {network: front, port: true}}", "services.web.port", "not a port"),
        ("{web: {network: front, port: 80, protocol: sctp}}", "services.web.protocol", "not tcp or udp"),
        ("{web: {network: front, port: 80, tags: http}}", "services.web.tags", "a list of words"),
        ("{web: {network: front, port: 80, meta: {a: 1}}}", "services.web.meta", "names to text"),
        ("{web: {network: front, port: 80, check: {kind: ping}}}", "services.web.check.kind", "not one of"),
        (
            "{web: {network: front, port: 80, check: {kind: tcp, interval: 1, timeout: 5}}}",
            "services.web.check.timeout",
            "longer than the interval",
        ),
        ("{web: {network: front, port: 80, vip: nope}}", "services.web.vip", "not an IP address"),
        (
            "{web: {network: front, port: 80, vip: 198.18.8.5}}",
            "services.web.vip",
            "not a host address of the network",
        ),
        ("{web: {network: front, port: 80, vip: 198.18.7.255}}", "services.web.vip", "not a host address"),
        ("{web: {network: front, port: 80, vip: 198.18.7.1}}", "services.web.vip", "the network's gateway"),
        ("{web: {network: front, port: 80, vip: 198.18.7.20}}", "services.web.vip", "node web2's address"),
        ("{web: {network: over, port: 80, vip: 198.18.9.50}}", "services.web.vip", "a remote node's address"),
        (
            "{web: {network: front, port: 80, vip: 198.18.7.9},"
            " api: {network: front, port: 81, vip: 198.18.7.9}}",
            "services.api.vip",
            "service web's address",
        ),
        ("{web: {network: front, port: 80, instances: web1}}", "services.web.instances", "must be a list"),
        (
            "{web: {network: front, port: 80, instances: [db]}}",
            "services.web.instances[0].node",
            "not a node on the service's network",
        ),
        (
            "{web: {network: front, port: 80, instances: [side]}}",
            "services.web.instances[0].node",
            "not a node on",
        ),
        (
            "{web: {network: front, port: 80, instances: [7]}}",
            "services.web.instances[0]",
            "a node's name or a mapping",
        ),
        (
            "{web: {network: front, port: 80, instances: [{node: web1, address: 198.18.7.5}]}}",
            "services.web.instances[0]",
            "not both or neither",
        ),
        (
            "{web: {network: front, port: 80, instances: [{node: web1, zone: a}]}}",
            "services.web.instances[0]",
            "unknown key 'zone'",
        ),
        (
            "{web: {network: front, port: 80, instances: [{address: 198.18.8.5}]}}",
            "services.web.instances[0].address",
            "not a host address",
        ),
        (
            "{web: {network: front, port: 80, vip: 198.18.7.9, instances: [{address: 198.18.7.9}]}}",
            "services.web.instances[0].address",
            "the service's VIP",
        ),
        (
            "{web: {network: front, port: 80, instances: [{node: web1, weight: 0}]}}",
            "services.web.instances[0].weight",
            "1..100",
        ),
        (
            "{web: {network: front, port: 80, instances: [{node: web1, port: 0}]}}",
            "services.web.instances[0].port",
            "not a port",
        ),
        (
            "{web: {network: front, port: 80, instances: [{node: web1, name: Web_1}]}}",
            "services.web.instances[0].name",
            "not a DNS label",
        ),
        (
            "{web: {network: front, port: 80, instances: [web1, {node: web2, name: web1}]}}",
            "services.web.instances[1]",
            "a second instance named web1",
        ),
        (
            "{web: {network: front, port: 80, instances: [web1, {node: web1, name: again}]}}",
            "services.web.instances[1]",
            "the same address and port",
        ),
    ],
)
def test_a_bad_service_is_refused_naming_its_field(services: str, field: str, says: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        topo.loads(BASE + "services: " + services + "\n")
    problems = caught.value.problems
    assert any(p.startswith(f"{field}: ") and says in p for p in problems), problems


def test_every_problem_of_the_section_is_reported_at_once() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse(
            "  web: {network: front, port: 0, vip: 198.18.7.1, instances: [db]}\n"
            "  api: {network: mid, port: 80}\n"
        )
    fields = sorted(p.split(": ", 1)[0] for p in caught.value.problems)
    assert fields == [
        "services.api.network",
        "services.web.instances[0].node",
        "services.web.port",
        "services.web.vip",
    ]
