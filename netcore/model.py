"""The topology as plain data: frozen dataclasses that serialise to documented JSON.

The JSON form is specified by netcore/schema/snapshot.schema.json. Every object names
the namespace it lives in ("host" is the namespace netcore runs in), so a list of them
can be filtered, diffed and sent over the wire without further context.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SCHEMA_VERSION = 1


def _to_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if hasattr(value, "__dataclass_fields__"):
            value = _to_dict(value)
        out[f.name] = value
    return out


class _Serialisable:
    def to_dict(self) -> dict[str, Any]:
        """This object as JSON-ready data."""
        return _to_dict(self)


@dataclass(frozen=True, slots=True)
class LinkRef(_Serialisable):
    """Where the other end of a veth lives."""

    netns: str
    index: int
    name: str | None


@dataclass(frozen=True, slots=True)
class VxlanInfo(_Serialisable):
    vni: int
    local: str | None
    group: str | None
    remote: str | None
    dstport: int
    learning: bool
    underlay: int | None


@dataclass(frozen=True, slots=True)
class Shaping(_Serialisable):
    """A link's root qdisc when it is not the kernel's default: a rate limit (tbf), an impairment
    (netem: delay, jitter, loss, rate) or another kind, shown by name (its fields null)."""

    kind: str
    rate: int | None = None  # bits per second
    burst: int | None = None  # bytes sent at line rate before the limit bites (tbf)
    limit: int | None = None  # tbf: bytes queued at most; netem: packets
    delay_us: int | None = None
    jitter_us: int | None = None
    loss_ppm: int | None = None  # packets dropped, in parts per million


@dataclass(frozen=True, slots=True)
class Link(_Serialisable):
    """An interface. `master` names the bridge it is a port of; `peer` resolves a veth's other end."""

    netns: str
    index: int
    name: str
    kind: str | None
    mtu: int
    mac: str | None
    up: bool
    state: str
    master: str | None
    alias: str | None
    peer: LinkRef | None = None
    vxlan: VxlanInfo | None = None
    shaping: Shaping | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.netns, self.index)


@dataclass(frozen=True, slots=True)
class Address(_Serialisable):
    netns: str
    ifindex: int
    ifname: str | None
    family: int
    address: str
    prefixlen: int
    scope: str

    @property
    def key(self) -> tuple:
        return (self.netns, self.ifindex, self.address, self.prefixlen)


@dataclass(frozen=True, slots=True)
class Route(_Serialisable):
    """A route in the main table. `dst` is a CIDR or "default"."""

    netns: str
    family: int
    dst: str
    gateway: str | None
    dev: str | None
    oif: int | None
    protocol: str
    scope: str
    metric: int | None
    prefsrc: str | None
    onlink: bool

    @property
    def key(self) -> tuple:
        return (self.netns, self.family, self.dst, self.metric, self.oif)


@dataclass(frozen=True, slots=True)
class Neighbour(_Serialisable):
    netns: str
    ifindex: int
    ifname: str | None
    address: str
    mac: str | None
    state: str

    @property
    def key(self) -> tuple:
        return (self.netns, self.ifindex, self.address)


@dataclass(frozen=True, slots=True)
class FdbEntry(_Serialisable):
    """A bridge or VXLAN forwarding entry; `dst` is the VXLAN remote for tunnel entries."""

    netns: str
    ifindex: int
    ifname: str | None
    master: str | None
    mac: str
    dst: str | None
    vlan: int | None
    vni: int | None
    state: str
    self_entry: bool

    @property
    def key(self) -> tuple:
        return (self.netns, self.ifindex, self.mac, self.dst, self.vlan, self.self_entry)


@dataclass(frozen=True, slots=True)
class Namespace(_Serialisable):
    """A network namespace: kind is host, named, docker or process."""

    name: str
    inode: int
    kind: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole topology at one moment."""

    namespaces: tuple[Namespace, ...]
    links: tuple[Link, ...]
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    neighbours: tuple[Neighbour, ...]
    fdb: tuple[FdbEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data following netcore/schema/snapshot.schema.json."""
        return {
            "version": SCHEMA_VERSION,
            "namespaces": [n.to_dict() for n in self.namespaces],
            "links": [x.to_dict() for x in self.links],
            "addresses": [x.to_dict() for x in self.addresses],
            "routes": [x.to_dict() for x in self.routes],
            "neighbours": [x.to_dict() for x in self.neighbours],
            "fdb": [x.to_dict() for x in self.fdb],
        }

    def link(self, netns: str, name: str) -> Link | None:
        """The link called `name` in `netns`, if any."""
        return next((x for x in self.links if x.netns == netns and x.name == name), None)

    def in_netns(self, netns: str) -> Snapshot:
        """Only the objects of one namespace."""
        return Snapshot(
            namespaces=tuple(n for n in self.namespaces if n.name == netns),
            links=tuple(x for x in self.links if x.netns == netns),
            addresses=tuple(x for x in self.addresses if x.netns == netns),
            routes=tuple(x for x in self.routes if x.netns == netns),
            neighbours=tuple(x for x in self.neighbours if x.netns == netns),
            fdb=tuple(x for x in self.fdb if x.netns == netns),
        )
