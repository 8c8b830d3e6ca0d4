"""Turn rtnetlink messages into netcore's dataclasses, reading only the attributes we use.

Each parser takes the namespace name, the receive buffer and the message bounds, and
returns a plain record; `build_*` functions then resolve interface indexes to names.
A parser reads nothing outside its message: every header, attribute and field size is
checked against the bounds, and any bad input raises MalformedMessage naming the message.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from netcore.errors import MalformedMessage
from netcore.model import Address, FdbEntry, Link, LinkRef, Neighbour, Route, Shaping, VxlanInfo
from netcore.netlink import codec as c

PROTOCOLS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp", 186: "bgp"}
SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

_ifinfo = c.IFINFOMSG.unpack_from
_ifaddr = c.IFADDRMSG.unpack_from
_rtmsg = c.RTMSG.unpack_from
_ndmsg = c.NDMSG.unpack_from
_attrs = c.attrs
_nla = c.NLA.unpack_from
_u32 = c.u32
_ntop = socket.inet_ntop
# the attributes link() reads, each with the payload size it must have (0: any)
_LINK_ATTRS = {
    c.IFLA_IFNAME: 0,
    c.IFLA_MTU: 4,
    c.IFLA_QDISC: 0,
    c.IFLA_ADDRESS: 0,
    c.IFLA_OPERSTATE: 1,
    c.IFLA_MASTER: 4,
    c.IFLA_LINK: 4,
    c.IFLA_LINK_NETNSID: 4,
    c.IFLA_IFALIAS: 0,
    c.IFLA_GROUP: 4,
    c.IFLA_LINKINFO: 0,
}
# the same with any of the two flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER), so that the
# attributes link() skips are skipped without masking their type first
_LINK_TYPES = frozenset(kind | flags for kind in _LINK_ATTRS for flags in (0, 0x4000, 0x8000, 0xC000))
_SIZED_NAMES = {
    c.IFLA_MTU: "IFLA_MTU",
    c.IFLA_OPERSTATE: "IFLA_OPERSTATE",
    c.IFLA_MASTER: "IFLA_MASTER",
    c.IFLA_LINK: "IFLA_LINK",
    c.IFLA_LINK_NETNSID: "IFLA_LINK_NETNSID",
    c.IFLA_GROUP: "IFLA_GROUP",
}
_IP_SIZES: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
# what a malformed message may raise on the way; the parsers turn each into MalformedMessage
_PARSE_ERRORS = (MalformedMessage, struct.error, ValueError, IndexError, OSError, UnicodeError)


def _malformed(what: str, buf: bytearray, start: int, end: int, exc: Exception) -> MalformedMessage:
    """The one error a parser raises for bad input: it names the message and what was wrong.

    Each parser wraps its whole body in one try (free in CPython 3.11 when nothing is raised)
    rather than a decorator, whose extra call would cost the snapshot's hot path.
    """
    return MalformedMessage(f"malformed {what} message, {c.describe(buf, start, end)}: {exc}")


def _wrong_size(name: str, a: int, b: int, size: int) -> MalformedMessage:
    return MalformedMessage(f"{name} has {b - a} bytes of payload, expected {size}")


def _too_short(name: str, start: int, end: int, size: int) -> MalformedMessage:
    return MalformedMessage(f"{end - start}-byte body is shorter than its {name} ({size} bytes)")


def _ip(family: int, buf: bytearray, a: int, b: int, name: str) -> str:
    size = _IP_SIZES.get(family, -1)
    if b - a != size:
        raise _wrong_size(name, a, b, size)
    return _ntop(family, bytes(buf[a:b]))


def _u32_of(name: str, buf: bytearray, a: int, b: int) -> int:
    if b - a != 4:
        raise _wrong_size(name, a, b, 4)
    return _u32(buf, a)


@dataclass(slots=True)
class RawLink:
    """A link before master and peer are resolved to names."""

    index: int
    name: str
    kind: str | None
    mtu: int
    mac: str | None
    up: bool
    state: str
    master: int | None
    alias: str | None
    link: int | None
    link_netnsid: int | None
    vxlan: VxlanInfo | None
    group: int = 0
    vxlan_proxy: bool = False  # IFLA_VXLAN_PROXY, which VxlanInfo (the snapshot's schema) does not carry
    qdisc: str | None = None  # IFLA_QDISC: the root qdisc's kind ("noop" while the link is down)
    shaping: Shaping | None = None  # the root qdisc's settings, from RTM_NEWQDISC (see qdisc())

    def shaped(self) -> bool:
        """Whether the root qdisc is one a user set: its settings are read with RTM_GETQDISC."""
        return self.qdisc is not None and self.qdisc not in DEFAULT_QDISCS

    def to_link(self, *, netns: str, master: str | None, peer: LinkRef | None) -> Link:
        """The public record, once the master's name and the peer are known."""
        return Link(
            netns,
            self.index,
            self.name,
            self.kind,
            self.mtu,
            self.mac,
            self.up,
            self.state,
            master,
            self.alias,
            peer,
            self.vxlan,
            self.shaping,
        )


