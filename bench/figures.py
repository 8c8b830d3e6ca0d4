"""The figures: a registry of functions, each measuring baselines and netcore side by side.

A figure is `fn(ctx) -> list[Result]`, registered with `@figure("P7", order=95)`. Figures run in
`order`; several figures may share the endpoints one build left behind (`ctx.need_world()`).
To add one: write the function here (or in a module imported by `bench.__main__`) and decorate it.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import baselines, ncrun
from bench.hostns import REPO_ROOT, Run, Timed, named_namespaces, probe, run_in, settle, veth_names


@dataclass
class Result:
    """One row: a baseline against netcore. ratio = baseline_s / netcore_s (higher: netcore faster)."""

    figure: str
    baseline: str
    baseline_s: float | None
    netcore_s: float | None
    goal: float | None  # minimum ratio; None = report only
    note: str = ""
    valid: bool = True  # False when netcore ran but did not build/show what it should
    ratio: float | None = field(default=None, init=False)
    met: bool | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.valid and self.baseline_s and self.netcore_s:
            self.ratio = self.baseline_s / self.netcore_s
        if self.goal is not None:
            self.met = self.ratio is not None and self.ratio >= self.goal

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class World:
    """A host namespace holding the N endpoints of P1, built by netcore (or by ip -batch as fallback)."""

    host: str
    endpoint_ns: list[str]
    built_by: str  # "netcore" or "ip -batch"
    topology: Path | None = None


@dataclass
class Context:
    """What figures share during one run."""

    run: Run
    endpoints: int
    probe_ns: str = ""
    idle_s: float = 0.0
    world: World | None = None
    teardown_b_s: float | None = None  # the last ip -batch teardown, baseline for P1-destroy
    settled_s: float = 0.0  # time spent waiting for the kernel between measurements
    _tags: itertools.count = field(default_factory=lambda: itertools.count(1))

    def tag(self, kind: str) -> str:
        """A fresh namespace tag (`a1`, `b2`, ...), so names never collide across repeats."""
        return f"{kind}{next(self._tags)}"

    def start(self) -> None:
        """Create the probe namespace and measure an idle RTNL round trip."""
        self.probe_ns = self.run.add_host("probe")
        self.idle_s = min(probe(self.probe_ns) for _ in range(5))

    def settle(self) -> None:
        """Let the kernel finish tearing down deleted namespaces before the next measurement."""
        self.settled_s += settle(self.probe_ns, idle_s=self.idle_s)

    def need_world(self) -> World:
        """The shared endpoints: netcore apply (untimed) if none are up, else ip -batch as fallback."""
        if self.world is None:
            _netcore_build(self)
        if self.world is None:
            tag = self.tag("w")
            host = self.run.add_host(tag)
            eps = baselines.endpoints(self.run.name(tag + "e"), self.endpoints)
            script = baselines.batch_script(eps, self.run.workdir / host)
            done = run_in(host, ["sh", "-c", script])
            if not done.ok:
                raise RuntimeError(f"ip -batch build failed: {done.tail()}")
            self.world = World(host, [ep.ns for ep in eps], "ip -batch")
        return self.world

    def drop_world(self, *, destroy: bool = True, settle: bool = True) -> None:
        """Delete the shared endpoints (`netcore destroy` first, untimed, if netcore built them)."""
        world, self.world = self.world, None
        if world is None:
            return
        if destroy and world.built_by == "netcore" and world.topology:
            ncrun.destroy(world.host, world.topology)
        self.run.delete([world.host, *world.endpoint_ns])
        if settle:
            self.settle()


FigureFn = Callable[[Context], list[Result]]


@dataclass(frozen=True)
class Figure:
    id: str
    group: str
    order: int
    fn: FigureFn


REGISTRY: dict[str, Figure] = {}


def figure(fid: str, *, order: int, group: str | None = None) -> Callable[[FigureFn], FigureFn]:
    """Register a figure; `--only` selects by id or by group (P1 selects P1 and P1-destroy)."""

    def register(fn: FigureFn) -> FigureFn:
        REGISTRY[fid] = Figure(fid, group or fid, order, fn)
        return fn

    return register


def select(only: str | None) -> list[Figure]:
    """The figures to run, in order; `only` is a comma list of ids or groups (case-insensitive)."""
    figs = sorted(REGISTRY.values(), key=lambda f: f.order)
    if not only:
        return figs
    wanted = {w.strip().upper() for w in only.split(",") if w.strip()}
    known = {f.id.upper() for f in figs} | {f.group.upper() for f in figs}
    if unknown := wanted - known:
        raise SystemExit(f"unknown figure(s) {', '.join(sorted(unknown))}; known: {', '.join(REGISTRY)}")
    return [f for f in figs if f.id.upper() in wanted or f.group.upper() in wanted]


def _failed(what: str, done: Timed) -> str:
    return f"{what} failed: {done.tail()}"


# --- P1: build N endpoints -------------------------------------------------------------------------


def _baseline_build(ctx: Context, kind: str) -> tuple[Timed, Timed | None, str]:
    """Build with baseline `kind` ("a": ip per step, "b": ip -batch) in a fresh host; tear down.

    Returns (build, teardown — timed for "b" only, a note).
    """
    tag = ctx.tag(kind)
    host = ctx.run.add_host(tag)
    eps = baselines.endpoints(ctx.run.name(tag + "e"), ctx.endpoints)
    teardown_file = ctx.run.workdir / f"{host}.teardown"
    teardown_file.write_text(baselines.teardown_batch(eps))
    try:
        if kind == "a":
            script = ctx.run.workdir / f"{host}.sh"
            script.write_text(baselines.per_step_script(eps))
        else:
            script = ctx.run.workdir / f"{host}-batch.sh"
            script.write_text(baselines.batch_script(eps, ctx.run.workdir / host))
        build = run_in(host, ["sh", str(script)])
        note = "" if build.ok else _failed("baseline", build)
        if build.ok and (count := len(veth_names(host))) != ctx.endpoints:
            note = f"baseline built {count} veths, expected {ctx.endpoints}"
        teardown = run_in(host, ["ip", "-batch", str(teardown_file)]) if kind == "b" else None
        return build, teardown, note
    finally:
        ctx.run.delete([host, *(ep.ns for ep in eps)])
        ctx.settle()


def _netcore_build(ctx: Context) -> tuple[Timed | None, str]:
    """`netcore apply` of P1 in a fresh host; on success the endpoints stay up as `ctx.world`."""
    ctx.drop_world()
    host = ctx.run.add_host(ctx.tag("nc"))
    topology = ctx.run.workdir / f"{ncrun.TOPOLOGY}.yaml"
    topology.write_text(ncrun.topology_yaml(ctx.endpoints))
    before = named_namespaces()
    if clash := sorted(n for n in before if n.startswith(f"{ncrun.TOPOLOGY}-")):
        ctx.run.delete([host])
        return None, (
            f"netcore skipped: {len(clash)} namespaces named {ncrun.TOPOLOGY}-* exist already "
            f"(e.g. {clash[0]}; another run?), not ours to touch"
        )
    try:
        done = ncrun.apply(host, topology)
    finally:  # even when interrupted: whatever netcore made must be found and deleted
        endpoint_ns = ctx.run.claim_new(host, before, name_prefix=f"{ncrun.TOPOLOGY}-")
    note = ""
    if not done.ok:
        note = _failed("netcore", done)
    else:
        count = sum(name.startswith(ncrun.VETH_PREFIX) for name in veth_names(host))
        if count != ctx.endpoints:
            note = f"invalid: {count} veths named {ncrun.VETH_PREFIX}* in the host, expected {ctx.endpoints}"
        elif len(endpoint_ns) != ctx.endpoints:
            note = f"invalid: {len(endpoint_ns)} new namespaces hold the peers, expected {ctx.endpoints}"
    if note:
        ctx.world = World(host, endpoint_ns, "netcore", topology)
        ctx.drop_world()
        return (done if done.ok else None), note
    ctx.world = World(host, endpoint_ns, "netcore", topology)
    return done, ""


@figure("P1", order=10)
def p1_build(ctx: Context) -> list[Result]:
    """P1: N endpoints on one network: ip per step, ip -batch, netcore apply (each in a fresh host)."""
    a, _, a_note = _baseline_build(ctx, "a")
    b, b_teardown, b_note = _baseline_build(ctx, "b")
    if b_teardown is not None and b_teardown.ok and b.ok:
        ctx.teardown_b_s = b_teardown.seconds
    nc, nc_note = _netcore_build(ctx)
    nc_s = nc.seconds if nc else None
    valid = not nc_note.startswith("invalid")
    return [
        Result(
            "P1",
            "ip per step (sh)",
            a.seconds if a.ok else None,
            nc_s,
            5.0,
            "; ".join(filter(None, [a_note, nc_note])),
            valid,
        ),
        Result(
            "P1",
            "ip -batch",
            b.seconds if b.ok else None,
            nc_s,
            2.0,
            "; ".join(filter(None, [b_note, nc_note])),
            valid,
        ),
    ]


@figure("P1-destroy", order=90, group="P1")
def p1_destroy(ctx: Context) -> list[Result]:
    """P1 teardown: netcore destroy of the endpoints against ip -batch's teardown (report only)."""
    notes = []
    if ctx.teardown_b_s is None:
        _, teardown, note = _baseline_build(ctx, "b")
        ctx.teardown_b_s = teardown.seconds if teardown and teardown.ok and not note else None
        notes.append(note)
    if ctx.world is None:
        notes.append(_netcore_build(ctx)[1])
    world = ctx.world
    nc_s, valid = None, True
    if world is None or world.built_by != "netcore" or world.topology is None:
        notes.append("netcore failed: no netcore-built endpoints to destroy (apply failed)")
    else:
        done = ncrun.destroy(world.host, world.topology)
        if not done.ok:
            notes.append(_failed("netcore", done))
        else:
            nc_s = done.seconds
            left_ns = set(world.endpoint_ns) & named_namespaces()
            left_if = [n for n in veth_names(world.host) if n.startswith(ncrun.VETH_PREFIX)]
            if left_ns or left_if:
                valid = False
                notes.append(f"invalid: {len(left_ns)} endpoint namespaces and {len(left_if)} veths remain")
        ctx.drop_world(destroy=False)
    baseline_s, ctx.teardown_b_s = ctx.teardown_b_s, None  # each repeat measures its own
    return [
        Result(
            "P1-destroy", "ip -batch teardown", baseline_s, nc_s, None, "; ".join(filter(None, notes)), valid
        )
    ]


