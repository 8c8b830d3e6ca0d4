"""The catalog an agent is sent, parsed: what it refuses (naming the path) before anything is served,
and what DNS answers for a health map."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netcore.errors import InvalidSpec
from netcore.services.catalog import Health, catalog_parse, zone_of

GOOD: dict[str, Any] = {
    "version": 3,
    "networks": [
        {
            "name": "front",
            "bridge": "demo-front",
            "gateways": ["198.18.1.1"],
            "subnets": ["198.18.1.0/24"],
            "nodes": [{"name": "web1", "addresses": ["198.18.1.10"], "netns": "demo-web1"}],
            "services": [
                {
                    "name": "web",
                    "port": 80,
                    "vip": "198.18.1.100",
                    "check": {"kind": "http", "interval": 1, "path": "/health", "source": "demo-web1"},
                    "instances": [
                        {"id": "web1", "address": "198.18.1.10", "port": 8080, "netns": "demo-web1"},
                        {"id": "web2", "address": "198.18.1.11", "port": 8080, "weight": 3},
                    ],
                }
            ],
        }
    ],
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    where: Any = document
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value
    return document


SERVICE = ("networks", 0, "services", 0)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ((*SERVICE, "vip"), "198.18.2.5", "networks[0].services[0].vip"),
        ((*SERVICE, "vip"), "198.18.1.1", "the gateway"),
        ((*SERVICE, "instances", 1, "address"), "198.18.1.100", "service web's VIP"),
        ((*SERVICE, "instances", 0, "netns"), "../../proc/1/ns/net", "instances[0].netns"),
        ((*SERVICE, "check", "source"), "/proc/1/ns/net", "check.source"),
        (("networks", 0, "nodes", 0, "netns"), "../../etc", "nodes[0].netns"),
        ((*SERVICE, "check", "timeout"), 5, "check.timeout"),
        ((*SERVICE, "instances", 1, "id"), "web1", "listed twice"),
        ((*SERVICE, "port"), 0, "services[0].port"),
        (("networks", 0, "name"), "Front", "networks[0].name"),
    ],
)
def test_a_wrong_catalog_is_refused_naming_what_is_wrong(
    path: tuple[Any, ...], value: Any, named: str
) -> None:
    with pytest.raises(InvalidSpec, match=named.replace("[", r"\[").replace("]", r"\]")):
        catalog_parse(_with(path, value))


def test_dns_answers_serving_addresses_and_every_registered_srv_target() -> None:
    catalog = catalog_parse(GOOD)
    (front,) = catalog.networks
    health = {"front|web|web1": Health("front", "web", "web1", "passing", "ok", 1.0, 1.0)}
    zone = zone_of(front, catalog.domain, health)
    assert dict(zone.hosts) == {
        "198.18.1.10": ("web1.front.sb.internal", "web.front.sb.internal", "web1.web.front.sb.internal")
    }
    targets = {(s.name, s.target, s.port, s.weight) for s in zone.srv}
    assert ("web.front.sb.internal", "web2.web.front.sb.internal", 8080, 3) in targets  # not serving, listed
    assert ("_web._tcp.front.sb.internal", "web1.web.front.sb.internal", 8080, 1) in targets
