"""Every kind of bad topology file: `apply` and `validate` exit 2, name the culprit, and touch nothing.

Each case starts from a valid topology and breaks one thing. The run prefix is in the topology name (and
in every bad topology name below), so anything wrongly created would show up in /run/netns.
"""

from __future__ import annotations

import copy
import json
import os
import sys
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import RUN, ours


def base(topo: str) -> dict:
    return {
        "name": topo,
        "networks": {
            "lan": {"subnet": "198.18.10.0/24"},
            "ovl": {"driver": "vxlan", "subnet": "198.18.12.0/24", "vni": 42},
        },
        "nodes": {
            "a": {"networks": ["lan", "ovl"]},
            "b": {"networks": {"lan": {"address": "198.18.10.20"}}},
        },
        "routes": [{"node": "a", "to": "198.18.11.0/24", "via": "198.18.10.254"}],
    }


def shown(name: str) -> str:
    """How a name appears in a field path: as is, or quoted when it has unprintable characters."""
    return name if name.isprintable() else repr(name)


Mutate = Callable[[dict], None]
CASES: list = []


def case(id_: str, mutate: Mutate, *expected: str) -> None:
    CASES.append(pytest.param(mutate, expected, id=id_))


def set_in(*path: object, value: object) -> Mutate:
    def mutate(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def rename_network(new: str) -> Mutate:
    def mutate(doc: dict) -> None:
        doc["networks"][new] = doc["networks"].pop("lan")
        doc["nodes"]["a"]["networks"][0] = new
        doc["nodes"]["b"]["networks"] = {new: {"address": "198.18.10.20"}}

    return mutate


def rename_node(new: str) -> Mutate:
    def mutate(doc: dict) -> None:
        doc["nodes"][new] = doc["nodes"].pop("a")
        doc["routes"][0]["node"] = new

    return mutate


def add_nodes(**nodes: dict) -> Mutate:
    return lambda doc: doc["nodes"].update(nodes)


# interface and namespace names: networks name bridges, nodes name namespaces
BAD_NAMES = [
    ("16-bytes", "n" * 16, "16 bytes long (at most 15)"),
    ("16-bytes-in-8-chars", "ñ" * 8, "16 bytes long (at most 15)"),
    ("slash", "a/b", "contains '/'"),
    ("space", "a b", "whitespace"),
    ("tab", "a\tb", "whitespace"),
    ("newline", "a\nb", "whitespace"),
    ("control", "a\x01b", "control character"),
    ("delete-char", "a\x7fb", "control character"),
]
for label, bad, why in BAD_NAMES:
    case(f"network-name-{label}", rename_network(bad), f"networks.{shown(bad)}:", why)
    case(f"node-name-{label}", rename_node(bad), f"nodes.{shown(bad)}:", why)

# CIDRs
for label, value in [
    ("prefix-33", "198.18.10.0/33"),
    ("host-bits", "198.18.10.1/24"),
    ("garbage", "not-a-subnet"),
    ("number", 12345),
    ("bad-ipv6", "fd00::zz/64"),
    ("too-small", "198.18.10.0/31"),
]:
    case(
        f"subnet-{label}",
        set_in("networks", "lan", "subnet", value=value),
        "networks.lan.subnet:",
        str(value),
    )
case("route-to-prefix-99", set_in("routes", 0, "to", value="198.18.11.0/99"), "routes[0].to:", "/99")
case("route-to-host-bits", set_in("routes", 0, "to", value="198.18.11.1/24"), "routes[0].to:", "host bits")

# gateways and addresses
case(
    "gateway-outside-subnet",
    set_in("networks", "lan", "gateway", value="198.18.99.1"),
    "networks.lan.gateway:",
    "198.18.99.1 is outside",
)
case(
    "gateway-broadcast",
    set_in("networks", "lan", "gateway", value="198.18.10.255"),
    "networks.lan.gateway:",
    "broadcast",
)
case(
    "address-duplicate",
    add_nodes(c={"networks": {"lan": {"address": "198.18.10.20"}}}),
    "nodes.c.networks.lan.address:",
    "198.18.10.20 is already held by b",
)
case(
    "address-is-the-gateway",
    set_in("nodes", "b", "networks", "lan", "address", value="198.18.10.1"),
    "nodes.b.networks.lan.address:",
    "gateway",
)
case(
    "address-outside-subnet",
    set_in("nodes", "b", "networks", "lan", "address", value="198.18.11.5"),
    "nodes.b.networks.lan.address:",
    "198.18.11.5 is outside",
)
case(
    "address-garbage",
    set_in("nodes", "b", "networks", "lan", "address", value="banana"),
    "nodes.b.networks.lan.address:",
    "'banana' is not an IP address",
)
case(
    "subnets-overlap",
    set_in("networks", "ovl", "subnet", value="198.18.10.128/25"),
    "networks.ovl.subnet:",
    "overlaps",
)

# unknown networks and nodes
case(
    "unknown-network-in-list",
    lambda doc: doc["nodes"]["a"]["networks"].append("nowhere"),
    "nodes.a.networks[2]:",
    "unknown network 'nowhere'",
)
case(
    "unknown-network-in-mapping",
    set_in("nodes", "b", "networks", "nowhere", value=None),
    "nodes.b.networks.nowhere:",
    "unknown network 'nowhere'",
)
case("route-unknown-node", set_in("routes", 0, "node", value="ghost"), "routes[0].node:", "'ghost'")
case("route-unknown-dev", set_in("routes", 0, "dev", value="eth7"), "routes[0].dev:", "'eth7'")
case(
    "route-via-outside-subnets",
    set_in("routes", 0, "via", value="198.18.50.1"),
    "routes[0].via:",
    "198.18.50.1",
)
case("container-unknown-node", add_nodes(c={"mode": "container:ghost"}), "nodes.c.mode:", "'ghost'")
case("container-itself", add_nodes(c={"mode": "container:c"}), "nodes.c.mode:", "own namespace")
case(
    "container-cycle-of-2",
    add_nodes(c={"mode": "container:e"}, e={"mode": "container:c"}),
    "nodes.c.mode:",
    "cycle: c -> e -> c",
)
case(
    "container-cycle-of-3",
    add_nodes(c={"mode": "container:e"}, e={"mode": "container:f"}, f={"mode": "container:c"}),
    "nodes.c.mode:",
    "cycle: c -> e -> f -> c",
)

# VNI and MTU ranges
for value in (0, 16777216, -1, "42", True, 1.5):
    case(f"vni-{value!r}", set_in("networks", "ovl", "vni", value=value), "networks.ovl.vni:", repr(value))
case("vni-missing", lambda doc: doc["networks"]["ovl"].pop("vni"), "networks.ovl.vni: missing")
for value in (67, 65536, 0, -1, "1500"):
    case(f"mtu-{value!r}", set_in("networks", "lan", "mtu", value=value), "networks.lan.mtu:", repr(value))


def ipv6_low_mtu(doc: dict) -> None:
    doc["networks"]["lan"].update(subnet="fd00:10::/64", mtu=1279)
    doc["nodes"]["b"]["networks"]["lan"]["address"] = "fd00:10::20"
    doc["routes"].clear()


case("mtu-below-ipv6-minimum", ipv6_low_mtu, "networks.lan.mtu:", "1279")

# topology names: 1-8 of [a-z0-9-]; every bad one carries the run prefix
for label, name in [
    ("9-chars", f"t{RUN}xyzw"),
    ("upper-case", f"T{RUN}"),
    ("underscore", f"{RUN}_x"),
    ("dot", f"{RUN}.x"),
    ("slash", f"{RUN}/x"),
    ("space", f"{RUN} x"),
    ("non-ascii", f"{RUN}ñ"),
    ("empty", ""),
]:
    case(f"name-{label}", set_in("name", value=name), "name:", repr(name), "a-z, 0-9 and '-'")
case("name-number", set_in("name", value=1234), "name: 1234", "a-z, 0-9 and '-'")
case("name-missing", lambda doc: doc.pop("name"), "name: missing")


def created_anything(host_ns) -> list[str]:
    """Links in the host namespace other than lo, and namespaces carrying the run prefix."""
    links = [x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout) if x["ifname"] != "lo"]
    spaces = [n for n in os.listdir("/run/netns") if ours(n) and n != host_ns.name]
    return links + spaces


