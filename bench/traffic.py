"""P14: traffic edges from conntrack (issue 13's speed goal: a host's 10,000 flows turned into traffic
edges in at most 200 ms).

In a throwaway host namespace, CLIENTS client namespaces each reach one server namespace over a veth
pair; all of them are armed as the agent arms Switchboard's own (netcore.traffic.arm), and each
client sends one UDP datagram from each of FLOWS_PER_CLIENT source ports of its own to the server.
Every conversation shows in two tables (the client's and the server's), so the host holds
CLIENTS x FLOWS_PER_CLIENT x 2 = 10,000 conntrack entries. Timed: what the agent does every 2 s, read
every namespace's table (netcore's ctnetlink decoder) and turn the flows into edges, RUNS times.

- P14 edges: median of the runs against the goal (ratio = goal / measured, so >= 1.0 meets it).
- P14 vs pyroute2: the same tables dumped by pyroute2's NFCTSocket (0.9.7, when importable; dump
  only, no edges), report only: why netcore decodes ctnetlink itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.figures import Context, Result, figure
from bench.hostns import nsenter, run_in

CLIENTS = 5
FLOWS_PER_CLIENT = 1000
RUNS = 9
GOAL_S = 0.200

# Runs inside the host namespace; argv: server namespace, client namespaces. Prints one JSON line.
INPROC_P14 = """
import json, os, socket, statistics, sys, time
from netcore import netns as ns
from netcore.snapshot import snapshot
from netcore.traffic import arm
from netcore.traffic.edges import traffic_edges
from netcore.traffic.read import traffic_read

server, clients = sys.argv[1], sys.argv[2:]
names = [server, *clients]
for name in names:
    arm.arm(name=name, inode=os.stat(ns.netns_path(name)).st_ino)
    def longer():  # unanswered UDP flows live 30 s by default: long enough for every run
        with open("/proc/sys/net/netfilter/nf_conntrack_udp_timeout", "w") as f:
            f.write("600")
    ns.netns_run(path=ns.netns_path(name), fn=longer)
sink = ns.netns_run(path=ns.netns_path(server), fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
sink.bind(("0.0.0.0", 9))
for i, client in enumerate(clients):
    target = f"198.18.{90 + i}.2"
    def send():
        for port in range(20000, 20000 + FLOWS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", port))
            s.sendto(b"x", (target, 9))
            s.close()
    ns.netns_run(path=ns.netns_path(client), fn=send)
snap = snapshot(namespaces=["host", *names], processes=False)
paths = {"host": None, **{n: ns.netns_path(n) for n in names}}
times = []
for _ in range(RUNS):
    t = time.perf_counter()
    read = traffic_read(paths)
    edges = traffic_edges(read.flows, snap)
    times.append(time.perf_counter() - t)
entries = sum(len(f) for f in read.flows.values())
found = sorted((e["client"], e["server"], e["protocol"], e["port"], e["flows"]) for e in edges.values())
answer = {"times": times, "entries": entries, "problems": read.problems, "edges": found}
try:
    from pyroute2 import NFCTSocket
except ImportError:
    answer["pyroute2"] = None
else:
    base = []
    for _ in range(3):
        t = time.perf_counter()
        count = 0
        for name in names:
            def dump():  # pyroute2 opens its socket when first used: all of it inside the namespace
                sock = NFCTSocket()
                try:
                    return len(list(sock.dump()))
                finally:
                    sock.close()
            count += ns.netns_run(path=ns.netns_path(name), fn=dump)
        base.append(time.perf_counter() - t)
    answer["pyroute2"] = {"times": base, "entries": count}
sink.close()
print(json.dumps(answer))
""".replace("FLOWS", str(FLOWS_PER_CLIENT)).replace("RUNS", str(RUNS))


def _setup(ctx: Context) -> tuple[str, str, list[str]]:
    """The host, server and client namespaces, each client joined to the server by a veth pair."""
    host = ctx.run.add_host(ctx.tag("t"))
    server = ctx.run.add_host(ctx.tag("ts"))
    clients = [ctx.run.add_host(ctx.tag("tc")) for _ in range(CLIENTS)]
    for i, client in enumerate(clients):
        for argv in (
            ["ip", "link", "add", "e0", "type", "veth", "peer", "name", f"e{i}", "netns", server],
            ["ip", "addr", "add", f"198.18.{90 + i}.1/24", "dev", "e0"],
            ["ip", "link", "set", "e0", "up"],
        ):
            subprocess.run([*nsenter(client), *argv], check=True, capture_output=True)
        for argv in (
            ["ip", "addr", "add", f"198.18.{90 + i}.2/24", "dev", f"e{i}"],
            ["ip", "link", "set", f"e{i}", "up"],
        ):
            subprocess.run([*nsenter(server), *argv], check=True, capture_output=True)
    return host, server, clients


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@figure("P14", order=98)
def p14_traffic(ctx: Context) -> list[Result]:
    host, server, clients = _setup(ctx)
    try:
        done = run_in(host, [sys.executable, "-c", INPROC_P14, server, *clients], stdout=subprocess.PIPE)
    finally:
        ctx.run.delete([host, server, *clients])
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [
            Result("P14 edges", f"goal {GOAL_S * 1000:.0f} ms", GOAL_S, None, 1.0, f"failed: {done.tail()}")
        ]
    expected_entries = CLIENTS * FLOWS_PER_CLIENT * 2
    wanted = sorted((c, server, "udp", 9, FLOWS_PER_CLIENT) for c in clients)
    valid = (
        data["entries"] == expected_entries
        and data["edges"] == [list(e) for e in wanted]
        and not data["problems"]
    )
    median = _quantile(data["times"], 0.5)
    note = (
        f"median of {len(data['times'])} reads of {data['entries']} entries in {CLIENTS + 1} namespaces"
        f" into {len(data['edges'])} edges, p95 {_quantile(data['times'], 0.95) * 1000:.1f} ms"
    )
    if not valid:
        note += f"; expected {expected_entries} entries and {len(wanted)} edges of {FLOWS_PER_CLIENT} flows"
    rows = [Result("P14 edges", f"goal {GOAL_S * 1000:.0f} ms", GOAL_S, median, 1.0, note, valid=valid)]
    base = data.get("pyroute2")
    if base is None:
        note = "pyroute2 is not installed: no baseline (pip install pyroute2==0.9.7 to see it)"
        rows.append(Result("P14 vs pyroute2", "pyroute2 NFCTSocket dump", None, median, None, note))
    else:
        note = (
            f"{base['entries']} entries dumped, median of {len(base['times'])}; netcore's time includes edges"
        )
        rows.append(
            Result(
                "P14 vs pyroute2",
                "pyroute2 NFCTSocket dump",
                _quantile(base["times"], 0.5),
                median,
                None,
                note,
            )
        )
    return rows
