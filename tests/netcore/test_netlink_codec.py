"""The rtnetlink codec against bad input: one checked receive path for every read.

Messages go through the real receive path: a NetlinkSocket wrapping one end of an AF_UNIX
datagram socketpair, so every read lands in the socket's one reused 64 KiB buffer, first filled
with other, valid messages. A parser that read past its message would find those stale bytes
(plausible attributes, a different name) instead of failing. Bad input may raise only netcore's
own errors: MalformedMessage from parsers, dumps and requests; EventsLost from read_events.
The corpus in data/ holds real messages captured from the kernel; hypothesis mutates them.
A few tests (host_ns) check the same paths against the kernel: interrupted dumps and ENOBUFS.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcore import netns as ns
from netcore import requests as rq
from netcore.errors import Busy, DumpInterrupted, EventsLost, MalformedMessage, NetcoreError
from netcore.model import Address
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import DUMP_ATTEMPTS, NetlinkSocket
from netcore.snapshot import dump_namespace

CORPUS = json.loads((Path(__file__).parent / "data" / "rtnetlink_corpus.json").read_text())["messages"]
MESSAGES = [bytes.fromhex(m["hex"]) for m in CORPUS]
LINKS = [m for m in MESSAGES if c.NLMSG_HDR.unpack_from(m)[1] == c.RTM_NEWLINK]
NAMES = {1: "lo", 2: "v1", 3: "v0"}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_all(buf: bytearray, start: int, end: int) -> list[object]:
    """Run every parser on one message body; each returns a record (or None) or raises MalformedMessage."""
    out: list[object] = []
    for fn in (
        lambda: parse.link(buf, start, end),
        lambda: parse.address("t", NAMES, buf, start, end),
        lambda: parse.route("t", NAMES, buf, start, end),
        lambda: parse.neighbour("t", NAMES, buf, start, end),
        lambda: parse.fdb("t", NAMES, buf, start, end),
    ):
        try:
            out.append(fn())
        except MalformedMessage as exc:
            assert str(exc).startswith("malformed "), exc
            out.append(exc)
    return out


def parse_as_kernel(buf: bytearray, kind: int, start: int, end: int) -> object:
    """The parser a caller uses for this message type (None for types no parser reads)."""
    if kind in (c.RTM_NEWLINK, c.RTM_DELLINK):
        return parse.link(buf, start, end)
    if kind in (c.RTM_NEWADDR, c.RTM_DELADDR):
        return parse.address("t", NAMES, buf, start, end)
    if kind in (c.RTM_NEWROUTE, c.RTM_DELROUTE):
        return parse.route("t", NAMES, buf, start, end)
    if kind in (c.RTM_NEWNEIGH, c.RTM_DELNEIGH):
        if buf[start] == c.AF_BRIDGE:
            return parse.fdb("t", NAMES, buf, start, end)
        return parse.neighbour("t", NAMES, buf, start, end)
    return None


def header(m: bytes) -> tuple[int, int, int, int, int]:
    return c.NLMSG_HDR.unpack_from(m)


def with_length(m: bytes, length: int) -> bytes:
    """The message with its nlmsg_len field set to `length`."""
    return struct.pack("=I", length) + m[4:]


def link_message(
    name: str, *, index: int = 7, seq: int = 0, flags: int = 0, mtu: bytes = struct.pack("=I", 1500)
) -> bytes:
    body = c.IFINFOMSG.pack(0, 0, index, 0, 0) + c.attr_str(c.IFLA_IFNAME, name) + c.attr(c.IFLA_MTU, mtu)
    return c.message(c.RTM_NEWLINK, flags, seq, body)


def done_message(seq: int, *, err: int = 0, text: str | None = None, flags: int = c.NLM_F_MULTI) -> bytes:
    body = struct.pack("=i", -err)
    if text is not None:
        flags |= c.NLM_F_ACK_TLVS
        body += c.attr_str(c.NLMSGERR_ATTR_MSG, text)
    return c.message(c.NLMSG_DONE, flags, seq, body)


@contextmanager
def event_pair() -> Iterator[tuple[NetlinkSocket, socket.socket]]:
    """(a NetlinkSocket on one end of a datagram socketpair, the other end to send from), the
    socket's reused buffer already filled by a read of valid messages (stale bytes for later reads)."""
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        ours.setblocking(False)
        nl = NetlinkSocket(ours)
        stale = b"".join(MESSAGES) + b"".join(reversed(LINKS)) * 4
        peer.send(stale)
        nl.read_events(lambda *args: None)
        assert nl._buf[: len(stale)] == stale
        yield nl, peer
    finally:
        ours.close()
        peer.close()