def link(buf: bytearray, start: int, end: int) -> RawLink:
    """Parse an RTM_NEWLINK/RTM_DELLINK body (the kernel always sends IFLA_IFNAME and IFLA_MTU)."""
    try:
        if end - start < 16:
            raise _too_short("ifinfomsg", start, end, 16)
        _family, _type, index, flags, _change = _ifinfo(buf, start)
        name = mtu = kind = mac = alias = vxlan = qdisc = None
        group = 0
        proxy = False
        state = "unknown"
        master = link_index = netnsid = None
        pos = start + 16
        nla, wanted = _nla, _LINK_TYPES
        while pos < end:
            length, kind_ = nla(buf, pos)
            if length < 4 or pos + length > end:
                raise MalformedMessage(
                    f"attribute {kind_ & 0x3FFF} at offset {pos} has length {length}, {end - pos} bytes left"
                )
            if kind_ not in wanted:  # most of them: keep this path short
                pos += (length + 3) & ~3
                continue
            kind_ &= 0x3FFF
            a, b = pos + 4, pos + length
            pos += (length + 3) & ~3
            size = _LINK_ATTRS[kind_]
            if size and b - a != size:
                raise _wrong_size(_SIZED_NAMES[kind_], a, b, size)
            if kind_ == c.IFLA_IFNAME:
                name = c.cstr(buf, a, b)
            elif kind_ == c.IFLA_MTU:
                mtu = _u32(buf, a)
            elif kind_ == c.IFLA_QDISC:
                qdisc = c.cstr(buf, a, b)
            elif kind_ == c.IFLA_ADDRESS:
                mac = c.mac(buf, a, b)
            elif kind_ == c.IFLA_OPERSTATE:
                code = buf[a]
                state = c.OPERSTATES[code] if code < len(c.OPERSTATES) else str(code)
            elif kind_ == c.IFLA_MASTER:
                master = _u32(buf, a)
            elif kind_ == c.IFLA_LINK:
                link_index = _u32(buf, a)
            elif kind_ == c.IFLA_LINK_NETNSID:
                netnsid = c.i32(buf, a)
            elif kind_ == c.IFLA_IFALIAS:
                alias = c.cstr(buf, a, b) or None
            elif kind_ == c.IFLA_GROUP:
                group = _u32(buf, a)
            elif kind_ == c.IFLA_LINKINFO:
                kind, vxlan, proxy = _linkinfo(buf, a, b)
        if name is None or mtu is None:
            raise MalformedMessage(f"no {'IFLA_IFNAME' if name is None else 'IFLA_MTU'} attribute")
        if link_index == index and netnsid is None:
            link_index = None
        return RawLink(
            index,
            name,
            kind,
            mtu,
            mac,
            bool(flags & c.IFF_UP),
            state,
            master,
            alias,
            link_index,
            netnsid,
            vxlan,
            group,
            proxy,
            qdisc,
        )
    except _PARSE_ERRORS as exc:
        raise _malformed("link", buf, start, end, exc) from exc


#: root qdiscs the kernel attaches by itself (or a down link's placeholder): no shaping to show
DEFAULT_QDISCS = frozenset({"noqueue", "noop", "pfifo_fast", "mq", "fq_codel", "fq"})


@dataclass(slots=True)
class RawQdisc:
    """A root qdisc (RTM_NEWQDISC/RTM_DELQDISC): its link, and its settings unless a default."""

    ifindex: int
    kind: str
    shaping: Shaping | None


