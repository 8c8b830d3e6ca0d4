"""P8: desired topologies through the web app (issue 8's speed goals), with a real daphne and agent.

One stack serves every row: a fresh throwaway namespace holding daphne (one worker, in-memory channel
layer, SQLite in the run's scratch directory) and the real agent (`--no-processes`). The agent runs in
a private mount namespace with an empty tmpfs on /run (as tests/stack does), but that mount namespace
is held by a separate `sleep` process, so the agent can be stopped and started again while the
namespaces it made stay (P8 reconcile). The bench talks HTTP to daphne from a socket made inside the
namespace (netcore's namespace worker), with an operator's API token.

Rows (ratio = goal / measured unless said otherwise; goal ratio 1.0):
- P8 list: GET /api/v1/nodes/?page_size=2000 of a 2000-node topology (recorded, never applied, on a
  host without agent) against the real daphne, median of 7; the DB queries of one such request are
  counted in-process (Django's test client under CaptureQueriesContext, `manage.py shell`).
- P8 import+apply: POST /topologies/ of a 500-node file, POST apply, poll GET /operations/<id>/ every
  20 ms until succeeded; against `netcore apply` of the same file (CLI, whole command) in a host
  namespace of its own with its own private /run, in the same run (ratio = netcore / switchboard).
- P8 reconcile: a 1000-node topology applied; the agent restarted; from the reconcile plan's queueing
  on hello (operation.created, in the web app) to its `succeeded` (operation.finished); its plan must
  hold no changes and no repair apply may follow.
- P8 add node: the browser form's path approximated through the API: PUT the topology file with one
  more node (a 20-node topology, with the 1000 nodes above still up on the host), POST apply, poll to
  succeeded; p95 of 10. Not the browser.
- P8 form add node: the same goal in the browser, on an idle host as the goal says (run before the
  reconcile row brings 1000 nodes up; bench.form): a node added through the Networks page's form in
  headless Chromium, its plan shown, Apply, until the status reads ready; p95 of 10.
Everything is destroyed through the API at the end, then the agent, daphne and the holder stop and the
namespace goes; whatever the agent made lived in the private /run and goes with it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import ncrun
from bench.figures import Context, Result, figure
from bench.hostns import NETNS_DIR, REPO_ROOT, nsenter, run_in
from bench.live import (
    StackError,
    _manage,
    _spawn,
    _start,
    _stop,
    agent_command,
    daphne_command,
    percentile,
    stack_namespace,
    wait_for_port,
)
from tests.stack.harness import http_call

PORT = 8765
AGENT_HOST = "bench-p8"
LIST_HOST = "bench-p8-list"
OPERATOR = "bench-p8-op"
FORM_USER = "bench-p8-form"
LIST_NODES = 2000
APPLY_NODES = 500
RECONCILE_NODES = 1000
RECONCILE_RESTARTS = 3
ADD_START = 20
ADD_TIMES = 10
POLL_S = 0.020
OP_TIMEOUT_S = 300.0
LIST_PATH = f"/api/v1/nodes/?page_size={LIST_NODES}&host={LIST_HOST}"

# The private /run of the agent: a mount namespace kept by `sleep`, so agents can come and go.
HOLDER = "mount -t tmpfs -o mode=755 sbbench /run && mkdir /run/netns && exec sleep 100000"

# Counted in-process: the queries (and the time) of one node list through Django's test client.
COUNT_QUERIES = f"""
import json, time
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
client = Client(HTTP_AUTHORIZATION="Token " + TOKEN, HTTP_HOST="localhost")
client.get({LIST_PATH!r})
with CaptureQueriesContext(connection) as ctx:
    t = time.perf_counter()
    response = client.get({LIST_PATH!r})
    seconds = time.perf_counter() - t
