"""netcore/schema/snapshot.schema.json: it validates real snapshots and cannot drift from model.py."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

import netcore
from netcore import model, objects
from netcore.netlink import codec, parse
from netcore.shaping import link_shape
from netcore.shaping_spec import shape_parse
from netcore.snapshot import snapshot

SCHEMA_PATH = Path(netcore.__file__).parent / "schema" / "snapshot.schema.json"

#: Which $defs entry documents which dataclass.
DEFS = {
    model.Namespace: "namespace",
    model.Link: "link",
    model.LinkRef: "linkRef",
    model.VxlanInfo: "vxlan",
    model.Address: "address",
    model.Route: "route",
    model.Neighbour: "neighbour",
    model.FdbEntry: "fdbEntry",
    model.Shaping: "shaping",
}
# fields a definition may lack: an agent older than the field sends objects without it
OPTIONAL = {model.Link: {"shaping"}}
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "None": "null"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def test_schema_is_valid_draft_2020_12(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_serialised_dataclass_of_model_has_a_definition():
    serialised = {
        cls
        for _, cls in inspect.getmembers(model, inspect.isclass)
        if dataclasses.is_dataclass(cls) and cls.__module__ == model.__name__ and cls is not model.Snapshot
    }
    assert serialised == set(DEFS)


def test_top_level_properties_are_the_snapshot_fields(schema):
    fields = ["version"] + [f.name for f in dataclasses.fields(model.Snapshot)]
    assert list(schema["properties"]) == fields
    assert schema["required"] == fields
    assert schema["additionalProperties"] is False
    assert schema["properties"]["version"]["const"] == model.SCHEMA_VERSION
    for field in dataclasses.fields(model.Snapshot):
        element = re.fullmatch(r"tuple\[(\w+), \.\.\.\]", field.type).group(1)
        prop = schema["properties"][field.name]
        assert prop["type"] == "array"
        assert prop["items"] == {"$ref": f"#/$defs/{DEFS[getattr(model, element)]}"}


@pytest.mark.parametrize("cls", list(DEFS), ids=lambda cls: cls.__name__)
def test_definition_lists_exactly_the_dataclass_fields(schema, cls):
    definition = schema["$defs"][DEFS[cls]]
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(definition["properties"]) == names
    # to_dict always writes every field, null or not
    assert definition["required"] == [n for n in names if n not in OPTIONAL.get(cls, ())]
    assert definition["additionalProperties"] is False
    assert definition["type"] == "object"
    assert definition.get("description")


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _json_types(schema: dict, node: dict) -> set[str]:
    """The JSON types a schema node allows (following $ref, anyOf, enum and const)."""
    node = _resolve(schema, node)
    if "type" in node:
        return set(node["type"]) if isinstance(node["type"], list) else {node["type"]}
    if "anyOf" in node:
        return set().union(*(_json_types(schema, branch) for branch in node["anyOf"]))
    values = node.get("enum", [node["const"]] if "const" in node else None)
    assert values is not None, f"schema node says nothing about its type: {node}"
    names = {bool: "boolean", int: "integer", str: "string", type(None): "null"}
    return {names[type(v)] for v in values}


@pytest.mark.parametrize("cls", list(DEFS), ids=lambda cls: cls.__name__)
def test_field_types_match_the_annotations(schema, cls):
    definition = schema["$defs"][DEFS[cls]]
    by_name = {c.__name__: c for c in DEFS}
    for field in dataclasses.fields(cls):
        prop = definition["properties"][field.name]
        expected = set()
        for part in field.type.split(" | "):
            if part in by_name:
                expected.add("object")
                refs = [b.get("$ref") for b in prop.get("anyOf", [prop])]
                assert f"#/$defs/{DEFS[by_name[part]]}" in refs, f"{cls.__name__}.{field.name}"
            else:
                expected.add(JSON_TYPES[part])
        assert _json_types(schema, prop) == expected, f"{cls.__name__}.{field.name}"
        if not prop.get("$ref"):
            assert prop.get("description"), f"{cls.__name__}.{field.name} has no description"


def test_named_values_match_what_the_parsers_produce(schema):
    defs = schema["$defs"]
    assert set(defs["scope"]["anyOf"][0]["enum"]) == set(parse.SCOPES.values())
    protocol = defs["route"]["properties"]["protocol"]
    assert set(protocol["anyOf"][0]["enum"]) == set(parse.PROTOCOLS.values())
    state = defs["link"]["properties"]["state"]
    assert state["anyOf"][0]["enum"] == list(codec.OPERSTATES)
    nud = re.compile(defs["nudState"]["pattern"])
    for name in codec.NUD_STATES.values():
        assert nud.fullmatch(name)
    assert nud.fullmatch(parse._nud(codec.NUD_PERMANENT | codec.NUD_NOARP))
    assert not nud.fullmatch("PERMANENT")


@pytest.fixture
def spaces(host_ns, topo):
    made = [f"{topo}-a", f"{topo}-b"]
    for name in made:
        host_ns.run(f"ip netns add {name}")
    yield made
    for name in made:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def real_snapshot(host_ns, topo, spaces) -> dict:
    """A snapshot of a built topology: bridge, veths across namespaces, two VXLANs, IPv6, fdb, neighbours."""
    a, b = spaces
    objects.bridge_create(name=f"{topo}br", alias=f"switchboard:{topo}:bridge")
    objects.address_add(ifname=f"{topo}br", address="198.18.90.1/24")
    objects.address_add(ifname=f"{topo}br", address="fd00:90::1/64")
    objects.vxlan_create(
        name=f"{topo}vx",
        vni=4242,
        local="198.18.90.1",
        remote="198.18.90.50",
        learning=False,
        master=f"{topo}br",
    )
    objects.vxlan_create(name=f"{topo}vg", vni=4343, group="239.18.0.1", device=f"{topo}br")
    objects.fdb_add(ifname=f"{topo}vx", mac="02:00:00:00:90:51", dst="198.18.90.51", vni=5000)
    for space, last in ((a, 2), (b, 3)):
        objects.veth_create(name=f"{topo}{space[-1]}0", peer="eth0", peer_netns=space, master=f"{topo}br")
        objects.address_add(ifname="eth0", address=f"198.18.90.{last}/24", netns=space)
        objects.address_add(ifname="eth0", address=f"fd00:90::{last}/64", netns=space)
        objects.route_add(to="default", via="198.18.90.1", netns=space)
        objects.route_add(to="default", via="fd00:90::1", netns=space)
    objects.veth_create(name="ab", peer="ba", netns=a, peer_netns=b)
    objects.neighbour_add(ifname="eth0", address="fd00:90::3", mac="02:00:00:00:90:03", netns=a)
    objects.route_add(to="198.18.91.0/24", via="198.18.90.2")
    link_shape(name="ab", netns=a, spec=shape_parse({"rate": "10mbit"}))
    return snapshot(namespaces=["host", a, b]).to_dict()


def test_real_snapshot_validates(schema, real_snapshot):
    jsonschema.Draft202012Validator(schema).validate(real_snapshot)
    # and it exercised the interesting branches, not just nulls
    links = real_snapshot["links"]
    assert {x["peer"]["netns"] for x in links if x["peer"]} == {
        x["name"] for x in real_snapshot["namespaces"]
    }
    vxlans = [x["vxlan"] for x in links if x["vxlan"]]
    assert {v["remote"] is not None for v in vxlans} == {True, False}
    assert any(v["group"] and v["underlay"] for v in vxlans)
    assert any(x["family"] == 10 and x["address"].startswith("fd00:") for x in real_snapshot["addresses"])
    assert any(r["family"] == 10 and r["gateway"] for r in real_snapshot["routes"])
    assert any(f["dst"] and f["vni"] == 5000 for f in real_snapshot["fdb"])
    assert any(f["master"] for f in real_snapshot["fdb"])
    assert any(n["state"] == "permanent" for n in real_snapshot["neighbours"])
    assert [x["shaping"]["rate"] for x in links if x["shaping"]] == [10_000_000]


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda d: d["links"][0].update(extra=1), "Additional properties"),
        (lambda d: d["links"][0].pop("mtu"), "'mtu' is a required property"),
        (lambda d: d["links"][0].update(mtu="1500"), "is not of type 'integer'"),
        (lambda d: d["routes"][0].update(family=7), "is not one of"),
        (lambda d: d["namespaces"][0].update(kind="other"), "is not one of"),
        (lambda d: d.update(version=2), "was expected"),
        (lambda d: d["fdb"][0].update(mac="02-00-00-00-00-01"), "does not match"),
    ],
    ids=["extra_field", "missing_field", "wrong_type", "bad_family", "bad_kind", "bad_version", "bad_mac"],
)
def test_schema_rejects_what_the_model_cannot_produce(schema, real_snapshot, mutate, complaint):
    data = copy.deepcopy(real_snapshot)
    mutate(data)
    with pytest.raises(jsonschema.ValidationError, match=complaint):
        jsonschema.Draft202012Validator(schema).validate(data)
