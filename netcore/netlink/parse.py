"""Turn rtnetlink messages into netcore's dataclasses, reading only the attributes we use.

Each parser takes the namespace name, the receive buffer and the message bounds, and
returns a plain record; `build_*` functions then resolve interface indexes to names.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from netcore.model import Address, FdbEntry, Link, LinkRef, Neighbour, Route, VxlanInfo
from netcore.netlink import codec as c

PROTOCOLS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp", 186: "bgp"}
SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

_ifinfo = c.IFINFOMSG.unpack_from
_ifaddr = c.IFADDRMSG.unpack_from
_rtmsg = c.RTMSG.unpack_from
_ndmsg = c.NDMSG.unpack_from
_attrs = c.attrs
_nla = c.NLA.unpack_from
_LINK_ATTRS = frozenset(
    (
        c.IFLA_IFNAME,
        c.IFLA_MTU,
        c.IFLA_ADDRESS,
        c.IFLA_OPERSTATE,
        c.IFLA_MASTER,
        c.IFLA_LINK,
        c.IFLA_LINK_NETNSID,
        c.IFLA_IFALIAS,
        c.IFLA_GROUP,
        c.IFLA_LINKINFO,
    )
)
_u32 = c.u32


def _ip(family: int, buf: bytearray, start: int, end: int) -> str:
    return socket.inet_ntop(family, bytes(buf[start:end]))


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
        )


def link(buf: bytearray, start: int, end: int) -> RawLink:
    """Parse an RTM_NEWLINK/RTM_DELLINK body."""
    _family, _type, index, flags, _change = _ifinfo(buf, start)
    name = ""
    kind = mac = alias = vxlan = None
    mtu = group = 0
    state = "unknown"
    master = link_index = netnsid = None
    pos = start + 16
    while pos + 4 <= end:
        length, kind_ = _nla(buf, pos)
        if length < 4:
            break
        a, b = pos + 4, pos + length
        pos += (length + 3) & ~3
        kind_ &= 0x3FFF
        if kind_ not in _LINK_ATTRS:
            continue
        if kind_ == c.IFLA_IFNAME:
            name = c.cstr(buf, a, b)
        elif kind_ == c.IFLA_MTU:
            mtu = _u32(buf, a)
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
            kind, vxlan = _linkinfo(buf, a, b)
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
    )


def _linkinfo(buf: bytearray, start: int, end: int) -> tuple[str | None, VxlanInfo | None]:
    kind = None
    data = None
    for kind_, a, b in _attrs(buf, start, end):
        if kind_ == c.IFLA_INFO_KIND:
            kind = c.cstr(buf, a, b)
        elif kind_ == c.IFLA_INFO_DATA:
            data = (a, b)
    if kind == "vxlan" and data:
        return kind, _vxlan(buf, *data)
    return kind, None


def _vxlan(buf: bytearray, start: int, end: int) -> VxlanInfo:
    vni = dstport = 0
    local = group = None
    learning = True
    underlay = None
    for kind, a, b in _attrs(buf, start, end):
        if kind == c.IFLA_VXLAN_ID:
            vni = _u32(buf, a)
        elif kind in (c.IFLA_VXLAN_GROUP, c.IFLA_VXLAN_GROUP6):
            group = _ip(socket.AF_INET if kind == c.IFLA_VXLAN_GROUP else socket.AF_INET6, buf, a, b)
        elif kind in (c.IFLA_VXLAN_LOCAL, c.IFLA_VXLAN_LOCAL6):
            local = _ip(socket.AF_INET if kind == c.IFLA_VXLAN_LOCAL else socket.AF_INET6, buf, a, b)
        elif kind == c.IFLA_VXLAN_PORT:
            dstport = c.be16(buf, a)
        elif kind == c.IFLA_VXLAN_LEARNING:
            learning = bool(buf[a])
        elif kind == c.IFLA_VXLAN_LINK:
            underlay = _u32(buf, a) or None
    remote = None
    if group and not _is_multicast(group):
        group, remote = None, group
    return VxlanInfo(vni, local, group, remote, dstport, learning, underlay)


def _is_multicast(ip: str) -> bool:
    if ":" in ip:
        return ip.lower().startswith("ff")
    return 224 <= int(ip.split(".", 1)[0]) <= 239


def address(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Address:
    """Parse an RTM_NEWADDR/RTM_DELADDR body."""
    family, prefixlen, _flags, scope, index = _ifaddr(buf, start)
    addr = local = None
    for kind, a, b in _attrs(buf, start + 8, end):
        if kind == c.IFA_LOCAL:
            local = (a, b)
        elif kind == c.IFA_ADDRESS:
            addr = (a, b)
    where = local or addr
    text = _ip(family, buf, *where) if where else ""
    return Address(netns, index, names.get(index), family, text, prefixlen, SCOPES.get(scope, str(scope)))


def route(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Route | None:
    """Parse an RTM_NEWROUTE/RTM_DELROUTE body; None for anything outside the main table."""
    family, dst_len, _src_len, _tos, table, protocol, scope, _type, flags = _rtmsg(buf, start)
    dst = gateway = prefsrc = None
    oif = metric = None
    for kind, a, b in _attrs(buf, start + 12, end):
        if kind == c.RTA_DST:
            dst = _ip(family, buf, a, b)
        elif kind == c.RTA_GATEWAY:
            gateway = _ip(family, buf, a, b)
        elif kind == c.RTA_OIF:
            oif = _u32(buf, a)
        elif kind == c.RTA_PRIORITY:
            metric = _u32(buf, a)
        elif kind == c.RTA_PREFSRC:
            prefsrc = _ip(family, buf, a, b)
        elif kind == c.RTA_TABLE:
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


def neighbour(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> Neighbour | None:
    """Parse an RTM_NEWNEIGH body for the IPv4/IPv6 neighbour tables."""
    family, index, state, _flags, _type = _ndmsg(buf, start)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    dst = lladdr = None
    for kind, a, b in _attrs(buf, start + 12, end):
        if kind == c.NDA_DST:
            dst = _ip(family, buf, a, b)
        elif kind == c.NDA_LLADDR:
            lladdr = c.mac(buf, a, b)
    if dst is None:
        return None
    return Neighbour(netns, index, names.get(index), dst, lladdr, _nud(state))


def fdb(netns: str, names: dict[int, str], buf: bytearray, start: int, end: int) -> FdbEntry | None:
    """Parse an AF_BRIDGE RTM_NEWNEIGH body (bridge or VXLAN forwarding entry)."""
    family, index, state, flags, _type = _ndmsg(buf, start)
    if family != c.AF_BRIDGE:
        return None
    lladdr = dst = None
    vlan = vni = master = None
    for kind, a, b in _attrs(buf, start + 12, end):
        if kind == c.NDA_LLADDR:
            lladdr = c.mac(buf, a, b)
        elif kind == c.NDA_DST:
            dst = _ip(socket.AF_INET if b - a == 4 else socket.AF_INET6, buf, a, b)
        elif kind == c.NDA_VLAN:
            vlan = c.u16(buf, a)
        elif kind == c.NDA_VNI:
            vni = _u32(buf, a)
        elif kind == c.NDA_MASTER:
            master = _u32(buf, a)
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


def _nud(state: int) -> str:
    return c.NUD_STATES.get(state) or "|".join(v for k, v in c.NUD_STATES.items() if k and state & k)