queries = len(ctx.captured_queries)
print(json.dumps({{"status": response.status_code, "queries": queries, "seconds": seconds}}))
"""


def topology_yaml(name: str, subnet: str, count: int) -> str:
    """A topology file: one bridge network and `count` nodes on it."""
    lines = [f"name: {name}", "networks:", f"  lan: {{driver: bridge, subnet: {subnet}}}", "nodes:"]
    lines += [f"  n{i:04d}: {{networks: [lan]}}" for i in range(1, count + 1)]
    return "\n".join(lines) + "\n"


class OperationFailed(RuntimeError):
    pass


@dataclass
class P8Stack:
    """daphne + agent in `ns`; the agent's /run is the holder's."""

    ns: str
    workdir: Path
    env: dict[str, str]
    token: str
    agent_token: str
    holder: subprocess.Popen | None = None
    daphne: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    agents: int = 0
    procs: list[subprocess.Popen] = field(default_factory=list)

    # HTTP, from a socket made inside the namespace

    def http(self, method: str, path: str, body: Any = None, *, timeout: float = 120.0) -> tuple[int, Any]:
        return http_call(
            str(NETNS_DIR / self.ns), PORT, method, path, token=self.token, body=body, timeout=timeout
        )

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer = self.http(method, path, body)
        if got != status:
            raise RuntimeError(f"{method} {path}: {got}, expected {status}: {str(answer)[:300]}")
        return answer

    def wait_operation(self, operation: str) -> dict:
        """Poll GET /operations/<id>/ every 20 ms until it finished; its body (raises unless succeeded)."""
        deadline = time.perf_counter() + OP_TIMEOUT_S
        while True:
            body = self.expect(200, "GET", f"/api/v1/operations/{operation}/")
            if body["status"] == "succeeded":
                body["seen"] = time.time()
                return body
            if body["status"] not in ("pending", "running"):
                raise OperationFailed(f"operation {body['kind']} {body['status']}: {body.get('error')}")
            if time.perf_counter() > deadline:
                raise OperationFailed(
                    f"operation {body['kind']} still {body['status']} after {OP_TIMEOUT_S} s"
                )
            time.sleep(POLL_S)

    def command(self, topology: str, action: str) -> dict:
        """POST plan/apply/destroy (202), then wait for it; the operation's body."""
        queued = self.expect(202, "POST", f"/api/v1/topologies/{topology}/{action}/?host={AGENT_HOST}")
        return self.wait_operation(queued["operation"])

    # the agent

    def start_agent(self) -> None:
        assert self.holder is not None
        self.agents += 1
        argv = [
            "nsenter",
            f"--net={NETNS_DIR / self.ns}",
            f"--mount=/proc/{self.holder.pid}/ns/mnt",
            f"--wd={REPO_ROOT}",
            *agent_command(PORT),
        ]
        env = {**self.env, "SWITCHBOARD_AGENT_TOKEN": self.agent_token}
        self.agent = _spawn(argv, env, self.workdir / f"agent-{self.agents}.log")
        self.procs.append(self.agent)

    def stop_agent(self) -> None:
        if self.agent is not None:
            _stop([self.agent])
            self.agent = None

    def agent_log(self) -> str:
        path = self.workdir / f"agent-{self.agents}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_agent(self, *, timeout: float = 120.0) -> None:
        """Until the current agent was welcomed (its log says so)."""
        deadline = time.perf_counter() + timeout
        while "the web app knows this host as" not in self.agent_log():
            if self.agent is None or self.agent.poll() is not None:
                raise StackError(f"the agent exited: {self.tail()}")
            if time.perf_counter() > deadline:
                raise StackError(f"the agent was not welcomed after {timeout:g} s: {self.tail()}")
            time.sleep(0.05)

    def agent_netns(self) -> list[str]:
        """Named namespaces in the agent's private /run."""
        assert self.holder is not None
        return os.listdir(f"/proc/{self.holder.pid}/root/run/netns")

    def tail(self, chars: int = 400) -> str:
        logs = [self.workdir / "daphne.log", self.workdir / f"agent-{self.agents}.log"]
        text = " | ".join(f"{p.name}: {p.read_text(errors='replace')[-chars:]}" for p in logs if p.exists())
        return " ".join(text.split())


