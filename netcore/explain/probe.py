"""The live half of "why can't A reach B": real packets from inside the source namespace (TCP SYNs,
UDP datagrams or ICMP echo requests), and what the kernel says of the path's namespaces (routes,
listening sockets).

A TCP probe connects: an answer (SYN-ACK) is "answered", a reset is "refused" (the destination was
reached and nothing listens, or a firewall rejects), silence until the timeout is "timeout", and an
ICMP error or a local refusal is "unreachable". A UDP probe sends one datagram from a connected
socket and waits for a datagram back: one is "answered", an ICMP port unreachable (ECONNREFUSED) is
"refused", an ICMP host or network unreachable is "unreachable", and silence is "timeout", which
for UDP proves nothing (a listener need not answer: netcore.explain.answer says how it reads it).
An ICMP probe sends echo requests on a raw socket and counts the echo replies from the destination.
Each probe records its identity (`idents`: its source ports, or its echo identifier) so the hops
that watched it can tell its packets from others (netcore.explain.watch).
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from netcore import netns as ns
from netcore.errors import Unsupported
from netcore.explain.firewall import Packet, Verdict, firewall_verdict, nat_verdict
from netcore.explain.route_get import RouteAnswer, route_get
from netcore.ipam import IPAddress
from netcore.netlink.socket import NetlinkSocket
from netcore.nft import nft_list_ruleset

_T = TypeVar("_T")
_TCP_LISTEN = "0A"
_PAYLOAD = b"switchboard-explain"
IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, PMTUDISC_DO = 10, 23, 2  # <linux/in.h>, <linux/in6.h>: set DF
_UDP_BOUND = "07"


@dataclass
class Probe:
    """What the probes met: each one's outcome and round-trip time (ms, when answered)."""

    protocol: str
    sent: int = 0
    answered: int = 0
    outcomes: list[str] = field(default_factory=list)
    rtt_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    idents: list[int] = field(default_factory=list)  # source ports (TCP, UDP) or the ICMP echo identifier

    @property
    def outcome(self) -> str:
        """answered when any probe was; else the most telling of refused, unreachable, timeout."""
        for kind in ("answered", "refused", "unreachable", "timeout"):
            if kind in self.outcomes:
                return kind
        return "timeout"

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "outcome": self.outcome}
        del data["idents"]
        return data


class Namespaces:
    """Runs work inside the host's namespaces by name ("host": the one netcore runs in)."""

    def __init__(self, paths: Mapping[str, str | None]) -> None:
        self.paths = dict(paths)
        self.socks: dict[str, NetlinkSocket] = {}
        self.rulesets: dict[str, list[dict] | None] = {}

    @classmethod
    def of_host(cls) -> Namespaces:
        return cls({info.name: None if info.kind == "host" else info.path for info in ns.netns_list()})

    def run(self, netns: str, fn: Callable[[], _T]) -> _T:
        path = self.paths[netns]
        return fn() if path is None else ns.netns_run(path=path, fn=fn)

    def ask(self, netns: str, dst: IPAddress, src: IPAddress | None, iif: int | None) -> RouteAnswer:
        """The walk's Asker: the namespace kernel's route (one socket per namespace, kept)."""
        sock = self.socks.get(netns)
        if sock is None:
            path = self.paths[netns]
            sock = self.socks[netns] = (
                NetlinkSocket.open() if path is None else ns.netns_open_socket(path=path)
            )
        return route_get(sock, dst=dst, src=src, iif=iif)

    def listening(self, netns: str, protocol: str, address: IPAddress, port: int) -> bool | None:
        """The walk's Listening: whether a socket in `netns` takes `protocol` to address:port."""
        if protocol not in ("tcp", "udp"):
            return None
        files = (f"{protocol}", f"{protocol}6")
        tables = self.run(netns, lambda: [_read(f"/proc/thread-self/net/{name}") for name in files])
        wanted_state = _TCP_LISTEN if protocol == "tcp" else _UDP_BOUND
        for version, table in zip((4, 6), tables, strict=True):
            for local, state in _sockets(table):
                ip, bound_port = _hex_endpoint(local, version)
                if bound_port == port and state == wanted_state and _takes(ip, address):
                    return True
        return False

    def _ruleset(self, netns: str) -> list[dict] | None:
        """The namespace's nftables ruleset, read once (None: nft or nf_tables missing)."""
        if netns not in self.rulesets:
            try:
                self.rulesets[netns] = self.run(netns, nft_list_ruleset)
            except Unsupported:
                self.rulesets[netns] = None
        return self.rulesets[netns]

    def firewall(self, netns: str, hook: str, packet: Packet) -> Verdict:
        """The walk's firewall: what the namespace's filter chains do with the packet at `hook`."""
        ruleset = self._ruleset(netns)
        if ruleset is None:
            return Verdict(unread=["the ruleset (nft is not installed, or the kernel has no nf_tables)"])
        return firewall_verdict(ruleset, hook=hook, packet=packet)

    def nat(self, netns: str, hook: str, packet: Packet) -> Verdict:
        """The walk's NAT: where the namespace's nat chains at `hook` send a new connection."""
        ruleset = self._ruleset(netns)
        return Verdict() if ruleset is None else nat_verdict(ruleset, hook=hook, packet=packet)

    def bridge_filters(self, netns: str) -> bool:
        """Whether br_netfilter hands the namespace's bridged IPv4 packets to its forward hook."""
        flag = self.run(netns, lambda: _read("/proc/sys/net/bridge/bridge-nf-call-iptables"))
        return flag.strip() == "1"

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.socks.clear()


