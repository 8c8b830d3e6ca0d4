"""Create, change and delete single kernel objects: the library API behind the CLI.

Every function takes `netns` (None or "host" = the namespace netcore runs in, otherwise a
name under /run/netns) and raises a NetcoreError naming the object on failure.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager

from netcore import names
from netcore import netns as ns
from netcore import requests as rq
from netcore.errors import InvalidSpec, NotFound
from netcore.model import Link
from netcore.names import validate_ifname
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.snapshot import shape_links


@contextmanager
def netns_socket(netns: str | None) -> Iterator[NetlinkSocket]:
    """A socket in `netns` for the duration of a with-block."""
    if netns is None or netns == ns.HOST:
        sock = NetlinkSocket.open()
    else:
        sock = ns.netns_open_socket(path=ns.netns_path(netns))
    try:
        yield sock
    finally:
        sock.close()


def link_lookup(sock: NetlinkSocket, name: str) -> parse.RawLink | None:
    """One link by name with a single RTM_GETLINK (never a dump)."""
    reply = sock.query(c.RTM_GETLINK, rq.link_get(name=name), action="look up link", obj=name)
    return parse.link(bytearray(reply), 0, len(reply)) if reply else None


def link_by_index(sock: NetlinkSocket, index: int) -> parse.RawLink | None:
    """One link by ifindex with a single RTM_GETLINK."""
    body = c.IFINFOMSG.pack(0, 0, index, 0, 0) + c.attr_u32(c.IFLA_EXT_MASK, c.RTEXT_FILTER_SKIP_STATS)
    reply = sock.query(c.RTM_GETLINK, body, action="look up link", obj=f"index {index}")
    return parse.link(bytearray(reply), 0, len(reply)) if reply else None


def link_index(sock: NetlinkSocket, name: str, *, netns: str | None = None) -> int:
    """The ifindex of `name`, or NotFound naming it and its namespace."""
    found = link_lookup(sock, name)
    if found is None:
        raise NotFound(f"link {name} does not exist in namespace {netns or ns.HOST}", obj=name)
    return found.index


def link_get(*, name: str, netns: str | None = None) -> Link:
    """The link as a Link record (master resolved to a name; the peer is left to snapshot())."""
    with netns_socket(netns) as sock:
        raw = link_lookup(sock, name)
        if raw is None:
            raise NotFound(f"link {name} does not exist in namespace {netns or ns.HOST}", obj=name)
        if raw.shaped():
            shape_links(sock, [raw], what=f"qdisc of {name}")
        master = None
        if raw.master:
            found = link_by_index(sock, raw.master)
            master = found.name if found else None
    return raw.to_link(netns=netns or ns.HOST, master=master, peer=None)


def _create(
    netns: str | None, name: str, request: rq.Request, alias: str | None, *, up: bool = False
) -> Link:
    validate_ifname(name, field="name")
    with netns_socket(netns) as sock:
        batch = [request]
        if alias or up:
            batch.append(rq.link_set(name=name, alias=alias, up=up or None))
        sock.run(batch)
    return link_get(name=name, netns=netns)


def bridge_create(
    *, name: str, netns: str | None = None, mtu: int | None = None, alias: str | None = None
) -> Link:
    """A Linux bridge, up, STP off."""
    return _create(netns, name, rq.bridge_create(name=name, mtu=mtu), alias, up=True)


def _is_host(netns: str | None) -> bool:
    return netns in (None, ns.HOST)


def _netns_fd(netns: str | None) -> int:
    """An fd on a namespace ("host" = the caller's), or NotFound naming it."""
    path = "/proc/thread-self/ns/net" if netns is None or netns == ns.HOST else ns.netns_path(netns)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"namespace {netns} does not exist", obj=netns) from None


def veth_create(
    *,
    name: str,
    peer: str,
    netns: str | None = None,
    peer_netns: str | None = None,
    mtu: int | None = None,
    master: str | None = None,
    alias: str | None = None,
) -> Link:
    """A veth pair, both ends up; the peer is created straight inside peer_netns if given."""
    validate_ifname(name, field="name")
    validate_ifname(peer, field="peer")
    same = peer_netns is None or peer_netns == netns or (_is_host(peer_netns) and _is_host(netns))
    fd = None if same else _netns_fd(peer_netns)
    try:
        with netns_socket(netns) as sock:
            master_index = link_index(sock, master, netns=netns) if master else None
            sock.run(
                [
                    rq.veth_create(name=name, peer=peer, peer_netns_fd=fd, mtu=mtu, master=master_index),
                    rq.link_set(name=name, up=True, alias=alias),
                ]
            )
    finally:
        if fd is not None:
            os.close(fd)
    with netns_socket(netns if same else peer_netns) as sock:
        sock.run([rq.link_set(name=peer, up=True)])
    return link_get(name=name, netns=netns)


