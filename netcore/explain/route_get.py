"""Ask a namespace's kernel where a packet goes (`ip route get`): RTM_GETROUTE with the packet's
fields, answered by the kernel's own FIB lookup (policy rules, local table, forwarding checks), so
the path walk never re-implements routing. With `iif` the packet is taken as arriving on that link
(the lookup a forwarded packet gets, which refuses when the namespace does not forward)."""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
from dataclasses import dataclass

from netcore.errors import NetcoreError
from netcore.ipam import IPAddress
from netcore.netlink import codec as c
from netcore.netlink.socket import NetlinkSocket

RTA_IIF = 3
RTA_SRC = 2

#: rtm_type values, as iproute2 names them
ROUTE_TYPES = {
    1: "unicast",
    2: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    6: "blackhole",
    7: "unreachable",
    8: "prohibit",
    9: "throw",
    10: "nat",
}


@dataclass(frozen=True)
class RouteAnswer:
    """What the kernel decided: a route `type` with its out link and gateway, or the errno it refused
    with (ENETUNREACH: no route; with an iif, EHOSTUNREACH: the namespace does not forward, EXDEV: its
    reverse path filter refuses the source)."""

    type: str = ""
    oif: int | None = None
    gateway: IPAddress | None = None
    prefsrc: IPAddress | None = None
    errno: int | None = None

    @property
    def refused(self) -> bool:
        return self.errno is not None

    def reason(self) -> str:
        """The refusal in words (empty when the kernel found a route)."""
        if self.errno is None:
            return ""
        return f"{_errno.errorcode.get(self.errno, self.errno)} ({os.strerror(self.errno)})"


def route_get_body(*, dst: IPAddress, src: IPAddress | None = None, iif: int | None = None) -> bytes:
    """The RTM_GETROUTE request for a packet to `dst` (from `src`, arriving on link `iif`)."""
    family = c.AF_INET if dst.version == 4 else c.AF_INET6
    bits = dst.max_prefixlen
    body = c.RTMSG.pack(family, bits, bits if src is not None else 0, 0, 0, 0, 0, 0, 0)
    body += c.attr(c.RTA_DST, dst.packed)
    if src is not None:
        body += c.attr(RTA_SRC, src.packed)
    if iif is not None:
        body += c.attr_u32(RTA_IIF, iif)
    return body


def route_answer(body: bytes) -> RouteAnswer:
    """Parse the kernel's RTM_NEWROUTE answer."""
    family, _dst_len, _src_len, _tos, _table, _protocol, _scope, kind, _flags = c.RTMSG.unpack_from(body, 0)
    size = 4 if family == c.AF_INET else 16
    oif = gateway = prefsrc = None
    for attr, start, end in c.attrs(body, c.RTMSG.size, len(body)):
        value = body[start:end]
        if attr == c.RTA_OIF and len(value) == 4:
            oif = int.from_bytes(value, "little")
        elif attr == c.RTA_GATEWAY and len(value) == size:
            gateway = ipaddress.ip_address(bytes(value))
        elif attr == c.RTA_PREFSRC and len(value) == size:
            prefsrc = ipaddress.ip_address(bytes(value))
    return RouteAnswer(type=ROUTE_TYPES.get(kind, str(kind)), oif=oif, gateway=gateway, prefsrc=prefsrc)


def route_get(
    sock: NetlinkSocket, *, dst: IPAddress, src: IPAddress | None = None, iif: int | None = None
) -> RouteAnswer:
    """The kernel's route for a packet, asked through a socket in the namespace to ask."""
    try:
        body = sock.query(
            c.RTM_GETROUTE, route_get_body(dst=dst, src=src, iif=iif), action="route get", obj=str(dst)
        )
    except NetcoreError as exc:
        if exc.errno is None:
            raise
        return RouteAnswer(errno=abs(exc.errno))
    if body is None:
        return RouteAnswer(errno=_errno.ENETUNREACH)
    return route_answer(body)