def _takes(bound: IPAddress, address: IPAddress) -> bool:
    """Whether a socket bound to `bound` takes packets to `address` (:: also takes IPv4, unless the
    socket is IPv6-only, which /proc does not say)."""
    if bound == address:
        return True
    if isinstance(bound, ipaddress.IPv6Address) and bound.ipv4_mapped == address:
        return True
    return bound.is_unspecified and (bound.version == address.version or bound.version == 6)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _sockets(table: str) -> list[tuple[str, str]]:
    rows = []
    for line in table.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3:
            rows.append((parts[1], parts[3]))
    return rows


def _hex_endpoint(text: str, version: int) -> tuple[IPAddress, int]:
    """/proc/net/tcp's "0100007F:1F90" (address in host byte order, 32-bit words) as (ip, port)."""
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words if version == 6 else raw[::-1]), int(port, 16)


def probe_tcp(
    namespaces: Namespaces, netns: str, *, dst: IPAddress, port: int, count: int = 3, timeout: float = 1.0
) -> Probe:
    """`count` TCP connections from `netns` to dst:port."""
    result = Probe(protocol="tcp")
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    for _ in range(count):
        sock = namespaces.run(netns, lambda: socket.socket(family, socket.SOCK_STREAM))
        sock.setblocking(False)
        result.sent += 1
        started = time.monotonic()
        try:
            code = sock.connect_ex((str(dst), port))
            result.idents.append(sock.getsockname()[1])
            if code == _errno.EINPROGRESS:
                _, writable, _ = select.select([], [sock], [], timeout)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if writable else _errno.ETIMEDOUT
        finally:
            sock.close()
        _record(result, code, started)
    return result


def probe_udp(
    namespaces: Namespaces, netns: str, *, dst: IPAddress, port: int, count: int = 3, timeout: float = 1.0
) -> Probe:
    """`count` datagrams from `netns` to dst:port, each from its own connected socket, each waiting up
    to `timeout` for a datagram back (or the ICMP error the kernel reports as a socket error)."""
    result = Probe(protocol="udp")
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    for _ in range(count):
        sock = namespaces.run(netns, lambda: socket.socket(family, socket.SOCK_DGRAM))
        result.sent += 1
        started = time.monotonic()
        try:
            sock.connect((str(dst), port))
            result.idents.append(sock.getsockname()[1])
            sock.send(_PAYLOAD)
            readable, _, _ = select.select([sock], [], [], timeout)
            if readable:
                sock.recv(2048)
            code = 0 if readable else _errno.ETIMEDOUT
        except OSError as exc:
            code = exc.errno or _errno.EIO
        finally:
            sock.close()
        _record(result, code, started)
    return result


def _record(result: Probe, code: int, started: float) -> None:
    if code == 0:
        result.answered += 1
        result.outcomes.append("answered")
        result.rtt_ms.append(round((time.monotonic() - started) * 1000, 3))
    elif code == _errno.ECONNREFUSED:
        result.outcomes.append("refused")
    elif code == _errno.ETIMEDOUT:
        result.outcomes.append("timeout")
    else:
        result.outcomes.append("unreachable")
        result.errors.append(f"{_errno.errorcode.get(code, code)} ({os.strerror(code)})")


def probe_icmp(
    namespaces: Namespaces,
    netns: str,
    *,
    dst: IPAddress,
    count: int = 3,
    timeout: float = 1.0,
    size: int | None = None,
) -> Probe:
    """`count` ICMP echo requests from `netns` to dst, each waited for up to `timeout`; with `size`,
    IP packets of that many bytes with don't-fragment set (a path MTU question)."""
    result = Probe(protocol="icmp")
    v6 = dst.version == 6
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    sock = namespaces.run(netns, lambda: socket.socket(family, socket.SOCK_RAW, proto))
    ident = os.getpid() & 0xFFFF
    result.idents.append(ident)
    padding = b""
    if size is not None:
        header = (40 if v6 else 20) + 8 + len(_PAYLOAD)
        padding = b"\0" * max(0, size - header)
        if v6:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTUDISC_DO)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC_DO)
    try:
        for seq in range(count):
            result.sent += 1
            started = time.monotonic()
            sock.sendto(_echo(ident, seq, v6, padding), (str(dst), 0))
            result.outcomes.append(_await_reply(sock, dst, ident, seq, v6, started + timeout))
            if result.outcomes[-1] == "answered":
                result.answered += 1
                result.rtt_ms.append(round((time.monotonic() - started) * 1000, 3))
    except OSError as exc:
        result.outcomes.append("unreachable")
        result.errors.append(str(exc))
    finally:
        sock.close()
    return result


def _echo(ident: int, seq: int, v6: bool, padding: bytes = b"") -> bytes:
    kind = 128 if v6 else 8
    body = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + _PAYLOAD + padding
    return body if v6 else body[:2] + struct.pack("!H", _checksum(body)) + body[4:]  # the kernel sums ICMPv6


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[: len(data) // 2 * 2]))
    if len(data) % 2:
        total += data[-1] << 8
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _await_reply(sock: socket.socket, dst: IPAddress, ident: int, seq: int, v6: bool, deadline: float) -> str:
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            break
        data, sender = sock.recvfrom(2048)
        header = data if v6 else data[(data[0] & 0x0F) * 4 :]
        if len(header) < 8:
            continue
        kind, _, _, got_ident, got_seq = struct.unpack("!BBHHH", header[:8])
        reply, unreachable = (129, 1) if v6 else (0, 3)
        if kind == reply and got_ident == ident and got_seq == seq and sender[0] == str(dst):
            return "answered"
        if kind == unreachable:
            return "unreachable"
    return "timeout"
