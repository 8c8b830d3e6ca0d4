"""nftables tracing of the live probe: which rule dropped it.

In each namespace on the path whose ruleset has filter chains, a table of our own
(`switchboard-explain-trace-<pid>-<n>`, family inet) gets two base chains at priority -350, before
everything else (raw is -300, conntrack -200, filter 0): prerouting for packets arriving, output for
the namespace's own. Their one rule per direction sets `meta nftrace set 1` on the probe's packets
only (to the destination's addresses and ports, before and after DNAT, and their answers), so the
kernel reports every rule and policy those packets meet, in every table, to `nft monitor`, which runs
in the namespace for as long as the probe does. The monitor's trace lines are read back per packet
(`trace id`), kept when the packet is the probe's (its source port or ICMP identifier), and the
first `(verdict drop)` or `policy drop` names the rule: table, chain, handle and the rule's text.

The table is removed when the probe is over, whatever happened (`NftTrace.close`, also after an
error or a timeout); the monitor is started before the table and stopped after it is gone, and
its own echo of those two changes marks where its output begins and ends.
"""

from __future__ import annotations

import errno as _errno
import itertools
import os
import re
import select
import subprocess
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from netcore.errors import NetcoreError
from netcore.explain.probe import Namespaces
from netcore.explain.watch import Flow
from netcore.nft import nft_apply, nft_program

TABLE_PREFIX = "switchboard-explain-trace-"
PRIORITY = -350  # before raw (-300), conntrack (-200) and every filter chain
READY_WAIT = 1.5  # seconds the monitor may take to listen
DRAIN_WAIT = 1.0  # seconds its last lines may take once the table is gone
_numbers = itertools.count(1)
_LINE = re.compile(
    r"^trace id (?P<id>\S+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+)"
    r" (?P<what>rule|policy|packet:)\s*(?P<rest>.*)$"
)
_RULE = re.compile(r"^(?P<text>.*?)\s*(?:# handle (?P<handle>\d+))?\s*\(verdict (?P<verdict>[^)]*)\)\s*$")
_IDENT = re.compile(r"\b(?:tcp|udp) [sd]port (\d+)|\bicmp(?:v6)? id (\d+)")


@dataclass(frozen=True)
class TraceDrop:
    """The rule (or chain policy) that dropped the probe, as the kernel's trace names it."""

    netns: str
    family: str
    table: str
    chain: str
    handle: int | None
    rule: str
    policy: bool = False

    @property
    def where(self) -> str:
        """As the walk names a rule: `family table chain[ handle N]`."""
        handle = f" handle {self.handle}" if self.handle is not None else ""
        return f"{self.family} {self.table} {self.chain}{handle}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where}


@dataclass
class Trace:
    """What the trace found: the namespaces traced and the drop, if any."""

    traced: list[str] = field(default_factory=list)
    dropped_by: TraceDrop | None = None
    errors: list[str] = field(default_factory=list)


