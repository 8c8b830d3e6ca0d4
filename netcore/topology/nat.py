"""Published ports and outbound NAT: a topology's nftables table, as wanted and as found, and the
batch that turns one into the other.

Each topology has its own table, ``inet switchboard-<topology>``, in the host namespace (never one
shared with other topologies: deleting a table deletes everything in it, so a shared one could not
be removed safely while another topology adds to it). Its base chains, each made only when a rule
needs it:

=============  ================================================  ============================================
chain          hook                                              rules
=============  ================================================  ============================================
prerouting     nat, prerouting, priority dstnat (-100)           DNAT of published ports: what arrives
output         nat, output, priority dstnat (-100)               DNAT of published ports: what the host sends
postrouting    nat, postrouting, priority srcnat (100)           masquerade: ``nat: true`` networks; hairpin;
                                                                 127.0.0.0/8 sources leaving by a bridge
localnet       filter, prerouting, priority raw (-300)           drop 127.0.0.0/8 arriving on a bridge that
                                                                 has route_localnet
=============  ================================================  ============================================

Published on 127.0.0.1 (or on every IPv4 address, which includes it): a connection the host makes to
127.0.0.1:8080 is DNATed in `output` to the node's address, and the kernel then routes a packet with a
127.0.0.1 source out of the network's bridge, which it refuses unless the bridge has
``net.ipv4.conf.<bridge>.route_localnet=1`` (netcore sets it, in the host namespace only, on exactly
the bridges that need it); `postrouting` masquerades the 127.0.0.0/8 source to the bridge's address so
the node's answer comes back; and since route_localnet would also let a node send packets *to*
127.0.0.0/8 of the host, `localnet` drops whatever arrives on that bridge to or from 127.0.0.0/8
(before conntrack: answers to the masqueraded connections arrive for the bridge's address). This is
what Docker does without its userland proxy (and kube-proxy for node ports on localhost). IPv6 has no
route_localnet, so a port published on every IPv6 address does not catch [::1] (the kernel would drop
it), and ``::1`` is refused as a host_ip.

Hairpin: a node reaching a published port of the host that leads back into its own network would get
the answer straight from the other node, not from the host; `postrouting` masquerades traffic of the
subnet that a published port sent back out of its bridge (``ct status dnat``), as kube-proxy does.

Conflicts found before anything changes (check_conflicts, check_host_conflicts): a chain of ours with
another hook; a published port a socket of the host namespace listens on (its traffic would be taken);
a port another topology's table publishes.

Ownership: rule comments. Every rule carries ``switchboard:<topology> <key> #<digest>``: the key
names it in plan (``publish 127.0.0.1:8080/tcp``, ``nat front``), the digest is a hash of its chain
and expression, so a rule whose digest differs from the wanted one is replaced (nft prints an
expression in its own normal form, which is not the one sent, so expressions are never compared).
destroy and apply delete only rules carrying this topology's comment, then our chains left empty,
then the table when it holds nothing else (nft 1.0.6 keeps no comment on tables or chains given as
JSON, so these two are known by their names; neither is removed while it holds anything that is not
ours).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from netcore import names, nft
from netcore.errors import AlreadyExists, Unsupported
from netcore.ipam import IPAddress
from netcore.topology.spec import PortSpec, TopologySpec

FAMILY = "inet"
TABLE_PREFIX = "switchboard-"


@dataclass(frozen=True, slots=True)
class ChainDef:
    name: str
    type: str
    hook: str
    prio: int

    def describe(self) -> str:
        return f"type {self.type} hook {self.hook} priority {self.prio}"


#: The base chains of a topology's table, in the order they are created.
CHAINS: dict[str, ChainDef] = {
    c.name: c
    for c in (
        ChainDef("localnet", "filter", "prerouting", -300),
        ChainDef("prerouting", "nat", "prerouting", -100),
        ChainDef("output", "nat", "output", -100),
        ChainDef("postrouting", "nat", "postrouting", 100),
    )
}
_IP = {4: "ip", 6: "ip6"}
_NFPROTO = {4: "ipv4", 6: "ipv6"}
_LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


def table_name(topology: str) -> str:
    """The nftables table (family inet) holding `topology`'s published ports and NAT."""
    return f"{TABLE_PREFIX}{topology}"


