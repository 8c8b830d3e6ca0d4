"""Service VIPs: connections to a service's virtual address and port spread over its serving instances.

Nobody owns a VIP. The host (the agent's namespace, which holds each network's bridge and gateway)
takes it with a route ``local <VIP>/32 dev <bridge> table local proto 0xb5`` (RTN_LOCAL, scope host):
the kernel then answers ARP for the VIP on that bridge and delivers its packets to the host, without
an address on the bridge (topology converge removes addresses it does not know). These routes carry
their own rtm_protocol (`codec.RTPROT_SWITCHBOARD_VIP`), so they are listed and removed without
touching any other route.

Everything else is one nftables table, ``inet switchboard-service-vips`` (a name no topology can take:
topology tables are ``switchboard-<1 to 8 characters>``), replaced as a whole in one `nft -j` batch
(one kernel transaction: add table, flush table and its sets, add chains, sets and rules):

=============  ==============================  ==================================================
chain          hook                            rules
=============  ==============================  ==================================================
services       (regular)                       one per VIP: ``ip daddr VIP tcp dport PORT dnat ip
                                               to numgen inc mod TOTAL map { 0-1 : A . 8080,
                                               2 : B . 8080, ... }``: each target owns a range of
                                               `weight` numbers, so the spread is an exact
                                               weighted round robin; a VIP without a target has
                                               ``... return`` (no dnat) instead
prerouting     nat, prerouting, -100 (dstnat)  ``jump services``: what clients send
output         nat, output, -100 (dstnat)      ``jump services``: what the host itself sends
postrouting    nat, postrouting, 100 (srcnat)  ``ct status dnat ct original ip daddr @vips
                                               masquerade``: client and instance share a subnet,
                                               so without it the instance would answer the client
                                               straight from its own address (hairpin, as
                                               kube-proxy does)
input          filter, input, 0                ``ct direction original ip daddr @vips`` then
                                               ``reject with tcp reset`` (TCP) or ``reject`` (all
                                               but ICMP): what reaches the host for a VIP was not
                                               DNATed (no serving instance, another port), and
                                               must neither hang nor reach the host's own sockets
=============  ==============================  ==================================================

Sets: ``vips`` (ipv4_addr) holds every VIP; ``forwarding`` (ifname) remembers the bridges whose
``net.ipv4.conf.<bridge>.forwarding`` this table turned on (a DNATed packet comes in by the bridge and
leaves by it, so the host must forward there), so they are turned off again when their last VIP goes,
even by another agent run; bridges that were forwarding already are left alone.

Conntrack is never flushed: a connection keeps the instance it was given when it started, so an
instance that stops serving gets no new connection and keeps its established ones.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from netcore import nft, objects
from netcore import requests as rq
from netcore.errors import (
    AlreadyExists,
    Conflict,
    InvalidSpec,
    MalformedMessage,
    NetcoreError,
    NotFound,
    Unsupported,
    from_oserror,
)
from netcore.ipam import IPAddress
from netcore.names import validate_ifname
from netcore.netlink import codec as c
from netcore.netlink.socket import NetlinkSocket, Request
from netcore.services.catalog import MAX_WEIGHT, PROTOCOLS, Vip, VipTarget

FAMILY = "inet"
TABLE = "switchboard-service-vips"
#: rtm_protocol of our local routes.
ROUTE_PROTOCOL = c.RTPROT_SWITCHBOARD_VIP
VIPS_SET = "vips"
FORWARDING_SET = "forwarding"
SERVICES_CHAIN = "services"
#: The base chains: (name, type, hook, priority).
BASE_CHAINS = (
    ("prerouting", "nat", "prerouting", -100),
    ("output", "nat", "output", -100),
    ("postrouting", "nat", "postrouting", 100),
    ("input", "filter", "input", 0),
)
_OBJ = f"table {FAMILY} {TABLE}"
_T = {"family": FAMILY, "table": TABLE}


@dataclass(frozen=True)
class VipRoute:
    """One of our local routes: `address` is the host's on link `bridge` (ifindex `index`)."""

    address: ipaddress.IPv4Address
    bridge: str
    index: int