def _holder(ns: str | None, log: Path) -> subprocess.Popen:
    """A `sleep` in a new mount namespace with an empty /run (and /run/netns); in net namespace `ns`."""
    argv = [
        *(nsenter(ns) if ns else []),
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        HOLDER,
    ]
    proc = _spawn(argv, None, log)
    deadline = time.perf_counter() + 10
    while not os.path.isdir(f"/proc/{proc.pid}/root/run/netns") or "sleep" not in _comm(proc.pid):
        if proc.poll() is not None or time.perf_counter() > deadline:
            _stop([proc])
            raise StackError(f"the private /run could not be made: {log.read_text(errors='replace')[-300:]}")
        time.sleep(0.02)
    return proc


def _cpu(proc: subprocess.Popen | None) -> float:
    """CPU seconds (user + system) a process has used so far."""
    if proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return ""


@contextlib.contextmanager
def p8_stack(ctx: Context) -> Iterator[P8Stack]:
    """The stack, up with a welcomed agent; all of it gone afterwards."""
    ns, workdir, env = stack_namespace(ctx, "p8")
    stack: P8Stack | None = None
    try:
        _manage(env, "migrate", "--noinput")
        agent_token = _manage(env, "hosttoken", AGENT_HOST).strip().splitlines()[-1]
        _manage(env, "hosttoken", LIST_HOST)
        token = _manage(env, "adduser", OPERATOR, "--role", "operator").strip().splitlines()[-1]
        stack = P8Stack(ns, workdir, env, token, agent_token)
        stack.daphne = _start(ns, daphne_command(PORT), env, workdir / "daphne.log")
        stack.procs.append(stack.daphne)
        if not run_in(ns, wait_for_port(PORT), timeout=60).ok:
            raise StackError(f"daphne is not listening on {PORT}: {stack.tail()}")
        stack.holder = _holder(ns, workdir / "holder.log")
        stack.procs.append(stack.holder)
        stack.start_agent()
        stack.wait_agent()
        yield stack
    finally:
        try:
            if stack is not None:
                _stop(list(reversed(stack.procs)))
        finally:
            ctx.run.delete([ns])
            ctx.settle()


# --- the rows --------------------------------------------------------------------------------------


def _list_row(stack: P8Stack) -> Result:
    post_t = time.perf_counter()
    stack.expect(
        201,
        "POST",
        "/api/v1/topologies/",
        {"host": LIST_HOST, "topology": topology_yaml("p8l", "198.18.0.0/20", LIST_NODES)},
    )
    post_s = time.perf_counter() - post_t
    times = []
    count = None
    for i in range(8):  # the first warms up
        t = time.perf_counter()
        body = stack.expect(200, "GET", LIST_PATH)
        if i:
            times.append(time.perf_counter() - t)
        count = len(body["results"])
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", COUNT_QUERIES.replace("TOKEN", repr(stack.token))],
        cwd=REPO_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        counted = json.loads(shell.stdout.strip().splitlines()[-1])
        queries = (
            f"{counted['queries']} DB queries (test client in-process: {counted['seconds'] * 1000:.0f} ms)"
        )
    except (ValueError, IndexError, KeyError):
        queries = f"queries not counted: {' '.join(shell.stderr.split())[-200:]}"
    notes = [
        f"real daphne, median of {len(times)} (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f} ms)",
        queries,
        f"{count} nodes in the page",
        f"the 2000-node POST took {post_s:.2f} s",
    ]
    return Result(
        "P8 list",
        "goal 200 ms (GET 2000 nodes)",
        0.200,
        statistics.median(times),
        1.0,
        "; ".join(notes),
        count == LIST_NODES,
    )


