"""P9: overlays across hosts (issue 10's speed goals), with a real daphne and a lab of three hosts.

One stack serves both rows: a throwaway namespace holding daphne (SQLite in the run's scratch
directory) and the lab's underlay bridge and relays (lab.Lab with netns_path), and three simulated
hosts, each its own network, mount, PID and UTS namespace with a real agent. A topology spans the
three hosts with one vxlan network and NODES_PER_HOST nodes on each.

Rows (goal ratio 1.0: goal / measured):
- P9 add node reachable: a node added on lab2 through the edit API (POST .../nodes/ with host lab2
  and its address), then POST apply of the whole topology (an operation on each host: the node on
  lab2, its forwarding entries on lab1 and lab3), polled until every operation succeeded; the time
  from the first API call until a TCP connection from a node on lab1 to a listener in the new node
  succeeds (polled every 10 ms); p95 of ADD_TIMES. TCP is tried only once the operations are done:
  an ARP request sent before lab1 has the new node's neighbour entry goes unanswered, and Linux asks
  again only after a second (neigh retrans_time), which would measure the probe, not the overlay.
- P9 overlay check: the check of the network over 3 hosts × NODES_PER_HOST endpoints, as the web app
  runs it (CHECK_SCRIPT): a full pass (each host's saved state read and digested, then netcore's
  check), median of 7 against the goal of 200 ms; and, in the notes, the check after an event on
  one host (only that host's state digested again).
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.desired import OperationFailed
from bench.figures import Context, Result, figure
from bench.hostns import NETNS_DIR, run_in
from bench.live import (
    StackError,
    _manage,
    _start,
    _stop,
    daphne_command,
    percentile,
    stack_namespace,
    wait_for_port,
)
from lab import Lab
from netcore.netns import netns_run
from tests.stack.harness import http_call

PORT = 8766
OPERATOR = "bench-p9-op"
TOPOLOGY = "p9"
NETWORK = "mesh"
SUBNET = "198.18.64.0/20"
NODES_PER_HOST = 300
ADD_TIMES = 10
LISTEN_PORT = 7000
POLL_S = 0.010
TIMEOUT_S = 120.0


@dataclass
class P9Stack:
    ns: str
    workdir: Path
    env: dict[str, str]  # manage.py's environment: the stack's database
    token: str
    lab: Lab

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer = http_call(
            str(NETNS_DIR / self.ns), PORT, method, path, token=self.token, body=body, timeout=120
        )
        if got != status:
            raise RuntimeError(f"{method} {path}: {got}, expected {status}: {str(answer)[:300]}")
        return answer

    def apply(self) -> None:
        """POST apply of the spanning topology; until every host's operation succeeded."""
        queued = self.expect(202, "POST", f"/api/v1/topologies/{TOPOLOGY}/apply/")
        self.wait(queued["span"] or [queued])

    def wait(self, queued: list[dict[str, Any]]) -> None:
        """Until each queued operation succeeded (OperationFailed when one did not)."""
        for op in queued:
            deadline = time.perf_counter() + TIMEOUT_S
            while (body := self.expect(200, "GET", f"/api/v1/operations/{op['operation']}/"))[
                "status"
            ] != "succeeded":
                if body["status"] not in ("pending", "running") or time.perf_counter() > deadline:
                    raise OperationFailed(f"apply on {op['host']}: {body['status']} {body.get('error')}")
                time.sleep(POLL_S)


def _document() -> dict[str, Any]:
    hosts = ["lab1", "lab2", "lab3"]
    nodes = {
        f"{host[-1]}n{i:03d}": {"networks": [NETWORK], **({"host": host} if host != "lab1" else {})}
        for host in hosts
        for i in range(1, NODES_PER_HOST + 1)
    }
    network = {"driver": "vxlan", "subnet": SUBNET, "vni": 6400, "hosts": hosts}
    return {"name": TOPOLOGY, "networks": {NETWORK: network}, "nodes": nodes}


@contextlib.contextmanager
def p9_stack(ctx: Context) -> Iterator[P9Stack]:
    """daphne and a lab of three hosts in a fresh namespace; all of it gone afterwards."""
    ns, workdir, env = stack_namespace(ctx, "p9")
    procs = []
    lab = None
    try:
        _manage(env, "migrate", "--noinput")
        token = _manage(env, "adduser", OPERATOR, "--role", "operator").strip().splitlines()[-1]
        procs.append(_start(ns, daphne_command(PORT), env, workdir / "daphne.log"))
        if not run_in(ns, wait_for_port(PORT), timeout=60).ok:
            raise StackError(f"daphne is not listening on {PORT}")

        def register(name: str, underlay: str) -> str:
            return _manage(env, "hosttoken", name, "--underlay", underlay).strip().splitlines()[-1]

        lab = Lab(hosts=3, port=PORT, workdir=workdir, manage=register, netns_path=str(NETNS_DIR / ns))
        lab.start()
        yield P9Stack(ns, workdir, env, token, lab)
    finally:
        try:
            if lab is not None:
                lab.stop()
            _stop(procs)
        finally:
            ctx.run.delete([ns])
            ctx.settle()


def _listen(path: str, address: str) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((address, LISTEN_PORT))
        sock.listen()
        return sock

    return netns_run(path=path, fn=make)


def _connects(path: str, address: str) -> bool:
    def attempt() -> bool:
        try:
            with socket.create_connection((address, LISTEN_PORT), timeout=0.2):
                return True
        except OSError:
            return False

    return netns_run(path=path, fn=attempt)


def _added_address(i: int) -> str:
    """The address the i-th added node asks for (the file's nodes are allocated from the subnet's start)."""
    return f"198.18.79.{i}"


