"""P12: why can't A reach B (issue 13's speed goals), on the shared N-endpoint host.

- P12 walk: the path walk of one pair of endpoints on the same bridge, over the host's state in
  memory (as the agent answers from its live model): goal 50 ms per pair at 1000 endpoints. Timed
  with the kernel route lookups, the firewall read and the listening check, not the snapshot.
- P12 probe reachable: the whole answer (walk and one ICMP probe) for a reachable pair: goal 2 s.
- P12 probe unreachable: the whole answer for an address nobody has, probe timeout 1 s: goal
  timeout + 0.5 s.
Ratios are goal / measured, so ≥ 1.0 meets the goal.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.figures import Context, Result, figure
from bench.hostns import run_in

PAIRS = 20

# Runs inside the world's host namespace; prints {walk_s: [...], reachable_s, unreachable_s, ...}.
INPROC_P12 = """
import ipaddress, json, statistics, sys, time
from netcore.explain.answer import explain
from netcore.explain.probe import Namespaces
from netcore.explain.walk import path_walk
from netcore.snapshot import snapshot
first, last = sys.argv[1], sys.argv[2]
snap = snapshot(processes=False)
mine = [a for a in snap.addresses if a.netns == last and a.family == 2 and a.scope == "universe"]
target = ipaddress.ip_address(mine[0].address)
kernel = Namespaces.of_host()
walks, verdicts = [], set()
for _ in range(PAIRS):
    kernel.rulesets.clear()
    t = time.perf_counter()
    walk = path_walk(snap, source=first, destination=target, protocol="icmp", kernel=kernel)
    walks.append(time.perf_counter() - t)
    verdicts.add(walk.verdict)
kernel.close()
t = time.perf_counter()
reachable = explain(source=first, destination=str(target), count=1, timeout=1.0, snapshot=snap)
reachable_s = time.perf_counter() - t
t = time.perf_counter()
unreachable = explain(source=first, destination="198.18.255.254", count=1, timeout=1.0, snapshot=snap)
unreachable_s = time.perf_counter() - t
answer = {"walks": walks, "verdicts": sorted(verdicts), "endpoints": len(snap.namespaces)}
answer.update(reachable=reachable.result, reachable_s=reachable_s)
answer.update(unreachable=unreachable.result, unreachable_s=unreachable_s)
print(json.dumps(answer))
""".replace("PAIRS", str(PAIRS))


@figure("P12", order=97)
def p12_explain(ctx: Context) -> list[Result]:
    world = ctx.need_world()
    first, last = world.endpoint_ns[0], world.endpoint_ns[-1]
    done = run_in(world.host, [sys.executable, "-c", INPROC_P12, first, last], stdout=subprocess.PIPE)
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        note = f"failed: {done.tail()}"
        return [Result(f"P12 {what}", "goal", None, None, 1.0, note) for what in ("walk", "probe")]
    walks = sorted(data["walks"])
    median, p95 = walks[len(walks) // 2], walks[int(len(walks) * 0.95) - 1]
    walk_ok = data["verdicts"] == ["deliver"]
    note = f"median of {PAIRS} pairs, p95 {p95 * 1000:.1f} ms, {data['endpoints']} namespaces read"
    return [
        Result("P12 walk", "goal 50 ms per pair", 0.050, median, 1.0, note, valid=walk_ok),
        Result(
            "P12 probe reachable",
            "goal 2 s (walk + ICMP probe)",
            2.0,
            data["reachable_s"],
            1.0,
            f"answer {data['reachable']}",
            valid=data["reachable"] == "REACHABLE",
        ),
        Result(
            "P12 probe unreachable",
            "goal timeout 1 s + 0.5 s",
            1.5,
            data["unreachable_s"],
            1.0,
            f"answer {data['unreachable']}",
            valid=data["unreachable"] == "UNREACHABLE",
        ),
    ]