def _owner(topology: str) -> str:
    return f"{names.ALIAS_PREFIX}:{topology}"


def rule_comment(topology: str, key: str, digest: str) -> str:
    """The comment marking a rule as `topology`'s: "switchboard:demo publish 127.0.0.1:8080/tcp #1a2b3c4d"."""
    comment = f"{_owner(topology)} {key} #{digest}"
    if len(comment.encode()) > nft.MAX_COMMENT_BYTES:
        raise ValueError(f"rule comment {comment!r} is longer than {nft.MAX_COMMENT_BYTES} bytes")
    return comment


def parse_rule_comment(comment: object, topology: str) -> tuple[str, str] | None:
    """(key, digest) of a rule comment made for `topology`, ("", "") for one carrying its owner but not
    in the current form, or None when the rule is not `topology`'s."""
    if not isinstance(comment, str) or not comment.startswith(f"{_owner(topology)} "):
        return None
    body = comment[len(_owner(topology)) + 1 :]
    key, sep, digest = body.rpartition(" #")
    return (key, digest) if sep and key else ("", "")


# -- what the file asks for -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleWant:
    """One rule of the table: `key` names it within its chain, `detail` says what it does (for plan)."""

    chain: str
    key: str
    detail: str
    expr: tuple[dict, ...]
    port: PortSpec | None = None  # the published port it is for, if any
    node: str = ""

    @property
    def digest(self) -> str:
        text = json.dumps([self.chain, list(self.expr)], sort_keys=True, separators=(",", ":"))
        return hashlib.blake2s(text.encode(), digest_size=4).hexdigest()


@dataclass(frozen=True, slots=True)
class LocalnetWant:
    """A bridge that needs route_localnet=1: a port is published to its network on 127.0.0.1."""

    bridge: str
    network: str


@dataclass(frozen=True, slots=True)
class NatWant:
    topology: str
    rules: tuple[RuleWant, ...] = ()
    localnet: tuple[LocalnetWant, ...] = ()

    @property
    def table(self) -> str:
        return table_name(self.topology)

    def chains(self) -> list[ChainDef]:
        used = {r.chain for r in self.rules}
        return [c for c in CHAINS.values() if c.name in used]


