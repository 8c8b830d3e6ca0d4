"""Conntrack tables through ctnetlink (NETLINK_NETFILTER), on netcore's own codec.

A dump of a namespace's conntrack table is one request (IPCTNL_MSG_CT_GET with NLM_F_DUMP) read by
NetlinkSocket.dump, with its duties: every length checked, NLMSG_DONE's errno read, interrupted
dumps read again. Each reply is decoded here, reading only what traffic edges need: both tuples
(addresses, protocol, ports), the TCP state, the status bits and the packet and byte counters
(present when `net.netfilter.nf_conntrack_acct` was 1 when the entry was made).

Hand-decoded rather than through pyroute2's NFCTSocket, because pyroute2 spent ~0.1 ms an entry
(0.72-0.93 s for ~8,400 entries, measured on kernel 6.18), and a host's table of 10,000 flows must
turn into traffic edges within 200 ms (bench figure P14). Attribute types arrive with NLA_F_NESTED
set; codec.attrs masks it. Anything malformed raises MalformedMessage naming the message.
"""

from __future__ import annotations

import errno as _errno
import struct
from typing import NamedTuple

from netcore.errors import MalformedMessage, NetcoreError, Unsupported
from netcore.netlink import codec as c
from netcore.netlink.parse import _PARSE_ERRORS, _malformed, _too_short, _wrong_size
from netcore.netlink.socket import NetlinkSocket

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
CT_NEW = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
CT_GET = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
NFGENMSG = struct.Struct("=BBH")  # family, version (NFNETLINK_V0), res_id (big-endian, 0)

CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID = 4
CTA_PROTO_ICMPV6_ID = 7
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2  # u64, big-endian
CTA_COUNTERS32_PACKETS, CTA_COUNTERS32_BYTES = 3, 4  # u32, big-endian (old kernels)

#: TCP conntrack states (enum tcp_conntrack), by number.
TCP_STATES = (
    "none",
    "syn_sent",
    "syn_recv",
    "established",
    "fin_wait",
    "close_wait",
    "last_ack",
    "time_wait",
    "close",
    "syn_sent2",
)
#: TCP states of a conversation that has ended (or is ending).
_ENDED = ("fin_wait", "close_wait", "last_ack", "time_wait", "close")
TCP_ENDED = frozenset(TCP_STATES.index(state) for state in _ENDED)

_DUMP_BODY = NFGENMSG.pack(c.AF_UNSPEC, 0, 0)  # AF_UNSPEC: IPv4 and IPv6 entries alike
_ADDRESS_SIZE = {CTA_IP_V4_SRC: 4, CTA_IP_V4_DST: 4, CTA_IP_V6_SRC: 16, CTA_IP_V6_DST: 16}
_ADDRESS_NAMES = {
    CTA_IP_V4_SRC: "CTA_IP_V4_SRC",
    CTA_IP_V4_DST: "CTA_IP_V4_DST",
    CTA_IP_V6_SRC: "CTA_IP_V6_SRC",
    CTA_IP_V6_DST: "CTA_IP_V6_DST",
}
# the attributes a tuple's `sport` or `dport` comes from (an ICMP echo's id is its source "port")
_PORTS = {
    CTA_PROTO_SRC_PORT: "CTA_PROTO_SRC_PORT",
    CTA_PROTO_DST_PORT: "CTA_PROTO_DST_PORT",
    CTA_PROTO_ICMP_ID: "CTA_PROTO_ICMP_ID",
    CTA_PROTO_ICMPV6_ID: "CTA_PROTO_ICMPV6_ID",
}
_BE16 = struct.Struct("!H").unpack_from
_BE32 = struct.Struct("!I").unpack_from
_BE64 = struct.Struct("!Q").unpack_from
_attrs = c.attrs
_NO_CTNETLINK = (_errno.EOPNOTSUPP, _errno.EPROTONOSUPPORT, _errno.EAFNOSUPPORT)
_HINT = "load nf_conntrack_netlink (modprobe nf_conntrack_netlink)"


class Flow(NamedTuple):
    """One conntrack entry (a named tuple, not a frozen dataclass: a table of 10,000 entries makes
    10,000 of them per read, and a tuple is made several times faster). Addresses are packed (4
    bytes for IPv4, 16 for IPv6): edges compare them with a namespace's addresses, and only the few
    that are shown become text.

    The original tuple is the direction of the packet that opened the conversation (`src` is the
    client); the reply tuple is what the answers carry, so after a DNAT `reply_src` and
    `reply_sport` are the address and port really reached. Ports are None for protocols without,
    except that an ICMP echo's id is its `sport` (and `reply_sport`), as in the kernel's tuple.
    `packets` and `bytes` add up both directions (0 without conntrack accounting); `tcp_state`
    indexes TCP_STATES (None unless TCP).
    """

    protocol: int
    src: bytes
    dst: bytes
    sport: int | None
    dport: int | None
    reply_src: bytes
    reply_dst: bytes
    reply_sport: int | None
    reply_dport: int | None
    tcp_state: int | None
    status: int
    packets: int
    bytes: int


