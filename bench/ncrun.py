"""The netcore side of each figure: the topology file and the exact commands timed.

Kept in one place so the commands (and the in-process dump snippet) can be adjusted without
touching the figures. Whole commands run as `sys.executable -m netcore ...` from the repo root.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO

from bench.baselines import SUBNET
from bench.hostns import Timed, run_in

TOPOLOGY = "p1"
NETWORK = "lan"
VETH_PREFIX = f"{TOPOLOGY}-n"  # host-side veth names netcore gives P1's endpoints


def node_names(count: int) -> list[str]:
    """P1's node names: n0001, n0002, ... (wider when count needs it)."""
    width = max(4, len(str(count)))
    return [f"n{i:0{width}d}" for i in range(1, count + 1)]


def topology_yaml(count: int) -> str:
    """P1's topology file: one bridge network on 198.18.0.0/16 and `count` nodes on it."""
    lines = [f"name: {TOPOLOGY}", "networks:", f"  {NETWORK}: {{driver: bridge, subnet: {SUBNET}}}", "nodes:"]
    lines += [f"  {node}: {{networks: [{NETWORK}]}}" for node in node_names(count)]
    return "\n".join(lines) + "\n"


def netcore(*args: str) -> list[str]:
    """argv for the netcore CLI with this interpreter."""
    return [sys.executable, "-m", "netcore", *args]


def apply(host: str, topology: Path) -> Timed:
    """`netcore apply FILE` in `host`, whole command timed."""
    return run_in(host, netcore("apply", str(topology)), stdout=subprocess.PIPE)


def destroy(host: str, topology: Path) -> Timed:
    """`netcore destroy FILE` in `host`, whole command timed."""
    return run_in(host, netcore("destroy", str(topology)), stdout=subprocess.PIPE)


def snapshot(host: str, out: IO) -> Timed:
    """`netcore snapshot --json > out` in `host`, whole command timed."""
    return run_in(host, netcore("snapshot", "--json"), stdout=out)


# In-process timings for P2b, each printing its own seconds on the last line of stdout.
INPROC_NETCORE_DUMP = (
    "import time, netcore.snapshot as s\n"
    "t = time.perf_counter()\n"
    "s.snapshot(namespaces=['host'])\n"
    "print(time.perf_counter() - t)\n"
)
INPROC_IP_DUMP = (
    "import json, subprocess, time\n"
    "t = time.perf_counter()\n"
    "for argv in (['ip', '-j', '-d', 'link', 'show'], ['ip', '-j', 'addr', 'show']):\n"
    "    json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)\n"
    "print(time.perf_counter() - t)\n"
)


def inproc(ns: str, code: str) -> tuple[float | None, Timed]:
    """Run a timing snippet with this interpreter inside `ns`; return the seconds it printed."""
    done = run_in(ns, [sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        return (float(done.stdout.strip().splitlines()[-1]) if done.ok else None), done
    except (ValueError, IndexError):
        return None, done


def inproc_netcore_dump(ns: str) -> tuple[float | None, Timed]:
    """P2b netcore side: netcore's in-process dump of one namespace's links and addresses."""
    return inproc(ns, INPROC_NETCORE_DUMP)


def inproc_ip_dump(ns: str) -> tuple[float | None, Timed]:
    """P2b baseline: `ip -j -d link show` + `ip -j addr show`, two processes, output parsed."""
    return inproc(ns, INPROC_IP_DUMP)


# P7: one in-process apply of P7_ENDPOINTS endpoints; apply reports progress after each chunk of
# nodes, so the time per endpoint of the first chunk (#1..#128) and of the last (up to #2000) is
# the marginal cost of an endpoint at that size. Prints {"first": s, "last": s} per endpoint.
P7_ENDPOINTS = 2000
INPROC_P7 = (
    "import json, time\n"
    "from netcore.topology import converge, spec\n"
    f"n = {P7_ENDPOINTS}\n"
    "text = 'name: p7\\nnetworks:\\n  lan: {subnet: 198.18.0.0/16}\\nnodes:\\n'\n"
    "text += ''.join(f'  n{i:05d}: {{networks: [lan]}}\\n' for i in range(n))\n"
    "topo = spec.loads(text)\n"
    "marks = []\n"
    "try:\n"
    "    converge.apply(topo, progress=lambda done, total: marks.append((done, time.perf_counter())))\n"
    "finally:\n"
    "    converge.destroy(topo)\n"
    "per = [(t1 - t0) / (d1 - d0) for (d0, t0), (d1, t1) in zip(marks, marks[1:]) if d1 > d0]\n"
    "print(json.dumps({'first': per[0], 'last': per[-1]}))\n"
)

# Warm snapshot: a LiveModel loaded once, then snapshot() from memory; prints the median seconds.
INPROC_WARM_SNAPSHOT = (
    "import asyncio, statistics, time\n"
    "from netcore.live import LiveModel\n"
    "async def main():\n"
    "    model = LiveModel(processes=False)\n"
    "    await model.start()\n"
    "    try:\n"
    "        times = []\n"
    "        for _ in range(21):\n"
    "            t = time.perf_counter()\n"
    "            model.snapshot()\n"
    "            times.append(time.perf_counter() - t)\n"
    "    finally:\n"
    "        model.close()\n"
    "    print(statistics.median(times))\n"
    "asyncio.run(main())\n"
)


def inproc_p7(ns: str) -> tuple[dict | None, Timed]:
    """P7: per-endpoint cost at the start and at the end of one large apply."""
    done = run_in(ns, [sys.executable, "-c", INPROC_P7], stdout=subprocess.PIPE)
    try:
        return (json.loads(done.stdout.strip().splitlines()[-1]) if done.ok else None), done
    except (ValueError, IndexError):
        return None, done


def inproc_warm_snapshot(ns: str) -> tuple[float | None, Timed]:
    """Warm snapshot: median time of LiveModel.snapshot() once the model is loaded."""
    return inproc(ns, INPROC_WARM_SNAPSHOT)
