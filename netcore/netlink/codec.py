"""rtnetlink wire format: constants, message packing and attribute walking.

Hand-packed on purpose: building and parsing only the attributes netcore uses is an
order of magnitude cheaper than a generic netlink parser, and the bench figures depend
on it (see docs/netcore.md, "Why netcore packs its own netlink").
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from netcore.errors import MalformedMessage

# nlmsghdr
NLMSG_HDR = struct.Struct("=IHHII")
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_ACK_TLVS = 0x200
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLMSGERR_ATTR_MSG = 1

SOL_NETLINK = 270
NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

# message types
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWNSID, RTM_DELNSID, RTM_GETNSID = 88, 89, 90

_TYPE_NAMES = {
    value: name
    for name, value in list(globals().items())
    if name.startswith("RTM_") or name in ("NLMSG_ERROR", "NLMSG_DONE")
}

# multicast groups (numbers, for NETLINK_ADD_MEMBERSHIP)
RTNLGRP_LINK = 1
RTNLGRP_NEIGH = 3
RTNLGRP_TC = 4
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV4_ROUTE = 7
RTNLGRP_IPV6_IFADDR = 9
RTNLGRP_IPV6_ROUTE = 11

AF_UNSPEC, AF_INET, AF_BRIDGE, AF_INET6 = 0, 2, 7, 10

# ifinfomsg + IFLA_*
IFINFOMSG = struct.Struct("=BxHiII")
IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_QDISC = 6
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_AF_SPEC = 26
IFLA_GROUP = 27
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_LINK_NETNSID = 37
IFLA_INET6_ADDR_GEN_MODE = 8
IN6_ADDR_GEN_MODE_NONE = 1
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3

IFLA_VXLAN_ID = 1
IFLA_VXLAN_GROUP = 2
IFLA_VXLAN_LINK = 3
IFLA_VXLAN_LOCAL = 4
IFLA_VXLAN_LEARNING = 7
IFLA_VXLAN_PROXY = 11
IFLA_VXLAN_PORT = 15
IFLA_VXLAN_GROUP6 = 16
IFLA_VXLAN_LOCAL6 = 17

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")

# ifaddrmsg + IFA_*
IFADDRMSG = struct.Struct("=BBBBI")
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_FLAGS = 8
IFA_F_NODAD = 0x02

# rtmsg + RTA_*
RTMSG = struct.Struct("=BBBBBBBBI")
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_NOWHERE = 255
RTN_UNICAST = 1
RTNH_F_ONLINK = 4
RT_TABLE_LOCAL = 255
RT_SCOPE_HOST = 254
RTN_LOCAL = 2
#: rtm_protocol of the local routes that make service VIPs the host's (`ip route ... proto 0xb5`);
#: unassigned in iproute2's rt_protos, so these routes can be listed and removed without touching others.
RTPROT_SWITCHBOARD_VIP = 0xB5

# ndmsg + NDA_*
NDMSG = struct.Struct("=BxxxiHBB")
NDA_DST = 1
NDA_LLADDR = 2
NDA_VLAN = 5
NDA_VNI = 7
NDA_IFINDEX = 8
NDA_MASTER = 9
NTF_SELF = 0x02
NTF_MASTER = 0x04
NUD_PERMANENT = 0x80
NUD_NOARP = 0x40
NUD_STATES = {
    0x01: "incomplete",
    0x02: "reachable",
    0x04: "stale",
    0x08: "delay",
    0x10: "probe",
    0x20: "failed",
    0x40: "noarp",
    0x80: "permanent",
    0x00: "none",
}

# RTM_*NSID
# tcmsg + TCA_* (traffic control: a link's root qdisc, for shaping and impairments)
TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
TC_H_ROOT = 0xFFFFFFFF
TCA_KIND = 1
TCA_OPTIONS = 2
TCA_TBF_PARMS = 1
TCA_TBF_RATE64 = 4
TCA_TBF_BURST = 6
# struct tc_tbf_qopt: rate and peakrate (struct tc_ratespec: cell_log, linklayer, overhead,
# cell_align, mpu, rate in bytes/s), then limit (bytes), buffer and mtu (psched ticks)
TC_TBF_QOPT = struct.Struct("=BBHhHIBBHhHIIII")
TC_LINKLAYER_ETHERNET = 1
# struct tc_netem_qopt: latency (ticks), limit (packets), loss (of 2**32 - 1), gap, duplicate, jitter
TC_NETEM_QOPT = struct.Struct("=IIIIII")
TCA_NETEM_RATE = 6
TCA_NETEM_RATE64 = 8
TCA_NETEM_LATENCY64 = 10
TCA_NETEM_JITTER64 = 11
TC_NETEM_RATE = struct.Struct("=IiIi")  # rate (bytes/s), packet_overhead, cell_size, cell_overhead
PSCHED_SHIFT = 6  # a psched tick is 2**6 ns
RTGENMSG = struct.Struct("=Bxxx")
NETNSA_NSID = 1
NETNSA_FD = 3

NLA = struct.Struct("=HH")
_U64 = struct.Struct("=Q")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
NLA_F_NESTED = 0x8000


def align(n: int) -> int:
    """Round up to the netlink alignment of 4 bytes."""
    return (n + 3) & ~3


def attr(kind: int, data: bytes) -> bytes:
    """One attribute: header, payload, padding."""
    length = 4 + len(data)
    return NLA.pack(length, kind) + data + b"\0" * (align(length) - length)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_u64(kind: int, value: int) -> bytes:
    return attr(kind, _U64.pack(value))


def attr_i32(kind: int, value: int) -> bytes:
    return attr(kind, _I32.pack(value))


def attr_u16(kind: int, value: int) -> bytes:
    return attr(kind, _U16.pack(value))


def attr_be16(kind: int, value: int) -> bytes:
    return attr(kind, _BE16.pack(value))


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, bytes((value,)))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_nested(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))


def message(msg_type: int, flags: int, seq: int, body: bytes) -> bytes:
    """A complete netlink message with its header."""
    return NLMSG_HDR.pack(16 + len(body), msg_type, flags, seq, 0) + body


def attrs(buf: bytes | memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (type, payload start, payload end) for each attribute in buf[start:end].

    Every length is checked against the bytes that remain: MalformedMessage otherwise.
    """
    unpack = NLA.unpack_from
    while start + 4 <= end:
        length, kind = unpack(buf, start)
        if length < 4 or start + length > end:
            raise MalformedMessage(
                f"attribute {kind & 0x3FFF} at offset {start} has length {length}, {end - start} bytes left"
            )
        yield kind & 0x3FFF, start + 4, start + length
        start += (length + 3) & ~3
    if start < end:
        raise MalformedMessage(f"{end - start} stray bytes after the last attribute at offset {start}")


