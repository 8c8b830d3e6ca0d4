"""P10: Docker through Switchboard (issue 11's speed goals), against the real engine side by side.

The stack runs in the machine's own namespace, where dockerd puts its bridges and firewall: daphne
on 127.0.0.1 (SQLite in the run's scratch directory) and the agent with the machine's /run (Docker's
socket and namespaces). `make bench` starts the engine first (`make docker`).

Rows:
- P10 connect 50: 50 running containers connected to one network with `docker network connect`, one
  CLI call after the other (the baseline), and to another network through Switchboard: 50 POSTs to
  /api/v1/docker/networks/<host>/<network>/connect/, each queued as an operation and run by the
  agent, until all 50 operations succeeded. Goal: within 1.2× of the baseline (ratio ≥ 0.83). The
  notes give the SDK's own connect loop too (no CLI process per call).
- P10 warm inspect 100: the agent's read of the engine (netcore.docker.read.DockerReader) with 100
  containers, each tied to its namespace: warm (every container inspected once before), median of 7,
  against 300 ms; the cold read in the notes.
- P10 docker run → graph: `docker run -d` by hand, SAMPLES times, with GRAPHS browser sockets open;
  the time from the engine's start event (its own timestamp) until the container, running and in
  its namespace, is on every socket; p95 against 300 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.figures import Context, Result, figure
from bench.live import (
    StackError,
    _latency_row,
    _manage,
    _spawn,
    _stop,
    agent_command,
    daphne_command,
    stack_env,
    wait_for_port,
)
from netcore.docker.engine import engine_connect
from netcore.docker.read import DockerReader
from tests.stack.harness import http_call

PORT = 8767
HOST = "bench-docker"
OPERATOR = "bench-p10-op"
IMAGE = "switchboard/busybox:latest"
CONNECTS = 50
INSPECTED = 100
SAMPLES = 20
GRAPHS = 3
CONNECT_GOAL = 1 / 1.2
INSPECT_GOAL_S = 0.300
RUN_GOAL_S = 0.300
MACHINE_NS = f"/proc/{os.getpid()}/ns/net"  # the bench's own: the machine's (it stays there)
NO_MASQUERADE = {"com.docker.network.bridge.enable_ip_masquerade": "false"}


@dataclass
class DockerStack:
    """daphne and the agent beside dockerd; the names every object of the figure carries."""

    workdir: Path
    token: str
    prefix: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_call(MACHINE_NS, PORT, method, path, token=self.token, body=body, timeout=120)

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer = self.http(method, path, body)
        if got != status:
            raise StackError(f"{method} {path}: {got}, expected {status}: {str(answer)[:300]}")
        return answer

    def tail(self) -> str:
        return " | ".join(
            f"{p.name}: {' '.join(p.read_text(errors='replace')[-400:].split())}"
            for p in sorted(self.workdir.glob("*.log"))
        )


def _until(check: Any, *, what: str, timeout: float = 60.0, every: float = 0.01) -> Any:
    deadline = time.perf_counter() + timeout
    while not (found := check()):
        if time.perf_counter() > deadline:
            raise StackError(f"timed out waiting for {what}")
        time.sleep(every)
    return found


@contextlib.contextmanager
def docker_stack(ctx: Context) -> Iterator[DockerStack]:
    """daphne and the agent in the machine's namespace, the agent welcomed and its engine stored."""
    ctx.drop_world()
    workdir = ctx.run.workdir / "p10"
    workdir.mkdir()
    env = stack_env(workdir)
    stack = DockerStack(workdir, "", f"{ctx.run.prefix}-p10")
    try:
        _manage(env, "migrate", "--noinput")
        agent_token = _manage(env, "hosttoken", HOST).strip().splitlines()[-1]
        stack.token = _manage(env, "adduser", OPERATOR, "--role", "operator").strip().splitlines()[-1]
        stack.procs.append(_spawn(daphne_command(PORT), env, workdir / "daphne.log"))
        if subprocess.run(wait_for_port(PORT), timeout=60, check=False).returncode != 0:
            raise StackError(f"daphne is not listening on {PORT}: {stack.tail()}")
        stack.procs.append(
            _spawn(
                agent_command(PORT), {**env, "SWITCHBOARD_AGENT_TOKEN": agent_token}, workdir / "agent.log"
            )
        )

        def engine_stored() -> bool:
            status, hosts = stack.http("GET", f"/api/v1/docker/?host={HOST}")
            return status == 200 and bool((hosts[0]["engine"] or {}).get("available"))

        _until(engine_stored, what=f"the agent's Docker engine: {stack.tail()}", every=0.1)
        yield stack
    finally:
        try:
            _remove_ours(stack.prefix)
        finally:
            _stop(list(reversed(stack.procs)))