def conntrack_socket() -> NetlinkSocket:
    """A NETLINK_NETFILTER socket in the calling thread's namespace; Unsupported when the kernel has
    no netfilter netlink."""
    try:
        return NetlinkSocket.open(protocol=c.NETLINK_NETFILTER)
    except OSError as exc:
        if exc.errno in _NO_CTNETLINK:
            raise Unsupported(
                f"this kernel has no netfilter netlink socket: {_HINT}", obj="conntrack"
            ) from None
        raise


def conntrack_dump(sock: NetlinkSocket, *, netns: str) -> list[Flow]:
    """Every entry of the conntrack table of the namespace `sock` lives in (`netns` names it in
    errors). Unsupported when the kernel has no ctnetlink; MalformedMessage for a reply that does
    not decode."""
    what = f"conntrack of {netns}"
    try:
        replies = sock.dump(CT_GET, _DUMP_BODY, what=what)
    except NetcoreError as exc:
        if exc.errno in _NO_CTNETLINK:
            raise Unsupported(f"{what}: this kernel does not answer ctnetlink: {_HINT}", obj=what) from None
        raise
    return [flow(buf, start, end) for buf, kind, start, end in replies if kind == CT_NEW]


def flow(buf: bytearray, start: int, end: int) -> Flow:
    """Decode one IPCTNL_MSG_CT_NEW body (nfgenmsg, then attributes)."""
    try:
        if end - start < NFGENMSG.size:
            raise _too_short("nfgenmsg", start, end, NFGENMSG.size)
        orig = reply = None
        status = packets = octets = 0
        tcp_state = None
        for kind, a, b in _attrs(buf, start + NFGENMSG.size, end):
            if kind == CTA_TUPLE_ORIG:
                orig = _tuple(buf, a, b)
            elif kind == CTA_TUPLE_REPLY:
                reply = _tuple(buf, a, b)
            elif kind == CTA_STATUS:
                if b - a != 4:
                    raise _wrong_size("CTA_STATUS", a, b, 4)
                status = _BE32(buf, a)[0]
            elif kind == CTA_PROTOINFO:
                tcp_state = _tcp_state(buf, a, b)
            elif kind in (CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY):
                more_packets, more_bytes = _counters(buf, a, b)
                packets += more_packets
                octets += more_bytes
        if orig is None or reply is None:
            raise MalformedMessage(
                "the entry lacks " + ("CTA_TUPLE_ORIG" if orig is None else "CTA_TUPLE_REPLY")
            )
        protocol, src, dst, sport, dport = orig
        _, reply_src, reply_dst, reply_sport, reply_dport = reply
        return Flow(
            protocol,
            src,
            dst,
            sport,
            dport,
            reply_src,
            reply_dst,
            reply_sport,
            reply_dport,
            tcp_state if protocol == 6 else None,
            status,
            packets,
            octets,
        )
    except _PARSE_ERRORS as exc:
        raise _malformed("conntrack", buf, start, end, exc) from None


def _tuple(buf: bytearray, start: int, end: int) -> tuple[int, bytes, bytes, int | None, int | None]:
    """(protocol, source, destination, source port, destination port) of a CTA_TUPLE_* attribute.

    The tuple of a TCP, UDP or SCTP entry has one layout the kernel always writes (addresses, then
    protocol and two ports): when every attribute header of the payload is exactly that layout's
    (lengths and types compared, so nothing is read past an attribute), its values are taken with
    one unpack (the walk took a third of the decoding time); anything else goes through the walk."""
    size = end - start
    layout = _LAYOUTS.get(size)
    if layout is not None:
        heads, values, expected = layout
        if heads.unpack_from(buf, start) in expected:
            src, dst, protocol, sport, dport = values.unpack_from(buf, start)
            return protocol, src, dst, _port(sport, "big"), _port(dport, "big")
    return _walk_tuple(buf, start, end)