@pytest.mark.parametrize(("mutate", "expected"), CASES)
def test_bad_input_exits_2_names_the_culprit_and_creates_nothing(host_ns, topo, tmp_path, mutate, expected):
    doc = copy.deepcopy(base(topo))
    mutate(doc)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    applied = host_ns.netcore("apply", str(path))
    assert applied.returncode == 2, (applied.stdout, applied.stderr)
    assert applied.stdout == ""
    assert applied.stderr.startswith(f"error: {path}: ")
    for fragment in expected:
        assert fragment in applied.stderr
    assert "Traceback" not in applied.stderr
    assert created_anything(host_ns) == []

    validated = host_ns.netcore("validate", str(path))
    assert (validated.returncode, validated.stdout, validated.stderr) == (2, "", applied.stderr)


def test_the_base_topology_is_valid(host_ns, topo, tmp_path):
    """The cases above break one thing each in a file that is otherwise fine."""
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(base(topo), sort_keys=False))
    assert host_ns.netcore("validate", str(path)).returncode == 0


def alias_bomb(topo: str, levels: int = 8) -> str:
    """About 480 bytes that expand to 9**8 = 43 million strings in one field."""
    text = f"name: {topo}\nx0: &x0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    for level in range(1, levels + 1):
        text += f"x{level}: &x{level} [" + ",".join([f"*x{level - 1}"] * 9) + "]\n"
    return text + f"networks: {{lan: {{subnet: 198.18.10.0/24, mtu: *x{levels}}}}}\n"