def read_one(datagram: bytes) -> tuple[list[object], EventsLost | None]:
    """Send one datagram to a fresh event socket with a stale buffer; (what its handler parsed,
    the EventsLost raised). Any other exception fails the test."""
    seen: list[object] = []
    with event_pair() as (nl, peer):
        peer.send(datagram)
        try:
            nl.read_events(lambda buf, kind, start, end: seen.append(parse_as_kernel(buf, kind, start, end)))
        except EventsLost as exc:
            return seen, exc
    return seen, None


# --- the corpus ------------------------------------------------------------------------------------


def test_corpus_parses_as_captured() -> None:
    """Every captured message parses, as one datagram through the real receive path."""
    seen, lost = read_one(b"".join(MESSAGES))
    assert lost is None
    assert len(seen) == len(MESSAGES)
    links = [x for x in seen if isinstance(x, parse.RawLink)]
    assert [x.name for x in links] == ["lo", "v1", "v0", "br0", "vx0", "vx1", "vx6"]
    vxlans = {x.name: x.vxlan for x in links if x.kind == "vxlan"}
    assert (vxlans["vx0"].vni, vxlans["vx0"].local, vxlans["vx0"].remote) == (42, "198.18.0.1", "198.18.0.2")
    assert vxlans["vx1"].group == "239.1.1.1"
    assert vxlans["vx6"].remote == "fd00::2"
    assert {a.address for a in seen if isinstance(a, Address)} == {"127.0.0.1", "198.18.0.1", "fd00::1"}


@pytest.mark.parametrize("index", range(len(MESSAGES)), ids=[m["what"] for m in CORPUS])
def test_truncated_datagram_at_every_length_is_lost_events(index: int) -> None:
    """A message cut short by the datagram (its header still says the full length) is never parsed
    from the stale bytes that follow in the buffer: the read raises EventsLost, naming it."""
    m = MESSAGES[index]
    kind = {16: "RTM_NEWLINK", 20: "RTM_NEWADDR", 24: "RTM_NEWROUTE", 28: "RTM_NEWNEIGH"}[header(m)[1]]
    for cut in range(1, len(m)):
        seen, lost = read_one(m[:cut])
        assert seen == [], (cut, seen)
        assert lost is not None, cut
        if cut >= 16:
            assert f"{kind} seq" in str(lost) and f"has length {len(m)}" in str(lost), str(lost)


@pytest.mark.parametrize("index", range(len(LINKS)), ids=[str(i) for i in range(len(LINKS))])
def test_link_with_corrupted_length_never_gets_a_garbled_name(index: int) -> None:
    """nlmsg_len set to every value below the real one, with the datagram cut to match (a message
    that is consistent but short): the link either fails to parse, or keeps its real name and MTU."""
    m = LINKS[index]
    whole = parse.link(bytearray(m), 16, len(m))
    parsed = 0
    for length in range(16, len(m)):
        seen, lost = read_one(with_length(m, length)[:length])
        for link in seen:
            assert isinstance(link, parse.RawLink)
            assert (link.index, link.name, link.mtu) == (whole.index, whole.name, whole.mtu), length
            parsed += 1
        assert (lost is None) == bool(seen), length
        if lost is not None:
            assert "malformed link message, RTM_NEWLINK seq" in str(lost), str(lost)
    assert parsed > 0  # cuts after IFLA_MTU at an attribute boundary parse (with fewer attributes)


@pytest.mark.parametrize("index", range(len(MESSAGES)), ids=[m["what"] for m in CORPUS])
def test_every_length_field_value_on_a_whole_datagram(index: int) -> None:
    """The whole message is received but nlmsg_len says anything from 0 to beyond the datagram."""
    m = MESSAGES[index]
    for length in [*range(0, len(m) + 8), 0xFFFF, 0xFFFFFFFF]:
        seen, lost = read_one(with_length(m, length))
        if length < 16 or length > len(m):
            assert seen == [] and lost is not None, length
            assert "has length" in str(lost)


