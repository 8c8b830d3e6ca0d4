"""The netcore side of each figure: the topology file and the exact commands timed.

Kept in one place so the commands (and the in-process dump snippet) can be adjusted without
touching the figures. Whole commands run as `sys.executable -m netcore ...` from the repo root.
"""

from __future__ import annotations

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