def has_filter_chains(ruleset: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether a namespace's ruleset (`nft -j`) has a filter base chain that IP packets pass."""
    for item in ruleset or ():
        chain = item.get("chain")
        if (
            chain
            and chain.get("hook")
            and chain.get("type") == "filter"
            and chain.get("family") in ("inet", "ip", "ip6")
            and not str(chain.get("table", "")).startswith(TABLE_PREFIX)
        ):
            return True
    return False


def trace_rules(flow: Flow) -> list[list[dict]]:
    """The expressions of our rules: the probe's packets to the destination and back, each marked."""
    mark = {"mangle": {"key": {"meta": {"key": "nftrace"}}, "value": 1}}
    rules = []
    for version in sorted({a.version for a in flow.addresses}):
        l3 = "ip" if version == 4 else "ip6"
        addresses = sorted(str(a) for a in flow.addresses if a.version == version)
        for out in (True, False):
            side = "daddr" if out else "saddr"
            exprs = [_match({"payload": {"protocol": l3, "field": side}}, {"set": addresses})]
            if flow.protocol == "icmp":
                icmp = "icmp" if version == 4 else "icmpv6"
                kind = "echo-request" if out else "echo-reply"
                exprs.append(_match({"payload": {"protocol": icmp, "field": "type"}}, kind))
            else:
                l4 = {"payload": {"protocol": flow.protocol, "field": "dport" if out else "sport"}}
                exprs.append(_match(l4, {"set": sorted(flow.ports)}))
            rules.append([*exprs, mark])
    return rules


def _match(left: dict, right: object) -> dict:
    return {"match": {"op": "==", "left": left, "right": right}}


class NftTrace:
    """Tracing in some namespaces for the length of a probe: `start`, then `finish` (which reads the
    verdicts and cleans up), and `close` in a finally (idempotent: removes what is left)."""

    def __init__(self, namespaces: Namespaces, netns: Iterable[str], flow: Flow) -> None:
        self.namespaces = namespaces
        self.wanted = list(netns)
        self.flow = flow
        self.table = f"{TABLE_PREFIX}{os.getpid()}-{next(_numbers)}"
        self.monitors: dict[str, subprocess.Popen[bytes]] = {}
        self.output: dict[str, bytearray] = {}
        self.tables: list[str] = []  # namespaces holding our table
        self.trace = Trace()

    def start(self) -> None:
        if self.wanted and nft_program() is None:
            self.trace.errors.append("not traced: the nft program is not installed")
            return
        for netns in self.wanted:
            try:
                self._start(netns)
            except (NetcoreError, OSError) as exc:
                self.trace.errors.append(f"{netns}: not traced ({exc})")
                self._stop(netns)
            else:
                self.trace.traced.append(netns)

    def _start(self, netns: str) -> None:
        env = {**os.environ, "LC_ALL": "C"}
        argv = [nft_program() or "nft", "-a", "monitor"]
        self.monitors[netns] = self.namespaces.run(
            netns,
            lambda: subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
            ),
        )
        self.output[netns] = bytearray()
        os.set_blocking(self.monitors[netns].stdout.fileno(), False)  # type: ignore[union-attr]
        table = {"family": "inet", "name": self.table}
        batch: list[dict] = [{"add": {"table": table}}]
        for chain, hook in (("pre", "prerouting"), ("out", "output")):
            base = {"family": "inet", "table": self.table, "name": chain}
            batch.append({"add": {"chain": {**base, "type": "filter", "hook": hook, "prio": PRIORITY}}})
            for exprs in trace_rules(self.flow):
                batch.append(
                    {"add": {"rule": {"family": "inet", "table": self.table, "chain": chain, "expr": exprs}}}
                )
        self.tables.append(netns)
        self.namespaces.run(netns, lambda: nft_apply(batch=batch, obj=f"table inet {self.table}"))
        # The monitor may have started listening after the table was added: add a marker until it says so.
        deadline, marker = time.monotonic() + READY_WAIT, f"add table inet {self.table} "
        for n in itertools.count():
            if self._wait_for(netns, marker, min(deadline, time.monotonic() + 0.1)):
                return
            if time.monotonic() >= deadline:
                raise NetcoreError(f"nft monitor in {netns} did not start listening", obj="nft")
            marker = f"add chain inet {self.table} ready{n} "
            ready = [{"add": {"chain": {"family": "inet", "table": self.table, "name": f"ready{n}"}}}]
            self.namespaces.run(netns, partial(nft_apply, batch=ready, obj=f"table inet {self.table}"))

    def _wait_for(self, netns: str, text: str, deadline: float) -> bool:
        """Read the monitor's output until it holds `text` (an object's name ends in a space: `-a`
        prints its handle after it) or `deadline` passes."""
        proc, buffer = self.monitors[netns], self.output[netns]
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        needle = text.encode()
        while True:
            if needle in buffer:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return needle in buffer  # the monitor ended
                buffer += chunk

    def finish(self, idents: Collection[int]) -> Trace:
        """The trace's verdicts for the probe with these identities (source ports or ICMP id);
        removes the tables and stops the monitors."""
        for netns in list(self.tables):
            self._drop_table(netns)
            if netns in self.monitors:
                self._wait_for(netns, f"delete table inet {self.table} ", time.monotonic() + DRAIN_WAIT)
        self.close()
        for netns in self.trace.traced:
            drop = _first_drop(netns, self.output.get(netns, b"").decode(errors="replace"), idents)
            if drop is not None and self.trace.dropped_by is None:
                self.trace.dropped_by = drop
        return self.trace

    def _drop_table(self, netns: str) -> None:
        table = {"family": "inet", "name": self.table}
        try:
            self.namespaces.run(
                netns, lambda: nft_apply(batch=[{"delete": {"table": table}}], obj=f"table inet {self.table}")
            )
        except NetcoreError as exc:
            if exc.errno != _errno.ENOENT:  # it never got there
                self.trace.errors.append(f"{netns}: could not remove table inet {self.table} ({exc})")
        self.tables.remove(netns)

    def _stop(self, netns: str) -> None:
        if netns in self.tables:
            self._drop_table(netns)
        proc = self.monitors.pop(netns, None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Remove every table this trace added and stop its monitors (after an error too)."""
        for netns in list(self.tables) + list(self.monitors):
            self._stop(netns)


def _first_drop(netns: str, output: str, idents: Collection[int]) -> TraceDrop | None:
    """The first drop the monitor's `output` reports for one of the probe's packets."""
    ours: dict[str, bool] = {}
    for line in output.splitlines():
        m = _LINE.match(line.strip())
        if m is None or m["table"].startswith(TABLE_PREFIX):
            continue
        if m["what"] == "packet:":
            numbers = {int(a or b) for a, b in _IDENT.findall(m["rest"])}
            ours.setdefault(m["id"], bool(numbers & set(idents)) or not numbers)
            continue
        if not ours.get(m["id"], True):
            continue
        if m["what"] == "policy" and m["rest"].split()[:1] == ["drop"]:
            return TraceDrop(
                netns, m["family"], m["table"], m["chain"], None, f"policy drop of chain {m['chain']}", True
            )
        rule = _RULE.match(m["rest"]) if m["what"] == "rule" else None
        if rule is not None and rule["verdict"].split()[:1] == ["drop"]:
            handle = int(rule["handle"]) if rule["handle"] else None
            return TraceDrop(netns, m["family"], m["table"], m["chain"], handle, rule["text"])
    return None