# --- P2: inspect everything ------------------------------------------------------------------------


def _check_snapshot(path: Path, host: str, endpoint_ns: list[str]) -> str:
    """A note on netcore's JSON: "invalid: ..." unless it holds the host and every endpoint namespace.

    netcore shows every namespace on the machine, so others' (and the bench's probe) may be extra.
    """
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        return f"invalid: snapshot output is not JSON ({exc})"
    if not isinstance(data, dict) or not isinstance(data.get("namespaces"), list):
        shape = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        return f"invalid: unexpected snapshot shape (top level: {shape})"
    entries = [e for e in data["namespaces"] if isinstance(e, dict)]
    names = {e.get("name") for e in entries}
    ours = [n for n in endpoint_ns if n in names]
    has_host = host in names or any(e.get("kind") == "host" for e in entries)
    if len(ours) != len(endpoint_ns) or not has_host:
        return (
            f"invalid: snapshot has {len(ours)}/{len(endpoint_ns)} endpoint namespaces"
            f"{'' if has_host else ' and no host'} ({len(data['namespaces'])} namespaces in all)"
        )
    extra = len(data["namespaces"]) - len(ours) - 1
    return f"snapshot also shows {extra} other namespaces of this machine" if extra > 0 else ""


@figure("P2", order=20)
def p2_inspect(ctx: Context) -> list[Result]:
    """P2: everything about the host and N endpoints: one ip/bridge process per question vs snapshot."""
    world = ctx.need_world()
    notes = [] if world.built_by == "netcore" else [f"endpoints built by {world.built_by}"]
    script = ctx.run.workdir / f"{world.host}-inspect.sh"
    script.write_text(baselines.inspect_script(world.endpoint_ns))
    base = run_in(world.host, ["sh", str(script)])
    if not base.ok:
        notes.append(_failed("baseline", base))
    out = ctx.run.workdir / "snapshot.json"
    with out.open("w") as fh:
        done = ncrun.snapshot(world.host, fh)
    nc_note = _check_snapshot(out, world.host, world.endpoint_ns) if done.ok else _failed("netcore", done)
    notes.append(nc_note)
    return [
        Result(
            "P2",
            "ip/bridge -j per namespace (sh)",
            base.seconds if base.ok else None,
            done.seconds if done.ok else None,
            20.0,
            "; ".join(filter(None, notes)),
            not nc_note.startswith("invalid"),
        )
    ]


