"""Why can't A reach B: the path walk and a live probe, asked together and reconciled.

REACHABLE: the walk delivers and the probe is answered. UNREACHABLE: both say it does not get
there (a probe refused by the destination agrees with a walk ending in NOTHING_LISTENING).
INCONSISTENT: they disagree, which is itself the finding: something the walk does not model (a
firewall rule, an MTU) dropped the probe, or the network changed between the two. A walk that
leaves the host (LEAVES_HOST) takes the probe's word.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from typing import Any

from netcore.errors import InvalidSpec, NetcoreError, NotFound
from netcore.explain.probe import Namespaces, Probe, probe_icmp, probe_tcp
from netcore.explain.question import PROTOCOLS, question_parse
from netcore.explain.walk import CAUSES, Walk, path_walk
from netcore.ipam import IPAddress
from netcore.model import Snapshot
from netcore.snapshot import snapshot as take_snapshot


@dataclass
class Explanation:
    walk: Walk
    probe: Probe | None
    result: str
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "summary": self.summary,
            "walk": self.walk.to_dict(),
            "probe": self.probe.to_dict() if self.probe else None,
        }


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


def reconcile(walk: Walk, probe: Probe | None) -> tuple[str, str]:
    """(result, one line saying why) from the walk's end and the probe's outcome."""
    if probe is None:
        delivered = walk.verdict == "deliver"
        return ("REACHABLE" if delivered else "UNREACHABLE"), f"by the walk alone: {walk.message}"
    outcome = probe.outcome
    if walk.verdict == "forward":
        result = "REACHABLE" if outcome == "answered" else "UNREACHABLE"
        return result, f"{walk.message}; the probe was {outcome}"
    if walk.verdict == "deliver" and outcome == "answered":
        return "REACHABLE", f"{walk.message}; the probe was answered"
    if walk.verdict != "deliver" and outcome != "answered":
        if walk.cause == "NOTHING_LISTENING" and outcome != "refused":
            return "INCONSISTENT", f"{walk.message}, but the probe got no reset ({outcome}): a firewall?"
        return "UNREACHABLE", f"{walk.message} ({walk.cause}); the probe agrees ({outcome})"
    if walk.verdict == "deliver":
        return "INCONSISTENT", (
            f"the walk delivers ({walk.message}) but the probe was {outcome}: something the walk does not"
            " model dropped it (a firewall rule, the MTU), or the network changed meanwhile"
        )
    return (
        "INCONSISTENT",
        f"the walk ends in {walk.verdict} {walk.cause} ({walk.message}) but the probe was answered",
    )


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
    """Walk the path from namespace `source` to `destination` and prove it with a probe. `snapshot`:
    the host's state (an agent's live model has it in memory); read from the kernel when None."""
    snap = snapshot if snapshot is not None else take_snapshot()
    address, port = destination_parse(destination, snap)
    protocol = protocol or ("tcp" if port else "icmp")
    if protocol not in PROTOCOLS:
        raise InvalidSpec(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}", obj="protocol")
    if protocol == "tcp" and port is None:
        raise InvalidSpec("a TCP question needs a port: DESTINATION:PORT", obj="port")
    if size is not None and protocol != "icmp":
        raise InvalidSpec("size: for ICMP questions (TCP sizes its segments itself)", obj="size")
    namespaces = Namespaces.of_host()
    if source not in namespaces.paths:
        raise NotFound(f"source namespace {source} does not exist", obj=source)
    try:
        walk = path_walk(
            snap,
            source=source,
            destination=address,
            port=port if protocol == "tcp" else None,
            protocol=protocol,
            size=size,
            kernel=namespaces,
        )
        sent = None
        if probe:
            if protocol == "tcp":
                assert port is not None
                sent = probe_tcp(namespaces, source, dst=address, port=port, count=count, timeout=timeout)
            else:
                sent = probe_icmp(namespaces, source, dst=address, count=count, timeout=timeout, size=size)
    finally:
        namespaces.close()
    result, summary = reconcile(walk, sent)
    return Explanation(walk=walk, probe=sent, result=result, summary=summary)


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
    """The answer as a person reads it in a terminal."""
    walk = answer.walk
    target = f"{walk.destination}" + (f" {walk.protocol}/{walk.port}" if walk.port else f" ({walk.protocol})")
    lines = [f"{walk.source} → {target}"]
    width = max((len(h.netns) for h in walk.hops), default=4)
    for number, hop in enumerate(walk.hops, 1):
        flag = (
            f"  {hop.verdict.upper()}" + (f" {hop.cause}" if hop.cause else "")
            if hop.verdict != "forward" or hop.cause
            else ""
        )
        lines.append(f"  {number:>2}. {hop.netns:<{width}}  {hop.kind:<7} {hop.decision}{flag}")
    lines.append(f"walk:   {walk.verdict}" + (f" {walk.cause}" if walk.cause else "") + f": {walk.message}")
    if answer.probe is not None:
        p = answer.probe
        rtt = f", rtt {min(p.rtt_ms):.2f}/{max(p.rtt_ms):.2f} ms" if p.rtt_ms else ""
        lines.append(f"probe:  {p.sent} {p.protocol} sent, {p.answered} answered ({p.outcome}{rtt})")
    lines.append(f"answer: {answer.result}: {answer.summary}")
    if walk.cause in CAUSES and walk.cause != "LEAVES_HOST":
        lines.append(f"what to do: {CAUSES[walk.cause]}")
    return "\n".join(lines)
