"""Turn conntrack flows into "talks to" edges between namespaces (state kind `traffic`).

One edge per client namespace, server namespace, protocol and server port, keyed
``"{client}|{server}|{protocol}|{port}"`` (port "" for protocols without ports), with the object of
netcore/schema/traffic.schema.json. A conversation is placed with the snapshot's addresses:

- its client is the namespace whose table shows it when that namespace owns the original source,
  else the one namespace of the host that owns it (a flow another namespace only forwarded, or
  received). A source no namespace of the host owns (or several do, and none of them shows the
  flow) places no client: that flow makes no edge.
- its server owns the reply direction's source, the address really reached after any DNAT: the
  namespace whose table shows it if that one owns it, else the one owner; "" when none (or several)
  of the host's namespaces own it, with `server_address` saying which address it was.
- a conversation within one namespace, over loopback (127.0.0.0/8, ::1), or to a multicast or
  broadcast address makes no edge.

A conversation between two namespaces of the host shows in both tables (and in any that forwards
it with conntrack on): it is counted once, known by its client address and port, server address
and port, and protocol; `seen_in` lists every namespace whose table showed it, and its counters are
the largest any of them holds. It counts as ended, and so is left out, as soon as one table shows a
TCP state past ESTABLISHED (FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE): an edge whose flows
have all ended is gone. Packets and bytes add up both directions of the live flows (0 where the
namespace had no conntrack accounting when the flow began). Conversations from one client to
several addresses outside the host on one protocol and port are one edge (server ""): its
`server_address` is the lowest of them, so that it does not change from one read to the next.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

from netcore.model import Snapshot
from netcore.netlink.conntrack import TCP_ENDED, Flow

KIND = "traffic"
PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
PORTED = frozenset({6, 17, 33, 132, 136})  # tcp, udp, dccp, sctp, udplite: the server has a port
_FAMILY = {4: socket.AF_INET, 16: socket.AF_INET6}
_LOOPBACK6 = bytes(15) + b"\x01"
_BROADCAST = b"\xff\xff\xff\xff"
_TCP = 6


def address_owners(snapshot: Snapshot) -> dict[bytes, tuple[str, ...]]:
    """Each address of the snapshot (packed) → the namespaces that hold it."""
    owners: dict[bytes, list[str]] = {}
    for address in snapshot.addresses:
        family = socket.AF_INET6 if ":" in address.address else socket.AF_INET
        try:
            packed = socket.inet_pton(family, address.address)
        except OSError:
            continue
        holders = owners.setdefault(packed, [])
        if address.netns not in holders:
            holders.append(address.netns)
    return {packed: tuple(holders) for packed, holders in owners.items()}


def _unrouted(address: bytes) -> bool:
    """Loopback, multicast or broadcast: no conversation between namespaces goes there."""
    if len(address) == 4:
        return address[0] == 127 or 224 <= address[0] < 240 or address == _BROADCAST
    return address == _LOOPBACK6 or address[0] == 0xFF


def _place(address: bytes, viewer: str, owners: Mapping[bytes, tuple[str, ...]]) -> str | None:
    """The namespace holding `address`: the viewer if it does, else its one owner (None otherwise)."""
    holders = owners.get(address, ())
    if viewer in holders:
        return viewer
    return holders[0] if len(holders) == 1 else None


class _Conversation:
    __slots__ = ("client", "server", "flow", "seen_in", "ended", "packets", "bytes")

    def __init__(self, client: str, server: str, flow: Flow) -> None:
        self.client = client
        self.server = server
        self.flow = flow
        self.seen_in: set[str] = set()
        self.ended = False
        self.packets = 0
        self.bytes = 0


def traffic_edges(flows_by_ns: Mapping[str, Sequence[Flow]], snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    """The "talks to" edges of the flows each namespace's table holds (see the module), keyed as the
    agent protocol carries them."""
    owners = address_owners(snapshot)
    conversations: dict[tuple, _Conversation] = {}
    for viewer, flows in flows_by_ns.items():
        for flow in flows:
            src, server_address = flow.src, flow.reply_src
            known_by = (flow.protocol, src, flow.sport, server_address, flow.reply_sport)
            talk = conversations.get(known_by)
            if talk is None:
                if _unrouted(src) or _unrouted(server_address):
                    continue
                client = _place(src, viewer, owners)
                if client is None:
                    continue
                server = _place(server_address, viewer, owners) or ""
                if server == client:
                    continue
                talk = conversations[known_by] = _Conversation(client, server, flow)
            talk.seen_in.add(viewer)
            if flow.tcp_state is not None and flow.tcp_state in TCP_ENDED:
                talk.ended = True
            if flow.packets > talk.packets:
                talk.packets = flow.packets
            if flow.bytes > talk.bytes:
                talk.bytes = flow.bytes
    edges: dict[str, dict[str, Any]] = {}
    seen: dict[str, set[str]] = {}
    reached: dict[str, bytes] = {}  # the lowest address each edge reached (several, for server "")
    for talk in conversations.values():
        if talk.ended:
            continue
        flow = talk.flow
        port = flow.reply_sport if flow.protocol in PORTED else None
        protocol = PROTOCOLS.get(flow.protocol) or str(flow.protocol)
        key = f"{talk.client}|{talk.server}|{protocol}|{'' if port is None else port}"
        edge = edges.get(key)
        if edge is None or flow.reply_src < reached[key]:
            reached[key] = flow.reply_src
        if edge is None:
            edge = edges[key] = {
                "client": talk.client,
                "server": talk.server,
                "server_address": "",
                "protocol": protocol,
                "port": port,
                "flows": 0,
                "packets": 0,
                "bytes": 0,
                "seen_in": [],
            }
            seen[key] = set()
        edge["flows"] += 1
        edge["packets"] += talk.packets
        edge["bytes"] += talk.bytes
        seen[key] |= talk.seen_in
    for key, edge in edges.items():
        edge["seen_in"] = sorted(seen[key])
        address = reached[key]
        edge["server_address"] = socket.inet_ntop(_FAMILY[len(address)], address)
    return edges