def _json_lan(topo: str, mtu: str) -> str:
    """A topology as JSON text whose network lan has `mtu` written as given."""
    return f'{{"name": "{topo}", "networks": {{"lan": {{"subnet": "198.18.10.0/24", "mtu": {mtu}}}}}}}'


HOSTILE = [
    pytest.param(alias_bomb, ":2:5: YAML anchors and aliases (&x0) are not allowed", id="alias-bomb"),
    pytest.param(
        lambda topo: f"name: {topo}\nnetworks: {{lan: {{subnet: 198.18.10.0/24, mtu: {'9' * 5000}}}}}\n",
        ": networks.lan.mtu: 999999999999… (an integer of 5000 characters) is not an integer",
        id="5000-digit-number",
    ),
    pytest.param(
        lambda topo: f"name: {topo}\nnetworks: {{lan: {{subnet: '{'1' * 500_000}'}}}}\n",
        ": networks.lan.subnet: '1111111111",
        id="500-kB-value",
    ),
    pytest.param(
        lambda topo: f"name: {topo}\n" + "#" * (1 << 20) + "\n",
        ": the file is larger than 1048576 bytes",
        id="over-1-MiB",
    ),
    pytest.param(
        lambda topo: f"name: {topo}\nx: {'[' * 40}{']' * 40}\n",
        ": nested more than 32 levels deep",
        id="deep-nesting",
    ),
    # JSON (YAML too, and what the web app sends agents) is read by its own fast path, with the same limits
    pytest.param(
        lambda topo: _json_lan(topo, "9" * 5000),
        ": networks.lan.mtu: 999999999999… (an integer of 5000 characters) is not an integer",
        id="json-5000-digit-number",
    ),
    pytest.param(
        lambda topo: f'{{"name": "{topo}", "x": {"[" * 40}{"]" * 40}}}',
        ": nested more than 32 levels deep",
        id="json-deep-nesting",
    ),
    pytest.param(
        lambda topo: f'{{"name": "{topo}", "x": {"[" * 100_000}{"]" * 100_000}}}',
        ": nested more than 32 levels deep",
        id="json-recursion",
    ),
    pytest.param(
        lambda topo: f'{{"name": "{topo}", "networks": {{}}, "networks": {{}}}}',
        ": duplicate key 'networks'",
        id="json-duplicate-key",
    ),
    pytest.param(
        lambda topo: _json_lan(topo, "NaN"),
        ": NaN is not a number a topology can hold",
        id="json-nan",
    ),
]


@pytest.mark.parametrize(("make", "expected"), HOSTILE)
def test_hostile_files_are_refused_small_and_cheap(host_ns, topo, tmp_path, make, expected):
    """Under a 256 MiB address-space limit: expanding, quoting or recursing into the file would fail it."""
    path = tmp_path / "hostile.yaml"
    path.write_text(make(topo))
    for command in ("validate", "apply"):
        limited = ["prlimit", f"--as={256 << 20}", sys.executable, "-m", "netcore", command, str(path)]
        done = host_ns.run(limited, check=False)
        assert done.returncode == 2, done.stderr[-2000:]
        assert done.stderr.startswith(f"error: {path}") and expected in done.stderr, done.stderr[:500]
        assert len(done.stderr) < 300 and "Traceback" not in done.stderr
    assert created_anything(host_ns) == []