@dataclass(frozen=True)
class VipState:
    """What the host holds now: the VIPs of the table (each VIP's `bridge` is that of its local route,
    "" without one), our local routes, and the bridges whose forwarding the table turned on."""

    table: bool
    vips: tuple[Vip, ...] = ()
    routes: tuple[VipRoute, ...] = ()
    forwarding: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """{"table", "vips": [{"bridge", "service", "address", "port", "protocol", "targets":
        [{"address", "port", "weight"}]}], "routes": [{"address", "bridge"}], "forwarding"}."""
        return {
            "table": self.table,
            "vips": [
                {
                    "bridge": v.bridge,
                    "service": v.service,
                    "address": str(v.address),
                    "port": v.port,
                    "protocol": v.protocol,
                    "targets": [
                        {"address": str(t.address), "port": t.port, "weight": t.weight} for t in v.targets
                    ],
                }
                for v in self.vips
            ],
            "routes": [{"address": str(r.address), "bridge": r.bridge} for r in self.routes],
            "forwarding": list(self.forwarding),
        }


# -- checking what is asked -------------------------------------------------------------------------


def _port_ok(port: object) -> bool:
    return isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535


def _normalize(vips: Sequence[Vip]) -> tuple[Vip, ...]:
    """The VIPs validated, targets and VIPs in a fixed order (so equal input gives an equal table).

    Nothing here touches the kernel: InvalidSpec, Conflict or Unsupported name the service."""
    out: list[Vip] = []
    seen: dict[tuple[ipaddress.IPv4Address, int, str], str] = {}
    bridge_of: dict[ipaddress.IPv4Address, tuple[str, str]] = {}
    for vip in vips:
        where = f"VIP of service {vip.service}"
        if isinstance(vip.address, ipaddress.IPv6Address):
            raise Unsupported(
                f"{where}: {vip.address} is IPv6; IPv6 service addresses are not supported yet",
                obj=vip.service,
            )
        if not isinstance(vip.address, ipaddress.IPv4Address):
            raise InvalidSpec(f"{where}: {vip.address!r} is not an IP address", obj=vip.service)
        validate_ifname(vip.bridge, field=f"bridge of service {vip.service}")
        if vip.protocol not in PROTOCOLS:
            raise InvalidSpec(f"{where}: protocol {vip.protocol!r} is not tcp or udp", obj=vip.service)
        if not _port_ok(vip.port):
            raise InvalidSpec(f"{where}: port {vip.port!r} is not between 1 and 65535", obj=vip.service)
        if len(vip.service.encode()) > nft.MAX_COMMENT_BYTES:
            raise InvalidSpec(
                f"service name {vip.service!r} is longer than {nft.MAX_COMMENT_BYTES} bytes", obj=vip.service
            )
        endpoint = f"{vip.address}:{vip.port}/{vip.protocol}"
        key = (vip.address, vip.port, vip.protocol)
        if key in seen:
            raise Conflict(
                f"VIP {endpoint} is asked for by services {seen[key]} and {vip.service}; give one of them"
                " another address or port",
                obj=endpoint,
            )
        seen[key] = vip.service
        other = bridge_of.setdefault(vip.address, (vip.bridge, vip.service))
        if other[0] != vip.bridge:
            raise Conflict(
                f"VIP {vip.address} of service {vip.service} is on bridge {vip.bridge}, but service"
                f" {other[1]} has it on bridge {other[0]}; an address lives on one network",
                obj=str(vip.address),
            )
        for target in vip.targets:
            if not isinstance(target.address, ipaddress.IPv4Address):
                raise InvalidSpec(
                    f"{where}: target {target.address} is not IPv4 like the VIP {vip.address}",
                    obj=vip.service,
                )
            if not _port_ok(target.port):
                raise InvalidSpec(
                    f"{where}: target {target.address} port {target.port!r} is not between 1 and 65535",
                    obj=vip.service,
                )
            weight = target.weight
            if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= MAX_WEIGHT:
                raise InvalidSpec(
                    f"{where}: target {target.address}:{target.port} weight {weight!r} is not between 1"
                    f" and {MAX_WEIGHT}",
                    obj=vip.service,
                )
        targets = tuple(sorted(vip.targets, key=lambda t: (t.address, t.port, t.weight)))
        out.append(replace(vip, targets=targets))
    addresses = {v.address for v in out}
    for vip in out:
        for target in vip.targets:
            if target.address in addresses:
                raise InvalidSpec(
                    f"VIP of service {vip.service}: target {target.address} is itself a VIP", obj=vip.service
                )
    out.sort(key=lambda v: (v.address, v.protocol, v.port))
    return tuple(out)


# -- the table --------------------------------------------------------------------------------------


