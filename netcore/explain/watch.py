"""The live probe watched at each hop: a packet socket (AF_PACKET, every protocol, bound to one
interface inside that interface's namespace) on each link the walk says the packet crosses
(`Hop.interface`), opened before the probe is sent and read after it: the kernel queues what each
socket saw, so nothing has to run alongside the probe.

A classic BPF filter on each socket keeps only IP packets of the probe's protocol (and ICMP, for
errors about it), so a busy link does not fill the queue; which of those are the probe's is decided
in Python once the probe is over and its identity is known (its source ports, or its ICMP echo
identifier). A packet is "out" when it goes to the destination (any of its addresses and ports
before and after DNAT, `Flow`), "back" when it comes from there (an answer, or an ICMP error
about the probe).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import ipaddress
import socket
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial

from netcore.explain.probe import Namespaces
from netcore.explain.walk import Hop, Walk
from netcore.ipam import IPAddress

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26  # <asm-generic/socket.h>
RCVBUF = 1 << 20  # bytes each socket may queue while the probe runs
_L4 = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
_ICMP_ERRORS = {4: {3, 4, 5, 11, 12}, 6: {1, 2, 3, 4}}  # destination unreachable, time exceeded, ...
_ECHO = {4: (8, 0), 6: (128, 129)}  # (request, reply)
_VERB = {"veth": "leaving", "vxlan": "leaving", "link": "on"}  # else: arriving on


@dataclass(frozen=True)
class Flow:
    """What the probe's packets look like: `protocol` (tcp, udp, icmp), the destination's addresses
    and ports (the asked ones and every DNAT target), and `idents` — the source ports of its
    connections, or its ICMP echo identifier — filled in once the probe has run."""

    protocol: str
    addresses: frozenset[IPAddress]
    ports: frozenset[int]
    idents: frozenset[int] = frozenset()

    @classmethod
    def of_walk(cls, walk: Walk) -> Flow:
        addresses = {ipaddress.ip_address(walk.destination)}
        addresses |= {ipaddress.ip_address(a) for a, _ in walk.translated}
        ports = {walk.port} if walk.port else set()
        ports |= {p for _, p in walk.translated if p}
        return cls(walk.protocol, frozenset(addresses), frozenset(ports))

    @property
    def version(self) -> int:
        return next(iter(self.addresses)).version

    def direction(self, packet: bytes) -> str | None:
        """ "out", "back" or None (not the probe's) for an IP packet (its network header first)."""
        parsed = _parse(packet)
        if parsed is None:
            return None
        version, proto, src, dst, l4 = parsed
        if self._is(version, proto, dst, l4, out=True):
            return "out"
        if self._is(version, proto, src, l4, out=False):
            return "back"
        icmp = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
        if proto == icmp and len(l4) > 8 and l4[0] in _ICMP_ERRORS[version]:
            inner = _parse(l4[8:])  # the header of the packet the error is about
            if inner is not None and self._is(inner[0], inner[1], inner[3], inner[4], out=True):
                return "back"
        return None

    def _is(self, version: int, proto: int, address: IPAddress, l4: bytes, *, out: bool) -> bool:
        if address not in self.addresses or len(l4) < 8:
            return False
        if self.protocol == "icmp":
            icmp = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
            kind, ident = l4[0], struct.unpack("!H", l4[4:6])[0]
            return proto == icmp and kind == _ECHO[version][0 if out else 1] and ident in self.idents
        if proto != _L4[self.protocol]:
            return False
        sport, dport = struct.unpack("!HH", l4[:4])
        theirs, ours = (dport, sport) if out else (sport, dport)
        return theirs in self.ports and ours in self.idents


def _parse(packet: bytes) -> tuple[int, int, IPAddress, IPAddress, bytes] | None:
    """(version, protocol, source, destination, layer 4 bytes) of an IP packet, or None."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        start = (packet[0] & 0x0F) * 4
        src, dst = ipaddress.IPv4Address(packet[12:16]), ipaddress.IPv4Address(packet[16:20])
        return 4, packet[9], src, dst, packet[start:]
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        src6, dst6 = ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40])
        return 6, packet[6], src6, dst6, packet[40:]
    return None


def bpf_program(protocol: str, version: int) -> bytes:
    """A classic BPF program (struct sock_filter[]) for a SOCK_DGRAM packet socket, whose packets
    start at the network header: IPv4 or IPv6 packets of `protocol`'s number or ICMP, nothing else."""
    icmp = 1 if version == 4 else 58
    number = icmp if protocol == "icmp" else _L4[protocol]
    ldb, andk, jeq, ret = 0x30, 0x54, 0x15, 0x06
    program = [
        (ldb, 0, 0, 0),  # 0: the first byte
        (andk, 0, 0, 0xF0),  # 1: its version nibble
        (jeq, 0, 3, 0x40),  # 2: IPv4? 3 : 6
        (ldb, 0, 0, 9),  # 3: IPv4's protocol
        (jeq, 5, 0, number),  # 4: -> accept
        (jeq, 4, 5, 1),  # 5: ICMP -> accept, else drop
        (jeq, 0, 4, 0x60),  # 6: IPv6? 7 : drop
        (ldb, 0, 0, 6),  # 7: IPv6's next header
        (jeq, 1, 0, number),  # 8: -> accept
        (jeq, 0, 1, 58),  # 9: ICMPv6 -> accept, else drop
        (ret, 0, 0, 0x40000),  # 10: accept (up to 256 KiB)
        (ret, 0, 0, 0),  # 11: drop
    ]
    return b"".join(struct.pack("HBBI", *ins) for ins in program)


def packet_socket(ifname: str, program: bytes) -> socket.socket:
    """A packet socket on `ifname` of the calling thread's namespace, filtered by `program` before
    it is bound (a socket of protocol 0 receives nothing until then)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
    try:
        code = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(code))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class Sighting:
    """What one watched hop saw of the probe."""

    out: int
    back: int

    def to_dict(self) -> dict[str, int]:
        return {"out": self.out, "back": self.back}


class HopWatch:
    """Packet sockets on the interfaces of a walk's hops, opened by `open` (before the probe) and
    read by `sightings` (after it). `errors` says which interfaces could not be watched."""

    def __init__(self, namespaces: Namespaces, hops: Sequence[Hop], flow: Flow) -> None:
        self.namespaces = namespaces
        self.hops = list(hops)
        self.flow = flow
        self.socks: dict[tuple[str, str], socket.socket] = {}
        self.errors: list[str] = []

    def open(self) -> None:
        program = bpf_program(self.flow.protocol, self.flow.version)
        run = self.namespaces.run
        for hop in self.hops:
            key = (hop.netns, hop.interface)
            if not hop.interface or key in self.socks:
                continue
            try:
                self.socks[key] = run(hop.netns, partial(packet_socket, hop.interface, program))
            except OSError as exc:
                self.errors.append(f"{hop.interface} in {hop.netns}: {exc.strerror or exc}")

    def sightings(self, idents: Collection[int]) -> list[Sighting | None]:
        """Per hop, what its interface saw of the probe with these identities (None: not watched)."""
        flow = Flow(self.flow.protocol, self.flow.addresses, self.flow.ports, frozenset(idents))
        counts = {key: _count(sock, flow) for key, sock in self.socks.items()}
        return [counts.get((hop.netns, hop.interface)) for hop in self.hops]

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.socks.clear()


def _count(sock: socket.socket, flow: Flow) -> Sighting:
    out = back = 0
    down_said = False
    while True:
        try:
            packet = sock.recv(65536)
        except BlockingIOError:
            return Sighting(out, back)
        except OSError as exc:  # the interface is (or went) down: said once, then the queue reads on
            if exc.errno != _errno.ENETDOWN or down_said:
                raise
            down_said = True
            continue
        way = flow.direction(packet)
        out += way == "out"
        back += way == "back"


def where_seen(hops: Sequence[Hop], seen: Sequence[Sighting | None]) -> tuple[dict | None, dict | None, str]:
    """(last hop the probe was seen at, first watched hop after it that did not see it, a sentence)
    along the path; each hop as {hop: index, netns, interface}."""
    watched = [(i, hop, s) for i, (hop, s) in enumerate(zip(hops, seen, strict=True)) if s is not None]
    if not watched:
        return None, None, "the probe was not watched (no interface on the path to watch)"
    last = next(((i, hop) for i, hop, s in reversed(watched) if s.out), None)
    after = [(i, hop) for i, hop, s in watched if not s.out and (last is None or i > last[0])]
    missing = after[0] if after else None
    if last is None:
        text = f"the probe was not seen at any of the {len(watched)} watched interfaces"
        return None, _at(missing) if missing else None, text
    text = f"last seen {_VERB.get(last[1].kind, 'arriving on')} {last[1].interface} in {last[1].netns}"
    if missing:
        text += f"; not seen on {missing[1].interface} in {missing[1].netns}"
    else:
        back = sum(1 for _, _, s in watched if s.back)
        text = f"seen at every watched interface ({len(watched)}), {text}"
        text += (
            "; its answers seen on the way back at every one"
            if back == len(watched)
            else f"; its answers (back) seen at {back} of them"
        )
    return _at(last), _at(missing) if missing else None, text


def _at(found: tuple[int, Hop]) -> dict:
    return {"hop": found[0], "netns": found[1].netns, "interface": found[1].interface}
