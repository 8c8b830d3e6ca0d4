"""One contract for the state on the wire: netcore's JSON Schema, used by the web app, its fixtures,
the browser's fixtures and the browser code alike.

The web app checks agents' objects with checkers compiled from the schema (webapp.topology.schema);
here they are held to jsonschema's verdict, so the compiled form cannot drift from the file.
"""

from __future__ import annotations

import copy
import json
import re
from importlib import import_module
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.apps import apps as django_apps

from tests.browser import frames
from tests.webapp.conftest import link, state_with
from webapp.hosts.services import host_create
from webapp.topology import schema
from webapp.topology.models import HostState

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "static" / "js"
MODEL_JS = JS / "model.js"
# Every browser module that reads state objects.
STATE_READING_JS = [MODEL_JS] + [JS / name for name in ("graph.js", "panels.js", "tables.js", "links.js")]


def _schema_of(kind: str | None) -> dict[str, Any]:
    for extra in (schema.DOCKER_SCHEMA, schema.SERVICES_SCHEMA, schema.TRAFFIC_SCHEMA):
        if kind in extra["properties"]:
            return extra
    return schema.SCHEMA


def _def_name(kind: str) -> str:
    return _schema_of(kind)["properties"][kind]["items"]["$ref"].removeprefix("#/$defs/")


def _validator(definition: str | None, kind: str | None = None) -> jsonschema.Draft202012Validator:
    if definition is None:
        return jsonschema.Draft202012Validator(schema.SCHEMA)
    source = _schema_of(kind)
    return jsonschema.Draft202012Validator(
        {"$schema": source["$schema"], "$defs": source["$defs"], "$ref": f"#/$defs/{definition}"}
    )


def _objects() -> dict[str, list[dict[str, Any]]]:
    """Sample objects of every kind, with the interesting branches (veth peers, VXLAN, FDB dst)."""
    state, _ = frames.demo_host()
    return {kind: list(state.state[kind].values()) for kind in schema.KINDS}


def test_the_kinds_are_the_schemas_and_the_browsers() -> None:
    arrays = [
        k
        for s in (schema.SCHEMA, schema.DOCKER_SCHEMA, schema.SERVICES_SCHEMA, schema.TRAFFIC_SCHEMA)
        for k, p in s["properties"].items()
        if p.get("type") == "array"
    ]
    assert list(schema.KINDS) == arrays == list(frames.KINDS)
    js = re.search(r"const STATE_KINDS = \[([^\]]*)\]", MODEL_JS.read_text())
    assert js, "static/js/model.js no longer declares STATE_KINDS"
    assert [k.strip().strip("'\"") for k in js.group(1).split(",") if k.strip()] == list(schema.KINDS)


def test_the_browser_reads_only_fields_the_schema_defines() -> None:
    """The page's model names object fields directly (link.netns, peer.index, ...): each must exist."""
    source = "\n".join(path.read_text() for path in STATE_READING_JS)
    defs = schema.SCHEMA["$defs"]
    readers = {"link": "link", "portLink": "link", "bridge": "link", "old": "link", "peer": "linkRef",
               "peerLink": "link", "devLink": "link", "namespace": "namespace", "address": "address",
               "route": "route"}  # fmt: skip
    dom_methods = {"click", "remove"}  # `link` is also the download anchor
    for variable, definition in readers.items():
        used = set(re.findall(rf"\b{variable}\??\.([a-z_]+)\b(?!\()", source)) - dom_methods
        assert used, f"the browser code reads no field of {variable!r} any more: update this test"
        assert used <= set(defs[definition]["properties"]), (
            variable,
            used - set(defs[definition]["properties"]),
        )


def test_the_web_app_fixtures_follow_the_schema() -> None:
    validator = _validator("link")
    for obj in (link("lo", 1, kind=None), link("br0", 2), link("eth0", 300, "demo-web1", kind="veth")):
        validator.validate(obj)
        schema.object_check("links", obj)
    with pytest.raises(schema.SchemaError, match="missing field 'netns'"):  # the shape they once had
        state_with(links={"host|1": {"namespace": "host", "ifindex": 1, "name": "lo", "kind": "bridge"}})


@pytest.mark.parametrize(
    "host", [frames.demo_host()[0], frames.endpoints_host(3, per_bridge=2)], ids=["demo", "endpoints"]
)
def test_the_browser_fixtures_follow_the_schema(host: frames.HostState) -> None:
    snapshot = host.as_netcore_snapshot()
    _validator(None).validate(snapshot)
    schema.snapshot_check(snapshot)
    for kind in schema.KINDS:
        for obj in host.state[kind].values():
            schema.object_check(kind, obj)


