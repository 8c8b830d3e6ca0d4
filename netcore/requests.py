"""Builders for the rtnetlink requests netcore sends: one function per kernel change.

They only pack bytes; sending (batched, per namespace) is the caller's business, which
is what lets topology apply pipeline thousands of changes into a few system calls.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import socket

from netcore.netlink import codec as c
from netcore.netlink.socket import Request

_CREATE = c.NLM_F_CREATE | c.NLM_F_EXCL
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ifinfo(index: int = 0, *, up: bool | None = None) -> bytes:
    flags = c.IFF_UP if up else 0
    change = c.IFF_UP if up is not None else 0
    return c.IFINFOMSG.pack(c.AF_UNSPEC, 0, index, flags, change)


def _family(ip: IPAddress | IPNetwork) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def link_create(
    *,
    name: str,
    kind: str,
    data: bytes = b"",
    mtu: int | None = None,
    up: bool = False,
    master: int | None = None,
    devgroup: int = 0,
    mac: str | None = None,
) -> Request:
    """Create a link of `kind`; `data` is its packed IFLA_INFO_DATA, `devgroup` its device group."""
    body = _ifinfo(up=up or None) + c.attr_str(c.IFLA_IFNAME, name)
    if mac:
        body += c.attr(c.IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    if mtu:
        body += c.attr_u32(c.IFLA_MTU, mtu)
    if devgroup:
        body += c.attr_u32(c.IFLA_GROUP, devgroup)
    if master:
        body += c.attr_u32(c.IFLA_MASTER, master)
    info = c.attr_str(c.IFLA_INFO_KIND, kind)
    if data:
        info += c.attr_nested(c.IFLA_INFO_DATA, data)
    body += c.attr_nested(c.IFLA_LINKINFO, info)
    return Request(c.RTM_NEWLINK, _CREATE, body, f"create {kind}", name)


def bridge_create(
    *, name: str, mtu: int | None = None, up: bool = True, devgroup: int = 0, mac: str | None = None
) -> Request:
    """A bridge; with `mac` its MAC is fixed instead of following its ports'."""
    return link_create(name=name, kind="bridge", mtu=mtu, up=up, devgroup=devgroup, mac=mac)


def veth_create(
    *,
    name: str,
    peer: str,
    peer_netns_fd: int | None = None,
    mtu: int | None = None,
    master: int | None = None,
    devgroup: int = 0,
    peer_mac: str | None = None,
) -> Request:
    """A veth pair, both ends down and in device group `devgroup`; the peer is created straight
    inside another namespace when peer_netns_fd is set, with MAC `peer_mac` when given.

    Neither end can be brought up in the creating request (the kernel answers ENOTCONN
    until both exist): send link_set(up=True) for each end after it.
    """
    peer_body = _ifinfo() + c.attr_str(c.IFLA_IFNAME, peer)
    if mtu:
        peer_body += c.attr_u32(c.IFLA_MTU, mtu)
    if devgroup:
        peer_body += c.attr_u32(c.IFLA_GROUP, devgroup)
    if peer_mac:
        peer_body += c.attr(c.IFLA_ADDRESS, bytes.fromhex(peer_mac.replace(":", "")))
    if peer_netns_fd is not None:
        peer_body += c.attr_u32(c.IFLA_NET_NS_FD, peer_netns_fd)
    data = c.attr(c.VETH_INFO_PEER, peer_body)
    request = link_create(name=name, kind="veth", data=data, mtu=mtu, master=master, devgroup=devgroup)
    return dataclasses.replace(request, obj=f"{name} (peer {peer})")