def _remove_ours(prefix: str) -> None:
    """Every container, then every network, named with the figure's prefix."""
    client = engine_connect()
    for container in client.containers.list(all=True, filters={"name": prefix}):
        container.remove(force=True)
    for network in client.networks.list(names=[]):
        if network.name.startswith(prefix):
            network.remove()


def _containers(client: Any, prefix: str, count: int, start: int = 0) -> list[str]:
    """`count` running containers on Docker's default bridge; their names."""
    names = [f"{prefix}-c{i:03d}" for i in range(start, start + count)]
    for name in names:
        client.containers.run(IMAGE, ["sleep", "3600"], name=name, detach=True)
    return names


def _network(client: Any, name: str, subnet: str) -> None:
    client.networks.create(name, ipam={"Config": [{"Subnet": subnet}]}, options=NO_MASQUERADE)


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def _connect_row(stack: DockerStack, client: Any, names: list[str]) -> Result:
    by_cli, by_sdk, by_switchboard = (f"{stack.prefix}-{tag}" for tag in ("cli", "sdk", "sb"))
    for i, name in enumerate((by_cli, by_sdk, by_switchboard)):
        _network(client, name, f"198.19.{160 + i}.0/24")
    started = time.perf_counter()
    for container in names:
        subprocess.run(["docker", "network", "connect", by_cli, container], check=True, capture_output=True)
    cli_s = time.perf_counter() - started
    network = client.networks.get(by_sdk)
    started = time.perf_counter()
    for container in names:
        network.connect(container)
    sdk_s = time.perf_counter() - started

    def ended(operation: str) -> dict | None:
        body = stack.expect(200, "GET", f"/api/v1/operations/{operation}/")
        return body if body["status"] not in ("pending", "running") else None

    started = time.perf_counter()
    path = f"/api/v1/docker/networks/{HOST}/{by_switchboard}/connect/"
    operations = [stack.expect(202, "POST", path, {"container": c})["operation"] for c in names]
    posted_s = time.perf_counter() - started
    done = [_until(lambda op=op: ended(op), what=f"operation {op}") for op in operations]
    switchboard_s = time.perf_counter() - started
    failed = [op for op in done if op["status"] != "succeeded"]
    running_s = statistics.median(_stamp(op["finished"]) - _stamp(op["started"]) for op in done)
    joined = len(client.networks.get(by_switchboard).attrs["Containers"])
    valid = not failed and joined == len(names)
    note = (
        f"{len(names)} connects: docker network connect (CLI) {cli_s:.2f} s, SDK loop {sdk_s:.2f} s, "
        f"Switchboard (API → operation → agent → engine, until all {len(names)} succeeded)"
        f" {switchboard_s:.2f} s (the {len(names)} POSTs {posted_s:.2f} s; an operation runs a median"
        f" {running_s * 1000:.0f} ms from start to end)"
    )
    if not valid:
        note += f"; invalid: {len(failed)} failed, {joined} joined"
    return Result("P10 connect 50", "docker network connect", cli_s, switchboard_s, CONNECT_GOAL, note, valid)


