"""Why can't A reach B: the path walk and a live probe, asked together and reconciled.

REACHABLE: the walk delivers and the probe is answered. UNREACHABLE: both say it does not get
there (a probe refused by the destination agrees with a walk ending in NOTHING_LISTENING).
INCONSISTENT: they disagree, which is itself the finding: something the walk does not model (a
firewall rule, an MTU) dropped the probe, or the network changed between the two. A walk that
leaves the host (LEAVES_HOST) takes the probe's word.

While the probe runs it is watched at each hop of the walked path (netcore.explain.watch: where it
was last seen) and traced by nftables in the namespaces on the path that filter
(netcore.explain.trace: which rule dropped it). A trace that names another rule than the walk's
FIREWALL_DROP (or DOCKER_FORWARD_DROP) is INCONSISTENT, with both named; a rule that drops the probe
of a walk that delivers is named as the reason.

UDP: a datagram that gets no answer ("timeout") proves nothing by itself, since a listener need
not answer. When the walk delivers it to a bound socket and the probe met silence, the answer is
REACHABLE, saying "confirmed" when the datagram was seen arriving on the destination's interface,
"unconfirmed" when nothing on the path could be watched; if a watched hop on the way did not see
it, INCONSISTENT (it was lost where the walk sees no reason).
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from netcore.errors import InvalidSpec, NetcoreError, NotFound
from netcore.explain.probe import Namespaces, Probe, probe_icmp, probe_tcp, probe_udp
from netcore.explain.question import PORTED, PROTOCOLS, question_parse
from netcore.explain.trace import NftTrace, Trace, TraceDrop, has_filter_chains
from netcore.explain.walk import CAUSES, Walk, path_walk
from netcore.explain.watch import Flow, HopWatch, Sighting, where_seen
from netcore.ipam import IPAddress
from netcore.model import Snapshot
from netcore.snapshot import snapshot as take_snapshot


@dataclass
class Watched:
    """What watching the probe found: per hop of the walk what its interface saw (None: not
    watched), where the probe was last seen and the first watched hop after that which did not see
    it (each {hop, netns, interface}), that said in words, and the nftables trace."""

    seen: list[Sighting | None] = field(default_factory=list)
    last_seen: dict | None = None
    not_seen: dict | None = None
    text: str = ""
    trace: Trace = field(default_factory=Trace)
    errors: list[str] = field(default_factory=list)

    @property
    def dropped_by(self) -> TraceDrop | None:
        return self.trace.dropped_by


@dataclass
class Explanation:
    walk: Walk
    probe: Probe | None
    result: str
    summary: str
    watched: Watched | None = None

    def to_dict(self) -> dict[str, Any]:
        walk = self.walk.to_dict()
        seen = self.watched.seen if self.watched else []
        for number, hop in enumerate(walk["hops"]):
            sighting = seen[number] if number < len(seen) else None
            hop["probe_seen"] = sighting.to_dict() if sighting else None
        probe = self.probe.to_dict() if self.probe else None
        if probe is not None:
            w = self.watched or Watched()
            probe.update(
                last_seen=w.last_seen,
                not_seen=w.not_seen,
                seen=w.text,
                dropped_by=w.dropped_by.to_dict() if w.dropped_by else None,
                traced=w.trace.traced,
                watch_errors=w.errors + w.trace.errors,
            )
        return {"result": self.result, "summary": self.summary, "walk": walk, "probe": probe}


def destination_parse(text: str, snap: Snapshot) -> tuple[IPAddress, int | None]:
    """`ADDRESS`, `ADDRESS:PORT`, `[IPv6]:PORT`, or a namespace's name (its first global address,
    IPv4 first) with an optional `:PORT`; a name may hold colons (`docker:3f2a…`), a port is digits."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = _port(rest.removeprefix(":")) if rest else None
    elif ":" in text and not _is_address(text):
        head, _, tail = text.rpartition(":")
        if tail.isdigit() or _is_address(head):
            host, port = head, _port(tail)
    try:
        return ipaddress.ip_address(host), port
    except ValueError:
        pass
    found = sorted(
        (a.family != 2, a.address)
        for a in snap.addresses
        if a.netns == host and a.scope == "universe" and not ipaddress.ip_address(a.address).is_loopback
    )
    if not found:
        raise NotFound(f"destination {host} is neither an address nor a namespace with an address", obj=host)
    return ipaddress.ip_address(found[0][1]), port


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InvalidSpec(f"port {text!r} is not a port (1..65535)", obj="port")
    return int(text)