def _netcore_apply(ctx: Context, text: str) -> tuple[float | None, str]:
    """`netcore apply` (and destroy, untimed) of `text` in a fresh host with its own private /run."""
    host = ctx.run.add_host(ctx.tag("p8nc"))
    path = ctx.run.workdir / f"{host}.yaml"
    path.write_text(text)
    holder = _holder(host, ctx.run.workdir / f"{host}-holder.log")
    prefix = [*nsenter(host), f"--mount=/proc/{holder.pid}/ns/mnt", f"--wd={REPO_ROOT}"]

    def timed(action: str) -> tuple[float, subprocess.CompletedProcess]:
        t = time.perf_counter()
        done = subprocess.run(
            [*prefix, *ncrun.netcore(action, str(path))],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        return time.perf_counter() - t, done

    try:
        seconds, done = timed("apply")
        made = len(os.listdir(f"/proc/{holder.pid}/root/run/netns"))
        _, gone = timed("destroy")
        left = len(os.listdir(f"/proc/{holder.pid}/root/run/netns"))
    finally:
        _stop([holder])
        ctx.run.delete([host])
        ctx.settle()
    if done.returncode != 0:
        return None, f"netcore apply failed: {' '.join(done.stderr.split())[-200:]}"
    note = f"netcore made {made} namespaces"
    if gone.returncode != 0 or left:
        note += f"; netcore destroy left {left} ({' '.join(gone.stderr.split())[-200:]})"
    return seconds, note


def _apply_row(ctx: Context, stack: P8Stack) -> Result:
    name = "p8a"
    text = topology_yaml(name, "198.18.64.0/22", APPLY_NODES)
    base_s, base_note = _netcore_apply(ctx, text)
    t = time.perf_counter()
    stack.expect(201, "POST", "/api/v1/topologies/", {"host": AGENT_HOST, "topology": text})
    posted = time.perf_counter()
    sent = time.time()
    cpu = _cpu(stack.agent), _cpu(stack.daphne)
    queued = stack.expect(202, "POST", f"/api/v1/topologies/{name}/apply/?host={AGENT_HOST}")
    op = stack.wait_operation(queued["operation"])
    seconds = time.perf_counter() - t
    cpu = _cpu(stack.agent) - cpu[0], _cpu(stack.daphne) - cpu[1]
    made = sum(n.startswith(f"{name}-") for n in stack.agent_netns())
    created = op["result"]["counts"]["create"]
    stack.command(name, "destroy")
    left = sum(n.startswith(f"{name}-") for n in stack.agent_netns())
    stack.expect(204, "DELETE", f"/api/v1/topologies/{name}/?host={AGENT_HOST}")
    notes = [
        f"switchboard: POST /topologies/ {posted - t:.2f} s, apply queued -> succeeded "
        f"{seconds - (posted - t):.2f} s (polled every {POLL_S * 1000:g} ms), {created} creations, "
        f"{made} namespaces on the agent's host",
        f"apply: {_phases(op, sent)}",
        f"CPU during the apply: agent {cpu[0]:.2f} s, daphne {cpu[1]:.2f} s",
        base_note,
        "netcore time is the whole CLI (interpreter start included)",
    ]
    if left:
        notes.append(f"destroy left {left} namespaces")
    return Result(
        "P8 import+apply",
        f"netcore apply, {APPLY_NODES} nodes (ratio = netcore / switchboard)",
        base_s,
        seconds,
        1 / 1.5,
        "; ".join(notes),
        made == APPLY_NODES and not left,
    )


def _stamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _phases(op: dict, sent: float | None = None) -> str:
    """Where an operation's time went, from the web app's timestamps and the bench's clock."""
    created, started, finished = (_stamp(op[k]) for k in ("created", "started", "finished"))
    parts = [] if sent is None else [f"request -> queued {(created - sent) * 1000:.0f}"]
    parts += [
        f"queued -> sent to agent {(started - created) * 1000:.0f}",
        f"agent ran + answer stored {(finished - started) * 1000:.0f}",
        f"stored -> seen by poll {(op['seen'] - finished) * 1000:.0f} ms",
    ]
    return ", ".join(parts)


def _reconcile_row(stack: P8Stack, name: str) -> Result:
    t = time.perf_counter()
    stack.expect(
        201,
        "POST",
        "/api/v1/topologies/",
        {"host": AGENT_HOST, "topology": topology_yaml(name, "198.18.128.0/21", RECONCILE_NODES)},
    )
    stack.command(name, "apply")
    setup_s = time.perf_counter() - t
    if (made := sum(n.startswith(f"{name}-") for n in stack.agent_netns())) != RECONCILE_NODES:
        raise RuntimeError(f"the {RECONCILE_NODES}-node apply made {made} namespaces")
    times, walls, problems, phases = [], [], [], []
    for _ in range(RECONCILE_RESTARTS):
        seen = {op["id"] for op in stack.expect(200, "GET", "/api/v1/operations/?page_size=200")["results"]}
        stack.stop_agent()
        t = time.perf_counter()
        stack.start_agent()
        op = _wait(functools.partial(_new_reconcile, stack, seen, name), what="the reconcile plan on hello")
        body = stack.wait_operation(op["id"])
        walls.append(time.perf_counter() - t)
        times.append(_stamp(body["finished"]) - _stamp(body["created"]))
        phases.append(_phases(body))
        if body["result"]["changes"]:
            problems.append(f"plan had {len(body['result']['changes'])} changes")
        time.sleep(0.3)  # an apply after the plan would be queued at once
        later = [
            o
            for o in stack.expect(200, "GET", "/api/v1/operations/?page_size=200")["results"]
            if o["id"] not in seen and o["id"] != op["id"]
        ]
        if later:
            problems.append(f"{[(o['kind'], o['reason']) for o in later]} queued after the plan")
    notes = [
        f"median of {len(times)} restarts, each {', '.join(f'{s * 1000:.0f}' for s in times)} ms "
        "(operation.created on hello -> finished, in the web app)",
        f"agent start -> plan succeeded {', '.join(f'{s:.2f}' for s in walls)} s (agent start-up included)",
        f"{RECONCILE_NODES}-node apply before: {setup_s:.1f} s",
        f"last restart: {phases[-1]}" if phases else "",
        *problems,
    ]
    return Result(
        "P8 reconcile",
        f"goal 1 s ({RECONCILE_NODES} nodes, nothing changed)",
        1.0,
        statistics.median(times),
        1.0,
        "; ".join(notes),
        not problems,
    )


def _new_reconcile(stack: P8Stack, seen: set[str], name: str) -> dict | None:
    if stack.agent is None or stack.agent.poll() is not None:
        raise StackError(f"the agent exited: {stack.tail()}")
    for op in stack.expect(200, "GET", "/api/v1/operations/?page_size=50")["results"]:
        if op["id"] not in seen and op["kind"] == "plan" and op["topology"] == name:
            return op
    return None


def _wait(check: Callable[[], Any], *, what: str, timeout: float = 120.0) -> Any:
    deadline = time.perf_counter() + timeout
    while not (found := check()):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)
    return found