def _match(left: dict, right: object, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, fieldname: str) -> dict:
    return {"payload": {"protocol": protocol, "field": fieldname}}


def _vip_rule(vip: Vip) -> dict:
    """The `services` rule of one VIP: dnat over its targets, or return when it has none."""
    head = [
        _match(_payload("ip", "daddr"), str(vip.address)),
        _match(_payload(vip.protocol, "dport"), vip.port),
    ]
    if not vip.targets:
        expr = [*head, {"return": None}]
    else:
        entries: list[list] = []
        low = 0
        for target in vip.targets:
            high = low + target.weight - 1
            key: object = low if low == high else {"range": [low, high]}
            entries.append([key, {"concat": [str(target.address), target.port]}])
            low = high + 1
        numgen = {"numgen": {"mode": "inc", "mod": low, "offset": 0}}
        dnat = {"dnat": {"family": "ip", "addr": {"map": {"key": numgen, "data": {"set": entries}}}}}
        expr = [*head, dnat]
    return {"add": {"rule": {**_T, "chain": SERVICES_CHAIN, "comment": vip.service, "expr": expr}}}


def _set(name: str, kind: str, elements: Iterable[str]) -> list[dict]:
    body: dict[str, Any] = {**_T, "name": name}
    batch = [{"add": {"set": {**body, "type": kind}}}, {"flush": {"set": body}}]
    elem = list(elements)
    if elem:
        batch.append({"add": {"element": {**body, "elem": elem}}})
    return batch