def reconcile(walk: Walk, probe: Probe | None, watched: Watched | None = None) -> tuple[str, str]:
    """(result, one line saying why) from the walk's end, the probe's outcome and what watching and
    tracing the probe found."""
    result, summary = _reconcile(walk, probe, watched)
    if probe is not None and watched is not None:
        summary += f"; {watched.text}" if watched.text else ""
        drop = watched.dropped_by
        if drop is not None and drop.where not in summary:
            summary += f"; the trace saw {drop.where} in {drop.netns} drop it ({drop.rule})"
    return result, summary


def _reconcile(walk: Walk, probe: Probe | None, watched: Watched | None) -> tuple[str, str]:
    if probe is None:
        delivered = walk.verdict == "deliver"
        return ("REACHABLE" if delivered else "UNREACHABLE"), f"by the walk alone: {walk.message}"
    outcome = probe.outcome
    drop = watched.dropped_by if watched else None
    if drop is not None and walk.cause in ("FIREWALL_DROP", "DOCKER_FORWARD_DROP"):
        rule = walk.hops[-1]
        if (rule.netns, rule.object) != (drop.netns, drop.where):
            return "INCONSISTENT", (
                f"the walk says {rule.object} in {rule.netns} drops it, but the trace saw {drop.where} in"
                f" {drop.netns} drop it ({drop.rule})"
            )
    if walk.verdict == "forward":
        result = "REACHABLE" if outcome == "answered" else "UNREACHABLE"
        return result, f"{walk.message}; the probe was {outcome}"
    if walk.verdict == "deliver" and outcome == "answered":
        return "REACHABLE", f"{walk.message}; the probe was answered"
    if walk.verdict == "deliver" and probe.protocol == "udp" and outcome == "timeout" and drop is None:
        return _udp_silence(walk, watched)
    if walk.verdict != "deliver" and outcome != "answered":
        if walk.cause == "NOTHING_LISTENING" and outcome != "refused":
            answer = "reset" if probe.protocol == "tcp" else "port unreachable"
            return "INCONSISTENT", f"{walk.message}, but the probe got no {answer} ({outcome}): a firewall?"
        return "UNREACHABLE", f"{walk.message} ({walk.cause}); the probe agrees ({outcome})"
    if walk.verdict == "deliver":
        why = (
            f"{drop.where} in {drop.netns} dropped it ({drop.rule})"
            if drop is not None
            else "something the walk does not model dropped it (a firewall rule, the MTU), or the network"
            " changed meanwhile"
        )
        return "INCONSISTENT", f"the walk delivers ({walk.message}) but the probe was {outcome}: {why}"
    return (
        "INCONSISTENT",
        f"the walk ends in {walk.verdict} {walk.cause} ({walk.message}) but the probe was answered",
    )


def _udp_silence(walk: Walk, watched: Watched | None) -> tuple[str, str]:
    """A UDP datagram the walk delivers met silence: a listener need not answer (module docstring)."""
    said = f"{walk.message}; no datagram came back (UDP: a listener need not answer)"
    if watched is None or not any(watched.seen):
        return "REACHABLE", f"{said}: reachable but unconfirmed, nothing on the path could be watched"
    if watched.not_seen is not None:
        lost = watched.not_seen
        return "INCONSISTENT", (
            f"the walk delivers ({walk.message}) but the datagram never reached {lost['interface']} in"
            f" {lost['netns']}: something the walk does not model dropped it"
        )
    return "REACHABLE", f"{said}: confirmed, the datagram was seen arriving at the destination"


def explain(
    *,
    source: str,
    destination: str,
    protocol: str | None = None,
    probe: bool = True,
    count: int = 3,
    timeout: float = 1.0,
    size: int | None = None,
    snapshot: Snapshot | None = None,
) -> Explanation:
    """Walk the path from namespace `source` to `destination` and prove it with a probe, watched at
    each hop and traced by nftables. `snapshot`: the host's state (an agent's live model has it in
    memory); read from the kernel when None."""
    snap = snapshot if snapshot is not None else take_snapshot()
    address, port = destination_parse(destination, snap)
    protocol = protocol or ("tcp" if port else "icmp")
    if protocol not in PROTOCOLS:
        raise InvalidSpec(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}", obj="protocol")
    if protocol in PORTED and port is None:
        raise InvalidSpec(f"a {protocol.upper()} question needs a port: DESTINATION:PORT", obj="port")
    if size is not None and protocol != "icmp":
        raise InvalidSpec(
            f"size: for ICMP questions ({protocol.upper()} sizes its packets itself)", obj="size"
        )
    namespaces = Namespaces.of_host()
    if source not in namespaces.paths:
        raise NotFound(f"source namespace {source} does not exist", obj=source)
    try:
        walk = path_walk(
            snap,
            source=source,
            destination=address,
            port=port if protocol in PORTED else None,
            protocol=protocol,
            size=size,
            kernel=namespaces,
        )
        sent, watched = None, None
        if probe:
            sent, watched = _probe(namespaces, walk, count=count, timeout=timeout, size=size)
    finally:
        namespaces.close()
    result, summary = reconcile(walk, sent, watched)
    return Explanation(walk=walk, probe=sent, result=result, summary=summary, watched=watched)