def vxlan_create(
    *,
    name: str,
    vni: int,
    dstport: int = 4789,
    local: IPAddress | None = None,
    remote: IPAddress | None = None,
    group: IPAddress | None = None,
    learning: bool = True,
    proxy: bool = False,
    underlay: int | None = None,
    mtu: int | None = None,
    master: int | None = None,
    up: bool = True,
    devgroup: int = 0,
) -> Request:
    """A VXLAN device; `proxy` makes it answer ARP requests and neighbour solicitations from its own
    neighbour entries (and drop the ones it has none for) instead of sending them into the tunnel.
    The kernel cannot change proxy on an existing device (changelink refuses it)."""
    data = c.attr_u32(c.IFLA_VXLAN_ID, vni) + c.attr_be16(c.IFLA_VXLAN_PORT, dstport)
    data += c.attr_u8(c.IFLA_VXLAN_LEARNING, int(learning))
    if proxy:
        data += c.attr_u8(c.IFLA_VXLAN_PROXY, 1)
    for ip, v4, v6 in (
        (remote or group, c.IFLA_VXLAN_GROUP, c.IFLA_VXLAN_GROUP6),
        (local, c.IFLA_VXLAN_LOCAL, c.IFLA_VXLAN_LOCAL6),
    ):
        if ip is not None:
            data += c.attr(v4 if ip.version == 4 else v6, ip.packed)
    if underlay:
        data += c.attr_u32(c.IFLA_VXLAN_LINK, underlay)
    return link_create(name=name, kind="vxlan", data=data, mtu=mtu, up=up, master=master, devgroup=devgroup)


def link_group_delete(*, group: int, what: str) -> Request:
    """Delete every link in a device group at once: one RCU grace period for all of them,
    where deleting links one by one waits for one each (300 veths: 0.09 s against 5.8 s)."""
    body = _ifinfo() + c.attr_u32(c.IFLA_GROUP, group)
    return Request(c.RTM_DELLINK, 0, body, "delete links of", what)