def _add_row(stack: P9Stack) -> Result:
    lab1, lab2 = stack.lab.host("lab1"), stack.lab.host("lab2")
    client = lab1.netns_path(f"{TOPOLOGY}-1n001")
    times, posts, applies = [], [], []
    version = stack.expect(200, "GET", f"/api/v1/topologies/{TOPOLOGY}/")["version"]
    for i in range(1, ADD_TIMES + 1):
        name, address = f"x{i:02d}", _added_address(i)
        t = time.perf_counter()
        body = {"name": name, "networks": {NETWORK: {"address": address}}, "host": "lab2", "version": version}
        version = stack.expect(201, "POST", f"/api/v1/topologies/{TOPOLOGY}/nodes/", body)["version"]
        posts.append(time.perf_counter() - t)
        stack.apply()
        applies.append(time.perf_counter() - t - posts[-1])
        listener = _listen(lab2.netns_path(f"{TOPOLOGY}-{name}"), address)
        try:
            while not _connects(client, address):
                if time.perf_counter() - t > TIMEOUT_S:
                    raise RuntimeError(f"node {name} ({address}) never reachable from lab1")
                time.sleep(POLL_S)
        finally:
            listener.close()
        times.append(time.perf_counter() - t)
    notes = [
        f"3 lab hosts, {NODES_PER_HOST} nodes each on one vxlan network; POST node on lab2, POST apply"
        " (3 operations), until TCP from a node on lab1 connects",
        f"p50 {percentile(times, 50) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms",
        "each in ms: " + " ".join(f"{t * 1000:.0f}" for t in times),
        f"median POST node {statistics.median(posts) * 1000:.0f} ms, apply on 3 hosts"
        f" {statistics.median(applies) * 1000:.0f} ms, the rest until TCP connects",
    ]
    return Result("P9 add node reachable", "goal 1 s p95 (API call -> TCP across hosts)", 1.0,
                  percentile(times, 95), 1.0, "; ".join(notes))  # fmt: skip


# Run by manage.py shell against the stack's database, as daphne's workers run the check: a full pass
# (every host's saved state read and digested), then the check after an event on lab2 (its state saved
# again and passed in, as its agent connection does: only lab2 is digested again).
CHECK_SCRIPT = """
import json, time
from webapp.hosts.models import Host
from webapp.networks import overlay
from webapp.networks.models import Topology
from webapp.topology.models import HostState
root = Topology.objects.get(name=%(topology)r, span_root=None)
lab2 = Host.objects.get(name="lab2")
full, event = [], []
for _ in range(%(times)d):
    overlay._digests.clear()
    t = time.perf_counter()
    answer = overlay.network_overlay(topology=root, network=%(network)r)
    full.append(time.perf_counter() - t)
    saved = HostState.objects.get(host=lab2)
    saved.save()
    t = time.perf_counter()
    overlay.overlays_changed(host_id=lab2.id, seq=saved.seq, state=saved.state)
    event.append(time.perf_counter() - t)
print(json.dumps({"full": full, "event": event, "findings": answer["findings"]}))
"""


def _check_row(stack: P9Stack) -> Result:
    script = CHECK_SCRIPT % {"topology": TOPOLOGY, "network": NETWORK, "times": 7}
    measured = json.loads(_manage(stack.env, "shell", "-c", script).strip().splitlines()[-1])
    full, event, findings = measured["full"], measured["event"], measured["findings"]
    notes = [
        f"3 hosts x {NODES_PER_HOST} endpoints (+{ADD_TIMES} added); median of {len(full)} full passes"
        f" (min {min(full) * 1000:.0f}, max {max(full) * 1000:.0f} ms)",
        f"after an event on one host (its state digested again, the others' digests kept): median"
        f" {statistics.median(event) * 1000:.0f} ms",
        f"{len(findings)} findings",
        *(f"{f['host']} {f['kind']} {f['object']}: expected {f['expected']}, found {f['found']}"
          for f in findings[:3]),
    ]  # fmt: skip
    return Result("P9 overlay check", "goal 200 ms per full pass", 0.200, statistics.median(full), 1.0,
                  "; ".join(notes), not findings)  # fmt: skip


def _until_saved(stack: P9Stack, host: str, netns: str) -> None:
    """Until the web app has stored the host's state with that namespace in it. The check reads the
    stored states, which follow their agents by up to a second (SAVE_INTERVAL): checked sooner, the
    node added last is still missing there, and its entries on the other hosts look stale."""
    deadline = time.perf_counter() + TIMEOUT_S
    while True:
        (saved,) = stack.expect(200, "GET", f"/api/v1/topology/?host={host}")["hosts"]
        if any(n["name"] == netns for n in saved["snapshot"]["namespaces"]):
            return
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{host}'s stored state never held {netns}")
        time.sleep(POLL_S)


@figure("P9", order=94)
def p9_overlay(ctx: Context) -> list[Result]:
    with p9_stack(ctx) as stack:
        stack.expect(201, "POST", "/api/v1/topologies/", {"host": "lab1", "topology": _document()})
        stack.apply()
        rows = [_add_row(stack)]
        _until_saved(stack, "lab2", f"{TOPOLOGY}-x{ADD_TIMES:02d}")
        rows.append(_check_row(stack))
        queued = stack.expect(202, "POST", f"/api/v1/topologies/{TOPOLOGY}/destroy/")
        for op in queued["span"]:
            while stack.expect(200, "GET", f"/api/v1/operations/{op['operation']}/")["status"] in (
                "pending",
                "running",
            ):
                time.sleep(POLL_S)
    return rows
