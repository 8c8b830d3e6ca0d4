"""Throwaway network namespaces for one bench run, and running timed commands inside them.

Every namespace the run makes is named `<prefix>-<tag>` with `prefix = sbbench-<random4>`, so cleanup
can find them all; namespaces netcore made for the run are "claimed" by name and deleted too.
Commands run under `nsenter --net=/run/netns/<ns>` (never `ip netns exec`, which would hide new
namespaces from others behind a private mount namespace).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

NETNS_DIR = Path("/run/netns")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timed:
    """One finished command: wall seconds from start to exit, exit code and its output."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, chars: int = 300) -> str:
        """The end of stderr (or stdout when stderr is empty), on one line, for notes."""
        text = self.stderr.strip() or self.stdout.strip() or f"exit code {self.returncode}"
        return " ".join(text[-chars:].split())


def nsenter(ns: str) -> list[str]:
    """The argv prefix that runs a command in network namespace `ns` (and nothing else changed)."""
    return ["nsenter", f"--net={NETNS_DIR / ns}"]


def run_in(
    ns: str,
    argv: Sequence[str],
    *,
    stdout: int | IO = subprocess.DEVNULL,
    stdin: str | None = None,
    timeout: float = 900.0,
) -> Timed:
    """Run `argv` inside `ns` from the repo root; time it from start to exit with perf_counter.

    A command still running after `timeout` seconds is killed and reported as failed.
    """
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [*nsenter(ns), *argv],
            cwd=REPO_ROOT,
            stdout=stdout,
            stderr=subprocess.PIPE,
            input=stdin,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Timed(time.perf_counter() - start, -9, "", f"killed: still running after {timeout:g} s")
    seconds = time.perf_counter() - start
    out = proc.stdout if isinstance(proc.stdout, str) else ""
    return Timed(seconds, proc.returncode, out, proc.stderr or "")


def named_namespaces() -> set[str]:
    """Names under /run/netns right now."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


class Run:
    """One bench run: its name prefix, scratch directory, and every namespace it must delete."""

    def __init__(self) -> None:
        self.prefix = f"sbbench-{secrets.token_hex(2)}"
        self.claimed: set[str] = set()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))

    def name(self, tag: str) -> str:
        """A namespace name that carries the run prefix."""
        return f"{self.prefix}-{tag}"

    def add_host(self, tag: str) -> str:
        """Create a fresh, empty throwaway "host" namespace (lo up) and return its name."""
        name = self.name(tag)
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, text=True)
        subprocess.run([*nsenter(name), "ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        return name

    def delete(self, names: Iterable[str]) -> None:
        """Delete namespaces (ours or claimed) with one `ip -force -batch` of `netns del` lines."""
        allowed = [n for n in names if n.startswith(f"{self.prefix}-") or n in self.claimed]
        present = named_namespaces()
        lines = [f"netns del {n}\n" for n in allowed if n in present]
        if lines:
            subprocess.run(
                ["ip", "-force", "-batch", "-"],
                input="".join(lines),
                text=True,
                capture_output=True,
                check=False,
            )
        self.claimed.difference_update(set(allowed) - named_namespaces())  # keep what did not go

    def claim_new(self, host: str, before: set[str], *, name_prefix: str) -> list[str]:
        """Claim namespaces created since `before` that hold a peer of a link in `host` or whose
        name starts with `name_prefix` (the caller made sure none did before); return the peers.

        The kernel gives a namespace holding a veth peer an id inside `host` (`ip netns list` shows
        it), which identifies netcore's endpoint namespaces without touching namespaces that other
        people's processes create at the same time.
        """
        out = run_in(host, ["ip", "-j", "netns", "list"], stdout=subprocess.PIPE)
        entries = json.loads(out.stdout or "[]") if out.ok else []
        peers = sorted(e["name"] for e in entries if "id" in e and e["name"] not in before)
        self.claimed.update(peers)
        self.claimed.update(n for n in named_namespaces() - before if n.startswith(name_prefix))
        return peers

    def leftovers(self) -> list[str]:
        """Namespaces of this run (prefix or claimed) still under /run/netns."""
        return sorted(n for n in named_namespaces() if n.startswith(f"{self.prefix}-") or n in self.claimed)

    def cleanup(self) -> list[str]:
        """Delete every namespace of the run and the scratch directory; return what could not go."""
        self.delete(self.leftovers())
        for name in self.leftovers():  # one more try, one by one, to get the error out of `ip`
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.leftovers()


def veth_names(ns: str) -> list[str]:
    """Names of the veth interfaces in `ns`."""
    out = run_in(ns, ["ip", "-j", "link", "show", "type", "veth"], stdout=subprocess.PIPE)
    if not out.ok:
        return []
    return [link["ifname"] for link in json.loads(out.stdout or "[]")]


def settle(probe_ns: str, *, idle_s: float, timeout: float = 30.0) -> float:
    """Wait until the kernel has finished tearing down what we deleted; return seconds waited.

    Deleting a namespace returns at once and the kernel cleans up afterwards, holding RTNL, which
    would slow the next measurement (about 1 s after 1000 endpoints here). The probe is slow while
    that goes on; we wait for three probes in a row within 3x of `idle_s` (or 3 ms).
    """
    start = time.perf_counter()
    good = 0
    while good < 3 and time.perf_counter() - start < timeout:
        good = good + 1 if probe(probe_ns) <= max(3 * idle_s, idle_s + 0.003) else 0
        if good < 3:
            time.sleep(0.05)
    return time.perf_counter() - start


def probe(ns: str) -> float:
    """Seconds for an RTNL round trip in `ns` (a no-op `ip link set lo mtu`, which takes the lock).

    `ip -n` is avoided on purpose: it unshares a mount namespace, whose cost grows with every
    namespace mounted under /run/netns.
    """
    start = time.perf_counter()
    argv = [*nsenter(ns), "ip", "link", "set", "lo", "mtu", "65536"]
    subprocess.run(argv, capture_output=True, check=False)
    return time.perf_counter() - start