def link_set(
    *,
    name: str | None = None,
    index: int = 0,
    up: bool | None = None,
    master: int | None = None,
    mtu: int | None = None,
    alias: str | None = None,
    ipv6_ll: bool = True,
    mac: str | None = None,
) -> Request:
    """Change a link found by index or by name; only the given settings are touched.

    ipv6_ll=False stops IPv6 from giving the link a link-local address (addr_gen_mode none).
    A bridge port needs none, nor does an endpoint on an IPv4 network (Docker disables IPv6
    in such containers too); without it the link sends no DAD, router solicitation or MLD
    packets, which every new endpoint otherwise floods to every port of its L2 network.
    Use link_bring_up to combine it with `up`.
    """
    body = _ifinfo(index, up=up)
    if name and not index:
        body += c.attr_str(c.IFLA_IFNAME, name)
    if master is not None:
        body += c.attr_u32(c.IFLA_MASTER, master)
    if mtu:
        body += c.attr_u32(c.IFLA_MTU, mtu)
    if alias is not None:
        body += c.attr_str(c.IFLA_IFALIAS, alias)
    if mac:
        body += c.attr(c.IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
    if not ipv6_ll:
        inet6 = c.attr_u8(c.IFLA_INET6_ADDR_GEN_MODE, c.IN6_ADDR_GEN_MODE_NONE)
        body += c.attr_nested(c.IFLA_AF_SPEC, c.attr_nested(c.AF_INET6, inet6))
    return Request(c.RTM_NEWLINK, 0, body, "change link", name or f"index {index}")


def link_bring_up(
    *, name: str | None = None, index: int = 0, ipv6_ll: bool = True, **settings
) -> list[Request]:
    """Settings first, `up` in a second request: as a link comes up the kernel may already give
    it an IPv6 link-local address before it reads the rest of the same request (seen under load)."""
    return [
        link_set(name=name, index=index, ipv6_ll=ipv6_ll, **settings),
        link_set(name=name, index=index, up=True),
    ]


def link_delete(*, name: str, missing_ok: bool = False) -> Request:
    body = _ifinfo() + c.attr_str(c.IFLA_IFNAME, name)
    tolerate = (errno.ENODEV,) if missing_ok else ()
    return Request(c.RTM_DELLINK, 0, body, "delete link", name, tolerate)


def address_add(
    *, index: int, ifname: str, address: IPAddress, prefixlen: int, exist_ok: bool = False
) -> Request:
    family = _family(address)
    body = c.IFADDRMSG.pack(family, prefixlen, 0, 0, index)
    body += c.attr(c.IFA_LOCAL, address.packed) + c.attr(c.IFA_ADDRESS, address.packed)
    if family == socket.AF_INET6:
        body += c.attr_u32(c.IFA_FLAGS, c.IFA_F_NODAD)
    tolerate = (errno.EEXIST,) if exist_ok else ()
    return Request(
        c.RTM_NEWADDR, _CREATE, body, "add address", f"{address}/{prefixlen} on {ifname}", tolerate
    )


def address_delete(
    *, index: int, ifname: str, address: IPAddress, prefixlen: int, missing_ok: bool = False
) -> Request:
    """Delete an address; `missing_ok` for one the kernel may already have removed (deleting an IPv4
    primary address also deletes the secondaries of its subnet)."""
    body = c.IFADDRMSG.pack(_family(address), prefixlen, 0, 0, index) + c.attr(c.IFA_LOCAL, address.packed)
    tolerate = (errno.EADDRNOTAVAIL,) if missing_ok else ()
    return Request(c.RTM_DELADDR, 0, body, "delete address", f"{address}/{prefixlen} on {ifname}", tolerate)


def route_add(
    *,
    to: IPNetwork,
    via: IPAddress | None = None,
    oif: int | None = None,
    onlink: bool = False,
    replace: bool = False,
    what: str = "",
) -> Request:
    """A main-table unicast route; `onlink` trusts the gateway to be on the link."""
    family = _family(to)
    scope = c.RT_SCOPE_UNIVERSE if via is not None else c.RT_SCOPE_LINK
    flags = c.RTNH_F_ONLINK if onlink and via is not None else 0
    body = c.RTMSG.pack(
        family, to.prefixlen, 0, 0, c.RT_TABLE_MAIN, c.RTPROT_STATIC, scope, c.RTN_UNICAST, flags
    )
    if to.prefixlen:
        body += c.attr(c.RTA_DST, to.network_address.packed)
    if via is not None:
        body += c.attr(c.RTA_GATEWAY, via.packed)
    if oif:
        body += c.attr_u32(c.RTA_OIF, oif)
    nl_flags = c.NLM_F_CREATE | (c.NLM_F_REPLACE if replace else c.NLM_F_EXCL)
    return Request(c.RTM_NEWROUTE, nl_flags, body, "add route", what or str(to))


def route_delete(*, to: IPNetwork, what: str = "", missing_ok: bool = False) -> Request:
    """Delete a main-table route; `missing_ok` for one the kernel may already have dropped with an address."""
    # scope "nowhere" matches a route of any scope, as `ip route del` does
    body = c.RTMSG.pack(_family(to), to.prefixlen, 0, 0, c.RT_TABLE_MAIN, 0, c.RT_SCOPE_NOWHERE, 0, 0)
    if to.prefixlen:
        body += c.attr(c.RTA_DST, to.network_address.packed)
    tolerate = (errno.ESRCH,) if missing_ok else ()
    return Request(c.RTM_DELROUTE, 0, body, "delete route", what or str(to), tolerate)


def neighbour_add(*, index: int, ifname: str, address: IPAddress, mac: str) -> Request:
    """A permanent neighbour entry (ARP/ND), replacing any learnt one."""
    body = c.NDMSG.pack(_family(address), index, c.NUD_PERMANENT, 0, 0)
    body += c.attr(c.NDA_DST, address.packed) + c.attr(c.NDA_LLADDR, c.mac_bytes(mac))
    return Request(
        c.RTM_NEWNEIGH, c.NLM_F_CREATE | c.NLM_F_REPLACE, body, "add neighbour", f"{address} on {ifname}"
    )


def neighbour_delete(*, index: int, ifname: str, address: IPAddress, missing_ok: bool = False) -> Request:
    """Delete a neighbour (ARP/ND) entry; `missing_ok` for one that may be gone already."""
    body = c.NDMSG.pack(_family(address), index, 0, 0, 0) + c.attr(c.NDA_DST, address.packed)
    tolerate = (errno.ENOENT,) if missing_ok else ()
    return Request(c.RTM_DELNEIGH, 0, body, "delete neighbour", f"{address} on {ifname}", tolerate)


def fdb_add(
    *,
    index: int,
    ifname: str,
    mac: str,
    dst: IPAddress | None = None,
    vni: int | None = None,
    replace: bool = False,
) -> Request:
    """A static forwarding entry: on a VXLAN device (self, with the remote `dst`) or a bridge port.

    A bridge-port entry is NOARP (iproute2's "static"): PERMANENT would make the bridge treat
    the MAC as its own and stop forwarding frames for it out of the port. A VXLAN entry must be
    PERMANENT (the VXLAN driver refuses anything else).

    On a VXLAN device the request appends (`bridge fdb append`): for the all-zeros or a multicast
    MAC it adds `dst` to the entry's remotes (a remote it has already is no change), for a unicast
    MAC it creates the entry or leaves an existing one as it is. `replace` (`bridge fdb replace`,
    unicast MACs only) creates the entry or points it at `dst`.
    """
    tunnel = dst is not None or vni is not None
    flags = c.NTF_SELF if tunnel else c.NTF_MASTER
    state = c.NUD_PERMANENT | c.NUD_NOARP if tunnel else c.NUD_NOARP
    body = c.NDMSG.pack(c.AF_BRIDGE, index, state, flags, 0)
    body += c.attr(c.NDA_LLADDR, c.mac_bytes(mac))
    if dst is not None:
        body += c.attr(c.NDA_DST, dst.packed)
    if vni is not None:
        body += c.attr_u32(c.NDA_VNI, vni)
    what = f"{mac} on {ifname}" + (f" to {dst}" if dst else "")
    flags = c.NLM_F_CREATE | (c.NLM_F_REPLACE if replace else c.NLM_F_APPEND)
    return Request(c.RTM_NEWNEIGH, flags, body, "add fdb entry", what)


def fdb_delete(
    *, index: int, ifname: str, mac: str, dst: IPAddress | None = None, missing_ok: bool = False
) -> Request:
    """Delete a VXLAN device's forwarding entry (self): with `dst`, only that remote of it (one peer
    of the all-zeros entry), else the whole entry. `missing_ok` for one that may be gone already."""
    body = c.NDMSG.pack(c.AF_BRIDGE, index, 0, c.NTF_SELF, 0) + c.attr(c.NDA_LLADDR, c.mac_bytes(mac))
    if dst is not None:
        body += c.attr(c.NDA_DST, dst.packed)
    tolerate = (errno.ENOENT,) if missing_ok else ()
    what = f"{mac} on {ifname}" + (f" to {dst}" if dst else "")
    return Request(c.RTM_DELNEIGH, 0, body, "delete fdb entry", what, tolerate)


def neighbour_dump(*, index: int) -> bytes:
    """Body of an RTM_GETNEIGH dump of one link's neighbour entries (IPv4 and IPv6)."""
    return c.NDMSG.pack(c.AF_UNSPEC, 0, 0, 0, 0) + c.attr_u32(c.NDA_IFINDEX, index)


def fdb_dump(*, index: int) -> bytes:
    """Body of an RTM_GETNEIGH dump of one link's forwarding entries: its own (self) and, for a
    bridge port, its bridge's entries for it."""
    return c.NDMSG.pack(c.AF_BRIDGE, index, 0, 0, 0)


def link_get(*, name: str) -> bytes:
    """Body of an RTM_GETLINK for one link by name, without statistics."""
    return (
        _ifinfo() + c.attr_str(c.IFLA_IFNAME, name) + c.attr_u32(c.IFLA_EXT_MASK, c.RTEXT_FILTER_SKIP_STATS)
    )


def local_route_add(*, address: IPAddress, index: int, ifname: str, protocol: int) -> Request:
    """A host-scope local route for one address in table local, marked with `protocol`
    (`ip route add local ADDRESS dev IFNAME table local proto PROTOCOL`): the host takes the address's
    packets and answers ARP for it on that link without the address being on any interface."""
    family = _family(address)
    bits = address.max_prefixlen
    body = c.RTMSG.pack(family, bits, 0, 0, c.RT_TABLE_LOCAL, protocol, c.RT_SCOPE_HOST, c.RTN_LOCAL, 0)
    body += c.attr(c.RTA_DST, address.packed) + c.attr_u32(c.RTA_OIF, index)
    return Request(c.RTM_NEWROUTE, _CREATE, body, "add local route", f"{address} on {ifname}")


def local_route_delete(
    *, address: IPAddress, index: int, ifname: str, protocol: int, missing_ok: bool = False
) -> Request:
    """Delete the local route local_route_add made: only one with that protocol, type and link
    matches. `missing_ok` for one the kernel may have dropped with its link."""
    family = _family(address)
    bits = address.max_prefixlen
    body = c.RTMSG.pack(family, bits, 0, 0, c.RT_TABLE_LOCAL, protocol, c.RT_SCOPE_NOWHERE, c.RTN_LOCAL, 0)
    body += c.attr(c.RTA_DST, address.packed) + c.attr_u32(c.RTA_OIF, index)
    tolerate = (errno.ESRCH,) if missing_ok else ()
    return Request(c.RTM_DELROUTE, 0, body, "delete local route", f"{address} on {ifname}", tolerate)


def local_route_dump(*, family: int, protocol: int) -> bytes:
    """Body of an RTM_GETROUTE dump of table local's local routes marked with `protocol` (the kernel
    filters by table, protocol and type: the socket asks for strict checking)."""
    return c.RTMSG.pack(family, 0, 0, 0, c.RT_TABLE_LOCAL, protocol, 0, c.RTN_LOCAL, 0)


def _root_qdisc(index: int) -> bytes:
    return c.TCMSG.pack(c.AF_UNSPEC, index, 0, c.TC_H_ROOT, 0)


def tbf_replace(*, index: int, ifname: str, rate: int, burst: int, limit: int) -> Request:
    """Make a tbf the link's root qdisc (`tc qdisc replace dev IFNAME root tbf`): `rate` in bytes per
    second, `burst` and `limit` in bytes. The rate is declared Ethernet's, so no rate table is needed."""
    buffer_ticks = min((burst * 1_000_000_000 // rate) >> c.PSCHED_SHIFT, 0xFFFFFFFF)
    spec = (0, c.TC_LINKLAYER_ETHERNET, 0, 0, 0, min(rate, 0xFFFFFFFF))
    qopt = c.TC_TBF_QOPT.pack(*spec, 0, 0, 0, 0, 0, 0, limit, buffer_ticks, 0)
    options = c.attr(c.TCA_TBF_PARMS, qopt) + c.attr_u32(c.TCA_TBF_BURST, burst)
    if rate > 0xFFFFFFFF:
        options += c.attr_u64(c.TCA_TBF_RATE64, rate)
    body = _root_qdisc(index) + c.attr_str(c.TCA_KIND, "tbf") + c.attr_nested(c.TCA_OPTIONS, options)
    return Request(c.RTM_NEWQDISC, c.NLM_F_CREATE | c.NLM_F_REPLACE, body, "shape", ifname)


def netem_replace(
    *, index: int, ifname: str, delay_ns: int, jitter_ns: int, loss_ppm: int, rate: int | None, limit: int
) -> Request:
    """Make a netem the link's root qdisc: delay and jitter in ns, loss in parts per million, `rate` in
    bytes per second (None: unlimited), `limit` in packets. netem's options are its struct followed
    by attributes, not a nest (the kernel reads them with nla_parse_nested_compat)."""
    loss = min(loss_ppm * 0xFFFFFFFF // 1_000_000, 0xFFFFFFFF)
    ticks = [min(ns >> c.PSCHED_SHIFT, 0xFFFFFFFF) for ns in (delay_ns, jitter_ns)]
    options = c.TC_NETEM_QOPT.pack(ticks[0], limit, loss, 0, 0, ticks[1])
    options += c.attr_u64(c.TCA_NETEM_LATENCY64, delay_ns) + c.attr_u64(c.TCA_NETEM_JITTER64, jitter_ns)
    if rate:
        options += c.attr(c.TCA_NETEM_RATE, c.TC_NETEM_RATE.pack(min(rate, 0xFFFFFFFF), 0, 0, 0))
        if rate > 0xFFFFFFFF:
            options += c.attr_u64(c.TCA_NETEM_RATE64, rate)
    body = _root_qdisc(index) + c.attr_str(c.TCA_KIND, "netem") + c.attr(c.TCA_OPTIONS, options)
    return Request(c.RTM_NEWQDISC, c.NLM_F_CREATE | c.NLM_F_REPLACE, body, "impair", ifname)


def root_qdisc_delete(*, index: int, ifname: str) -> Request:
    """Remove the link's root qdisc: the kernel puts its default back (`tc qdisc del dev IFNAME root`)."""
    return Request(c.RTM_DELQDISC, 0, _root_qdisc(index), "unshape", ifname)