def _inspect_row(client: Any) -> Result:
    reader = DockerReader(client)
    started = time.perf_counter()
    state = reader.read()
    cold_s = time.perf_counter() - started
    times = []
    for _ in range(7):
        started = time.perf_counter()
        state = reader.read()
        times.append(time.perf_counter() - started)
    running = [c for c in state.containers.values() if c.netns]
    warm_s = statistics.median(times)
    note = (
        f"{len(state.containers)} containers ({len(running)} tied to their namespace), warm median of 7 "
        f"{warm_s * 1000:.0f} ms (max {max(times) * 1000:.0f}), cold {cold_s * 1000:.0f} ms"
    )
    valid = len(running) >= INSPECTED
    return Result(
        "P10 warm inspect 100", f"goal {INSPECT_GOAL_S * 1000:g} ms", INSPECT_GOAL_S, warm_s, 1.0, note, valid
    )


async def _graph(url: str, token: str, seen: dict[str, float]) -> None:
    """One browser socket: when each container was first there running, in its namespace."""
    async with connect(url, additional_headers={"Authorization": f"Token {token}"}, max_size=None) as ws:
        async for raw in ws:
            arrived = time.time()
            frame = json.loads(raw)
            if frame.get("host") != HOST:
                continue
            if frame.get("type") == "topology.snapshot":
                objects = frame["state"].get("docker_containers", {}).values()
            elif frame.get("type") == "topology.delta":
                objects = [
                    e["object"]
                    for e in frame["events"]
                    if e["kind"] == "docker_containers" and e["action"] == "set"
                ]
            else:
                continue
            for c in objects:
                if c["state"] == "running" and c["netns"]:
                    seen.setdefault(c["name"], arrived)


async def _graphs(url: str, token: str, seen: list[dict[str, float]], stop: asyncio.Event) -> None:
    """GRAPHS sockets at once, until `stop` is set; each is closed cleanly then."""
    tasks = [asyncio.create_task(_graph(url, token, s)) for s in seen]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _run_row(stack: DockerStack, client: Any) -> Result:
    """docker run by hand while GRAPHS sockets watch; the engine's start events timed by its own clock."""
    starts: dict[str, float] = {}
    events = client.events(decode=True, filters={"type": "container", "event": "start"})

    def follow() -> None:
        with contextlib.suppress(Exception):
            for event in events:
                starts[event["Actor"]["Attributes"]["name"]] = event["timeNano"] / 1e9

    threading.Thread(target=follow, daemon=True).start()
    seen: list[dict[str, float]] = [{} for _ in range(GRAPHS)]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    url = f"ws://127.0.0.1:{PORT}/ws/topology/"
    stop = asyncio.Event()
    graphs = asyncio.run_coroutine_threadsafe(_graphs(url, stack.token, seen, stop), loop)
    names = [f"{stack.prefix}-run{i:02d}" for i in range(SAMPLES)]
    latencies = []
    try:
        time.sleep(1.0)  # the sockets have their snapshots
        for name in names:
            run = ["docker", "run", "-d", "--name", name, IMAGE, "sleep", "3600"]
            subprocess.run(run, check=True, capture_output=True)
            _until(
                lambda n=name: n in starts and all(n in s for s in seen),
                what=f"{name} on every graph",
                timeout=10,
            )
            latencies.append(max(s[name] for s in seen) - starts[name])
            time.sleep(0.2)
    finally:
        events.close()
        loop.call_soon_threadsafe(stop.set)
        graphs.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    note = f"{len(latencies)} containers, {GRAPHS} graphs open; from the engine's start event to every graph"
    return _latency_row("P10 docker run → graph", RUN_GOAL_S, latencies, [note], len(latencies) == SAMPLES)


@figure("P10", order=120)
def p10_docker(ctx: Context) -> list[Result]:
    client = engine_connect()
    with docker_stack(ctx) as stack:
        names = _containers(client, stack.prefix, CONNECTS)
        rows = [_connect_row(stack, client, names)]
        names += _containers(client, stack.prefix, INSPECTED - CONNECTS, start=CONNECTS)
        rows.append(_inspect_row(client))
        rows.append(_run_row(stack, client))
    return rows
