"""P11: the service catalog at work (issue 12's speed goals): DNS, VIPs and health on the real kernel.

Everything runs in one fresh throwaway "host" namespace: a bridge holding the network's gateway, four
instance namespaces (i1-i3 serve from the start, i4 comes and goes) each running a server that answers
every TCP connection with its own name, and a client namespace. The agent's ServiceRuntime (DNS by
dnsmasq, VIPs by nftables, health checks) runs in an asyncio loop on a thread of the bench that
entered that namespace first (the runtime's worker thread, its dnsmasq and `nft` inherit it). The bench
process itself stays where it is. Everything is stopped and deleted in `finally`.

Rows:
- P11 dns rate (P5): `dnsperf` from the client against the runtime's dnsmasq on the gateway (one
  service of 3 instances and 50 node names, A queries for all 51 names), and against a plain dnsmasq
  on a second address of the bridge serving the same hosts lines from `--addn-hosts` (its command
  line is the runtime's, with `--hostsdir` swapped for `--addn-hosts`), DNSPERF_S seconds each,
  A/B alternating, RATE_RUNS each; medians. The columns are seconds per 10 000 queries, so
  ratio = catalog qps / baseline qps; goal 0.8.
- P11 change → DNS, P11 change → VIP: CHANGES catalogs applied, adding and removing i4 in turn (no
  check: it serves at once), timed from just before `apply`, both watched at the same time: until a
  query from the client (each with a POLL_TIMEOUT_S timeout) gets the new answer, and until a new
  connection to the VIP reaches i4 (added) or, removed, the start of the first connection after the
  last one that reached it (QUIET in a row missing it). p95 against 200 ms. Queries lost while
  dnsmasq restarts (a new SRV set needs a new process) are counted in the note.
- P11 failure → out: a tcp check every 1 s (fall 1); an instance's server is killed (after a random
  wait, so the kill falls anywhere in the check's period); from the kill until it is out of DNS and
  out of the VIP (as above; a refused connection counts as reaching it). The worst of FAILURES
  samples against interval + 1 s = 2 s; the server is started again and back in both before the next.
- P11 VIP spread: SPREAD connections from the client to the VIP over 3 healthy equal-weight
  instances; the worst instance's deviation from an equal share. ratio = 1.10 / (1 + deviation),
  goal 1.0 (met when the deviation is at most 10 %; an exact round robin has deviation 0, so
  the deviation alone could not be the denominator).

VIP polls use a fresh client source port each (_ask): a connection reusing the port of one still in
conntrack's TIME_WAIT was seen to move the round robin on by one more than it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import ipaddress
import itertools
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.figures import Context, Result, figure
from bench.hostns import NETNS_DIR, run_in
from bench.live import _latency_row, percentile
from netcore.errors import NetcoreError
from netcore.netns import netns_run
from netcore.services.dns import dns_query
from netcore.services.runtime import ServiceRuntime

SUBNET = ipaddress.IPv4Network("198.19.11.0/24")
GATEWAY = "198.19.11.1"
BASELINE_DNS = "198.19.11.2"  # the plain dnsmasq, on the same bridge
VIP = "198.19.11.100"
INSTANCES = {"i1": "198.19.11.11", "i2": "198.19.11.12", "i3": "198.19.11.13", "i4": "198.19.11.14"}
CLIENT = "198.19.11.20"
NODES = 50  # node names n00..n49 at 198.19.11.150..199
PORT = 8080  # the instances' servers
VIP_PORT = 80
DNS_PORT = 5353  # not 53: the same for the runtime's dnsmasq and the baseline's
DOMAIN = "sb.internal"
NETWORK = "front"
SERVICE = f"web.{NETWORK}.{DOMAIN}"
DNSPERF_S = 4
RATE_RUNS = 3  # each side, alternating A/B/A/B
CHANGES = 30
FAILURES = 5
CHECK_INTERVAL_S = 1.0
SPREAD = 3000
DNS_GOAL = 0.8
CHANGE_GOAL_S = 0.200
FAILURE_GOAL_S = CHECK_INTERVAL_S + 1.0
SPREAD_TOLERANCE = 0.10
POLL_TIMEOUT_S = 0.05  # of each DNS query while a change is timed
VIP_POLL_S = 0.002  # between connections while a change is timed
QUIET = 20  # connections in a row that miss an instance before it counts as out of the VIP
RESOLVER_TIMEOUT_S = 1  # what the runtime writes into resolv.conf (options timeout:1)

# Answers each TCP connection with its instance name, then closes it.
SERVER = r"""
import socket, sys
name, port = sys.argv[1].encode(), int(sys.argv[2])
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", port))
tcp.listen(1024)
print("ready", flush=True)
while True:
    conn, _ = tcp.accept()
    with conn:
        try:
            conn.sendall(name)
        except OSError:
            pass