def qdisc(buf: bytearray, start: int, end: int) -> RawQdisc | None:
    """Parse an RTM_NEWQDISC/RTM_DELQDISC body; None for a qdisc that is not a link's root."""
    try:
        if end - start < c.TCMSG.size:
            raise _too_short("tcmsg", start, end, c.TCMSG.size)
        _family, ifindex, _handle, parent, _info = c.TCMSG.unpack_from(buf, start)
        if parent != c.TC_H_ROOT:
            return None
        kind, options = "", None
        for kind_, a, b in _attrs(buf, start + c.TCMSG.size, end):
            if kind_ == c.TCA_KIND:
                kind = c.cstr(buf, a, b)
            elif kind_ == c.TCA_OPTIONS:
                options = (a, b)
        if not kind:
            raise MalformedMessage("no TCA_KIND attribute")
        if kind in DEFAULT_QDISCS:
            return RawQdisc(ifindex, kind, None)
        if kind == "tbf" and options:
            return RawQdisc(ifindex, kind, _tbf(buf, *options))
        if kind == "netem" and options:
            return RawQdisc(ifindex, kind, _netem(buf, *options))
        return RawQdisc(ifindex, kind, Shaping(kind))
    except _PARSE_ERRORS as exc:
        raise _malformed("qdisc", buf, start, end, exc) from exc


def _tbf(buf: bytearray, start: int, end: int) -> Shaping:
    qopt = rate64 = None
    for kind, a, b in _attrs(buf, start, end):
        if kind == c.TCA_TBF_PARMS:
            if b - a != c.TC_TBF_QOPT.size:
                raise _wrong_size("TCA_TBF_PARMS", a, b, c.TC_TBF_QOPT.size)
            qopt = c.TC_TBF_QOPT.unpack_from(buf, a)
        elif kind == c.TCA_TBF_RATE64:
            if b - a != 8:
                raise _wrong_size("TCA_TBF_RATE64", a, b, 8)
            rate64 = c.u64(buf, a)
    if qopt is None:
        raise MalformedMessage("tbf qdisc without TCA_TBF_PARMS")
    rate = rate64 or qopt[5]  # bytes per second
    limit, buffer_ticks = qopt[12], qopt[13]
    burst = round(rate * (buffer_ticks << c.PSCHED_SHIFT) / 1e9)
    return Shaping("tbf", rate=rate * 8, burst=burst, limit=limit)


def _netem(buf: bytearray, start: int, end: int) -> Shaping:
    """netem's options are its struct, then attributes (nla_parse_nested_compat)."""
    if end - start < c.TC_NETEM_QOPT.size:
        raise _too_short("tc_netem_qopt", start, end, c.TC_NETEM_QOPT.size)
    latency, limit, loss, _gap, _duplicate, jitter = c.TC_NETEM_QOPT.unpack_from(buf, start)
    delay_ns, jitter_ns = latency << c.PSCHED_SHIFT, jitter << c.PSCHED_SHIFT
    rate = None
    for kind, a, b in _attrs(buf, start + c.align(c.TC_NETEM_QOPT.size), end):
        if kind in (c.TCA_NETEM_LATENCY64, c.TCA_NETEM_JITTER64, c.TCA_NETEM_RATE64):
            if b - a != 8:
                raise _wrong_size("TCA_NETEM_*64", a, b, 8)
            value = c.u64(buf, a)
            if kind == c.TCA_NETEM_LATENCY64:
                delay_ns = value
            elif kind == c.TCA_NETEM_JITTER64:
                jitter_ns = value
            else:
                rate = value
        elif kind == c.TCA_NETEM_RATE and rate is None:
            if b - a != c.TC_NETEM_RATE.size:
                raise _wrong_size("TCA_NETEM_RATE", a, b, c.TC_NETEM_RATE.size)
            rate = c.TC_NETEM_RATE.unpack_from(buf, a)[0] or None
    return Shaping(
        "netem",
        rate=rate * 8 if rate else None,
        limit=limit,
        delay_us=delay_ns // 1000,
        jitter_us=jitter_ns // 1000,
        loss_ppm=round(loss * 1_000_000 / 0xFFFFFFFF),
    )