def _add_row(stack: P8Stack) -> Result:
    name = "p8f"
    subnet = "198.18.160.0/24"
    body = stack.expect(
        201,
        "POST",
        "/api/v1/topologies/",
        {"host": AGENT_HOST, "topology": topology_yaml(name, subnet, ADD_START)},
    )
    stack.command(name, "apply")
    version = body["version"]
    times = []
    for count in range(ADD_START + 1, ADD_START + ADD_TIMES + 1):
        t = time.perf_counter()
        body = stack.expect(
            200,
            "PUT",
            f"/api/v1/topologies/{name}/?host={AGENT_HOST}",
            {"topology": topology_yaml(name, subnet, count), "version": version},
        )
        version = body["version"]
        op = stack.command(name, "apply")
        times.append(time.perf_counter() - t)
        if op["result"]["counts"]["create"] < 1:
            raise RuntimeError(f"apply of node #{count} created nothing: {op['result']['counts']}")
    made = sum(n.startswith(f"{name}-") for n in stack.agent_netns())
    stack.command(name, "destroy")
    stack.expect(204, "DELETE", f"/api/v1/topologies/{name}/?host={AGENT_HOST}")
    notes = [
        "API path (PUT file + POST apply + poll every 20 ms), not the browser",
        f"{ADD_START}-node topology growing by one, with {RECONCILE_NODES} other nodes up on the host",
        f"p50 {percentile(times, 50) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms",
    ]
    return Result(
        "P8 add node",
        "goal 500 ms p95 (PUT + apply)",
        0.500,
        percentile(times, 95),
        1.0,
        "; ".join(notes),
        made == ADD_START + ADD_TIMES,
    )


