"""P3 and P4: how fast kernel changes reach browsers through the agent, daphne and the browser socket.

Each figure builds its own stack inside one fresh throwaway namespace: a migrated SQLite database in
the run's scratch directory, one daphne worker (in-memory channel layer) on 127.0.0.1 of the
namespace, a host token and a viewer's API token, and the agent (`--no-processes`). The measuring
client (`bench.live_client`) runs under nsenter in the same namespace, so its websockets and its
kernel changes stay there. Everything started here is stopped in `finally`.

The agent watches every namespace under /run/netns, not only its own, so the figures run after
P1-destroy (order 91, 92) and drop the shared endpoints first; namespaces of other programs on the
machine still show up in its snapshot and deltas.

P3 single: a bridge created by the client (time taken just before the netlink request) until the
`topology.delta` naming it arrives. P3 burst: a 500-endpoint apply in the client; each host-side
veth's creation is timed by a netlink socket subscribed in the host namespace (or, if later, by the
end of apply's chunk that made it) until its `set` event arrives. Kernel events for msgs/event are
the rtnetlink notifications in the host namespace plus, per new namespace, one event and one per
object it holds (what a live model reports when a namespace appears). P4: 200 sockets, every one
timed for every change; a single miss makes the row invalid.

There is no side-by-side baseline: the rows compare against the goals (ratio = goal / measured, goal
ratio 1.0). For scale, Weave Scope pushes its topology once a second: a nominal p95 of 1000 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.baselines import SUBNET
from bench.figures import Context, Result, figure
from bench.hostns import REPO_ROOT, named_namespaces, nsenter, run_in

PORT = 8765
ASGI_APP = "webapp.asgi:application"
HOST = "bench-live"
VIEWER = "bench-viewer"
SINGLE_CHANGES = 50
BURST_ENDPOINTS = 500
FANOUT_CLIENTS = 200
FANOUT_CHANGES = 20
SPACING_S = 0.1
CHANGE_TIMEOUT_S = 5.0  # a single change not at a client after this long counts as missed
# daphne as `make run` starts it (scripts/run-local.sh), with the same options.
DAPHNE_OPTIONS: tuple[str, ...] = (
    "--websocket-max-message-size",
    "268435456",
    "--websocket-max-frame-size",
    "268435456",
)  # as scripts/run-local.sh
WEAVE_NOTE = "no side-by-side baseline (Weave Scope pushes once a second: nominal p95 1000 ms)"

# Wait (inside the namespace) until daphne accepts connections on a port; exit 1 after 30 s.
_WAIT_FOR_PORT = """
import socket, sys, time
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


def daphne_command(port: int) -> list[str]:
    """daphne serving the web app on 127.0.0.1:port (with DAPHNE_OPTIONS' message limits)."""
    return [sys.executable, "-m", "daphne", *DAPHNE_OPTIONS, "-b", "127.0.0.1", "-p", str(port), ASGI_APP]


def agent_command(port: int) -> list[str]:
    """The agent of the host it runs in, reporting to the daphne on 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "netcore.agent",
        "--url",
        f"ws://127.0.0.1:{port}/ws/agent/",
        "--no-processes",
    ]


def wait_for_port(port: int) -> list[str]:
    """A command that exits 0 once something accepts connections on 127.0.0.1:port (1 after 30 s)."""
    return [sys.executable, "-c", _WAIT_FOR_PORT.format(port=port)]


class StackError(RuntimeError):
    """The web app or the agent could not be started; the message ends with their log."""


@dataclass
class Stack:
    """A running daphne + agent pair in `ns`, and the credentials a client needs."""

    ns: str
    url: str
    user_token: str
    logs: list[Path]

    def log_tail(self, chars: int = 400) -> str:
        text = " | ".join(
            f"{p.name}: {p.read_text(errors='replace')[-chars:]}" for p in self.logs if p.exists()
        )
        return " ".join(text.split())


def _manage(env: dict[str, str], *args: str) -> str:
    """Run `manage.py ARGS` (outside any namespace: it only touches the database); return stdout."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise StackError(f"manage.py {args[0]} failed: {' '.join(done.stderr.split())[-300:]}")
    return done.stdout