def messages(buf: bytes | memoryview, size: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (type, flags, seq, body start, message end) for each message in buf[:size].

    Every message must fit in the `size` bytes received: MalformedMessage otherwise, naming the
    message, so a short message is never read from whatever an earlier read left in the buffer.
    """
    unpack = NLMSG_HDR.unpack_from
    pos = 0
    while pos + 16 <= size:
        length, msg_type, flags, seq, _pid = unpack(buf, pos)
        if length < 16 or length > size - pos:
            raise MalformedMessage(
                f"{type_name(msg_type)} seq {seq} at offset {pos} has length {length}, "
                f"{size - pos} bytes left of the {size} received"
            )
        yield msg_type, flags, seq, pos + 16, pos + length
        pos += (length + 3) & ~3
    if pos < size:
        raise MalformedMessage(f"{size - pos} stray bytes after the last message at offset {pos}")


def type_name(msg_type: int) -> str:
    """The name of a message type ("RTM_NEWLINK"), or its number."""
    return _TYPE_NAMES.get(msg_type) or f"message type {msg_type}"


def describe(buf: bytes | memoryview, start: int, end: int) -> str:
    """Name the message whose body is buf[start:end]: type and seq when its header precedes it."""
    if start >= 16 and len(buf) >= start:
        length, msg_type, _flags, seq, _pid = NLMSG_HDR.unpack_from(buf, start - 16)
        if length == end - start + 16:
            return f"{type_name(msg_type)} seq {seq} at offset {start - 16} ({length} bytes)"
    return f"message body at offset {start} ({end - start} bytes)"


def cstr(buf: bytes | memoryview, start: int, end: int) -> str:
    """A NUL-terminated string attribute."""
    raw = bytes(buf[start:end])
    nul = raw.find(b"\0")
    return (raw if nul < 0 else raw[:nul]).decode(errors="replace")


def u64(buf: bytes | memoryview, start: int) -> int:
    return _U64.unpack_from(buf, start)[0]


def u32(buf: bytes | memoryview, start: int) -> int:
    return _U32.unpack_from(buf, start)[0]


def i32(buf: bytes | memoryview, start: int) -> int:
    return _I32.unpack_from(buf, start)[0]


def u16(buf: bytes | memoryview, start: int) -> int:
    return _U16.unpack_from(buf, start)[0]


def be16(buf: bytes | memoryview, start: int) -> int:
    return _BE16.unpack_from(buf, start)[0]


def mac(buf: bytes | memoryview, start: int, end: int) -> str:
    return bytes(buf[start:end]).hex(":")


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))