def _linkinfo(buf: bytearray, start: int, end: int) -> tuple[str | None, VxlanInfo | None, bool]:
    kind = None
    data = None
    for kind_, a, b in _attrs(buf, start, end):
        if kind_ == c.IFLA_INFO_KIND:
            kind = c.cstr(buf, a, b)
        elif kind_ == c.IFLA_INFO_DATA:
            data = (a, b)
    if kind == "vxlan" and data:
        return (kind, *_vxlan(buf, *data))
    return kind, None, False


def _vxlan(buf: bytearray, start: int, end: int) -> tuple[VxlanInfo, bool]:
    """The VXLAN settings, and the proxy flag (kept apart: the snapshot's VxlanInfo has no field for it)."""
    vni = dstport = 0
    local = group = None
    learning = True
    proxy = False
    underlay = None
    for kind, a, b in _attrs(buf, start, end):
        if kind == c.IFLA_VXLAN_ID:
            vni = _u32_of("IFLA_VXLAN_ID", buf, a, b)
        elif kind == c.IFLA_VXLAN_GROUP:
            group = _ip(socket.AF_INET, buf, a, b, "IFLA_VXLAN_GROUP")
        elif kind == c.IFLA_VXLAN_GROUP6:
            group = _ip(socket.AF_INET6, buf, a, b, "IFLA_VXLAN_GROUP6")
        elif kind == c.IFLA_VXLAN_LOCAL:
            local = _ip(socket.AF_INET, buf, a, b, "IFLA_VXLAN_LOCAL")
        elif kind == c.IFLA_VXLAN_LOCAL6:
            local = _ip(socket.AF_INET6, buf, a, b, "IFLA_VXLAN_LOCAL6")
        elif kind == c.IFLA_VXLAN_PORT:
            if b - a != 2:
                raise _wrong_size("IFLA_VXLAN_PORT", a, b, 2)
            dstport = c.be16(buf, a)
        elif kind == c.IFLA_VXLAN_LEARNING:
            if b - a != 1:
                raise _wrong_size("IFLA_VXLAN_LEARNING", a, b, 1)
            learning = bool(buf[a])
        elif kind == c.IFLA_VXLAN_PROXY:
            if b - a != 1:
                raise _wrong_size("IFLA_VXLAN_PROXY", a, b, 1)
            proxy = bool(buf[a])
        elif kind == c.IFLA_VXLAN_LINK:
            underlay = _u32_of("IFLA_VXLAN_LINK", buf, a, b) or None
    remote = None
    if group and not _is_multicast(group):
        group, remote = None, group
    return VxlanInfo(vni, local, group, remote, dstport, learning, underlay), proxy


def _is_multicast(ip: str) -> bool:
    if ":" in ip:
        return ip.lower().startswith("ff")
    return 224 <= int(ip.split(".", 1)[0]) <= 239


