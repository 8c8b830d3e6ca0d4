"""The firewall on the path: what a namespace's nftables ruleset (`nft -j list ruleset`, which also
holds iptables-nft's tables, Docker's among them) does with one packet at one hook.

Every base chain of the hook, in the packet's families (inet and ip, or inet and ip6), runs in
priority order, as the kernel runs them: a drop or reject in any of them is final, an accept ends only
that chain. Rules are matched on what the walk knows of a new packet: input and output interface
names, addresses, layer 4 protocol, ports and conntrack state "new"; jumps, gotos and returns are
followed, named sets read. A match it cannot read (iptables-nft's `xt` matches, marks, ...) makes
its rule not match, and the verdict lists it, so a drop can say "unless rule N, which I cannot read".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netcore.ipam import IPAddress

MAX_DEPTH = 16  # nested jumps followed


@dataclass(frozen=True)
class Packet:
    """The packet as a rule sees it at a hook."""

    saddr: IPAddress | None
    daddr: IPAddress
    protocol: str  # tcp, udp, icmp
    dport: int | None = None
    iif: str | None = None
    oif: str | None = None
    daddr_local: bool | None = None  # whether daddr is an address of the namespace (`fib daddr type`)


@dataclass
class Verdict:
    """`verdict` accept or drop; for a drop, the rule (or chain policy) that decided, as `where` (family
    table chain, and the rule's handle) and `rule` (its text); `unread`: rules that could not be read."""

    verdict: str = "accept"
    where: str = ""
    rule: str = ""
    handle: int | None = None
    unread: list[str] = field(default_factory=list)
    docker: bool = False  # the drop is the policy of a filter FORWARD chain Docker manages (DOCKER-USER)
    dnat: list[tuple[IPAddress, int | None]] = field(default_factory=list)  # a nat chain's targets


class _Ruleset:
    def __init__(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.chains: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self.rules: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
        self.sets: dict[tuple[str, str, str], list[Any]] = {}
        for item in items:
            if "chain" in item:
                c = item["chain"]
                self.chains[(c["family"], c["table"], c["name"])] = c
            elif "rule" in item:
                r = item["rule"]
                self.rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
            elif "set" in item or "map" in item:
                s = item.get("set") or item["map"]
                self.sets[(s["family"], s["table"], s["name"])] = list(s.get("elem") or [])


def _base_chains(rules: _Ruleset, hook: str, kind: str, packet: Packet) -> list[Mapping[str, Any]]:
    families = {"inet", "ip" if packet.daddr.version == 4 else "ip6"}
    return sorted(
        (
            c
            for c in rules.chains.values()
            if c.get("hook") == hook and c["family"] in families and c.get("type") == kind
        ),
        key=lambda c: (c.get("prio", 0), c["family"], c["table"]),
    )


def firewall_verdict(ruleset: Sequence[Mapping[str, Any]], *, hook: str, packet: Packet) -> Verdict:
    """What the ruleset's filter chains at `hook` (input, forward, output) do with `packet`."""
    rules = _Ruleset(ruleset)
    verdict = Verdict()
    for chain in _base_chains(rules, hook, "filter", packet):
        key = (chain["family"], chain["table"], chain["name"])
        decided = _Chain(rules, packet, verdict).run(key, depth=0)
        if decided is None and chain.get("policy") == "drop":
            verdict.verdict, verdict.where, verdict.rule = (
                "drop",
                " ".join(key),
                f"policy drop of chain {key[2]}",
            )
            verdict.docker = key[2] == "FORWARD" and (key[0], key[1], "DOCKER-USER") in rules.chains
            return verdict
        if decided == "drop":
            return verdict
    return verdict


def nat_verdict(ruleset: Sequence[Mapping[str, Any]], *, hook: str, packet: Packet) -> Verdict:
    """What the ruleset's nat chains at `hook` (prerouting, output) do with a new connection's first
    packet: `dnat` lists where it goes (every target of a numgen or jhash map: the kernel picks one
    per connection), with the rule in `where` and `handle`; empty when nothing rewrites it."""
    rules = _Ruleset(ruleset)
    verdict = Verdict()
    for chain in _base_chains(rules, hook, "nat", packet):
        _Chain(rules, packet, verdict).run((chain["family"], chain["table"], chain["name"]), depth=0)
        if verdict.dnat:
            break
    return verdict


class _Chain:
    def __init__(self, rules: _Ruleset, packet: Packet, verdict: Verdict) -> None:
        self.rules = rules
        self.packet = packet
        self.verdict = verdict

    def run(self, key: tuple[str, str, str], *, depth: int) -> str | None:
        """accept, drop, or None (fell off the end, or returned)."""
        if depth > MAX_DEPTH:
            return None
        for rule in self.rules.rules.get(key, []):
            outcome = self.rule(key, rule, depth)
            if outcome == "return":
                return None
            if outcome is not None:
                return outcome
        return None

    def rule(self, key: tuple[str, str, str], rule: Mapping[str, Any], depth: int) -> str | None:
        for statement in rule.get("expr", []):
            if "match" in statement:
                matched = self.match(key, statement["match"])
                if matched is None:
                    self.verdict.unread.append(f"{' '.join(key)} handle {rule.get('handle')}")
                    return None
                if not matched:
                    return None
            elif "xt" in statement:
                self.verdict.unread.append(
                    f"{' '.join(key)} handle {rule.get('handle')} (iptables {statement['xt'].get('name')})"
                )
                return None
            elif "accept" in statement:
                return "accept"
            elif "drop" in statement or "reject" in statement:
                self.verdict.verdict = "drop"
                self.verdict.where = " ".join(key)
                self.verdict.handle = rule.get("handle")
                self.verdict.rule = _text(rule)
                return "drop"
            elif "return" in statement:
                return "return"
            elif "dnat" in statement:
                self.verdict.dnat = _dnat_targets(statement["dnat"])
                self.verdict.where, self.verdict.handle = " ".join(key), rule.get("handle")
                self.verdict.rule = _text(rule)
                return "accept"
            elif "jump" in statement or "goto" in statement:
                target = (statement.get("jump") or statement["goto"])["target"]
                outcome = self.run((key[0], key[1], target), depth=depth + 1)
                if outcome is not None or "goto" in statement:
                    return outcome or "return"
        return None

    def match(self, key: tuple[str, str, str], match: Mapping[str, Any]) -> bool | None:
        """Whether the packet matches; None when the walk cannot tell."""
        value = self.value(match.get("left"))
        if value is _UNKNOWN:
            return None
        right = match.get("right")
        found = self.contains(key, right, value)
        if found is None:
            return None
        return not found if match.get("op") == "!=" else found

    def value(self, left: object) -> object:
        p = self.packet
        if not isinstance(left, Mapping):
            return _UNKNOWN
        if "meta" in left:
            meta = left["meta"].get("key")
            return {
                "iifname": p.iif,
                "oifname": p.oif,
                "l4proto": p.protocol,
                "nfproto": "ipv4" if p.daddr.version == 4 else "ipv6",
            }.get(meta, _UNKNOWN)
        if "payload" in left:
            payload = left["payload"]
            field_ = payload.get("field")
            if payload.get("protocol") in ("ip", "ip6"):
                return {"saddr": p.saddr, "daddr": p.daddr}.get(field_, _UNKNOWN)
            if payload.get("protocol") in ("tcp", "udp", "th") and field_ == "dport":
                wanted = payload["protocol"]
                return p.dport if wanted in ("th", p.protocol) else _NO
            if payload.get("protocol") == "ip" and field_ == "protocol":
                return p.protocol
        if "ct" in left and left["ct"].get("key") == "state":
            return "new"
        if "fib" in left and left["fib"].get("result") == "type" and left["fib"].get("flags") == ["daddr"]:
            return _UNKNOWN if p.daddr_local is None else ("local" if p.daddr_local else "unicast")
        return _UNKNOWN

    def contains(self, key: tuple[str, str, str], right: object, value: object) -> bool | None:
        if value is _NO or value is None:
            return False
        if isinstance(right, str) and right.startswith("@"):
            elements = self.rules.sets.get((key[0], key[1], right[1:]))
            return None if elements is None else any(self.contains(key, e, value) for e in elements)
        if isinstance(right, Mapping) and "set" in right:
            return any(self.contains(key, e, value) for e in right["set"])
        if isinstance(right, list):
            return any(self.contains(key, e, value) for e in right)
        if isinstance(right, Mapping) and "prefix" in right:
            network = ipaddress.ip_network(
                f"{right['prefix']['addr']}/{right['prefix']['len']}", strict=False
            )
            return isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and value in network
        if isinstance(right, Mapping) and "range" in right:
            low, high = right["range"]
            return isinstance(value, int) and low <= value <= high
        if isinstance(right, Mapping) and "elem" in right:
            return self.contains(key, right["elem"].get("val"), value)
        if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            try:
                return value == ipaddress.ip_address(str(right))
            except ValueError:
                return None
        if isinstance(value, str) and isinstance(right, str) and right.endswith("*"):
            return value.startswith(right[:-1])  # an interface name wildcard
        return value == right


def _dnat_targets(dnat: Mapping[str, Any]) -> list[tuple[IPAddress, int | None]]:
    """Where a dnat statement sends a connection: one address (and port), or each target of a map."""
    addr, port = dnat.get("addr"), dnat.get("port")
    if isinstance(addr, Mapping) and "map" in addr:
        entries = addr["map"].get("data", {}).get("set", [])
        values = [data for _, data in entries]
    else:
        values = [addr]
    found: list[tuple[IPAddress, int | None]] = []
    for value in values:
        if isinstance(value, Mapping) and "concat" in value:
            value, port = value["concat"][0], value["concat"][1]
        try:
            found.append((ipaddress.ip_address(str(value)), int(port) if port is not None else None))
        except ValueError:
            continue
    return found


_UNKNOWN = object()
_NO = object()  # a field of another protocol: never matches


def _text(rule: Mapping[str, Any]) -> str:
    """A short text of a rule's matches and verdict, for people (not nft syntax)."""
    parts = []
    for statement in rule.get("expr", []):
        if "match" in statement:
            m = statement["match"]
            parts.append(f"{_side(m.get('left'))} {m.get('op')} {_side(m.get('right'))}")
        elif any(k in statement for k in ("accept", "drop", "reject")):
            parts.append(next(k for k in ("accept", "drop", "reject") if k in statement))
    return " ".join(parts)


def _side(value: object) -> str:
    if isinstance(value, Mapping):
        if "meta" in value:
            return str(value["meta"].get("key"))
        if "payload" in value:
            return f"{value['payload'].get('protocol')} {value['payload'].get('field')}"
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "set" in value:
            return "{" + ", ".join(_side(v) for v in value["set"]) + "}"
        if "range" in value:
            return "-".join(str(v) for v in value["range"])
        if "ct" in value:
            return f"ct {value['ct'].get('key')}"
    return str(value)