"""

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_QPS = re.compile(r"Queries per second:\s+([0-9.]+)")
_LOST = re.compile(r"Queries lost:\s+(\d+)")
_T = TypeVar("_T")
# the client's source ports for VIP polls: below the ephemeral range the VIP spread draws from
_PORTS = itertools.cycle(range(10000, 32000))


class FigureError(RuntimeError):
    """The figure's world could not be built or did not answer as it should."""


@dataclass
class World:
    """The figure's namespaces (short name → /run/netns name), scratch directory and processes."""

    host: str
    spaces: dict[str, str]
    workdir: Path
    servers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def path(self, who: str) -> str:
        return str(NETNS_DIR / self.spaces[who])


# -- the world ------------------------------------------------------------------------------------


def _build(ctx: Context, bridge: str, made: list[str]) -> World:
    """The host with its bridge and gateway; instance and client namespaces wired to it. Each
    namespace goes into `made` as soon as it exists, so a failure half-way still deletes it."""
    host = ctx.run.add_host(ctx.tag("svc"))
    made.append(host)
    spaces: dict[str, str] = {}
    workdir = ctx.run.workdir / host
    workdir.mkdir()
    world = World(host, spaces, workdir)
    for who in (*INSTANCES, "c"):
        spaces[who] = ctx.run.add_host(ctx.tag(f"sv{who}"))
        made.append(spaces[who])
    addresses = {**INSTANCES, "c": CLIENT}
    lines = [
        f"ip link add {bridge} type bridge",
        f"ip addr add {GATEWAY}/{SUBNET.prefixlen} dev {bridge}",
        f"ip addr add {BASELINE_DNS}/{SUBNET.prefixlen} dev {bridge}",
        f"ip link set {bridge} up",
        # a new namespace copies the machine's IPv4 settings, and a Docker host forwards: start from off
        f"echo 0 > /proc/sys/net/ipv4/conf/{bridge}/forwarding",
    ]
    for n, (who, space) in enumerate(spaces.items()):
        veth = f"{bridge}p{n}"
        lines += [
            f"ip link add {veth} type veth peer name eth0 netns {space}",
            f"ip link set {veth} master {bridge} up",
            f"nsenter --net={NETNS_DIR / space} ip addr add {addresses[who]}/{SUBNET.prefixlen} dev eth0",
            f"nsenter --net={NETNS_DIR / space} ip link set eth0 up",
            f"nsenter --net={NETNS_DIR / space} ip route add default via {GATEWAY}",
        ]
    done = run_in(host, ["sh", "-e", "-c", "\n".join(lines)], timeout=60)
    if not done.ok:
        raise FigureError(f"P11 set-up failed: {done.tail()}")
    return world


