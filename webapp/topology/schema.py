"""netcore's JSON Schemas (netcore/schema/snapshot.schema.json, and docker.schema.json for the
Docker engine's kinds, services.schema.json for the catalog's health, traffic.schema.json for
conntrack's "talks to" edges), compiled once into fast checkers.

The schema is the one definition of the state kinds and of every object's shape: netcore's model
is tested against it, the web app checks every object an agent sends with the checkers built here,
and the tests check their fixtures with them. jsonschema's validator is far too slow for the
websocket path (~100 µs an object; a 1000-endpoint snapshot holds ~20,000 objects), so the subset
of JSON Schema that the file uses is compiled twice: into generated Python predicates (one boolean
function per object shape, leaves inlined: ~1-2 µs an object) that every object goes through, and
into closures that say what is wrong, run only for an object the predicate refused. A keyword
outside that subset fails at import, so the schema never says more than what is checked.
tests/webapp/test_contract.py holds both to jsonschema's verdict on valid and broken objects.

Wire limits apply beyond the schema: an integer must be exactly representable in a browser
(|n| <= 2**53 - 1), a string is at most MAX_STRING characters unless the schema bounds it, and a
string must be storable anywhere (no NUL character, no lone UTF-16 surrogate)."""

from __future__ import annotations

import importlib.util
import json
import re
import reprlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _schema_path() -> Path:
    """netcore's snapshot schema file, found without importing netcore (the web app never runs its code)."""
    spec = importlib.util.find_spec("netcore")
    if spec is None or spec.origin is None:
        raise ImportError("netcore is not installed: its schema defines the objects agents send")
    return Path(spec.origin).parent / "schema" / "snapshot.schema.json"


SCHEMA_PATH = _schema_path()
DOCKER_SCHEMA_PATH = SCHEMA_PATH.with_name("docker.schema.json")  # the Docker engine's kinds
SERVICES_SCHEMA_PATH = SCHEMA_PATH.with_name("services.schema.json")  # the service catalog's health
TRAFFIC_SCHEMA_PATH = SCHEMA_PATH.with_name("traffic.schema.json")  # conntrack's "talks to" edges
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
MAX_STRING = 1024  # characters of a string the schema gives no maxLength

Check = Callable[[Any], None]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "$comment"}
_KEYWORDS = {
    "$ref", "type", "enum", "const", "anyOf", "minimum", "maximum", "minLength", "maxLength",
    "pattern", "properties", "required", "additionalProperties", "items",
}  # fmt: skip
_PY_TYPES: dict[str, type] = {
    "string": str, "integer": int, "boolean": bool, "null": type(None), "object": dict, "array": list,
}  # fmt: skip
_JSON_NAMES = {
    str: "a string", int: "an integer", bool: "a boolean", type(None): "null", dict: "an object",
    list: "a list", float: "a number",
}  # fmt: skip


class SchemaError(ValueError):
    """A value that does not follow the schema; `path` leads to it from the value checked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []

    def __str__(self) -> str:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")
        return f"{where}: {self.message}" if where else self.message


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def text_check(value: str) -> None:
    """Refuse what no database or browser stores faithfully: NUL and lone surrogates."""
    if "\x00" in value:
        raise SchemaError("must not contain a NUL character")
    if not value.isascii() and not _is_utf8(value):
        raise SchemaError("must be valid Unicode (it holds a lone surrogate)")


def _is_utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern for re.search; in ECMA-262 a final $ matches only at the very end."""
    return re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern))


def _bounds(node: dict[str, Any], low: str, high: str, limit: int, floor: int) -> tuple[int, int]:
    return max(node.get(low, floor), floor), min(node.get(high, limit), limit)


_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 2, 4, 4
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = 40


