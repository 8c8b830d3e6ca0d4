"""`python -m netcore`: validate, plan, apply, destroy, snapshot, explain, shape, unshape, watch, docker.

Exit codes: 0 success, 1 the operation failed, 2 bad input; `explain` answers 0 REACHABLE,
3 UNREACHABLE, 4 INCONSISTENT. Progress goes to stderr on
a terminal only, never into --json output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Sequence

from netcore.capture.command import add_capture_parser
from netcore.errors import InvalidSpec, NetcoreError, PermissionDenied
from netcore.explain.answer import explain, explanation_text
from netcore.explain.question import PROTOCOLS
from netcore.model import Snapshot
from netcore.shaping_spec import shape_parse, shaping_text
from netcore.topology import converge, spec


class _Progress:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or not total:
            return
        width = 30
        filled = width * done // total
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} nodes")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _emit(data: object) -> None:
    sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")


def _cmd_validate(args: argparse.Namespace) -> int:
    topo = spec.load(args.file)
    if args.json:
        _emit(
            {
                "valid": True,
                "name": topo.name,
                "networks": len(topo.networks),
                "nodes": len(topo.nodes),
                "services": len(topo.services),
            }
        )
    else:
        counts = ", ".join(
            f"{n} {word}{'' if n == 1 else 's'}"
            for n, word in (
                (len(topo.networks), "network"),
                (len(topo.nodes), "node"),
                (len(topo.routes), "route"),
                (len(topo.services), "service"),
            )
        )
        print(f"{args.file}: topology {topo.name} is valid ({counts})")
    return 0


def _converge_command(
    action: Callable[..., converge.Result], label: str
) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        topo = spec.load(args.file)
        if action is converge.plan:
            result = action(topo)
        else:
            result = action(topo, progress=_Progress(label, not args.json))
        if args.json:
            _emit(result.to_dict())
            return 0
        limit = None if args.verbose else 50
        for change in result.changes[:limit]:
            print(change)
        if limit is not None and len(result.changes) > limit:
            print(f"... and {len(result.changes) - limit} more (use -v to list all)")
        print(result.summary())
        return 0

    return command


def _cmd_snapshot(args: argparse.Namespace) -> int:
    from netcore.snapshot import snapshot

    snap = snapshot(namespaces=args.netns or None, processes=not args.named_only)
    if args.json:
        _emit(snap.to_dict())
    else:
        print(render_snapshot(snap))
    return 0


def render_snapshot(snap: Snapshot) -> str:
    """Human-readable tables, one block per namespace."""
    lines: list[str] = []
    for n in snap.namespaces:
        part = snap.in_netns(n.name)
        lines.append(f"namespace {n.name} ({n.kind}, inode {n.inode})")
        rows = [("IDX", "NAME", "KIND", "STATE", "MTU", "MAC", "MASTER", "PEER", "SHAPING")]
        for x in part.links:
            peer = f"{x.peer.netns}:{x.peer.name}" if x.peer else ""
            if x.vxlan:
                peer = f"vni {x.vxlan.vni} " + (x.vxlan.remote or x.vxlan.group or "")
            rows.append(
                (
                    str(x.index),
                    x.name,
                    x.kind or "",
                    x.state if x.up else "DOWN",
                    str(x.mtu),
                    x.mac or "",
                    x.master or "",
                    peer,
                    shaping_text(x.shaping.to_dict()) if x.shaping else "",
                )
            )
        lines += _table(rows)
        addrs = [f"{a.ifname} {a.address}/{a.prefixlen}" for a in part.addresses if a.scope != "host"]
        if addrs:
            lines.append("  addresses: " + ", ".join(addrs))
        for r in part.routes:
            via = f" via {r.gateway}" if r.gateway else ""
            lines.append(f"  route {r.dst}{via} dev {r.dev} proto {r.protocol}")
        for nb in part.neighbours:
            lines.append(f"  neighbour {nb.address} dev {nb.ifname} lladdr {nb.mac} {nb.state}")
        for f in part.fdb:
            extra = f" dst {f.dst}" if f.dst else ""
            lines.append(f"  fdb {f.mac} dev {f.ifname}{extra} {'self ' if f.self_entry else ''}{f.state}")
        lines.append("")
    return "\n".join(lines)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _cmd_watch(args: argparse.Namespace) -> int:
    from netcore.live import watch

    def ready(model) -> None:
        count = len(model.snapshot().namespaces)
        print(f"watching {count} namespaces; Ctrl-C stops", file=sys.stderr, flush=True)

    async def run() -> None:
        async for event in watch(on_ready=ready):
            if args.json:
                _emit(event.to_dict())
            else:
                print(event)
            sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _cmd_docker(args: argparse.Namespace) -> int:
    from netcore.docker.engine import engine_connect
    from netcore.docker.plumbing import plumber
    from netcore.docker.read import DockerReader
    from netcore.snapshot import snapshot

    state = DockerReader(engine_connect()).read()
    containers = sorted((c.to_dict() for c in state.containers.values()), key=lambda c: c["name"])
    spaces = sorted({"host", *(c["netns"] for c in containers if c["netns"])})
    plumbed = plumber(link.to_dict() for link in snapshot(namespaces=spaces, processes=False).links)
    for c in containers:
        c["endpoints"] = plumbed(c)
    if args.json:
        _emit({"engine": state.engine.to_dict(), "containers": containers})
        return 0
    names = {c["id"]: c["name"] for c in containers}
    rows = [
        ("CONTAINER", "STATE", "MODE", "NAMESPACE", "NETWORK", "ADDRESS", "INTERFACE", "HOST VETH", "BRIDGE")
    ]
    for c in containers:
        mode = f"container:{names.get(c['shares'], c['shares'])}" if c["shares"] else c["mode"]
        first = (c["name"], c["state"], mode, c["netns"] or "-")
        ends = c["endpoints"] or [None]
        for i, e in enumerate(ends):
            where = ("", "", "", "") if i else first
            if e is None:
                rows.append((*where, "-", "-", "-", "-", "-"))
                continue
            cells = (e["network"], e["ipv4"] or e["ipv6"] or "-", e["interface"], e["host_veth"], e["bridge"])
            rows.append((*where, *(cell or "-" for cell in cells)))
    print("\n".join(line[2:] for line in _table(rows)))
    return 0


#: exit status of `explain` by its answer
EXPLAIN_STATUS = {"REACHABLE": 0, "UNREACHABLE": 3, "INCONSISTENT": 4}


def _cmd_explain(args: argparse.Namespace) -> int:
    answer = explain(
        source=args.source,
        destination=args.destination,
        protocol=args.protocol,
        probe=not args.no_probe,
        count=max(1, args.count),
        timeout=args.timeout,
        size=args.size,
    )
    if args.json:
        _emit(answer.to_dict())
    else:
        print(explanation_text(answer))
    return EXPLAIN_STATUS[answer.result]


def _cmd_shape(args: argparse.Namespace) -> int:
    from netcore.shaping import link_shape

    fields = {"rate": args.rate, "burst": args.burst, "queue_ms": args.queue_ms}
    fields |= {"delay": args.delay, "jitter": args.jitter, "loss": args.loss}
    link = link_shape(netns=args.netns, name=args.link, spec=shape_parse(fields))
    shaping = shaping_text(link.shaping.to_dict()) if link.shaping else "not shaped"
    print(f"{args.netns}:{link.name}: {shaping}")
    return 0


def _cmd_unshape(args: argparse.Namespace) -> int:
    from netcore.shaping import link_unshape

    link = link_unshape(netns=args.netns, name=args.link)
    print(f"{args.netns}:{link.name}: not shaped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m netcore", description="Linux container networking, declared."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext, func in (
        ("validate", "check a topology file without touching the kernel", _cmd_validate),
        ("plan", "show what apply would change", _converge_command(converge.plan, "plan")),
        ("apply", "make the kernel match a topology file", _converge_command(converge.apply, "apply")),
        ("destroy", "remove everything a topology file owns", _converge_command(converge.destroy, "destroy")),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("file")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("-v", "--verbose", action="store_true", help="list every change")
        p.set_defaults(func=func)
    p = sub.add_parser("snapshot", help="print the whole topology")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--netns", action="append", metavar="NAME", help="only this namespace (repeatable; 'host' = ours)"
    )
    p.add_argument("--named-only", action="store_true", help="skip namespaces held only by processes")
    p.set_defaults(func=_cmd_snapshot)
    p = sub.add_parser("docker", help="Docker's containers with the namespace, veth and bridge under each")
    p.add_argument("--json", action="store_true", help="the engine and containers as JSON")
    p.set_defaults(func=_cmd_docker)
    p = sub.add_parser("explain", help="why can (or can't) a namespace reach an address: path walk and probe")
    p.add_argument("source", help="the namespace the packet starts in ('host' = ours)")
    p.add_argument("destination", help="ADDRESS[:PORT], [IPv6]:PORT, or a namespace's name[:PORT]")
    p.add_argument("--protocol", choices=PROTOCOLS, help="tcp with a port (default), udp, else icmp")
    p.add_argument("--no-probe", action="store_true", help="walk only: send no packet")
    p.add_argument("--count", type=int, default=3, help="probes to send (3)")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for each probe (1)")
    p.add_argument("--size", type=int, help="ICMP: IP packets of this many bytes, don't-fragment set")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_explain)
    p = sub.add_parser("shape", help="rate-limit a link (tbf), or delay it and drop packets (netem)")
    p.add_argument("netns", help="the link's namespace ('host' = ours)")
    p.add_argument("link", help="the interface's name")
    p.add_argument("--rate", help="a rate limit: 10mbit, 1gbit, 800kbit")
    p.add_argument("--burst", help="bytes sent at line rate before the limit bites: 32kb (tbf)")
    p.add_argument("--queue-ms", type=int, help="how long a packet may queue behind the limit (50)")
    p.add_argument("--delay", help="added delay: 20ms (needs netem)")
    p.add_argument("--jitter", help="delay jitter: 5ms (needs netem)")
    p.add_argument("--loss", help="percent of packets dropped: 0.5 (needs netem)")
    p.set_defaults(func=_cmd_shape)
    p = sub.add_parser("unshape", help="take a link's shaping off (the kernel's default qdisc back)")
    p.add_argument("netns", help="the link's namespace ('host' = ours)")
    p.add_argument("link", help="the interface's name")
    p.set_defaults(func=_cmd_unshape)
    p = sub.add_parser("watch", help="stream changes as they happen")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p.set_defaults(func=_cmd_watch)
    add_capture_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InvalidSpec as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except NetcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", ()):
            print(f"  {note}", file=sys.stderr)
        if isinstance(exc, PermissionDenied):
            print("netcore changes the kernel's networking: run it as root (CAP_NET_ADMIN)", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
