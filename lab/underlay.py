"""The underlay between simulated hosts: one bridge, one veth pair per host, and the hosts' addresses.

In the supervisor's network namespace (the dashboard's): the bridge `sblab0` and host N's end
`sblabN` on it. Neither has an address, not even an IPv6 link-local one (addr_gen_mode none), and
nothing is routed or NATed: the bridge only switches frames between the hosts, the way a switch
between machines would, and never reaches the machine's uplink. Host N's end of the pair is
created straight inside the host's network namespace as `eth0`, with 198.18.254.(10+N)/24 and
fd00:254::(10+N)/64 (the same digits, so the two are easy to tell apart), MTU 1500: what VXLAN
between hosts will run on.

Every link made here is named `sblab<number>` (and carries the alias ALIAS): `leftovers` and
`remove` touch only bridges and veths named so, nothing else of the namespace.

All functions take a netlink socket that lives in the namespace they work on (netcore's
NetlinkSocket.open() on the supervisor's thread, netns_open_socket(path=...) for a host).
"""

from __future__ import annotations

import ipaddress
import os
import re

from netcore import requests as rq
from netcore.errors import NetcoreError
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.objects import link_index

PREFIX = "sblab"
BRIDGE = "sblab0"
ALIAS = "switchboard lab underlay"
HOST_IFNAME = "eth0"
MTU = 1500
SUBNET4 = ipaddress.ip_network("198.18.254.0/24")
SUBNET6 = ipaddress.ip_network("fd00:254::/64")
MAX_HOSTS = 64  # 198.18.254.11 .. .74; each host costs two Python processes
_OURS = re.compile(rf"{PREFIX}\d+")
_LINK_DUMP = c.IFINFOMSG.pack(0, 0, 0, 0, 0) + c.attr_u32(c.IFLA_EXT_MASK, c.RTEXT_FILTER_SKIP_STATS)


def port_name(index: int) -> str:
    """Host N's end of its veth pair, on the bridge."""
    return f"{PREFIX}{index}"


def address4(index: int) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface(f"{SUBNET4.network_address + 10 + index}/{SUBNET4.prefixlen}")


def address6(index: int) -> ipaddress.IPv6Interface:
    return ipaddress.IPv6Interface(f"{SUBNET6.network_address}{10 + index}/{SUBNET6.prefixlen}")


def bridge_create(sock: NetlinkSocket) -> None:
    """The bridge, without any address, up (AlreadyExists if a bridge of that name is there)."""
    sock.run([rq.bridge_create(name=BRIDGE, mtu=MTU, up=False)])
    sock.run(rq.link_bring_up(name=BRIDGE, ipv6_ll=False, alias=ALIAS))


def host_link(sock: NetlinkSocket, *, index: int, host_netns: str) -> None:
    """Host N's veth pair: `sblabN` on the bridge, up and without an address; `eth0` created straight
    inside the host's namespace (a path such as /proc/<pid>/ns/net), left for host_configure."""
    name = port_name(index)
    bridge = link_index(sock, BRIDGE)
    fd = os.open(host_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sock.run([rq.veth_create(name=name, peer=HOST_IFNAME, peer_netns_fd=fd, mtu=MTU, master=bridge)])
    finally:
        os.close(fd)
    sock.run(rq.link_bring_up(name=name, ipv6_ll=False, alias=ALIAS))


def host_configure(sock: NetlinkSocket, *, index: int) -> None:
    """Inside the host (sock lives in its namespace): `lo` up, `eth0` with its underlay addresses, up."""
    sock.run([rq.link_set(index=1, up=True)])  # loopback is index 1 in every namespace
    eth0 = link_index(sock, HOST_IFNAME)
    addresses = [
        rq.address_add(index=eth0, ifname=HOST_IFNAME, address=a.ip, prefixlen=a.network.prefixlen)
        for a in (address4(index), address6(index))  # IPv6 without DAD: unique by construction
    ]
    sock.run([rq.link_set(index=eth0, mtu=MTU, alias=ALIAS), *addresses, rq.link_set(index=eth0, up=True)])


def leftovers(sock: NetlinkSocket) -> list[str]:
    """Names of the lab's bridges and veths in the socket's namespace (sblab0 first)."""
    found = []
    for buf, kind, start, end in sock.dump(c.RTM_GETLINK, _LINK_DUMP, what="links"):
        if kind != c.RTM_NEWLINK:
            continue
        link = parse.link(buf, start, end)
        if _OURS.fullmatch(link.name) and link.kind in ("bridge", "veth"):
            found.append(link.name)
    return sorted(found, key=lambda name: int(name[len(PREFIX) :]))


def remove(sock: NetlinkSocket, names: list[str] | None = None) -> list[str]:
    """Delete the lab's links (all `leftovers` unless `names` are given), veths before the bridge;
    one already gone is no error. Returns the names it deleted."""
    names = leftovers(sock) if names is None else names
    ordered = sorted(names, key=lambda name: name == BRIDGE)
    errors: list[NetcoreError | None] = sock.send([rq.link_delete(name=n, missing_ok=True) for n in ordered])
    for error in errors:
        if error is not None:
            raise error
    return ordered