def _short(value: Any) -> str:
    """repr(value) cut to 40 characters, without building the whole repr of a large value."""
    text = _REPR.repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Explainer:
    """Closures that raise a SchemaError saying what is wrong and where."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.refs: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"schema: only local #/$defs/ references are supported, not {ref!r}")
        name = ref.removeprefix("#/$defs/")
        if name not in self.refs:
            if name in self.compiling:
                raise ValueError(f"schema: recursive definition {name!r} is not supported")
            self.compiling.add(name)
            self.refs[name] = self.node(self.schema["$defs"][name])
        return self.refs[name]

    def node(self, node: dict[str, Any]) -> Check:
        unknown = set(node) - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"schema: keywords {sorted(unknown)} are not supported by this checker")
        checks: list[Check] = []
        typed = self._typed(node)
        if typed is not None:
            checks.append(typed)
        if "enum" in node or "const" in node:
            checks.append(self._enum(node["enum"] if "enum" in node else [node["const"]]))
        if "anyOf" in node:
            checks.append(self._any_of([self.node(branch) for branch in node["anyOf"]], node["anyOf"]))
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if not checks:
            return lambda value: None
        if len(checks) == 1:
            return checks[0]

        def all_of(value: Any) -> None:
            for check in checks:
                check(value)

        return all_of

    def _typed(self, node: dict[str, Any]) -> Check | None:
        """The type check and the keywords that apply to one type, dispatched on the value's type."""
        names = node.get("type")
        if names is None and not set(node) & (_KEYWORDS - {"$ref", "enum", "const", "anyOf"}):
            return None
        allowed = [names] if isinstance(names, str) else list(names or _PY_TYPES)
        handlers: dict[type, Check | None] = {}
        for name in allowed:
            py = _PY_TYPES[name]
            handlers[py] = getattr(self, f"_{name}")(node)
        expected = " or ".join(_JSON_NAMES[_PY_TYPES[n]] for n in allowed)

        if len(handlers) == 1:
            ((py, handler),) = handlers.items()

            def one_type(value: Any) -> None:
                if type(value) is not py:
                    raise SchemaError(f"must be {expected}, not {json_type(value)}")
                if handler is not None:
                    handler(value)

            return one_type

        def typed(value: Any) -> None:
            try:
                handler = handlers[type(value)]
            except KeyError:
                raise SchemaError(f"must be {expected}, not {json_type(value)}") from None
            if handler is not None:
                handler(value)

        return typed

    def _null(self, node: dict[str, Any]) -> None:
        return None

    def _boolean(self, node: dict[str, Any]) -> None:
        return None

    def _integer(self, node: dict[str, Any]) -> Check:
        low, high = _bounds(node, "minimum", "maximum", MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER)

        def integer(value: int) -> None:
            if not low <= value <= high:
                raise SchemaError(f"must be between {low} and {high}, not {_short(value)}")

        return integer

    def _string(self, node: dict[str, Any]) -> Check:
        low, high = _bounds(node, "minLength", "maxLength", MAX_STRING, 0)
        pattern = node.get("pattern")
        regex = _regex(pattern) if pattern is not None else None

        def string(value: str) -> None:
            if not low <= len(value) <= high:
                raise SchemaError(f"must be {low} to {high} characters long, not {len(value)}")
            if regex is not None and regex.search(value) is None:
                raise SchemaError(f"{_short(value)} does not match {pattern}")
            text_check(value)

        return string

    def _array(self, node: dict[str, Any]) -> Check | None:
        if "items" not in node:
            return None
        item = self.node(node["items"])

        def array(value: list) -> None:
            for i, element in enumerate(value):
                try:
                    item(element)
                except SchemaError as err:
                    err.path.insert(0, i)
                    raise

        return array

    def _object(self, node: dict[str, Any]) -> Check:
        properties = [(name, self.node(sub)) for name, sub in node.get("properties", {}).items()]
        required = list(node.get("required", []))
        extra = node.get("additionalProperties", True)
        if extra not in (True, False):
            raise ValueError("schema: additionalProperties must be true or false for this checker")
        names = {name for name, _ in properties}
        closed = extra is False

        def mismatch(value: dict) -> None:
            missing = [name for name in required if name not in value]
            if missing:
                raise SchemaError(f"missing field {missing[0]!r}")
            unknown = sorted(str(k) for k in value if k not in names)
            if closed and unknown:
                raise SchemaError(f"unknown field {_short(unknown[0])}")

        if closed and set(required) == names:  # every field present, nothing else: the netcore objects
            keys = names

            def exact(value: dict) -> None:
                if value.keys() != keys:
                    mismatch(value)
                for name, check in properties:
                    try:
                        check(value[name])
                    except SchemaError as err:
                        err.path.insert(0, name)
                        raise

            return exact

        def general(value: dict) -> None:
            mismatch(value)
            for name, check in properties:
                if name in value:
                    try:
                        check(value[name])
                    except SchemaError as err:
                        err.path.insert(0, name)
                        raise

        return general

    def _enum(self, values: list[Any]) -> Check:
        for value in values:
            if isinstance(value, (dict, list, float)):
                raise ValueError(f"schema: enum value {value!r} is not supported by this checker")
        allowed = {(type(value), value) for value in values}
        shown = ", ".join(json.dumps(v) for v in values)

        def enum(value: Any) -> None:
            try:
                ok = (type(value), value) in allowed
            except TypeError:  # an object or list
                ok = False
            if not ok:
                raise SchemaError(f"{_short(value)} is not one of {shown}")

        return enum

    def _any_of(self, branches: list[Check], nodes: list[dict[str, Any]]) -> Check:
        nullable = {"type": "null"} in nodes
        if nullable and len(branches) == 2:
            (other,) = [b for b, n in zip(branches, nodes, strict=True) if n != {"type": "null"}]

            def or_null(value: Any) -> None:
                if value is not None:
                    other(value)

            return or_null

        def any_of(value: Any) -> None:
            errors = []
            for branch in branches:
                try:
                    branch(value)
                    return
                except SchemaError as err:
                    errors.append(str(err))
            raise SchemaError(" and ".join(errors) if len(set(errors)) > 1 else errors[0])

        return any_of