def table_batch(vips: Sequence[Vip], *, forwarding: Iterable[str] = ()) -> list[dict]:
    """The one nft batch that makes the table hold exactly `vips` (validated, see VipTable.apply) and
    remember `forwarding`; with no VIPs, the batch that removes the table (if there is one)."""
    table = {"family": FAMILY, "name": TABLE}
    if not vips:
        return [{"add": {"table": table}}, {"delete": {"table": table}}]
    batch: list[dict] = [{"add": {"table": table}}, {"flush": {"table": table}}]
    batch += _set(VIPS_SET, "ipv4_addr", sorted({str(v.address) for v in vips}, key=ipaddress.IPv4Address))
    batch += _set(FORWARDING_SET, "ifname", sorted(set(forwarding)))
    batch.append({"add": {"chain": {**_T, "name": SERVICES_CHAIN}}})
    for name, kind, hook, prio in BASE_CHAINS:
        chain = {**_T, "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}
        batch.append({"add": {"chain": chain}})

    def rule(chain: str, *expr: dict) -> dict:
        return {"add": {"rule": {**_T, "chain": chain, "expr": list(expr)}}}

    jump = {"jump": {"target": SERVICES_CHAIN}}
    to_vip = _match(_payload("ip", "daddr"), f"@{VIPS_SET}")
    original = _match({"ct": {"key": "direction"}}, "original")
    batch += [
        rule("prerouting", jump),
        rule("output", jump),
        rule(
            "postrouting",
            _match({"ct": {"key": "status"}}, "dnat", op="in"),
            _match({"ct": {"key": "ip daddr", "dir": "original"}}, f"@{VIPS_SET}"),
            {"masquerade": None},
        ),
        rule(
            "input",
            original,
            to_vip,
            _match({"meta": {"key": "l4proto"}}, "tcp"),
            {"reject": {"type": "tcp reset"}},
        ),
        rule(
            "input", original, to_vip, _match({"meta": {"key": "l4proto"}}, "icmp", op="!="), {"reject": None}
        ),
    ]
    batch += [_vip_rule(v) for v in vips]
    return batch


# -- reading it back --------------------------------------------------------------------------------


def _read_table() -> list[dict] | None:
    return nft.nft_list_table(family=FAMILY, name=TABLE)


def _forwarding_of(listed: list[dict] | None) -> set[str]:
    for item in listed or ():
        body = item.get("set")
        if isinstance(body, dict) and body.get("name") == FORWARDING_SET:
            return {e for e in body.get("elem", ()) if isinstance(e, str)}
    return set()


def _targets_of(dnat: object) -> tuple[VipTarget, ...] | None:
    """The targets of a dnat statement as _vip_rule makes it, or None when it is not one."""
    try:
        entries = dnat["addr"]["map"]["data"]["set"]  # type: ignore[index]
        found = []
        for key, data in entries:
            low, high = key["range"] if isinstance(key, dict) else (key, key)
            address, port = data["concat"]
            found.append(
                (int(low), VipTarget(ipaddress.IPv4Address(address), int(port), int(high) - int(low) + 1))
            )
    except (KeyError, TypeError, ValueError):
        return None
    return tuple(t for _, t in sorted(found, key=lambda x: x[0]))


def _vip_of(body: dict, bridges: dict[ipaddress.IPv4Address, str]) -> Vip | None:
    """A `services` rule back as the Vip it was made from; None for a rule of another shape."""
    expr = body.get("expr")
    if not isinstance(expr, list) or len(expr) != 3:
        return None
    try:
        first, second, last = (e.get("match", e) for e in expr)
        address = ipaddress.IPv4Address(first["right"])
        protocol = second["left"]["payload"]["protocol"]
        port = int(second["right"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if "return" in last:
        targets: tuple[VipTarget, ...] | None = ()
    else:
        targets = _targets_of(last.get("dnat"))
    if targets is None or protocol not in PROTOCOLS:
        return None
    service = body.get("comment") or ""
    return Vip(bridges.get(address, ""), service, address, port, protocol, targets)


def _local_route(buf: bytearray, start: int, end: int) -> tuple[ipaddress.IPv4Address, int] | None:
    """(address, oif) of an RTM_NEWROUTE body that is one of our local routes, else None.

    (netlink.parse.route keeps main-table routes only, for the snapshot; this reads the two fields
    a VIP route has, with the same checks.)"""
    try:
        if end - start < c.RTMSG.size:
            raise MalformedMessage(
                f"{end - start}-byte body is shorter than its rtmsg ({c.RTMSG.size} bytes)"
            )
        family, dst_len, _src, _tos, table, protocol, _scope, kind, _flags = c.RTMSG.unpack_from(buf, start)
        if family != c.AF_INET or protocol != ROUTE_PROTOCOL or kind != c.RTN_LOCAL or dst_len != 32:
            return None
        dst = oif = None
        for attr, a, b in c.attrs(buf, start + c.RTMSG.size, end):
            if attr in (c.RTA_DST, c.RTA_OIF, c.RTA_TABLE) and b - a != 4:
                raise MalformedMessage(f"route attribute {attr} has {b - a} bytes of payload, expected 4")
            if attr == c.RTA_DST:
                dst = ipaddress.IPv4Address(bytes(buf[a:b]))
            elif attr == c.RTA_OIF:
                oif = c.u32(buf, a)
            elif attr == c.RTA_TABLE:
                table = c.u32(buf, a)
        if table != c.RT_TABLE_LOCAL or dst is None or oif is None:
            return None
        return dst, oif
    except (MalformedMessage, struct.error, ValueError) as exc:
        raise MalformedMessage(f"malformed route message, {c.describe(buf, start, end)}: {exc}") from exc


def _dump_routes(sock: NetlinkSocket) -> list[tuple[ipaddress.IPv4Address, int]]:
    body = rq.local_route_dump(family=c.AF_INET, protocol=ROUTE_PROTOCOL)
    out = []
    try:
        replies = sock.dump(c.RTM_GETROUTE, body, what="local routes of service VIPs")
    except NotFound as exc:
        if exc.errno != errno.ENOENT:
            raise
        return []  # "FIB table does not exist": a namespace with no address yet has no table local
    for buf, kind, start, end in replies:
        if kind == c.RTM_NEWROUTE and (found := _local_route(buf, start, end)):
            out.append(found)
    return out


def vip_read() -> VipState:
    """What the host namespace holds: the table's VIPs, our local routes, the bridges whose forwarding
    the table turned on. Without nft (or nf_tables) the table reads as absent."""
    with objects.netns_socket(None) as sock:
        routes = []
        names: dict[int, str] = {}
        for address, index in _dump_routes(sock):
            if index not in names:
                link = objects.link_by_index(sock, index)
                names[index] = link.name if link else ""
            routes.append(VipRoute(address, names[index], index))
    try:
        listed = _read_table()
    except Unsupported:
        listed = None
    bridges = {r.address: r.bridge for r in routes}
    vips = []
    for item in listed or ():
        body = item.get("rule")
        if isinstance(body, dict) and body.get("chain") == SERVICES_CHAIN and (vip := _vip_of(body, bridges)):
            vips.append(vip)
    vips.sort(key=lambda v: (v.address, v.protocol, v.port))
    return VipState(
        table=listed is not None,
        vips=tuple(vips),
        routes=tuple(sorted(routes, key=lambda r: r.address)),
        forwarding=tuple(sorted(_forwarding_of(listed))),
    )


# -- forwarding -------------------------------------------------------------------------------------


def _forwarding_path(bridge: str) -> str:
    return f"/proc/sys/net/ipv4/conf/{bridge}/forwarding"


def _sysctl(bridge: str) -> str:
    return f"net.ipv4.conf.{bridge}.forwarding"


def _read_forwarding(bridge: str) -> int | None:
    """IPv4 forwarding of `bridge` in the host namespace (/proc/sys/net follows the thread); None
    when the link is gone."""
    try:
        with open(_forwarding_path(bridge)) as handle:
            return int(handle.read().strip() or 0)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise from_oserror(exc, obj=_sysctl(bridge), action="read") from None


def _write_forwarding(bridge: str, value: int, *, missing_ok: bool = False) -> None:
    try:
        with open(_forwarding_path(bridge), "w") as handle:
            handle.write(f"{value}\n")
    except FileNotFoundError:
        if not missing_ok:
            raise NotFound(f"set {_sysctl(bridge)}: bridge {bridge} does not exist", obj=bridge) from None
    except OSError as exc:
        raise from_oserror(exc, obj=_sysctl(bridge), action="set") from None


# -- the owner --------------------------------------------------------------------------------------


@dataclass
class _Step:
    """What one apply changed so far, to undo if a later part fails."""

    forwarding_on: list[str] = field(default_factory=list)
    routes_added: list[Request] = field(default_factory=list)  # their delete requests
    routes_removed: list[Request] = field(default_factory=list)  # their add requests


class VipTable:
    """The host's service VIPs: one per agent, used from one thread at a time (a lock guards it).

    `apply` makes the host hold exactly the given VIPs; it does nothing at all when they equal what
    it applied last (a health report that changes no VIP costs a comparison), and sends the nft batch
    only when the table must change. `clear` removes everything it made.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[Vip, ...] | None = None  # what the host holds, as this object last made it
        self._input: tuple[Vip, ...] | None = None  # the argument that made it (skips validating it again)
        self._batch: list[dict] | None = None  # the last nft batch the kernel committed
        self._forwarding: set[str] | None = None  # bridges we turned forwarding on; None: not read yet
        #: How many applies changed the kernel (route, sysctl or nft batch).
        self.changes = 0

    def apply(self, vips: Sequence[Vip], *, force: bool = False) -> None:
        """Make the host hold exactly `vips`, all at once (one nft transaction).

        Validated before anything changes: an IPv6 VIP is Unsupported; a bad port, weight or target,
        InvalidSpec; one VIP asked twice or on two bridges, Conflict; a bridge that does not exist,
        NotFound naming it and the service; a VIP that is already an address of the host,
        AlreadyExists. A failure half-way undoes this call's routes and sysctls (the nft batch is
        all or nothing). `force` reads the kernel again instead of trusting what was applied last
        (after a bridge was re-made, say).
        """
        given = tuple(vips)
        with self._lock:
            if force:
                self._forget()
            if given == self._input:
                return
        wanted = _normalize(given)
        with self._lock:
            if wanted != self._last:
                self._last = self._input = None  # unknown until this one succeeds
                self._converge(wanted)
                self._last = wanted
            self._input = given

    def clear(self) -> None:
        """Remove the table, our local routes, and the forwarding we turned on (read from the kernel,
        so it also cleans up after an earlier agent)."""
        with self._lock:
            self._forget()
            self._converge(())
            self._last = self._input = ()

    def _forget(self) -> None:
        self._last = self._input = self._batch = self._forwarding = None

    def _converge(self, wanted: tuple[Vip, ...]) -> None:
        with objects.netns_socket(None) as sock:
            indexes = self._bridges(sock, wanted)
            if self._forwarding is None:
                self._forwarding = self._owned_forwarding(needed=bool(wanted))
            want = {v.address: (v.bridge, indexes[v.bridge]) for v in wanted}
            service = {v.address: v.service for v in reversed(wanted)}
            bridges = {v.bridge for v in wanted}
            have = _dump_routes(sock)
            keep = {(a, i) for a, (_, i) in want.items()}
            stale = [(a, i) for a, i in have if (a, i) not in keep]
            moved = [(a, i) for a, i in stale if a in want]  # to another bridge: the old route goes first
            gone = [(a, i) for a, i in stale if a not in want]
            present = set(have)
            missing = [(a, b, i) for a, (b, i) in want.items() if (a, i) not in present]
            step = _Step()
            sent = False
            try:
                for bridge in sorted(bridges):
                    if _read_forwarding(bridge) == 0:
                        _write_forwarding(bridge, 1)
                        step.forwarding_on.append(bridge)
                owned = (self._forwarding | set(step.forwarding_on)) & bridges
                if moved:
                    sock.run([self._route_delete(a, i) for a, i in moved])
                    step.routes_removed += [self._route_add(a, i, "") for a, i in moved]
                results = sock.send([self._route_add(a, i, b) for a, b, i in missing])
                step.routes_added += [
                    self._route_delete(a, i)
                    for (a, _, i), r in zip(missing, results, strict=True)
                    if r is None
                ]
                self._raise_first(results, missing, service)
                batch = table_batch(wanted, forwarding=owned)
                if batch != self._batch:
                    self._batch = None  # unknown if nft fails half-way through running
                    sent = self._send_batch(batch, needed=bool(wanted))
                    self._batch = batch
            except BaseException:
                self._undo(sock, step)
                raise
            if gone:
                sock.run([self._route_delete(a, i) for a, i in gone])
            off = sorted(self._forwarding - bridges)
            for bridge in off:
                _write_forwarding(bridge, 0, missing_ok=True)
                self._forwarding.discard(bridge)
            self._forwarding = owned
            if sent or step.forwarding_on or moved or missing or gone or off:
                self.changes += 1

    @staticmethod
    def _bridges(sock: NetlinkSocket, wanted: tuple[Vip, ...]) -> dict[str, int]:
        indexes: dict[str, int] = {}
        for vip in wanted:
            if vip.bridge in indexes:
                continue
            link = objects.link_lookup(sock, vip.bridge)
            if link is None:
                raise NotFound(
                    f"bridge {vip.bridge} of service {vip.service} (VIP {vip.address}) does not exist in the"
                    " host namespace; create the network's bridge first",
                    obj=vip.bridge,
                )
            indexes[vip.bridge] = link.index
        return indexes

    @staticmethod
    def _send_batch(batch: list[dict], *, needed: bool) -> bool:
        """Send the batch; without nftables, removing the table is nothing to do (there can be none)."""
        try:
            nft.nft_apply(batch=batch, obj=_OBJ)
        except Unsupported as exc:
            if needed:
                raise Unsupported(
                    f"service VIPs need nftables: {exc}", obj=exc.obj, errno=exc.errno
                ) from None
            return False
        return True

    @staticmethod
    def _owned_forwarding(*, needed: bool) -> set[str]:
        """The bridges an earlier apply turned forwarding on for, as the table remembers them."""
        try:
            return _forwarding_of(_read_table())
        except Unsupported as exc:
            if needed:
                raise Unsupported(
                    f"service VIPs need nftables: {exc}", obj=exc.obj, errno=exc.errno
                ) from None
            return set()  # no nftables: no table of ours to read or remove

    @staticmethod
    def _route_add(address: IPAddress, index: int, bridge: str) -> Request:
        name = bridge or f"link {index}"
        return rq.local_route_add(address=address, index=index, ifname=name, protocol=ROUTE_PROTOCOL)

    @staticmethod
    def _route_delete(address: IPAddress, index: int) -> Request:
        return rq.local_route_delete(
            address=address, index=index, ifname=f"link {index}", protocol=ROUTE_PROTOCOL, missing_ok=True
        )

    @staticmethod
    def _raise_first(
        results: list[NetcoreError | None],
        missing: list[tuple[IPAddress, str, int]],
        service: dict[IPAddress, str],
    ) -> None:
        for (address, bridge, _), error in zip(missing, results, strict=True):
            if error is None:
                continue
            if error.errno == errno.EEXIST:
                raise AlreadyExists(
                    f"VIP {address} of service {service[address]}: the host already has {address} as a local"
                    f" address (a route in table local that is not ours, on {bridge} or another link);"
                    " give the service an address nobody uses",
                    obj=str(address),
                    errno=error.errno,
                )
            raise error

    def _undo(self, sock: NetlinkSocket, step: _Step) -> None:
        """Best effort: the failure that got us here is what the caller must see."""
        try:
            sock.send(step.routes_added)
            sock.send(step.routes_removed)
        except (OSError, NetcoreError):
            pass
        for bridge in step.forwarding_on:
            with contextlib.suppress(NetcoreError):
                _write_forwarding(bridge, 0, missing_ok=True)