def vxlan_create(
    *,
    name: str,
    vni: int,
    netns: str | None = None,
    dstport: int = 4789,
    local: str | None = None,
    remote: str | None = None,
    group: str | None = None,
    learning: bool = True,
    device: str | None = None,
    master: str | None = None,
    mtu: int | None = None,
    alias: str | None = None,
) -> Link:
    """A VXLAN device (unicast `remote`, multicast `group` with an underlay `device`, or FDB-driven)."""
    with netns_socket(netns) as sock:
        underlay = link_index(sock, device, netns=netns) if device else None
        master_index = link_index(sock, master, netns=netns) if master else None
    request = rq.vxlan_create(
        name=name,
        vni=vni,
        dstport=dstport,
        local=_ip(local, field="local") if local else None,
        remote=_ip(remote, field="remote") if remote else None,
        group=_ip(group, field="group") if group else None,
        learning=learning,
        underlay=underlay,
        mtu=mtu,
        master=master_index,
    )
    return _create(netns, name, request, alias, up=True)


def link_set(
    *,
    name: str,
    netns: str | None = None,
    up: bool | None = None,
    master: str | None = None,
    mtu: int | None = None,
    alias: str | None = None,
) -> Link:
    """Change a link's state, bridge membership (master="" detaches), MTU or alias."""
    with netns_socket(netns) as sock:
        index = link_index(sock, name, netns=netns)
        master_index = None
        if master is not None:
            master_index = link_index(sock, master, netns=netns) if master else 0
        sock.run([rq.link_set(index=index, name=name, up=up, master=master_index, mtu=mtu, alias=alias)])
    return link_get(name=name, netns=netns)


def link_delete(*, name: str, netns: str | None = None) -> None:
    """Delete a link (a veth takes its peer with it)."""
    with netns_socket(netns) as sock:
        link_index(sock, name, netns=netns)
        sock.run([rq.link_delete(name=name)])


def _parsed(parser, value: str, *, field: str, what: str):
    try:
        return parser(value)
    except ValueError:
        raise InvalidSpec(f"{field}: {value!r} is not a valid {what}", obj=str(value)) from None


def _ip(value: str, *, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return _parsed(ipaddress.ip_address, value, field=field, what="IP address")


def _mac(value: str) -> str:
    if not isinstance(value, str) or not names.MAC.fullmatch(value):
        raise InvalidSpec(f"mac: {value!r} is not a MAC address like 02:00:00:00:00:01", obj=str(value))
    return value.lower()


def _iface(iface: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return _parsed(ipaddress.ip_interface, iface, field="address", what="address in CIDR form")


def address_add(*, ifname: str, address: str, netns: str | None = None) -> None:
    """Add an address in CIDR form ("198.18.1.2/24"); IPv6 skips duplicate address detection."""
    iface = _iface(address)
    with netns_socket(netns) as sock:
        index = link_index(sock, ifname, netns=netns)
        sock.run(
            [rq.address_add(index=index, ifname=ifname, address=iface.ip, prefixlen=iface.network.prefixlen)]
        )


def address_delete(*, ifname: str, address: str, netns: str | None = None) -> None:
    iface = _iface(address)
    with netns_socket(netns) as sock:
        index = link_index(sock, ifname, netns=netns)
        sock.run(
            [
                rq.address_delete(
                    index=index, ifname=ifname, address=iface.ip, prefixlen=iface.network.prefixlen
                )
            ]
        )


def route_add(
    *,
    to: str,
    via: str | None = None,
    dev: str | None = None,
    onlink: bool = False,
    netns: str | None = None,
) -> None:
    """A route: `to` is a CIDR or "default"; via a gateway, on-link through `dev`, or both."""
    dst = _route_dst(to, via)
    with netns_socket(netns) as sock:
        oif = link_index(sock, dev, netns=netns) if dev else None
        gateway = _ip(via, field="via") if via else None
        sock.run([rq.route_add(to=dst, via=gateway, oif=oif, onlink=onlink)])


def route_delete(*, to: str, netns: str | None = None) -> None:
    with netns_socket(netns) as sock:
        sock.run([rq.route_delete(to=_route_dst(to, None))])


def _route_dst(to: str, via: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if to == "default":
        v6 = via is not None and ":" in via
        return ipaddress.ip_network("::/0" if v6 else "0.0.0.0/0")
    return _parsed(ipaddress.ip_network, to, field="to", what="CIDR")


def neighbour_add(*, ifname: str, address: str, mac: str, netns: str | None = None) -> None:
    """A permanent ARP/ND entry."""
    with netns_socket(netns) as sock:
        index = link_index(sock, ifname, netns=netns)
        sock.run(
            [
                rq.neighbour_add(
                    index=index, ifname=ifname, address=_ip(address, field="address"), mac=_mac(mac)
                )
            ]
        )


def fdb_add(
    *,
    ifname: str,
    mac: str,
    dst: str | None = None,
    vni: int | None = None,
    netns: str | None = None,
) -> None:
    """A static FDB entry on a bridge port, or on a VXLAN device towards remote `dst`."""
    with netns_socket(netns) as sock:
        index = link_index(sock, ifname, netns=netns)
        remote = _ip(dst, field="dst") if dst else None
        sock.run([rq.fdb_add(index=index, ifname=ifname, mac=_mac(mac), dst=remote, vni=vni)])