class _Predicates:
    """Generated Python source: a boolean function per object shape, with every leaf inlined."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.source: list[str] = []
        self.env: dict[str, Any] = {"_utf8": _is_utf8}
        self.refs: dict[str, str] = {}

    def function(self, node: dict[str, Any]) -> Callable[[Any], bool]:
        """A predicate for `node`."""
        name = self._define([f"return {self.expr(node, 'v')}"])
        exec("\n".join(self.source), self.env)  # source built from the schema file alone
        self.source.clear()
        return self.env[name]

    def _constant(self, value: Any) -> str:
        name = f"_c{len(self.env)}"
        self.env[name] = value
        return name

    def _define(self, body: list[str]) -> str:
        name = f"_f{len(self.env)}"
        self.env[name] = None  # reserves the name
        self.source.append(f"def {name}(v):")
        self.source.extend(f"    {line}" for line in body)
        return name

    def expr(self, node: dict[str, Any], v: str) -> str:
        parts = []
        if "type" in node or set(node) & (_KEYWORDS - {"$ref", "enum", "const", "anyOf"}):
            allowed = node.get("type", list(_PY_TYPES))
            allowed = [allowed] if isinstance(allowed, str) else allowed
            parts.append("(" + " or ".join(getattr(self, f"_{n}")(node, v) for n in allowed) + ")")
        if "enum" in node or "const" in node:
            values = node["enum"] if "enum" in node else [node["const"]]
            types = self._constant(frozenset(type(x) for x in values))
            parts.append(f"(type({v}) in {types} and {v} in {self._constant(frozenset(values))})")
        if "anyOf" in node:
            parts.append("(" + " or ".join(self.expr(branch, v) for branch in node["anyOf"]) + ")")
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            target = self.schema["$defs"][name]
            if target.get("type") != "object":
                parts.append(self.expr(target, v))
            else:
                if name not in self.refs:
                    self.refs[name] = self._object_function(target)
                parts.append(f"{self.refs[name]}({v})")
        return "(" + " and ".join(parts) + ")" if parts else "True"

    def _null(self, node: dict[str, Any], v: str) -> str:
        return f"{v} is None"

    def _boolean(self, node: dict[str, Any], v: str) -> str:
        return f"type({v}) is bool"

    def _integer(self, node: dict[str, Any], v: str) -> str:
        low, high = _bounds(node, "minimum", "maximum", MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER)
        return f"(type({v}) is int and {low} <= {v} <= {high})"

    def _string(self, node: dict[str, Any], v: str) -> str:
        low, high = _bounds(node, "minLength", "maxLength", MAX_STRING, 0)
        conds = [f"type({v}) is str", f"{low} <= len({v}) <= {high}"]
        if "pattern" in node:
            conds.append(f"{self._constant(_regex(node['pattern']).search)}({v}) is not None")
        conds += [f"'\\x00' not in {v}", f"({v}.isascii() or _utf8({v}))"]
        return "(" + " and ".join(conds) + ")"

    def _array(self, node: dict[str, Any], v: str) -> str:
        if "items" not in node:
            return f"type({v}) is list"
        body = ["if type(v) is not list: return False", "for x in v:"]
        body += [f"    if not {self.expr(node['items'], 'x')}: return False", "return True"]
        return f"{self._define(body)}({v})"

    def _object(self, node: dict[str, Any], v: str) -> str:
        return f"{self._object_function(node)}({v})"

    def _object_function(self, node: dict[str, Any]) -> str:
        properties = node.get("properties", {})
        keys = self._constant(frozenset(properties))
        required = self._constant(frozenset(node.get("required", [])))
        closed = node.get("additionalProperties", True) is False
        exact = closed and set(node.get("required", [])) == set(properties)
        body = ["if type(v) is not dict: return False"]
        if exact:
            body.append(f"if v.keys() != {keys}: return False")
        else:
            body.append(f"if not {required} <= v.keys(): return False")
            if closed:
                body.append(f"if not v.keys() <= {keys}: return False")
        for name, sub in properties.items():
            test = f"if not {self.expr(sub, 'x')}: return False"
            if exact:
                body += [f"x = v[{name!r}]", test]
            else:
                body += [f"if {name!r} in v:", f"    x = v[{name!r}]", f"    {test}"]
        body.append("return True")
        return self._define(body)


def _compile(schema: dict[str, Any], *, whole: bool) -> dict[str | None, tuple[Callable[[Any], bool], Check]]:
    """Checkers for each kind of a schema file (its top-level arrays' items), and for the whole
    document under the key None when `whole`."""
    explainer, predicates = _Explainer(schema), _Predicates(schema)
    nodes: dict[str | None, dict[str, Any]] = {None: schema} if whole else {}
    nodes.update((name, p["items"]) for name, p in schema["properties"].items() if p.get("type") == "array")
    explains = {key: explainer.node(node) for key, node in nodes.items()}  # refuses what it cannot check
    return {key: (predicates.function(node), explains[key]) for key, node in nodes.items()}


_Checks = dict[str | None, tuple[Callable[[Any], bool], Check]]


def _load() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], _Checks]:
    schema = json.loads(SCHEMA_PATH.read_text())
    docker = json.loads(DOCKER_SCHEMA_PATH.read_text())
    services = json.loads(SERVICES_SCHEMA_PATH.read_text())
    traffic = json.loads(TRAFFIC_SCHEMA_PATH.read_text())
    checks = _compile(schema, whole=True) | _compile(docker, whole=False) | _compile(services, whole=False)
    checks |= _compile(traffic, whole=False)
    return schema, docker, services, traffic, checks


SCHEMA, DOCKER_SCHEMA, SERVICES_SCHEMA, TRAFFIC_SCHEMA, _CHECKS = _load()
KINDS: tuple[str, ...] = tuple(k for k in _CHECKS if k)  # namespaces, links, addresses, routes, ...
SNAPSHOT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k in SCHEMA["properties"])  # the kernel's


def _check(key: str | None, value: Any) -> None:
    valid, explain = _CHECKS[key]
    if not valid(value):
        explain(value)
        raise SchemaError("does not follow the schema")  # the explainer should have said why


def object_check(kind: str, obj: Any) -> None:
    """Raise SchemaError unless `obj` is a valid netcore object of `kind` (one of KINDS)."""
    _check(kind, obj)


def snapshot_check(snapshot: Any) -> None:
    """Raise SchemaError unless `snapshot` is a valid netcore snapshot (Snapshot.to_dict())."""
    _check(None, snapshot)


def explain(kind: str | None, value: Any) -> None:
    """Run only the explaining checker (tests compare it with the generated predicate)."""
    _CHECKS[kind][1](value)


def valid(kind: str | None, value: Any) -> bool:
    """Only the generated predicate's verdict (tests compare it with the explaining checker)."""
    return _CHECKS[kind][0](value)