# Values of every JSON type and of the shapes the schema knows, all within the wire limits, so
# jsonschema and the compiled checkers must agree on each.
REPLACEMENTS: list[Any] = [
    None, True, False, 0, -1, 1, 4095, 4096, 65536, 2**24, 2**31, 1.5, "", "x", "x" * 15, "x" * 16,
    "host", "named", "up", "down", "42", "universe", "static", "permanent", "noarp|permanent",
    "PERMANENT", "02:00:00:00:00:01", "02-00-00-00-00-01", "198.18.0.1", "fd00::1", "198.18.0.0/24",
    "default", [], {}, {"netns": "a", "index": 1, "name": None}, {"netns": "a", "index": 0, "name": "b"},
]  # fmt: skip


def _mutations(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [("extra", {**obj, "extra": 1})]
    for field in obj:
        out.append((f"-{field}", {k: v for k, v in obj.items() if k != field}))
        out.extend((f"{field}={value!r}", {**obj, field: value}) for value in REPLACEMENTS)
        if isinstance(obj[field], dict):  # a veth's peer, a VXLAN's settings
            for name, nested in _mutations(obj[field]):
                out.append((f"{field}.{name}", {**obj, field: nested}))
    return out


def _explains(kind: str | None, value: Any) -> bool:
    try:
        schema.explain(kind, value)
    except schema.SchemaError:
        return False
    return True


@pytest.mark.parametrize("kind", schema.KINDS)
def test_the_compiled_checkers_agree_with_jsonschema(kind: str) -> None:
    validator = _validator(_def_name(kind), kind)
    checked = 0
    for obj in _objects()[kind]:
        assert validator.is_valid(obj) and schema.valid(kind, obj) and _explains(kind, obj)
        for name, mutated in _mutations(obj):
            expected = validator.is_valid(mutated)
            assert schema.valid(kind, mutated) is expected, (name, mutated)
            assert _explains(kind, mutated) is expected, (name, mutated)
            checked += 1
    assert checked > 100


def test_the_compiled_snapshot_check_agrees_with_jsonschema() -> None:
    snapshot = frames.demo_host()[0].as_netcore_snapshot()
    broken = [copy.deepcopy(snapshot) for _ in range(4)]
    broken[0]["version"] = 2
    broken[1]["links"].append({"name": "lo"})
    del broken[2]["fdb"]
    broken[3]["routes"] = {}
    for value in [snapshot, *broken]:
        expected = _validator(None).is_valid(value)
        assert schema.valid(None, value) is expected and _explains(None, value) is expected


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (2**53, "between 1 and 9007199254740991"),
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
        ("x" * (schema.MAX_STRING + 1), "characters long"),
    ],
)
def test_wire_limits_beyond_the_schema(value: Any, complaint: str) -> None:
    """What jsonschema would let through but a browser or a database cannot keep."""
    obj = link("x", 1)
    field = "index" if isinstance(value, int) else "alias"
    with pytest.raises(schema.SchemaError, match=complaint) as caught:
        schema.object_check("links", {**obj, field: value})
    assert caught.value.path == [field]


def test_errors_say_where() -> None:
    obj = link("x", 1, kind="veth")
    obj["peer"] = {"netns": "a", "index": 0, "name": "b"}
    with pytest.raises(schema.SchemaError) as caught:
        schema.object_check("links", obj)
    assert str(caught.value) == "peer.index: must be between 1 and 9007199254740991, not 0"


def test_a_schema_keyword_the_checker_does_not_know_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="not supported"):
        schema._Explainer({"$defs": {}}).node({"type": "string", "format": "ipv4"})


def test_the_schema_file_is_the_one_netcore_tests() -> None:
    assert json.loads((REPO / "netcore" / "schema" / "snapshot.schema.json").read_text()) == schema.SCHEMA


@pytest.mark.django_db
def test_states_stored_before_the_checks_keep_only_their_valid_objects() -> None:
    migration = import_module("webapp.topology.migrations.0002_drop_objects_off_the_schema")
    host, _ = host_create(name="h1")
    lo = link("lo", 1)
    old_shape = {"namespace": "host", "ifindex": 2, "name": "br0", "kind": "bridge"}
    HostState.objects.create(
        host=host, seq=3, state={"links": {"host|1": lo, "host|2": old_shape}, "tunnels": {"t": {}}}
    )
    migration.drop_objects_off_the_schema(django_apps, None)
    stored = HostState.objects.get(host=host)
    assert (stored.seq, stored.state) == (3, state_with(links={"host|1": lo}))