def _start_server(world: World, who: str) -> None:
    """(Re)start the server of instance `who`; returns once it listens."""
    argv = ["nsenter", f"--net={world.path(who)}", sys.executable, "-c", SERVER, who, str(PORT)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    world.servers[who] = proc
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line != b"ready\n":
        said = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise FigureError(f"the server of {who} did not start: {line!r} {' '.join(said.split())[-300:]}")


def _kill_server(world: World, who: str) -> None:
    proc = world.servers.pop(who, None)
    if proc is not None and proc.poll() is None:
        proc.kill()
    if proc is not None:
        proc.wait()


def _catalog(world: World, bridge: str, *, version: int, instances: tuple[str, ...], check: bool) -> dict:
    """The host's catalog: service `web` (VIP) with `instances`, NODES node names."""
    service: dict[str, Any] = {
        "name": "web",
        "protocol": "tcp",
        "port": VIP_PORT,
        "vip": VIP,
        "instances": [
            {"id": who, "address": INSTANCES[who], "port": PORT, "netns": world.spaces[who]}
            for who in instances
        ],
    }
    if check:
        service["check"] = {"kind": "tcp", "interval": CHECK_INTERVAL_S, "timeout": 0.5, "rise": 1, "fall": 1}
    nodes = [
        {"name": f"n{i:02d}", "addresses": [str(SUBNET.network_address + 150 + i)]} for i in range(NODES)
    ]
    return {
        "version": version,
        "domain": DOMAIN,
        "networks": [
            {
                "name": NETWORK,
                "bridge": bridge,
                "gateways": [GATEWAY],
                "subnets": [str(SUBNET)],
                "nodes": nodes,
                "services": [service],
            }
        ],
    }


# -- a loop in the host namespace -----------------------------------------------------------------


def _enter(path: str) -> None:
    """Move the calling thread into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _run_in_namespace(path: str, main: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run `main()` in an asyncio loop on a new thread that entered namespace `path` first (threads,
    children and sockets it makes are there); a KeyboardInterrupt here cancels it and waits for its
    clean-up before going on."""
    box: dict[str, Any] = {}
    ready = threading.Event()

    def body() -> None:
        loop: asyncio.AbstractEventLoop | None = None
        try:
            _enter(path)
            loop = asyncio.new_event_loop()
            task = loop.create_task(main())
            box["loop"], box["task"] = loop, task
            ready.set()
            box["value"] = loop.run_until_complete(task)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc
        finally:
            ready.set()
            if loop is not None:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

    thread = threading.Thread(target=body, name="bench-p11", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        ready.wait()
        if "task" in box:
            box["loop"].call_soon_threadsafe(box["task"].cancel)
        deadline = time.monotonic() + 30
        while thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(KeyboardInterrupt):
                thread.join(0.5)
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- probes (blocking: called through asyncio.to_thread) ------------------------------------------


@dataclass
class Lost:
    """Queries that got no answer within their timeout (not refused: sent, then lost)."""

    count: int = 0


def _a_records(
    world: World, server: str, name: str = SERVICE, *, timeout: float = 0.5, lost: Lost | None = None
) -> list[str] | None:
    """The A records the client gets for `name` from `server`; None while it does not answer."""
    started = time.perf_counter()
    try:
        answer = dns_query(
            server=ipaddress.ip_address(server),
            name=name,
            rdtype="A",
            port=DNS_PORT,
            netns=world.path("c"),
            timeout=timeout,
        )
    except NetcoreError:
        if lost is not None and time.perf_counter() - started >= timeout:
            lost.count += 1
        return None
    return sorted(answer.records) if answer.rcode == "NOERROR" else None


def _dns_is(world: World, want: list[str], lost: Lost | None = None) -> bool:
    """Whether the catalog's DNS answers the service name with exactly `want` (asked with a short
    timeout, so a query lost while dnsmasq restarts delays the answer by POLL_TIMEOUT_S only)."""
    return _a_records(world, GATEWAY, timeout=POLL_TIMEOUT_S, lost=lost) == want


def _answers(world: World, server: str) -> bool:
    return _a_records(world, server) is not None


def _ask(world: World, *, fresh_port: bool = False) -> str | None:
    """Which instance answers a new connection from the client to the VIP; None if none does.

    `fresh_port`: from a source port not used before in the run. A connection that reuses the port
    of an earlier one (whose conntrack entry still waits in TIME_WAIT) was seen to move the round
    robin on by one more, so a poll with ephemeral ports is not an exact round robin.
    """
    sock = netns_run(path=world.path("c"), fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    with sock:
        sock.settimeout(1.0)
        try:
            if fresh_port:
                sock.bind((CLIENT, next(_PORTS)))
            sock.connect((VIP, VIP_PORT))
            data = sock.recv(64)
        except OSError:
            return None
    return data.decode() or None


def _vip_reaches(world: World, who: str, *, since: float, timeout: float) -> float | None:
    """Seconds from `since` until a new connection to the VIP reaches `who` (timed at its start)."""
    while time.perf_counter() - since < timeout:
        started = time.perf_counter()
        if _ask(world, fresh_port=True) == who:
            return started - since
        time.sleep(VIP_POLL_S)
    return None


def _vip_leaves(world: World, who: str, *, since: float, timeout: float) -> float | None:
    """Seconds from `since` until new connections to the VIP stop reaching `who` (one refused counts
    as reaching it, the instance being dead): the start of the first connection after the last that
    did, once QUIET more in a row did not."""
    out_at: float | None = None
    quiet = 0
    while time.perf_counter() - since < timeout:
        started = time.perf_counter()
        got = _ask(world, fresh_port=True)
        if got is None or got == who:
            out_at, quiet = None, 0
        else:
            out_at = started if out_at is None else out_at
            quiet += 1
            if quiet >= QUIET:
                return out_at - since
        time.sleep(VIP_POLL_S)
    return None


def _addresses(*names: str) -> list[str]:
    return sorted(INSTANCES[n] for n in names)


async def _until(
    check: Callable[[], bool], *, since: float, timeout: float, every: float = 0.002
) -> float | None:
    """Seconds from `since` until check() (run in a thread) holds; None after `timeout`."""
    while not await asyncio.to_thread(check):
        if time.perf_counter() - since > timeout:
            return None
        await asyncio.sleep(every)
    return time.perf_counter() - since


# -- the measurements -----------------------------------------------------------------------------


def _spread(world: World) -> Result:
    hits: Counter[str] = Counter(_ask(world) or "(none)" for _ in range(SPREAD))
    fair = SPREAD / 3
    deviation = max(abs(hits[who] - fair) / fair for who in ("i1", "i2", "i3"))
    valid = sum(hits[who] for who in ("i1", "i2", "i3")) == SPREAD
    counts = ", ".join(f"{who} {hits[who]}" for who in sorted(hits))
    note = (
        f"{SPREAD} connections from the client over 3 healthy equal-weight instances: {counts}; worst "
        f"deviation from {fair:.0f} {deviation * 100:.1f} % (goal <= {SPREAD_TOLERANCE * 100:g} %); "
        f"ratio = {1 + SPREAD_TOLERANCE:.2f} / (1 + deviation)"
    )
    if not valid:
        note += f"; invalid: {SPREAD - sum(hits[w] for w in ('i1', 'i2', 'i3'))} connections unanswered"
    return Result(
        "P11 VIP spread",
        f"goal ±{SPREAD_TOLERANCE * 100:g} %",
        1 + SPREAD_TOLERANCE,
        1 + deviation,
        1.0,
        note,
        valid,
    )


async def _dnsperf(world: World, server: str, queries: Path) -> tuple[float, str]:
    """dnsperf from the client against `server` for DNSPERF_S seconds: (qps, a note on losses)."""
    argv = [
        "nsenter",
        f"--net={world.path('c')}",
        "dnsperf",
        "-s",
        server,
        "-p",
        str(DNS_PORT),
        "-d",
        str(queries),
        "-l",
        str(DNSPERF_S),
        "-c",
        "1",
        "-T",
        "1",
        "-q",
        "100",
        "-t",
        "2",
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    found = _QPS.search(text)
    if proc.returncode != 0 or found is None:
        raise FigureError(
            f"dnsperf against {server} failed: {' '.join((err or out).decode()[-300:].split())}"
        )
    lost = _LOST.search(text)
    return float(found.group(1)), (lost.group(1) if lost else "?")


def _die_with_parent() -> None:
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


async def _dns_rate(world: World, runtime: ServiceRuntime) -> Result:
    """P5: the runtime's dnsmasq against a plain dnsmasq with the same hosts lines and options."""
    server = runtime.servers[NETWORK]
    pid = server.pid
    if pid is None:
        raise FigureError("the runtime's dnsmasq is not running")
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    hosts = Path(server.directory, "hosts", "catalog").read_text()
    hosts_file = world.workdir / "baseline.hosts"
    hosts_file.write_text(hosts)
    baseline_argv = []
    for arg in argv:
        if arg.startswith("--listen-address="):
            arg = f"--listen-address={BASELINE_DNS}"
        elif arg.startswith("--hostsdir="):
            arg = f"--addn-hosts={hosts_file}"
        baseline_argv.append(arg)
    names = [SERVICE, *(f"n{i:02d}.{NETWORK}.{DOMAIN}" for i in range(NODES))]
    queries = world.workdir / "queries.txt"
    queries.write_text("".join(f"{name} A\n" for name in names))
    with (world.workdir / "baseline-dnsmasq.log").open("wb") as log:
        baseline = subprocess.Popen(
            baseline_argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent
        )
    try:
        node = f"n07.{NETWORK}.{DOMAIN}"
        want_node = [str(SUBNET.network_address + 157)]
        for where in (GATEWAY, BASELINE_DNS):
            if (
                await _until(functools.partial(_answers, world, where), since=time.perf_counter(), timeout=3)
                is None
            ):
                raise FigureError(f"dnsmasq on {where} does not answer: {baseline_argv}")
            svc, nd = (
                await asyncio.to_thread(_a_records, world, where),
                await asyncio.to_thread(_a_records, world, where, node),
            )
            if svc != _addresses("i1", "i2", "i3") or nd != want_node:
                raise FigureError(f"dnsmasq on {where} answers {SERVICE} {svc}, {node} {nd}")
        catalog_qps: list[float] = []
        baseline_qps: list[float] = []
        lost: list[str] = []
        for _ in range(RATE_RUNS):
            for where, into in ((GATEWAY, catalog_qps), (BASELINE_DNS, baseline_qps)):
                qps, lost_count = await _dnsperf(world, where, queries)
                into.append(qps)
                lost.append(lost_count)
    finally:
        baseline.terminate()
        try:
            await asyncio.to_thread(baseline.wait, 5)
        except subprocess.TimeoutExpired:
            baseline.kill()
            baseline.wait()
    cat, base = statistics.median(catalog_qps), statistics.median(baseline_qps)
    note = (
        f"dnsperf -c 1 -T 1 -q 100, {DNSPERF_S} s each, A/B x{RATE_RUNS}, {len(names)} names "
        f"(service + {NODES} nodes, A): catalog's dnsmasq (--hostsdir) "
        f"{', '.join(f'{q:.0f}' for q in catalog_qps)} qps, median {cat:.0f}; plain dnsmasq "
        f"(--addn-hosts, same options) {', '.join(f'{q:.0f}' for q in baseline_qps)} qps, median {base:.0f}; "
        f"lost {'/'.join(lost)}; columns: seconds per 10 000 queries; ratio = catalog qps / baseline qps"
    )
    per = 10_000  # the columns: seconds for this many queries
    return Result("P11 dns rate (P5)", "dnsmasq, plain hosts file", per / base, per / cat, DNS_GOAL, note)


async def _changes(world: World, runtime: ServiceRuntime, bridge: str) -> list[Result]:
    """Catalog change → DNS answer and VIP membership, i4 added and removed in turn."""
    dns_s: list[float] = []
    vip_s: list[float] = []
    apply_s: list[float] = []
    misses = 0
    lost = Lost()
    lossy = 0  # changes during which a query got no answer (dnsmasq restarting for the new SRV set)
    for k in range(CHANGES):
        adding = k % 2 == 0
        names = ("i1", "i2", "i3", "i4") if adding else ("i1", "i2", "i3")
        watch = _vip_reaches if adding else _vip_leaves
        catalog = _catalog(world, bridge, version=10 + k, instances=names, check=False)
        before = lost.count
        since = time.perf_counter()
        dns_task = asyncio.create_task(
            _until(functools.partial(_dns_is, world, _addresses(*names), lost), since=since, timeout=3)
        )
        vip_task = asyncio.create_task(asyncio.to_thread(watch, world, "i4", since=since, timeout=3))
        reply = await runtime.apply(catalog)
        apply_s.append(time.perf_counter() - since)
        dns_t, vip_t = await asyncio.gather(dns_task, vip_task)
        if not reply.get("ok") or reply.get("problems"):
            raise FigureError(f"catalog {10 + k} refused: {reply}")
        lossy += lost.count > before
        if dns_t is None or vip_t is None:
            misses += 1
        else:
            dns_s.append(dns_t)
            vip_s.append(vip_t)
        await asyncio.sleep(0.02)
    note = (
        f"{CHANGES} catalogs adding/removing i4 (no check) in turn, timed from just before apply "
        f"(apply returns after p50 {percentile(apply_s, 50) * 1000:.0f} ms, "
        f"max {max(apply_s) * 1000:.0f} ms); "
        f"{misses} not seen within 3 s"
    )
    dns_note = (
        f"the client asks again and again, each query with a {POLL_TIMEOUT_S * 1000:g} ms timeout: "
        f"in {lossy}/{CHANGES} changes a query was lost ({lost.count} in all: dnsmasq restarts for the "
        f"new SRV set and drops what it had not answered; a resolver with the runtime's "
        f"timeout:{RESOLVER_TIMEOUT_S} waits {RESOLVER_TIMEOUT_S} s for each)"
    )
    vip_note = (
        f"VIP: until a new connection reaches i4 (added) / the first connection after the last that "
        f"reached it, {QUIET} in a row missing it (removed); connections {VIP_POLL_S * 1000:g} ms apart"
    )
    return [
        _latency_row("P11 change → DNS", CHANGE_GOAL_S, dns_s, [note, dns_note], misses == 0),
        _latency_row("P11 change → VIP", CHANGE_GOAL_S, vip_s, [note, vip_note], misses == 0),
    ]


async def _failures(world: World, runtime: ServiceRuntime, bridge: str) -> Result:
    """A killed instance: out of DNS and the VIP within its check interval + 1 s."""
    everyone = ("i1", "i2", "i3")
    all_three = functools.partial(_dns_is, world, _addresses(*everyone))
    reply = await runtime.apply(_catalog(world, bridge, version=100, instances=everyone, check=True))
    if not reply.get("ok") or reply.get("problems"):
        raise FigureError(f"checked catalog refused: {reply}")
    if await _until(all_three, since=time.perf_counter(), timeout=5) is None:
        raise FigureError("the checked instances did not all come into DNS")
    samples: list[float] = []
    detail: list[str] = []
    misses = 0
    lost = Lost()
    for k in range(FAILURES):
        victim = everyone[k % 3]
        others = [w for w in everyone if w != victim]
        await asyncio.sleep(random.uniform(0, CHECK_INTERVAL_S))
        await asyncio.to_thread(_kill_server, world, victim)
        since = time.perf_counter()
        dns_t, vip_t = await asyncio.gather(
            _until(functools.partial(_dns_is, world, _addresses(*others), lost), since=since, timeout=5),
            asyncio.to_thread(_vip_leaves, world, victim, since=since, timeout=5),
        )
        if dns_t is None or vip_t is None:
            misses += 1
            detail.append(f"{victim}: not out within 5 s")
        else:
            samples.append(max(dns_t, vip_t))
            detail.append(f"{victim} DNS {dns_t * 1000:.0f} ms, VIP {vip_t * 1000:.0f} ms")
        await asyncio.to_thread(_start_server, world, victim)
        back = time.perf_counter()
        dns_back = await _until(all_three, since=back, timeout=5)
        vip_back = await asyncio.to_thread(_vip_reaches, world, victim, since=back, timeout=5)
        if dns_back is None or vip_back is None:
            raise FigureError(f"{victim} did not come back into DNS and the VIP within 5 s")
    summary = (
        f"max {max(samples) * 1000:.0f} ms, p95 {percentile(samples, 95) * 1000:.0f} ms, p50 "
        f"{percentile(samples, 50) * 1000:.0f} ms"
        if samples
        else "no samples"
    )
    note = (
        f"{summary}; tcp check every {CHECK_INTERVAL_S:g} s (fall 1), server killed at a random point of "
        f"the period; per sample, from the kill until out of DNS and out of the VIP (the first connection "
        f"after the last one it refused, {QUIET} in a row reaching the others): "
        f"{'; '.join(detail)}; DNS queries ({POLL_TIMEOUT_S * 1000:g} ms timeout) lost meanwhile: "
        f"{lost.count}; ratio = goal / max"
    )
    return Result(
        "P11 failure → out",
        f"goal {FAILURE_GOAL_S * 1000:g} ms max",
        FAILURE_GOAL_S,
        max(samples) if samples else None,
        1.0,
        note,
        misses == 0 and bool(samples),
    )


async def _scenario(world: World, bridge: str) -> list[Result]:
    runtime = ServiceRuntime(
        on_state=lambda state: None,
        directory=str(world.workdir / "services"),
        etc_netns=str(world.workdir / "etc-netns"),
        dns_port=DNS_PORT,
    )
    task = asyncio.create_task(runtime.run())
    try:
        await asyncio.sleep(0.05)
        reply = await runtime.apply(
            _catalog(world, bridge, version=1, instances=("i1", "i2", "i3"), check=False)
        )
        if not reply.get("ok") or reply.get("problems"):
            raise FigureError(f"the first catalog was refused: {reply}")
        want = _addresses("i1", "i2", "i3")
        if (
            await _until(functools.partial(_dns_is, world, want), since=time.perf_counter(), timeout=3)
            is None
        ):
            raise FigureError(f"the runtime's DNS does not answer {SERVICE} with i1-i3")
        rows = [await asyncio.to_thread(_spread, world)]
        rows.append(await _dns_rate(world, runtime))
        rows += await _changes(world, runtime, bridge)
        rows.append(await _failures(world, runtime, bridge))
        return rows
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@figure("P11", order=130)
def p11_services(ctx: Context) -> list[Result]:
    """P11: the service catalog's DNS rate against plain dnsmasq, change and failure latency, VIP spread."""
    bridge = f"sb{ctx.run.prefix[-4:]}sv"
    world: World | None = None
    made: list[str] = []
    try:
        world = _build(ctx, bridge, made)
        for who in INSTANCES:
            _start_server(world, who)
        w = world
        return _run_in_namespace(str(NETNS_DIR / world.host), lambda: _scenario(w, bridge))
    finally:
        if world is not None:
            for who in list(world.servers):
                _kill_server(world, who)
        ctx.run.delete(made)
        ctx.settle()