# --- hypothesis: random and mutated input ---------------------------------------------------------


def stale_buffer(data: bytes) -> bytearray:
    """A receive buffer holding `data` at its start and valid messages after it."""
    filler = b"".join(MESSAGES)
    buf = bytearray((filler * (65536 // len(filler) + 1))[:65536])
    buf[: len(data)] = data
    return buf


@FUZZ
@given(data=st.binary(max_size=1024))
def test_random_bytes_raise_only_malformed_message(data: bytes) -> None:
    """messages(), attrs() and every parser, on random bytes in a buffer full of stale valid ones."""
    buf = stale_buffer(data)
    try:
        for _kind, _flags, _seq, start, end in c.messages(buf, len(data)):
            assert 16 <= end <= len(data)
            try:
                for _attr, a, b in c.attrs(buf, start, end):
                    assert start + 4 <= a <= b <= end
            except MalformedMessage:
                pass
            parse_all(buf, start, end)
    except MalformedMessage:
        pass


@FUZZ
@given(data=st.binary(max_size=600), start=st.integers(0, 700), end=st.integers(0, 700))
def test_parsers_on_random_bounds_raise_only_malformed_message(data: bytes, start: int, end: int) -> None:
    """Parsers called on any bounds (even past the buffer) raise MalformedMessage, nothing else."""
    for buf in (stale_buffer(data), bytearray(data)):
        parse_all(buf, start, end)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A datagram of corpus messages with some bytes changed, a length field rewritten and/or cut short."""
    picks = draw(st.lists(st.sampled_from(MESSAGES), min_size=1, max_size=4))
    data = bytearray(b"".join(picks))
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):  # rewrite one length: a message header's or an attribute's
        at = draw(st.integers(0, len(data) - 4)) & ~3
        size = draw(st.sampled_from(["=I", "=H"]))
        limit = 0xFFFF if size == "=H" else 0xFFFFFFFF
        struct.pack_into(size, data, at, draw(st.integers(0, limit)))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


@FUZZ
@given(datagram=mutated())
def test_mutated_messages_on_the_event_path_raise_only_events_lost(datagram: bytes) -> None:
    """Through the real read path: the handler's parsers raise only MalformedMessage, which
    read_events turns into EventsLost; nothing else escapes."""
    read_one(datagram)


@FUZZ
@given(datagram=mutated())
def test_mutated_messages_raise_only_netcore_errors_from_every_parser(datagram: bytes) -> None:
    buf = stale_buffer(datagram)
    try:
        for _kind, _flags, _seq, start, end in c.messages(buf, len(datagram)):
            parse_all(buf, start, end)
    except MalformedMessage:
        pass


names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=15)
u32 = st.integers(0, 0xFFFFFFFF)


@FUZZ
@given(
    name=names,
    index=st.integers(1, 0x7FFFFFFF),
    mtu=u32,
    master=st.none() | st.integers(1, 0xFFFFFFFF),
    group=u32,
    alias=st.none() | names,
    vni=st.integers(0, 0xFFFFFF),
    remote=st.ip_addresses(v=4).map(str),
    port=st.integers(0, 0xFFFF),
    learning=st.booleans(),
    proxy=st.booleans(),
)
def test_built_link_round_trips(
    name: str,
    index: int,
    mtu: int,
    master: int | None,
    group: int,
    alias: str | None,
    vni: int,
    remote: str,
    port: int,
    learning: bool,
    proxy: bool,
) -> None:
    """A link built with the codec's own builders parses back to what was put in."""
    body = c.IFINFOMSG.pack(0, 0, index, c.IFF_UP, 0) + c.attr_str(c.IFLA_IFNAME, name)
    body += c.attr_u32(c.IFLA_MTU, mtu) + c.attr_u32(c.IFLA_GROUP, group) + c.attr_u8(c.IFLA_OPERSTATE, 6)
    if master is not None:
        body += c.attr_u32(c.IFLA_MASTER, master)
    if alias is not None:
        body += c.attr_str(c.IFLA_IFALIAS, alias)
    vxlan = c.attr_nested(
        c.IFLA_INFO_DATA,
        c.attr_u32(c.IFLA_VXLAN_ID, vni),
        c.attr(c.IFLA_VXLAN_GROUP, socket.inet_aton(remote)),
        c.attr_be16(c.IFLA_VXLAN_PORT, port),
        c.attr_u8(c.IFLA_VXLAN_LEARNING, learning),
        c.attr_u8(c.IFLA_VXLAN_PROXY, proxy),
    )
    body += c.attr_nested(c.IFLA_LINKINFO, c.attr_str(c.IFLA_INFO_KIND, "vxlan"), vxlan)
    [link], lost = read_one(c.message(c.RTM_NEWLINK, 0, 1, body))
    assert lost is None
    assert isinstance(link, parse.RawLink)
    assert (link.index, link.name, link.mtu, link.group, link.master, link.alias) == (
        index,
        name,
        mtu,
        group,
        master,
        alias,
    )
    assert (link.up, link.state, link.kind) == (True, "up", "vxlan")
    assert link.vxlan is not None
    assert (link.vxlan.vni, link.vxlan.dstport, link.vxlan.learning) == (vni, port, learning)
    assert link.vxlan_proxy == proxy
    assert link.vxlan.remote == remote or link.vxlan.group == remote


LINK_FIELDS = {
    "IFLA_MTU": c.IFLA_MTU,
    "IFLA_GROUP": c.IFLA_GROUP,
    "IFLA_MASTER": c.IFLA_MASTER,
    "IFLA_LINK": c.IFLA_LINK,
    "IFLA_LINK_NETNSID": c.IFLA_LINK_NETNSID,
    "IFLA_OPERSTATE": c.IFLA_OPERSTATE,
}


@FUZZ
@given(field=st.sampled_from(sorted(LINK_FIELDS)), payload=st.binary(max_size=12))
def test_link_field_of_the_wrong_size_is_named(field: str, payload: bytes) -> None:
    """A fixed-size attribute with another payload size is an error naming it, never a value
    read from the bytes after it."""
    size = 1 if field == "IFLA_OPERSTATE" else 4
    body = c.IFINFOMSG.pack(0, 0, 9, 0, 0) + c.attr_str(c.IFLA_IFNAME, "x")
    if field != "IFLA_MTU":
        body += c.attr_u32(c.IFLA_MTU, 1500)
    body += c.attr(LINK_FIELDS[field], payload) + c.attr_str(c.IFLA_IFALIAS, "after")
    seen, lost = read_one(c.message(c.RTM_NEWLINK, 0, 5, body))
    if len(payload) == size:
        assert lost is None and len(seen) == 1
    else:
        assert seen == [] and lost is not None
        assert f"{field} has {len(payload)} bytes of payload, expected {size}" in str(lost)
        assert "RTM_NEWLINK seq 5 at offset 0" in str(lost)


@FUZZ
@given(payload=st.binary(max_size=6))
def test_vxlan_proxy_of_the_wrong_size_is_named(payload: bytes) -> None:
    """IFLA_VXLAN_PROXY is one byte; any other size is an error naming it."""
    body = c.IFINFOMSG.pack(0, 0, 9, 0, 0) + c.attr_str(c.IFLA_IFNAME, "vx") + c.attr_u32(c.IFLA_MTU, 1450)
    data = c.attr_nested(
        c.IFLA_INFO_DATA, c.attr_u32(c.IFLA_VXLAN_ID, 5), c.attr(c.IFLA_VXLAN_PROXY, payload)
    )
    body += c.attr_nested(c.IFLA_LINKINFO, c.attr_str(c.IFLA_INFO_KIND, "vxlan"), data)
    seen, lost = read_one(c.message(c.RTM_NEWLINK, 0, 5, body))
    if len(payload) == 1:
        assert lost is None and [link.vxlan_proxy for link in seen] == [bool(payload[0])]
    else:
        assert seen == [] and f"IFLA_VXLAN_PROXY has {len(payload)} bytes of payload, expected 1" in str(lost)


ADDR_V4 = c.IFADDRMSG.pack(c.AF_INET, 24, 0, 0, 2)
ROUTE_V4 = c.RTMSG.pack(c.AF_INET, 0, 0, 0, c.RT_TABLE_MAIN, 4, 0, 1, 0)
ROUTE_V6 = c.RTMSG.pack(c.AF_INET6, 64, 0, 0, c.RT_TABLE_MAIN, 4, 0, 1, 0)
NEIGH_V4 = c.NDMSG.pack(c.AF_INET, 2, c.NUD_PERMANENT, 0, 1)
FDB = c.NDMSG.pack(c.AF_BRIDGE, 2, c.NUD_PERMANENT, 0, 0)
LINK = c.IFINFOMSG.pack(0, 0, 1, 0, 0)
BAD_FIELDS = {
    "mtu of 2 bytes": (
        link_message("eth0", seq=8, mtu=b"\x05\xdc"),
        "IFLA_MTU has 2 bytes of payload, expected 4",
    ),
    "ipv4 address of 3 bytes": (
        c.message(c.RTM_NEWADDR, 0, 3, ADDR_V4 + c.attr(c.IFA_ADDRESS, b"\xc6\x12\x00")),
        "malformed address message, RTM_NEWADDR seq 3 at offset 0 (32 bytes): IFA_ADDRESS has 3 bytes",
    ),
    "ipv6 route to 4 bytes": (
        c.message(c.RTM_NEWROUTE, 0, 4, ROUTE_V6 + c.attr(c.RTA_DST, b"\0" * 4)),
        "RTA_DST has 4 bytes of payload, expected 16",
    ),
    "oif of 1 byte": (
        c.message(c.RTM_NEWROUTE, 0, 4, ROUTE_V4 + c.attr(c.RTA_OIF, b"\1")),
        "RTA_OIF has 1 bytes of payload, expected 4",
    ),
    "neighbour of 2 bytes": (
        c.message(c.RTM_NEWNEIGH, 0, 6, NEIGH_V4 + c.attr(c.NDA_DST, b"\1\2")),
        "NDA_DST has 2 bytes of payload, expected 4",
    ),
    "vni of 2 bytes": (
        c.message(c.RTM_NEWNEIGH, 0, 6, FDB + c.attr(c.NDA_VNI, b"\1\2")),
        "NDA_VNI has 2 bytes of payload, expected 4",
    ),
    "short ifinfomsg": (
        c.message(c.RTM_NEWLINK, 0, 8, b"\0" * 12),
        "12-byte body is shorter than its ifinfomsg (16 bytes)",
    ),
    "no name": (
        c.message(c.RTM_NEWLINK, 0, 8, LINK + c.attr_u32(c.IFLA_MTU, 1500)),
        "no IFLA_IFNAME attribute",
    ),
    "attribute past the end": (
        c.message(c.RTM_NEWLINK, 0, 8, LINK + b"\x40\0\3\0lo\0\0"),
        "attribute 3 at offset 32 has length 64, 8 bytes left",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_bad_field_is_reported_with_the_message(case: str) -> None:
    message, expected = BAD_FIELDS[case]
    seen, lost = read_one(message)
    assert seen == []
    assert lost is not None and expected in str(lost), str(lost)
    assert isinstance(lost.__cause__, MalformedMessage)


def test_families_outside_ip_are_skipped_not_errors() -> None:
    """An address or route of another family (MPLS, multicast routing, ...) is not a Route."""
    mpls = c.IFADDRMSG.pack(28, 20, 0, 0, 2)
    ipmr = c.RTMSG.pack(128, 32, 0, 0, c.RT_TABLE_MAIN, 4, 0, 1, 0)
    addr = c.message(c.RTM_NEWADDR, 0, 1, mpls + c.attr(c.IFA_ADDRESS, b"\1\2\3"))
    route = c.message(c.RTM_NEWROUTE, 0, 2, ipmr + c.attr(c.RTA_DST, b"\1"))
    seen, lost = read_one(addr + route)
    assert (seen, lost) == ([None, None], None)


# --- read_events: the contract the live model relies on ------------------------------------------


def test_bad_message_mid_batch_still_handles_the_rest_then_events_lost() -> None:
    datagram = (
        link_message("a", index=2) + link_message("bad", index=3, mtu=b"\0\0") + link_message("b", index=4)
    )
    seen, lost = read_one(datagram)
    assert [x.name for x in seen if isinstance(x, parse.RawLink)] == ["a", "b"]
    assert lost is not None and "IFLA_MTU has 2 bytes" in str(lost)
    assert str(lost).startswith("events: events lost: malformed link message, RTM_NEWLINK seq 0 at offset 48")


def test_bad_header_mid_batch_handles_what_came_before() -> None:
    datagram = link_message("a", index=2) + with_length(link_message("b", index=3), 500)
    seen, lost = read_one(datagram)
    assert [x.name for x in seen if isinstance(x, parse.RawLink)] == ["a"]
    assert lost is not None and "RTM_NEWLINK seq 0 at offset 48 has length 500, 48 bytes left" in str(lost)


def test_truncated_event_datagram_is_lost_events_and_the_next_one_reads() -> None:
    big = b"".join(link_message(f"l{i}", index=i) for i in range(1, 1600))
    assert len(big) > 64 * 1024
    seen: list[object] = []
    with event_pair() as (nl, peer):
        peer.send(big)
        peer.send(link_message("after", index=9))

        def handle(buf: bytearray, kind: int, start: int, end: int) -> None:
            seen.append(parse.link(buf, start, end).name)

        with pytest.raises(EventsLost, match=f"a {len(big)}-byte netlink datagram was truncated"):
            nl.read_events(handle, what="events of ns1")
        assert seen == []
        nl.read_events(handle)
    assert seen == ["after"]


def test_enobufs_is_events_lost() -> None:
    class Overflowed:
        def recv_into(self, buf: bytearray, nbytes: int = 0, flags: int = 0) -> int:
            raise OSError(errno.ENOBUFS, "No buffer space available")

    with pytest.raises(EventsLost, match="events of ns1: events lost: No buffer space available") as lost:
        NetlinkSocket(Overflowed()).read_events(lambda *args: None, what="events of ns1")  # type: ignore[arg-type]
    assert lost.value.errno == errno.ENOBUFS
    assert not isinstance(lost.value, OSError)


def test_handler_errors_other_than_malformed_propagate() -> None:
    with event_pair() as (nl, peer):
        peer.send(link_message("a"))

        def handle(*args: object) -> None:
            raise KeyError("a bug in the handler")

        with pytest.raises(KeyError):
            nl.read_events(handle)


def test_kernel_enobufs_on_an_event_socket_is_events_lost(host_ns) -> None:
    events = NetlinkSocket.open(groups=[c.RTNLGRP_LINK])
    try:
        events.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        events.sock.setblocking(False)
        batch = "".join(f"link add ev{i} type veth peer name ew{i}\n" for i in range(40))
        host_ns.run(["ip", "-batch", "-"], input=batch)
        with pytest.raises(EventsLost) as lost:
            for _ in range(100):
                events.read_events(lambda *args: None)
        assert lost.value.errno == errno.ENOBUFS
    finally:
        events.close()


# --- dumps: NLM_F_DUMP_INTR, NLMSG_DONE's errno, truncation ---------------------------------------


class FakeKernel:
    """The far end of a socketpair that answers each request: answer(type, seq, nth of that type)
    returns the datagrams to send back. `requests` counts requests by type."""

    def __init__(self, answer: Callable[[int, int, int], list[bytes]]) -> None:
        ours, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        ours.settimeout(5)
        self.sock = NetlinkSocket(ours)
        self.answer = answer
        self.requests: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.peer.settimeout(0.05)
        while not self._stop.is_set():
            try:
                request = self.peer.recv(65536)
            except TimeoutError:
                continue
            _length, kind, _flags, seq, _pid = c.NLMSG_HDR.unpack_from(request)
            nth = self.requests.get(kind, 0) + 1
            self.requests[kind] = nth
            for datagram in self.answer(kind, seq, nth):
                self.peer.send(datagram)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        self.peer.close()


@contextmanager
def fake_kernel(answer: Callable[[int, int, int], list[bytes]]) -> Iterator[FakeKernel]:
    kernel = FakeKernel(answer)
    try:
        yield kernel
    finally:
        kernel.close()


INFO = ns.NamespaceInfo("ns-x", 1, "named", "/run/netns/ns-x")
MULTI, INTR = c.NLM_F_MULTI, c.NLM_F_MULTI | c.NLM_F_DUMP_INTR


def links_answer(links: Callable[[int, int], list[bytes]]) -> Callable[[int, int, int], list[bytes]]:
    """A fake kernel whose link dump is links(seq, nth) and whose other dumps are empty."""

    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        return links(seq, nth) if kind == c.RTM_GETLINK else [done_message(seq)]

    return answer


@pytest.mark.parametrize("where", ["on a message", "on NLMSG_DONE only"])
def test_dump_interrupted_every_time_is_retried_then_named(where: str) -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        first = link_message("lo", index=1, seq=seq, flags=INTR if where == "on a message" else MULTI)
        second = link_message(f"v{nth}", index=2, seq=seq, flags=MULTI)
        return [first + second, done_message(seq, flags=INTR if where != "on a message" else MULTI)]

    with fake_kernel(links_answer(links)) as kernel:
        with pytest.raises(DumpInterrupted) as err:
            dump_namespace(INFO, kernel.sock, neighbours=False)
        assert str(err.value).startswith(f"links of ns-x: dump interrupted {DUMP_ATTEMPTS} times in a row")
        assert kernel.requests[c.RTM_GETLINK] == DUMP_ATTEMPTS


def test_dump_clean_after_interruptions_returns_only_the_clean_read() -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        flags = INTR if nth < 3 else MULTI
        msgs = [link_message(f"attempt{nth}-{i}", index=i, seq=seq, flags=flags) for i in (1, 2)]
        return [msgs[0], msgs[1], done_message(seq)]

    with fake_kernel(links_answer(links)) as kernel:
        d = dump_namespace(INFO, kernel.sock, neighbours=False)
        assert [x.name for x in d.raw_links] == ["attempt3-1", "attempt3-2"]
        assert kernel.requests[c.RTM_GETLINK] == 3


def test_only_the_interrupted_dump_is_read_again() -> None:
    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        if kind == c.RTM_GETLINK:
            return [link_message(f"read{nth}", index=1, seq=seq, flags=MULTI) + done_message(seq)]
        return [done_message(seq, flags=INTR if kind == c.RTM_GETROUTE and nth == 1 else MULTI)]

    with fake_kernel(answer) as kernel:
        d = dump_namespace(INFO, kernel.sock, neighbours=False)
        assert [x.name for x in d.raw_links] == ["read1"]
        assert kernel.requests == {c.RTM_GETLINK: 1, c.RTM_GETADDR: 1, c.RTM_GETROUTE: 2}


@pytest.mark.parametrize(
    ("err", "text", "expected"),
    [
        (errno.EINTR, None, "dump links of ns-x: Interrupted system call (errno EINTR)"),
        (errno.EBUSY, None, "dump links of ns-x: Device or resource busy (errno EBUSY)"),
        (
            errno.EINVAL,
            "invalid filter",
            "dump links of ns-x: Invalid argument (errno EINVAL): invalid filter",
        ),
    ],
)
def test_dump_done_errno_raises(err: int, text: str | None, expected: str) -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        return [link_message("lo", index=1, seq=seq, flags=MULTI), done_message(seq, err=err, text=text)]

    with fake_kernel(links_answer(links)) as kernel, pytest.raises(NetcoreError) as raised:
        dump_namespace(INFO, kernel.sock, neighbours=False)
    assert str(raised.value) == expected
    assert raised.value.errno == err
    assert not isinstance(raised.value, DumpInterrupted)
    if err == errno.EBUSY:
        assert isinstance(raised.value, Busy)


def test_dump_truncated_datagram_is_malformed_and_names_the_dump() -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        big = b"".join(link_message(f"l{i}", index=i, seq=seq, flags=MULTI) for i in range(1, 1600))
        return [big, done_message(seq)]

    with (
        fake_kernel(links_answer(links)) as kernel,
        pytest.raises(MalformedMessage, match="links of ns-x: a [0-9]+-byte netlink datagram was truncated"),
    ):
        dump_namespace(INFO, kernel.sock, neighbours=False)


def test_dump_message_longer_than_its_datagram_names_the_dump() -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        return [with_length(link_message("lo", index=1, seq=seq, flags=MULTI), 4000), done_message(seq)]

    with fake_kernel(links_answer(links)) as kernel, pytest.raises(MalformedMessage) as raised:
        dump_namespace(INFO, kernel.sock, neighbours=False)
    assert str(raised.value).startswith("links of ns-x: RTM_NEWLINK seq 1 at offset 0 has length 4000")


def test_dump_parser_error_names_the_message() -> None:
    def links(seq: int, nth: int) -> list[bytes]:
        ok = link_message("lo", index=1, seq=seq, flags=MULTI)
        return [ok + link_message("bad", index=2, seq=seq, flags=MULTI, mtu=b"\1"), done_message(seq)]

    with fake_kernel(links_answer(links)) as kernel, pytest.raises(MalformedMessage) as raised:
        dump_namespace(INFO, kernel.sock, neighbours=False)
    assert str(raised.value) == (
        "malformed link message, RTM_NEWLINK seq 1 at offset 48 (48 bytes): "
        "IFLA_MTU has 1 bytes of payload, expected 4"
    )


@FUZZ
@given(datagram=mutated())
def test_mutated_dump_replies_raise_only_netcore_errors(datagram: bytes) -> None:
    """A dump whose reply is mutated corpus messages (seq rewritten to match) ends in a result or a
    NetcoreError, never anything else."""

    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        data = bytearray(datagram)
        pos = 0
        while pos + 16 <= len(data):  # give every message the request's seq, so the dump reads it
            struct.pack_into("=I", data, pos + 8, seq)
            length = struct.unpack_from("=I", data, pos)[0]
            if length < 16:
                break
            pos += (length + 3) & ~3
        return [bytes(data), done_message(seq)]

    with fake_kernel(answer) as kernel, suppress(NetcoreError):
        dump_namespace(INFO, kernel.sock)


def test_short_ack_is_malformed() -> None:
    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        return [c.message(c.NLMSG_ERROR, 0, seq, b"\0\0")]

    short = "NLMSG_ERROR seq 1: 2-byte body has no errno"
    with fake_kernel(answer) as kernel, pytest.raises(MalformedMessage, match=short):
        kernel.sock.run([rq.link_delete(name="x")])


def test_query_reply_truncated_is_malformed() -> None:
    def answer(kind: int, seq: int, nth: int) -> list[bytes]:
        return [link_message("lo", seq=seq)[:30]]

    with (
        fake_kernel(answer) as kernel,
        pytest.raises(MalformedMessage, match="RTM_NEWLINK seq 1 at offset 0 has length 48, 30 bytes left"),
    ):
        kernel.sock.query(c.RTM_GETLINK, rq.link_get(name="lo"), action="look up link", obj="lo")


# --- the kernel -------------------------------------------------------------------------------------


def test_kernel_dump_interrupted_by_churn_is_detected_and_retried(host_ns, monkeypatch) -> None:
    """Links added and removed while links are dumped: the kernel flags dumps NLM_F_DUMP_INTR, and
    dump() never returns a flagged one; retried, it returns every link once."""
    batch = "".join(f"link add d{i} type veth peer name e{i}\n" for i in range(150))
    host_ns.run(["ip", "-batch", "-"], input=batch)
    expected = {f"{end}{i}" for i in range(150) for end in "de"}
    reader, churner = NetlinkSocket.open(), NetlinkSocket.open()
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            churner.run([rq.veth_create(name="churn0", peer="churn1")])
            churner.run([rq.link_delete(name="churn0")])

    def links() -> list[str]:
        replies = reader.dump(c.RTM_GETLINK, c.IFINFOMSG.pack(0, 0, 0, 0, 0), what="links")
        return [
            parse.link(buf, start, end).name for buf, kind, start, end in replies if kind == c.RTM_NEWLINK
        ]

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    interrupted = complete = 0
    try:
        with monkeypatch.context() as once:
            once.setattr("netcore.netlink.socket.DUMP_ATTEMPTS", 1)
            for _ in range(500):
                try:
                    links()
                except DumpInterrupted as exc:
                    assert str(exc).startswith("links: dump interrupted 1 times in a row"), str(exc)
                    interrupted += 1
                    if interrupted == 3:
                        break
        for _ in range(20):
            with suppress(DumpInterrupted):
                names = links()
                assert len(names) == len(set(names)), "a link listed twice"
                assert expected <= set(names), "links missing"
                complete += 1
    finally:
        stop.set()
        thread.join()
        reader.close()
        churner.close()
    assert interrupted == 3, "the kernel flagged no dump as interrupted"
    assert complete > 0, "no dump got through 5 attempts"