def _spawn(argv: Sequence[str], env: dict[str, str] | None, log: Path) -> subprocess.Popen:
    """Start `argv` in its own session (a Ctrl-C of the bench reaches us, not it), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _start(ns: str, argv: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `argv` inside `ns` (see _spawn)."""
    return _spawn([*nsenter(ns), *argv], env, log)


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM each (nsenter execs, so the pid is the program's), then SIGKILL after 5 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def stack_namespace(ctx: Context, tag: str) -> tuple[str, Path, dict[str, str]]:
    """A fresh namespace for a stack (the world of earlier figures dropped: an agent watches every
    named namespace), its scratch directory, and the environment of the web app there: its own
    SQLite database and secret key, an in-memory channel layer."""
    ctx.drop_world()
    ns = ctx.run.add_host(ctx.tag(tag))
    workdir = ctx.run.workdir / ns
    workdir.mkdir()
    return ns, workdir, stack_env(workdir)


def stack_env(workdir: Path) -> dict[str, str]:
    """The environment of a web app whose SQLite database and secret key are its own (in `workdir`),
    with an in-memory channel layer."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",  # absolute: sqlite:////tmp/...
        SWITCHBOARD_SECRET_KEY=secrets.token_urlsafe(50),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def live_stack(ctx: Context, tag: str) -> Iterator[Stack]:
    """A fresh namespace with daphne and the agent running in it; all of it gone afterwards."""
    ns, workdir, env = stack_namespace(ctx, tag)
    procs: list[subprocess.Popen] = []
    logs = [workdir / "daphne.log", workdir / "agent.log"]
    try:
        _manage(env, "migrate", "--noinput")
        host_token = _manage(env, "hosttoken", HOST).strip().splitlines()[-1]
        user_token = _manage(env, "adduser", VIEWER, "--role", "viewer").strip().splitlines()[-1]
        procs.append(_start(ns, daphne_command(PORT), env, logs[0]))
        stack = Stack(ns, f"ws://127.0.0.1:{PORT}/ws/topology/", user_token, logs)
        if not run_in(ns, wait_for_port(PORT), timeout=60).ok:
            raise StackError(f"daphne is not listening on {PORT} after 30 s: {stack.log_tail()}")
        agent_env = {**env, "SWITCHBOARD_AGENT_TOKEN": host_token}
        procs.append(_start(ns, agent_command(PORT), agent_env, logs[1]))
        yield stack
        if dead := [log.stem for proc, log in zip(procs, logs, strict=False) if proc.poll() is not None]:
            raise StackError(f"{' and '.join(dead)} exited during the figure: {stack.log_tail()}")
    finally:
        try:
            _stop(procs)
        finally:
            ctx.run.delete([ns])
            ctx.settle()


def _client(stack: Stack, job: dict, *, timeout: float) -> dict:
    """Run bench.live_client in the stack's namespace with `job`; its JSON result."""
    job = {"url": stack.url, "token": stack.user_token, "host": HOST, **job}
    done = run_in(
        stack.ns,
        [sys.executable, "-m", "bench.live_client"],
        stdout=subprocess.PIPE,
        stdin=json.dumps(job),
        timeout=timeout,
    )
    if not done.ok:
        raise RuntimeError(f"live client failed: {done.tail()} | {stack.log_tail()}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"live client printed no result: {done.tail()}") from None


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (linear between closest ranks, as numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * pct / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:.1f} ms, p95 {percentile(values, 95) * 1000:.1f} ms, "
        f"max {max(values) * 1000:.1f} ms"
    )


def _latency_row(fig: str, goal_s: float, values: Sequence[float], notes: list[str], valid: bool) -> Result:
    p95 = percentile(values, 95) if values else None
    text = "; ".join(filter(None, [_ms(values) if values else "no samples", *notes]))
    return Result(fig, f"goal {goal_s * 1000:g} ms p95", goal_s, p95, 1.0, text, valid and bool(values))


def _reconnects(stack: Stack) -> int:
    """How often the agent had to connect again (each time it sends a whole snapshot)."""
    log = stack.logs[1].read_text(errors="replace") if stack.logs[1].exists() else ""
    return max(0, log.count("agent INFO connected to ") - 1)


def _drops_note(stack: Stack) -> str:
    """Why the agent's connection dropped, as far as the logs tell; empty when it never did."""
    count = _reconnects(stack)
    if not count:
        return ""
    return (
        f"invalid: the agent's connection dropped and was made again {count} times (likely daphne's "
        f"1 MiB limit on websocket messages, see --websocket-max-message-size; the agent sends deltas "
        f"and snapshots whole)"
    )


@figure("P3", order=91)
def p3_latency(ctx: Context) -> list[Result]:
    """P3: kernel change → browser frame: single changes (goal p95 ≤ 50 ms) and a 500-endpoint burst."""
    topology = f"lv{ctx.run.prefix[-4:]}"  # topology names are 1-8 of [a-z0-9-]
    if clash := sorted(n for n in named_namespaces() if n.startswith(f"{topology}-")):
        raise RuntimeError(f"namespaces {topology}-* exist already (e.g. {clash[0]}), not ours to touch")
    job = {
        "mode": "p3",
        "prefix": f"{topology}s",
        "changes": SINGLE_CHANGES,
        "spacing": SPACING_S,
        "change_timeout": CHANGE_TIMEOUT_S,
        "timeout": 60.0,
        "burst_timeout": 30.0,  # for every veth of the burst to reach the client
        "topology": topology,
        "endpoints": BURST_ENDPOINTS,
        "subnet": str(SUBNET),
    }
    before = named_namespaces()
    with live_stack(ctx, "live3") as stack:
        try:
            out = _client(stack, job, timeout=600)
        finally:  # whatever the client left of the burst topology goes with the run
            peers = ctx.run.claim_new(stack.ns, before, name_prefix=f"{topology}-")
            ctx.run.delete(sorted({*peers, *(n for n in ctx.run.claimed if n.startswith(f"{topology}-"))}))
    if out["online"] != 1:
        raise RuntimeError(f"the client never got the host's live snapshot: {stack.log_tail()}")
    single, burst = out["single"], out["burst"]
    drops = _drops_note(stack)
    single_notes = [
        f"{single['changes']} bridges made {SPACING_S * 1000:g} ms apart, {single['misses']} never arrived",
        WEAVE_NOTE,
    ]
    burst_notes = [
        drops,
        f"{burst['endpoints']} endpoints applied in {burst['apply_s']:.2f} s; per host veth, kernel "
        f"creation -> its set event in a frame; {burst['missing']} never arrived",
        f"creation seen by the observer for {burst['from_observer']}, else apply's chunk progress",
        f"largest frame {burst['max_frame_bytes'] / 1e6:.2f} MB",
    ]
    frames, events = burst["frames"], burst["events"]
    per_event = frames / events if events else None
    msgs_notes = [
        drops,
        f"{frames} frames ({burst['snapshots']} of them snapshots) for {events} kernel events: "
        f"{burst['host_events']} rtnetlink notifications in the host namespace + {burst['endpoints']} "
        f"namespaces holding {burst['endpoint_objects']} objects"
        + (f"; {burst['overflows']} notification overflows (count is low)" if burst["overflows"] else ""),
    ]
    if per_event is not None:
        msgs_notes.insert(0, f"{per_event:.4f} frames per event")
    return [
        _latency_row("P3 single", 0.050, flatten(single["latencies"]), single_notes, single["misses"] == 0),
        _latency_row("P3 burst", 0.250, burst["latencies"], burst_notes, not burst["missing"] and not drops),
        Result(
            "P3 msgs/event",
            "goal 0.05 frames per event",
            0.05,
            per_event,
            1.0,
            "; ".join(filter(None, msgs_notes)),
            events > 0 and not drops,
        ),
    ]


def flatten(rows: Sequence[Sequence[float]]) -> list[float]:
    return [x for row in rows for x in row]


@figure("P4", order=92)
def p4_fanout(ctx: Context) -> list[Result]:
    """P4: 200 browser sockets on one worker; kernel change → delta at every one of them (p95 ≤ 250 ms)."""
    job = {
        "mode": "p4",
        "prefix": f"lv{ctx.run.prefix[-4:]}f",
        "clients": FANOUT_CLIENTS,
        "changes": FANOUT_CHANGES,
        "spacing": SPACING_S,
        "change_timeout": CHANGE_TIMEOUT_S,
        "timeout": 60.0,
    }
    with live_stack(ctx, "live4") as stack:
        out = _client(stack, job, timeout=600)
    clients, online = out["clients"], out["online"]
    if online != clients:
        note = f"only {online}/{clients} clients got the live snapshot (connect {out['connect_s']:.1f} s)"
        return [Result("P4 200 clients", "goal 250 ms p95", 0.250, None, 1.0, note, False)]
    single = out["single"]
    per_change = [row for row in single["latencies"] if row]
    first = [row[0] for row in per_change]
    last = [row[-1] for row in per_change]
    notes = [
        _drops_note(stack),
        f"{single['changes']} changes x {clients} clients: {single['misses']} set events and "
        f"{single['del_misses']} del events never arrived",
        f"per change, first client p50 {percentile(first, 50) * 1000:.1f} ms, "
        f"last client p50 {percentile(last, 50) * 1000:.1f} ms"
        if per_change
        else "",
        f"{clients} sockets opened in {out['connect_s']:.1f} s, all got the snapshot "
        f"({statistics.mean(single['snapshots']):.2f} snapshots per client)",
    ]
    valid = single["misses"] == 0 and not notes[0]
    return [_latency_row("P4 200 clients", 0.250, flatten(single["latencies"]), notes, valid)]