def _probe(
    namespaces: Namespaces, walk: Walk, *, count: int, timeout: float, size: int | None
) -> tuple[Probe, Watched]:
    """The probe, sent from the walk's source while the walk's hops watch it and the namespaces on
    the path that filter trace it; the trace tables are gone when this returns, whatever happened."""
    flow = Flow.of_walk(walk)
    dst = ipaddress.ip_address(walk.destination)
    on_path = dict.fromkeys(hop.netns for hop in walk.hops)
    filtering = [n for n in on_path if has_filter_chains(namespaces.rulesets.get(n))]
    watch = HopWatch(namespaces, walk.hops, flow)
    tracing = NftTrace(namespaces, filtering, flow)
    try:
        watch.open()
        tracing.start()
        if walk.protocol == "icmp":
            sent = probe_icmp(namespaces, walk.source, dst=dst, count=count, timeout=timeout, size=size)
        else:
            send = probe_tcp if walk.protocol == "tcp" else probe_udp
            assert walk.port is not None
            sent = send(namespaces, walk.source, dst=dst, port=walk.port, count=count, timeout=timeout)
        trace = tracing.finish(sent.idents)
        seen = watch.sightings(sent.idents)
    finally:
        tracing.close()
        watch.close()
    last, missing, text = where_seen(walk.hops, seen)
    return sent, Watched(seen, last, missing, text, trace, watch.errors)


def explain_request(request: object, *, snapshot: Snapshot | None = None) -> dict[str, Any]:
    """The agent's `explain` (docs/agent-protocol.md): the question checked, asked over `snapshot`
    (the live model's), and answered as {"ok": True, "answer": ...} or {"ok": False, "error": ...}."""
    try:
        question = question_parse(request)
        answer = explain(**asdict(question), snapshot=snapshot)
    except NetcoreError as exc:
        return {"ok": False, "error": exc.to_dict()}
    return {"ok": True, "answer": answer.to_dict()}


def explanation_text(answer: Explanation) -> str:
    """The answer as a person reads it in a terminal: each hop with what the probe did there (✓ seen
    going out, ↩ its answers seen coming back, ✗ not seen, blank: not watched)."""
    walk = answer.walk
    seen = answer.watched.seen if answer.watched else []
    target = f"{walk.destination}" + (f" {walk.protocol}/{walk.port}" if walk.port else f" ({walk.protocol})")
    lines = [f"{walk.source} → {target}"]
    width = max((len(h.netns) for h in walk.hops), default=4)
    for number, hop in enumerate(walk.hops, 1):
        flag = (
            f"  {hop.verdict.upper()}" + (f" {hop.cause}" if hop.cause else "")
            if hop.verdict != "forward" or hop.cause
            else ""
        )
        sighting = seen[number - 1] if number <= len(seen) else None
        mark = (
            "   "
            if sighting is None
            else ("✓" if sighting.out else "✗") + ("↩" if sighting.back else " ") + " "
        )
        lines.append(f"  {number:>2}. {mark}{hop.netns:<{width}}  {hop.kind:<7} {hop.decision}{flag}")
    lines.append(f"walk:   {walk.verdict}" + (f" {walk.cause}" if walk.cause else "") + f": {walk.message}")
    if answer.probe is not None:
        p = answer.probe
        rtt = f", rtt {min(p.rtt_ms):.2f}/{max(p.rtt_ms):.2f} ms" if p.rtt_ms else ""
        lines.append(f"probe:  {p.sent} {p.protocol} sent, {p.answered} answered ({p.outcome}{rtt})")
        watched = answer.watched
        if watched is not None and watched.text:
            lines.append(f"seen:   {watched.text}")
        if watched is not None and watched.dropped_by is not None:
            drop = watched.dropped_by
            lines.append(f"trace:  dropped in {drop.netns} by {drop.where}: {drop.rule}")
        elif watched is not None and watched.trace.traced:
            lines.append(f"trace:  no rule dropped it in {', '.join(watched.trace.traced)}")
    lines.append(f"answer: {answer.result}: {answer.summary}")
    if walk.cause in CAUSES and walk.cause != "LEAVES_HOST":
        lines.append(f"what to do: {CAUSES[walk.cause]}")
    return "\n".join(lines)