def _tuple_layout(
    size: int, src_type: int
) -> tuple[struct.Struct, struct.Struct, frozenset[tuple[int, ...]]]:
    """The fixed layout of a ported tuple with `size`-byte addresses of attribute types `src_type`
    and `src_type + 1`: a struct of its attribute headers, one of its values, and the headers
    expected (the two nests with NLA_F_NESTED set, as kernels since 5.2 write them, or without)."""
    skip = f"{size}x"
    heads = struct.Struct(f"=HHHH{skip}HH{skip}HHHHxxxxHHxxxxHHxxxx")
    values = struct.Struct(f"=8x{size}s4x{size}s8xB3x4x2s2x4x2s2x")
    plain: tuple[int, ...] = (4 + 2 * (4 + size), CTA_TUPLE_IP, 4 + size, src_type, 4 + size, src_type + 1)
    plain += (28, CTA_TUPLE_PROTO, 5, CTA_PROTO_NUM, 6, CTA_PROTO_SRC_PORT, 6, CTA_PROTO_DST_PORT)
    flagged = list(plain)
    flagged[1] |= c.NLA_F_NESTED
    flagged[7] |= c.NLA_F_NESTED
    return heads, values, frozenset({plain, tuple(flagged)})


# by payload size: 48 bytes for IPv4, 72 for IPv6
_LAYOUTS = {4 + 2 * (4 + n) + 28: _tuple_layout(n, t) for n, t in ((4, CTA_IP_V4_SRC), (16, CTA_IP_V6_SRC))}
_port = int.from_bytes
_COUNTER_HEADS = struct.Struct("=HH8xHH8x").unpack_from
_COUNTER_VALUES = struct.Struct("!4xQ4xQ").unpack_from
_COUNTER_LAYOUT = (12, CTA_COUNTERS_PACKETS, 12, CTA_COUNTERS_BYTES)


def _walk_tuple(buf: bytearray, start: int, end: int) -> tuple[int, bytes, bytes, int | None, int | None]:
    """_tuple's attribute walk, for any layout."""
    src = dst = None
    protocol = -1
    sport = dport = None
    for kind, a, b in _attrs(buf, start, end):
        if kind == CTA_TUPLE_IP:
            for ip_kind, x, y in _attrs(buf, a, b):
                size = _ADDRESS_SIZE.get(ip_kind)
                if size is None:
                    continue
                if y - x != size:
                    raise _wrong_size(_ADDRESS_NAMES[ip_kind], x, y, size)
                if ip_kind & 1:  # the _SRC attributes are odd, the _DST ones even
                    src = bytes(buf[x:y])
                else:
                    dst = bytes(buf[x:y])
        elif kind == CTA_TUPLE_PROTO:
            for proto_kind, x, y in _attrs(buf, a, b):
                if proto_kind == CTA_PROTO_NUM:
                    if y - x != 1:
                        raise _wrong_size("CTA_PROTO_NUM", x, y, 1)
                    protocol = buf[x]
                elif proto_kind in _PORTS:
                    if y - x != 2:
                        raise _wrong_size(_PORTS[proto_kind], x, y, 2)
                    if proto_kind == CTA_PROTO_DST_PORT:
                        dport = _BE16(buf, x)[0]
                    else:
                        sport = _BE16(buf, x)[0]
    if src is None or dst is None or len(src) != len(dst):
        raise MalformedMessage("a conntrack tuple lacks its source or destination address")
    if protocol < 0:
        raise MalformedMessage("a conntrack tuple lacks CTA_PROTO_NUM")
    return protocol, src, dst, sport, dport


def _tcp_state(buf: bytearray, start: int, end: int) -> int | None:
    for kind, a, b in _attrs(buf, start, end):
        if kind == CTA_PROTOINFO_TCP:
            for tcp_kind, x, y in _attrs(buf, a, b):
                if tcp_kind == CTA_PROTOINFO_TCP_STATE:
                    if y - x != 1:
                        raise _wrong_size("CTA_PROTOINFO_TCP_STATE", x, y, 1)
                    return buf[x]
    return None


def _counters(buf: bytearray, start: int, end: int) -> tuple[int, int]:
    """(packets, bytes) of a CTA_COUNTERS_* attribute: the usual layout (two u64) in one unpack when
    its headers are exactly that, else the attribute walk."""
    if end - start == 24 and _COUNTER_HEADS(buf, start) == _COUNTER_LAYOUT:
        return _COUNTER_VALUES(buf, start)
    packets = octets = 0
    for kind, a, b in _attrs(buf, start, end):
        if kind in (CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES):
            if b - a != 8:
                raise _wrong_size("CTA_COUNTERS_*", a, b, 8)
            value = _BE64(buf, a)[0]
        elif kind in (CTA_COUNTERS32_PACKETS, CTA_COUNTERS32_BYTES):
            if b - a != 4:
                raise _wrong_size("CTA_COUNTERS32_*", a, b, 4)
            value = _BE32(buf, a)[0]
        else:
            continue
        if kind & 1:  # PACKETS and COUNTERS32_PACKETS are odd
            packets = value
        else:
            octets = value
    return packets, octets