def _form_row(stack: P8Stack) -> Result:
    """The add-node goal measured where it is set: the Networks page's form in Chromium (bench.form)."""
    name = "p8b"
    password = secrets.token_urlsafe(16)
    _manage(stack.env, "adduser", FORM_USER, "--role", "operator", f"--password={password}")
    stack.expect(
        201,
        "POST",
        "/api/v1/topologies/",
        {"host": AGENT_HOST, "topology": topology_yaml(name, "198.18.161.0/24", ADD_START)},
    )
    stack.command(name, "apply")
    job = {
        "base": f"http://127.0.0.1:{PORT}",
        "user": FORM_USER,
        "password": password,
        "host": AGENT_HOST,
        "topology": name,
        "names": [f"f{i:02d}" for i in range(ADD_TIMES)],
    }
    try:
        done = run_in(
            stack.ns,
            [sys.executable, "-m", "bench.form"],
            stdout=subprocess.PIPE,
            stdin=json.dumps(job),
            timeout=300,
        )
        if not done.ok:
            raise RuntimeError(f"the form client failed: {done.tail(600)}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        made = sum(n.startswith(f"{name}-") for n in stack.agent_netns())
        stack.command(name, "destroy")
        stack.expect(204, "DELETE", f"/api/v1/topologies/{name}/?host={AGENT_HOST}")
    totals = [step["plan"] + step["apply"] for step in out["steps"]]
    plans, applies = [step["plan"] for step in out["steps"]], [step["apply"] for step in out["steps"]]
    notes = [
        f"Chromium {out['chromium']} headless: Enter in the node form -> its plan shown (median"
        f" {statistics.median(plans) * 1000:.0f} ms), then Apply -> status ready with the node listed"
        f" (median {statistics.median(applies) * 1000:.0f} ms); no person's time counted",
        f"{ADD_START}-node topology growing by one on an idle host (nothing else of Switchboard's on it)",
        f"p50 {percentile(totals, 50) * 1000:.0f} ms, max {max(totals) * 1000:.0f} ms",
    ]
    return Result(
        "P8 form add node",
        "goal 500 ms p95 (browser: submit, plan, apply, ready)",
        0.500,
        percentile(totals, 95),
        1.0,
        "; ".join(notes),
        made == ADD_START + ADD_TIMES,
    )


@figure("P8", order=93)
def p8_desired(ctx: Context) -> list[Result]:
    """P8: desired topologies through the API: list 2000 nodes, import+apply 500, reconcile 1000, add one."""
    rows: list[Result] = []
    with p8_stack(ctx) as stack:
        for make in (
            lambda: _list_row(stack),
            lambda: _apply_row(ctx, stack),
            lambda: _form_row(stack),  # on an idle host, as the goal says: before reconcile's 1000 nodes
            lambda: _reconcile_row(stack, "p8r"),
            lambda: _add_row(stack),
        ):
            try:
                rows.append(make())
            except Exception as exc:  # one broken row must not lose the others
                rows.append(Result("P8", "(row crashed)", None, None, None, f"{type(exc).__name__}: {exc}"))
        with contextlib.suppress(Exception):
            stack.command("p8r", "destroy")
        if left := stack.agent_netns():
            rows.append(
                Result(
                    "P8", "(cleanup)", None, None, None, f"{len(left)} namespaces left in the agent's /run"
                )
            )
    return rows