def _match(left: dict, right: object, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, fieldname: str) -> dict:
    return {"payload": {"protocol": protocol, "field": fieldname}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _prefix(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


_MASQUERADE = {"masquerade": None}


def _publish_rules(port: PortSpec, node: str) -> list[RuleWant]:
    """DNAT for one published port: in `output` (the host's own connections) and, unless it is on
    127.0.0.0/8, which nothing from outside can reach, in `prerouting`."""
    family = port.host_ip.version
    if port.host_ip.is_unspecified:
        head = [_match(_meta("nfproto"), _NFPROTO[family])]
        head.append(_match({"fib": {"result": "type", "flags": ["daddr"]}}, "local"))
        if family == 6:  # the kernel never routes ::1 out of lo; leave it to whatever listens there
            head.append(_match(_payload("ip6", "daddr"), "::1", op="!="))
    else:
        head = [_match(_payload(_IP[family], "daddr"), str(port.host_ip))]
    expr = (
        *head,
        _match(_payload(port.protocol, "dport"), port.host_port),
        {"dnat": {"family": _IP[family], "addr": str(port.address), "port": port.container_port}},
    )
    key = f"publish {port.endpoint}"
    detail = f"dnat to {port.target}, node {node}"
    chains = ("output",) if port.host_ip.is_loopback else ("prerouting", "output")
    return [RuleWant(chain, key, detail, expr, port, node) for chain in chains]


def nat_wants(spec: TopologySpec) -> NatWant:
    """The rules and route_localnet settings a validated topology asks for."""
    topo = spec.name
    rules: list[RuleWant] = []
    published_to: dict[str, set[int]] = {}  # network -> IP families published to it
    localnet: dict[str, None] = {}
    for node in spec.nodes.values():
        for port in node.ports:
            rules += _publish_rules(port, node.name)
            published_to.setdefault(port.network, set()).add(port.address.version)
            if port.address.version == 4 and (port.host_ip.is_unspecified or port.host_ip.is_loopback):
                localnet[port.network] = None
    for net in spec.networks.values():
        bridge = names.bridge_name(topo, net.name)
        ip = _IP[net.subnet.version]
        source = _match(_payload(ip, "saddr"), _prefix(net.subnet))
        if net.nat:
            rules.append(
                RuleWant(
                    "postrouting",
                    f"nat {net.name}",
                    f"masquerade {net.subnet} leaving by any interface but {bridge}",
                    (source, _match(_meta("oifname"), bridge, op="!="), _MASQUERADE),
                )
            )
        if net.subnet.version in published_to.get(net.name, ()):
            rules.append(
                RuleWant(
                    "postrouting",
                    f"hairpin {net.name}",
                    f"masquerade {net.subnet} sent back into {bridge} by a published port",
                    (
                        source,
                        _match(_meta("oifname"), bridge),
                        _match({"ct": {"key": "status"}}, "dnat", op="in"),
                        _MASQUERADE,
                    ),
                )
            )
        if net.name in localnet:
            loopback = _prefix(_LOOPBACK_NET)
            rules.append(
                RuleWant(
                    "postrouting",
                    f"localnet {net.name}",
                    f"masquerade 127.0.0.0/8 leaving by {bridge} (ports published on 127.0.0.1)",
                    (
                        _match(_payload("ip", "saddr"), loopback),
                        _match(_meta("oifname"), bridge),
                        _MASQUERADE,
                    ),
                )
            )
            for direction in ("daddr", "saddr"):
                rules.append(
                    RuleWant(
                        "localnet",
                        f"guard {net.name} {direction}",
                        f"drop {direction} 127.0.0.0/8 arriving on {bridge} (it has route_localnet)",
                        (
                            _match(_meta("iifname"), bridge),
                            _match(_payload("ip", direction), loopback),
                            {"drop": None},
                        ),
                    )
                )
    wanted_localnet = tuple(LocalnetWant(names.bridge_name(topo, n), n) for n in localnet)
    return NatWant(topo, tuple(rules), wanted_localnet)


# -- what the kernel holds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainFound:
    name: str
    handle: int
    type: str | None
    hook: str | None
    prio: int | None


@dataclass(frozen=True, slots=True)
class RuleFound:
    chain: str
    handle: int
    comment: str | None


@dataclass(slots=True)
class TableFound:
    """A topology's table as `nft -j list table` shows it."""

    name: str
    chains: dict[str, ChainFound] = field(default_factory=dict)
    rules: list[RuleFound] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # sets, maps, ...: never ours


def read(topology: str, *, needed: bool) -> TableFound | None:
    """The topology's table, or None when there is none.

    `needed`: the file asks for rules. When it does not, a host without nft or without nf_tables
    cannot hold a table of ours to remove, and reading it is skipped instead of refused.
    """
    name = table_name(topology)
    try:
        listed = nft.nft_list_table(family=FAMILY, name=name)
    except Unsupported as exc:
        if needed:
            raise Unsupported(
                f"topology {topology} publishes ports or masquerades a network, which needs nftables: {exc}",
                obj=exc.obj,
                errno=exc.errno,
            ) from None
        return None
    if listed is None:
        return None
    found = TableFound(name)
    for item in listed:
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict):
            continue
        if kind == "chain":
            name = body.get("name", "")
            hook = (body.get("type"), body.get("hook"), body.get("prio"))
            found.chains[name] = ChainFound(name, body.get("handle", 0), *hook)
        elif kind == "rule":
            found.rules.append(RuleFound(body.get("chain", ""), body.get("handle", 0), body.get("comment")))
        elif kind != "table":
            found.others.append(f"{kind} {body.get('name', '')}".strip())
    return found


# -- from one to the other --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NatChange:
    action: str  # create | update | delete
    kind: str
    name: str
    detail: str = ""


@dataclass(slots=True)
class NatPlan:
    """The changes to report and the one nft batch that makes them."""

    changes: list[NatChange] = field(default_factory=list)
    batch: list[dict] = field(default_factory=list)


def check_conflicts(want: NatWant, have: TableFound | None) -> None:
    """Refuse a chain this topology needs that exists with another type, hook or priority."""
    if have is None:
        return
    for chain in want.chains():
        found = have.chains.get(chain.name)
        if found is None:
            continue
        if (found.type, found.hook, found.prio) != (chain.type, chain.hook, chain.prio):
            shown = f"type {found.type} hook {found.hook} priority {found.prio}" if found.hook else "no hook"
            raise AlreadyExists(
                f"nftables chain {chain.name} of table {FAMILY} {have.name} exists with {shown}, not"
                f" {chain.describe()}, and was not made by topology {want.topology}; remove that chain",
                obj=f"{have.name} {chain.name}",
            )


def check_host_conflicts(want: NatWant) -> None:
    """Refuse a published port that a socket of the host namespace listens on (its traffic would go to
    the node instead; Docker refuses such a port as "already allocated"), or that another topology's
    table publishes too (the first rule the kernel meets would win)."""
    mine = {(r.port.protocol, r.port.host_ip, r.port.host_port): r for r in want.rules if r.port}
    if not mine:
        return

    def clash(protocol: str, ip: IPAddress, port: int) -> RuleWant | None:
        for (my_protocol, my_ip, my_port), rule in mine.items():
            if (my_protocol, my_port) == (protocol, port) and _overlap(my_ip, ip):
                return rule
        return None

    for protocol, ip, port, what in _host_listeners():
        hit = clash(protocol, ip, port)
        if hit is not None:
            raise AlreadyExists(
                f"published port {_endpoint_of(hit)} of node {hit.node}: {what}"
                f" {_host_port_text(ip, port)}/{protocol} in the host namespace, and the port would take"
                " its traffic; publish another host port, or stop that listener",
                obj=_endpoint_of(hit),
            )
    for table in nft.nft_list_tables(family=FAMILY):
        other = table.removeprefix(TABLE_PREFIX)
        if not table.startswith(TABLE_PREFIX) or other == want.topology:
            continue
        found = read(other, needed=True)
        for theirs in found.rules if found else ():
            key, _ = parse_rule_comment(theirs.comment, other) or ("", "")
            endpoint = _parse_endpoint(key.removeprefix("publish ")) if key.startswith("publish ") else None
            hit = clash(*endpoint) if endpoint else None
            if hit is not None:
                raise AlreadyExists(
                    f"published port {_endpoint_of(hit)} of node {hit.node} is already published by topology"
                    f" {other} ({key.removeprefix('publish ')}, nftables table {FAMILY} {table});"
                    " a host address and port go to one topology only",
                    obj=_endpoint_of(hit),
                )


def _endpoint_of(rule: RuleWant) -> str:
    return rule.port.endpoint if rule.port else rule.key


def _overlap(a: IPAddress, b: IPAddress) -> bool:
    return a.version == b.version and (a == b or a.is_unspecified or b.is_unspecified)


def _host_port_text(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _parse_endpoint(text: str) -> tuple[str, IPAddress, int] | None:
    """("tcp", 127.0.0.1, 8080) from "127.0.0.1:8080/tcp" or "[::]:8080/tcp"; None if it is not one."""
    address, _, protocol = text.partition("/")
    host, sep, port = address.rpartition(":")
    try:
        return protocol, ipaddress.ip_address(host.removeprefix("[").removesuffix("]")), int(port)
    except ValueError:
        return None


# /proc/net/{tcp,udp}[6]: sockets of the reading thread's namespace; TCP listening, UDP bound unconnected
_LISTENING = {"tcp": "0A", "udp": "07"}


def _host_listeners() -> list[tuple[str, IPAddress, int, str]]:
    """(protocol, address, port, description) of every TCP socket listening and UDP socket bound but
    not connected in the host namespace. A socket on :: also takes IPv4 (unless IPV6_V6ONLY, which
    /proc does not show), so it is listed for both families."""
    out = []
    for protocol, state in _LISTENING.items():
        for suffix in ("", "6"):
            try:
                with open(f"/proc/thread-self/net/{protocol}{suffix}") as handle:
                    lines = handle.read().splitlines()[1:]
            except FileNotFoundError:  # no IPv6
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or fields[3] != state:
                    continue
                hex_ip, _, hex_port = fields[1].partition(":")
                raw = bytes.fromhex(hex_ip)
                # the kernel prints each 32-bit word of the address in host (little-endian) byte order
                packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(packed)
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped
                port = int(hex_port, 16)
                what = "a socket listens on" if protocol == "tcp" else "a socket is bound to"
                out.append((protocol, ip, port, what))
                if ip == ipaddress.IPv6Address("::"):
                    out.append((protocol, ipaddress.IPv4Address("0.0.0.0"), port, what))
    return out


def plan(want: NatWant, have: TableFound | None) -> NatPlan:
    """What to change so that the table holds exactly the wanted rules of this topology."""
    out = NatPlan()
    table = {"family": FAMILY, "table": want.table}
    topo = want.topology
    if want.rules and have is None:
        out.changes.append(NatChange("create", "nft table", f"{FAMILY} {want.table}"))
        out.batch.append({"add": {"table": {"family": FAMILY, "name": want.table}}})
    existing = have.chains if have else {}
    for chain in want.chains():
        if chain.name not in existing:
            shown = f"{want.table} {chain.name}"
            out.changes.append(NatChange("create", "nft chain", shown, chain.describe()))
            body = {"name": chain.name, "type": chain.type, "hook": chain.hook, "prio": chain.prio}
            out.batch.append({"add": {"chain": {**table, **body, "policy": "accept"}}})
    ours: dict[tuple[str, str], list[tuple[RuleFound, str]]] = {}
    foreign: set[str] = set()  # chains holding a rule that is not ours
    for rule in have.rules if have else ():
        parsed = parse_rule_comment(rule.comment, topo)
        if parsed is None:
            foreign.add(rule.chain)
        else:
            key, digest = parsed
            ours.setdefault((rule.chain, key or (rule.comment or "")), []).append((rule, digest))
    adds: list[dict] = []
    for want_rule in want.rules:
        comment = rule_comment(topo, want_rule.key, want_rule.digest)
        body = {**table, "chain": want_rule.chain, "comment": comment, "expr": list(want_rule.expr)}
        name = f"{want_rule.chain} {want_rule.key}"
        found = ours.get((want_rule.chain, want_rule.key))
        if not found:
            out.changes.append(NatChange("create", "nft rule", name, want_rule.detail))
            adds.append({"add": {"rule": body}})
            continue
        rule, digest = found.pop(0)
        if digest != want_rule.digest:
            out.changes.append(NatChange("update", "nft rule", name, want_rule.detail))
            adds.append({"replace": {"rule": {**body, "handle": rule.handle}}})
    stale = [(chain_key, rule) for chain_key, left in ours.items() for rule, _ in left]
    for (chain_name, key), rule in stale:
        out.changes.append(NatChange("delete", "nft rule", f"{chain_name} {key}"))
        out.batch.append({"delete": {"rule": {**table, "chain": chain_name, "handle": rule.handle}}})
    out.batch += adds
    if have is None:
        return out
    wanted_chains = {c.name for c in want.chains()}
    dropped = [
        name for name in have.chains if name in CHAINS and name not in wanted_chains and name not in foreign
    ]
    for name in dropped:
        out.changes.append(NatChange("delete", "nft chain", f"{want.table} {name}"))
        out.batch.append({"delete": {"chain": {**table, "name": name}}})
    left = set(have.chains) - set(dropped)
    if not want.rules and not left and not have.others:
        out.changes.append(NatChange("delete", "nft table", f"{FAMILY} {want.table}"))
        out.batch.append({"delete": {"table": {"family": FAMILY, "name": want.table}}})
    return out


def apply_batch(batch: Sequence[dict], *, topology: str, check: bool) -> None:
    """Send the batch (one transaction); `check`: have the kernel check it without committing."""
    nft.nft_apply(batch=batch, obj=f"table {FAMILY} {table_name(topology)}", check=check)


# -- route_localnet ---------------------------------------------------------------------------------


def route_localnet_path(bridge: str) -> str:
    """The sysctl file of `bridge` in the caller's network namespace (/proc/sys/net follows the thread)."""
    return f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet"


def read_route_localnet(bridge: str) -> int | None:
    """route_localnet of `bridge` in the host namespace; None when there is no such interface."""
    try:
        with open(route_localnet_path(bridge)) as handle:
            return int(handle.read().strip() or 0)
    except FileNotFoundError:
        return None


def write_route_localnet(bridge: str, value: int) -> None:
    with open(route_localnet_path(bridge), "w") as handle:
        handle.write(f"{value}\n")