P2B_LINKS = 1000


@figure("P2b", order=30)
def p2b_many_links(ctx: Context) -> list[Result]:
    """P2b: one namespace with 1000 veth pairs: `ip -j -d link` + `ip -j addr` vs netcore's dump."""
    host = ctx.run.add_host(ctx.tag("links"))
    try:
        setup = run_in(host, ["ip", "-batch", "-"], stdin=baselines.many_links_batch(P2B_LINKS))
        if not setup.ok:
            raise RuntimeError(f"P2b set-up failed: {setup.tail()}")
        ctx.settle()
        base_s, base = ncrun.inproc_ip_dump(host)
        nc_s, done = ncrun.inproc_netcore_dump(host)
    finally:
        ctx.run.delete([host])
        ctx.settle()
    notes = ["baseline includes json.loads of ip's output"]
    if base_s is None:
        notes.append(_failed("baseline", base))
    if nc_s is None:
        notes.append(_failed("netcore", done))
    return [Result("P2b", "ip -j -d link + ip -j addr", base_s, nc_s, 1.0, "; ".join(notes))]


@figure("P2-warm", order=35)
def p2_warm(ctx: Context) -> list[Result]:
    """Warm snapshot of the N-endpoint host from the live model, against the 20 ms goal."""
    world = ctx.need_world()
    seconds, done = ncrun.inproc_warm_snapshot(world.host)
    note = "" if seconds is not None else _failed("netcore", done)
    goal_s = 0.020
    return [Result("P2-warm", "goal: 20 ms (ratio = 20 ms / netcore)", goal_s, seconds, 1.0, note)]


@figure("P7", order=95)
def p7_flatness(ctx: Context) -> list[Result]:
    """P7: cost of endpoint #2000 against endpoint #100 within one 2000-endpoint apply (goal ≤ 1.5×)."""
    ctx.drop_world()
    host = ctx.run.add_host(ctx.tag("flat"))
    try:
        costs, done = ncrun.inproc_p7(host)
    finally:
        ctx.run.delete([host])
        ctx.settle()
    if costs is None:
        return [Result("P7", "endpoint #100", None, None, 1 / 1.5, _failed("netcore", done))]
    growth = costs["last"] / costs["first"]
    note = (
        f"per endpoint: #1-128 {costs['first'] * 1000:.2f} ms, last chunk {costs['last'] * 1000:.2f} ms; "
        f"#{ncrun.P7_ENDPOINTS} costs {growth:.2f}x #100 (goal <= 1.5x)"
    )
    return [
        Result(
            "P7",
            "endpoint #100 (ratio = cost #100 / cost #2000)",
            costs["first"],
            costs["last"],
            1 / 1.5,
            note,
        )
    ]


def warm_up() -> None:
    """Compile netcore's modules once, so the first timed command does not pay for it."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "netcore"], cwd=REPO_ROOT, capture_output=True, check=False
    )