def address(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Address | None:
    """Parse an RTM_NEWADDR/RTM_DELADDR body; None for families other than IPv4 and IPv6."""
    try:
        if end - start < 8:
            raise _too_short("ifaddrmsg", start, end, 8)
        family, prefixlen, _flags, scope, index = _ifaddr(buf, start)
        size = _IP_SIZES.get(family)
        if size is None:
            return None
        addr = local = None
        for kind, a, b in _attrs(buf, start + 8, end):
            if kind == c.IFA_LOCAL:
                if b - a != size:
                    raise _wrong_size("IFA_LOCAL", a, b, size)
                local = (a, b)
            elif kind == c.IFA_ADDRESS:
                if b - a != size:
                    raise _wrong_size("IFA_ADDRESS", a, b, size)
                addr = (a, b)
        where = local or addr
        text = _ntop(family, bytes(buf[where[0] : where[1]])) if where else ""
        return Address(netns, index, names.get(index), family, text, prefixlen, SCOPES.get(scope, str(scope)))
    except _PARSE_ERRORS as exc:
        raise _malformed("address", buf, start, end, exc) from exc


def route(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Route | None:
    """Parse an RTM_NEWROUTE/RTM_DELROUTE body; None for anything outside the main table or
    outside IPv4 and IPv6."""
    try:
        if end - start < 12:
            raise _too_short("rtmsg", start, end, 12)
        family, dst_len, _src_len, _tos, table, protocol, scope, _type, flags = _rtmsg(buf, start)
        size = _IP_SIZES.get(family)
        if size is None:
            return None
        dst = gateway = prefsrc = None
        oif = metric = None
        for kind, a, b in _attrs(buf, start + 12, end):
            if kind == c.RTA_DST:
                if b - a != size:
                    raise _wrong_size("RTA_DST", a, b, size)
                dst = _ntop(family, bytes(buf[a:b]))
            elif kind == c.RTA_GATEWAY:
                if b - a != size:
                    raise _wrong_size("RTA_GATEWAY", a, b, size)
                gateway = _ntop(family, bytes(buf[a:b]))
            elif kind == c.RTA_OIF:
                if b - a != 4:
                    raise _wrong_size("RTA_OIF", a, b, 4)
                oif = _u32(buf, a)
            elif kind == c.RTA_PRIORITY:
                if b - a != 4:
                    raise _wrong_size("RTA_PRIORITY", a, b, 4)
                metric = _u32(buf, a)
            elif kind == c.RTA_PREFSRC:
                if b - a != size:
                    raise _wrong_size("RTA_PREFSRC", a, b, size)
                prefsrc = _ntop(family, bytes(buf[a:b]))
            elif kind == c.RTA_TABLE:
                if b - a != 4:
                    raise _wrong_size("RTA_TABLE", a, b, 4)
                table = _u32(buf, a)
        if table != c.RT_TABLE_MAIN:
            return None
        text = f"{dst}/{dst_len}" if dst is not None else "default"
        return Route(
            netns,
            family,
            text,
            gateway,
            names.get(oif) if oif else None,
            oif,
            PROTOCOLS.get(protocol, str(protocol)),
            SCOPES.get(scope, str(scope)),
            metric,
            prefsrc,
            bool(flags & c.RTNH_F_ONLINK),
        )
    except _PARSE_ERRORS as exc:
        raise _malformed("route", buf, start, end, exc) from exc


def neighbour(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Neighbour | None:
    """Parse an RTM_NEWNEIGH body for the IPv4/IPv6 neighbour tables."""
    try:
        if end - start < 12:
            raise _too_short("ndmsg", start, end, 12)
        family, index, state, _flags, _type = _ndmsg(buf, start)
        size = _IP_SIZES.get(family)
        if size is None:
            return None
        dst = lladdr = None
        for kind, a, b in _attrs(buf, start + 12, end):
            if kind == c.NDA_DST:
                if b - a != size:
                    raise _wrong_size("NDA_DST", a, b, size)
                dst = _ntop(family, bytes(buf[a:b]))
            elif kind == c.NDA_LLADDR:
                lladdr = c.mac(buf, a, b)
        if dst is None:
            return None
        return Neighbour(netns, index, names.get(index), dst, lladdr, _nud(state))
    except _PARSE_ERRORS as exc:
        raise _malformed("neighbour", buf, start, end, exc) from exc


def fdb(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> FdbEntry | None:
    """Parse an AF_BRIDGE RTM_NEWNEIGH body (bridge or VXLAN forwarding entry)."""
    try:
        if end - start < 12:
            raise _too_short("ndmsg", start, end, 12)
        family, index, state, flags, _type = _ndmsg(buf, start)
        if family != c.AF_BRIDGE:
            return None
        lladdr = dst = None
        vlan = vni = master = None
        for kind, a, b in _attrs(buf, start + 12, end):
            if kind == c.NDA_LLADDR:
                lladdr = c.mac(buf, a, b)
            elif kind == c.NDA_DST:
                dst = _ip(socket.AF_INET if b - a == 4 else socket.AF_INET6, buf, a, b, "NDA_DST")
            elif kind == c.NDA_VLAN:
                if b - a != 2:
                    raise _wrong_size("NDA_VLAN", a, b, 2)
                vlan = c.u16(buf, a)
            elif kind == c.NDA_VNI:
                vni = _u32_of("NDA_VNI", buf, a, b)
            elif kind == c.NDA_MASTER:
                master = _u32_of("NDA_MASTER", buf, a, b)
        if lladdr is None:
            return None
        return FdbEntry(
            netns,
            index,
            names.get(index),
            names.get(master) if master else None,
            lladdr,
            dst,
            vlan,
            vni,
            _nud(state),
            bool(flags & c.NTF_SELF),
        )
    except _PARSE_ERRORS as exc:
        raise _malformed("fdb", buf, start, end, exc) from exc


def _nud(state: int) -> str:
    return c.NUD_STATES.get(state) or "|".join(v for k, v in c.NUD_STATES.items() if k and state & k)
