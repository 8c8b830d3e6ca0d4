"""The whole stack as real processes: daphne, the agent, Redis and PostgreSQL, and clients for them.

Everything a test starts lives in its throwaway network namespace (`host_ns`): daphne binds
127.0.0.1 there, the agent (root, under `nsenter`, with a private /run: see `Stack.start_agent`)
dials it there, Redis and PostgreSQL listen there. The test's clients open their TCP sockets
inside that namespace on netcore's namespace worker (`netns_run`), so it does not matter which
thread or event loop uses them afterwards.
Processes are started in sessions of their own and killed by process group id at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from netcore.netns import netns_run
from tests.conftest import MACHINE, RUN, HostNs

REPO = Path(__file__).resolve().parents[2]
PYTHON = str(REPO / ".venv" / "bin" / "python")
DAPHNE = str(REPO / ".venv" / "bin" / "daphne")
SECRET_KEY = "switchboard-stack-tests-only-" + "k" * 32
PG_BIN = (sorted(glob.glob("/usr/lib/postgresql/*/bin")) or ["/usr/lib/postgresql/15/bin"])[-1]
# daphne (and its manage.py commands) as an ordinary user with no capabilities at all
UNPRIVILEGED = [
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
]
# configuration the outer environment must not leak into the processes under test
_ENV_DROP = ("DATABASE_URL", "REDIS_URL", "SWITCHBOARD_", "http_proxy", "https_proxy", "HTTP_PROXY")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_DROP)}
    env.update(SWITCHBOARD_SECRET_KEY=SECRET_KEY, DJANGO_SETTINGS_MODULE="webapp.settings")
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def make_tmpdir(tag: str, *, owner: str | None = None) -> Path:
    """A directory under /tmp others can traverse (pytest's tmp_path is 0700 root: nobody cannot)."""
    path = Path(tempfile.mkdtemp(prefix=f"sbstack-{RUN}-{tag}-", dir="/tmp"))
    path.chmod(0o755)
    if owner:
        chown(path, owner)
    return path


def chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"  # sqlite:////abs/path.db


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    """A process this test started (its own session: pgid == pid) with its output in a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def send_signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 3.0) -> None:
        """Signal the process group and wait; SIGKILL if it does not go in time."""
        if self.alive:
            self.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.popen.wait(timeout)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])


class Cleanups:
    """Processes and other resources of one test; released in reverse order, failures collected."""

    def __init__(self) -> None:
        self._stack: list[Callable[[], None]] = []

    def add(self, fn: Callable[[], None]) -> None:
        self._stack.append(fn)

    def start(self, name: str, args: list[str], *, env: dict[str, str], log: Path, cwd: Path = REPO) -> Proc:
        out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            popen = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            out.close()
        proc = Proc(name=name, popen=popen, log=log)
        self.add(proc.stop)
        return proc

    def close(self) -> None:
        errors = []
        while self._stack:
            try:
                self._stack.pop()()
            except Exception as exc:  # keep releasing the rest
                errors.append(exc)
        if errors:
            raise errors[0]


# -- sockets inside the namespace -----------------------------------------------------------------


def ns_connect(netns_path: str, port: int, *, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:port of the namespace at `netns_path` (the socket is made inside it)."""
    return netns_run(
        path=netns_path, fn=lambda: socket.create_connection(("127.0.0.1", port), timeout=timeout)
    )


def ns_free_port(ns: HostNs) -> int:
    def pick() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return netns_run(path=ns.path, fn=pick)


def http_call(
    netns_path: str,
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float = 60.0,
    response_headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP request to 127.0.0.1:port in the namespace at `netns_path`; returns (status, JSON body
    or text), and fills `response_headers` if given."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.sock = ns_connect(netns_path, port, timeout=timeout)
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        if response_headers is not None:
            response_headers.update(response.getheaders())
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")


async def ws_connect(ns: HostNs, port: int, path: str, *, token: str | None) -> ClientConnection:
    """A websocket client on ws://127.0.0.1:port/path inside the namespace."""
    sock = ns_connect(ns.path, port)
    headers = {"Authorization": f"Token {token}"} if token else {}
    return await connect(
        f"ws://127.0.0.1:{port}{path}",
        sock=sock,
        additional_headers=headers,
        proxy=None,
        max_size=None,
        open_timeout=10,
    )


async def until(check: Callable[[], Any], *, timeout: float = 5.0, what: str, interval: float = 0.05) -> Any:
    """Poll a synchronous check (run in a thread: it may block on HTTP) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


# -- the browser socket ---------------------------------------------------------------------------


class Browser:
    """A /ws/topology/ client that keeps every host's state from the frames it receives.

    A background task reads frames, records them, and applies snapshots and deltas; `until`
    waits for a condition on what was received. Gaps in a host's delta seqs are recorded.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.states: dict[str, dict[str, dict[str, dict]]] = {}
        self.online: dict[str, bool] = {}
        self.seq: dict[str, int] = {}
        self.snapshot_seqs: dict[str, list[int]] = defaultdict(list)
        self.delta_seqs: dict[str, list[int]] = defaultdict(list)
        self.deltas: dict[str, dict[int, list[dict]]] = defaultdict(dict)  # host → seq → events
        self.problems: list[str] = []
        self.closed: ConnectionClosed | None = None
        self.done = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                self._apply(frame)
                self._changed.set()
        except ConnectionClosed as exc:
            self.closed = exc
        finally:
            self.done = True
            self._changed.set()

    def _apply(self, frame: dict) -> None:
        kind, host = frame.get("type"), frame.get("host")
        if frame.get("v") != 1:
            self.problems.append(f"frame without v: 1: {frame}")
        if kind == "topology.snapshot":
            self.states[host] = {k: dict(v) for k, v in frame["state"].items()}
            self.online[host] = frame["online"]
            self.seq[host] = frame["seq"]
            self.snapshot_seqs[host].append(frame["seq"])
        elif kind == "topology.delta":
            if host not in self.states:
                self.problems.append(f"delta before any snapshot of {host}: seq {frame['seq']}")
                return
            if frame["seq"] != self.seq[host] + 1:
                self.problems.append(f"{host}: delta seq {frame['seq']} after {self.seq[host]}")
            for event in frame["events"]:
                objects = self.states[host].setdefault(event["kind"], {})
                if event["action"] == "set":
                    objects[event["key"]] = event["object"]
                else:
                    objects.pop(event["key"], None)
            self.seq[host] = frame["seq"]
            self.delta_seqs[host].append(frame["seq"])
            self.deltas[host][frame["seq"]] = frame["events"]
        elif kind == "host.status":
            self.online[host] = frame["online"]

    async def until(self, check: Callable[[], Any], *, timeout: float = 5.0, what: str) -> Any:
        """Wait until check() (run after every frame) returns something true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            result = check()
            if result:
                return result
            remaining = deadline - loop.time()
            if self.done or remaining <= 0:
                last = [f.get("type") for f in self.frames[-10:]]
                state = "closed" if self.done else f"timed out after {timeout:g} s"
                raise AssertionError(f"browser socket {state} waiting for {what}; last frames: {last}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # what the browser knows

    def links(self, host: str, netns: str = "host") -> dict[str, dict]:
        """The host's links in one namespace (of the host), by name."""
        links = self.states.get(host, {}).get("links", {})
        return {o["name"]: o for o in links.values() if o.get("netns") == netns}

    def namespaces(self, host: str) -> set[str]:
        return set(self.states.get(host, {}).get("namespaces", {}))

    def netns_of_objects(self, host: str) -> set[str]:
        """Every namespace any object of the host's state lives in."""
        found = set()
        for kind, objects in self.states.get(host, {}).items():
            for key, obj in objects.items():
                found.add(key if kind == "namespaces" else obj.get("netns"))
        return found

    def link_events(self, host: str, action: str) -> set[str]:
        """Names of host-namespace links that had an event of `action` in a delta so far."""
        names = set()
        for frame in self.frames:
            if frame.get("type") != "topology.delta" or frame.get("host") != host:
                continue
            for event in frame["events"]:
                obj = event.get("object") or {}
                if event["kind"] == "links" and event["action"] == action and obj.get("netns") == "host":
                    names.add(obj.get("name"))
        return names

    def operation_frames(self, operation: str, *, progress: bool = False) -> list[dict]:
        """The `operation.status` frames received about one operation, in order: its changes of
        status, and (`progress`) the progress reports of it running as well."""
        return [
            frame
            for frame in self.frames
            if frame.get("type") == "operation.status"
            and frame["operation"]["id"] == operation
            and (progress or "progress" not in frame["operation"])
        ]

    def namespace_events(self, host: str, action: str) -> set[str]:
        return {
            event["key"]
            for frame in self.frames
            if frame.get("type") == "topology.delta" and frame.get("host") == host
            for event in frame["events"]
            if event["kind"] == "namespaces" and event["action"] == action
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 3)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


# -- the stack ------------------------------------------------------------------------------------


@dataclass
class Web:
    """One daphne worker."""

    stack: Stack
    port: int
    proc: Proc

    def http(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        response_headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        return http_call(
            self.stack.ns.path,
            self.port,
            method,
            path,
            token=token,
            body=body,
            response_headers=response_headers,
        )

    def healthz(self) -> dict:
        status, body = self.http("GET", "/healthz")
        assert status == 200, (status, body)
        return body

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The REST API with the stack's operator token."""
        return self.http(method, path, token=self.stack.user_token, body=body)

    async def aapi(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await asyncio.to_thread(self.api, method, path, body)

    @property
    def agent_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/agent/"


@dataclass
class Stack:
    """One test's stack inside its throwaway namespace; everything is released by `close`."""

    ns: HostNs
    workdir: Path
    db_url: str
    user_token: str
    host_tokens: dict[str, str]
    cleanups: Cleanups
    redis_url: str | None = None
    user: list[str] = field(default_factory=list)  # e.g. UNPRIVILEGED: how daphne and manage.py run
    lease: float | None = None  # SWITCHBOARD_AGENT_LEASE of the web workers (None: the default, 15 s)
    home: Path | None = None
    opened: list[Browser | ClientConnection] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        extra = {"DATABASE_URL": self.db_url, "HOME": str(self.home or self.workdir)}
        if self.redis_url:
            extra["REDIS_URL"] = self.redis_url
        if self.lease is not None:
            extra["SWITCHBOARD_AGENT_LEASE"] = str(self.lease)
        return base_env(**extra)

    def in_ns(self, args: list[str], *, as_user: bool = True) -> list[str]:
        return ["nsenter", f"--net={self.ns.path}", *(self.user if as_user else []), *args]

    def free_port(self) -> int:
        while (port := ns_free_port(self.ns)) in self.ports:
            pass
        self.ports.add(port)
        return port

    def manage(self, *args: str) -> str:
        """`manage.py ARGS` with the stack's database and channel layer, inside the namespace."""
        done = subprocess.run(
            self.in_ns([PYTHON, "manage.py", *args]),
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def host_token(self, name: str, underlay: str | None = None) -> str:
        """A new host and its agent token (`manage.py hosttoken NAME [--underlay ADDRESS]`, last line)."""
        token = self.manage("hosttoken", name, *(["--underlay", underlay] if underlay else [])).strip()
        token = token.splitlines()[-1]
        self.host_tokens[name] = token
        return token

    def log(self, name: str) -> Path:
        path = self.workdir / f"{name}.log"
        n = 1
        while path.exists():
            n += 1
            path = self.workdir / f"{name}-{n}.log"
        return path

    def start_web(self, *, port: int | None = None, name: str = "daphne") -> Web:
        """A daphne worker on 127.0.0.1:port of the namespace, once /healthz answers."""
        port = port or self.free_port()
        # the message size limit as scripts/run-local.sh sets it (a host's snapshot is one frame)
        args = self.in_ns(
            [
                DAPHNE,
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket-max-message-size",
                "268435456",
                "--websocket-max-frame-size",
                "268435456",
                "webapp.asgi:application",
            ]
        )
        proc = self.cleanups.start(name, args, env=self.env(), log=self.log(name))
        web = Web(stack=self, port=port, proc=proc)
        deadline = time.monotonic() + 30
        while True:
            assert proc.alive, f"daphne exited ({proc.popen.returncode}):\n{proc.tail()}"
            with contextlib.suppress(OSError, http.client.HTTPException):
                if web.http("GET", "/healthz")[0] == 200:
                    return web
            assert time.monotonic() < deadline, f"daphne did not answer /healthz:\n{proc.tail()}"
            time.sleep(0.1)

    def start_agent(
        self,
        web: Web,
        *,
        token: str | None,
        name: str = "agent",
        program: list[str] | None = None,
        args: list[str] | None = None,
    ) -> Proc:
        """The real agent, as root, inside the namespace (it treats the namespace as its host).

        `program` runs instead of the virtualenv's `python -m netcore.agent` (e.g. the zipapp under
        the system's python3), with `args` after the URL; `token` None passes no
        SWITCHBOARD_AGENT_TOKEN (give `--token-file` in `args` then).

        /run/netns is one directory for every network namespace of the machine, so an agent would
        also report (and be slowed down and flooded by) the named namespaces of everything else
        running here. Each agent therefore gets a private mount namespace with an empty tmpfs on
        /run: its host is the stack's namespace plus the namespaces it creates itself, which the
        test reaches through /proc/<agent pid>/root/run/netns/ (`Stack.netns_path`) and which
        vanish with the agent's mount namespace when it is killed. A stack in the MACHINE namespace
        (the Docker tests: dockerd's bridges and firewall live there) keeps the machine's /run.
        """
        script = 'mount -t tmpfs -o mode=755 sbstack /run && mkdir /run/netns && exec "$@"'
        agent = [*(program or [PYTHON, "-m", "netcore.agent"]), "--url", web.agent_url, "--no-processes"]
        private = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
        if self.ns is MACHINE:  # the machine's own /run: Docker's socket and namespaces
            private = []
        command = ["nsenter", f"--net={self.ns.path}", *private, *agent, *(args or [])]
        env = base_env(**({"SWITCHBOARD_AGENT_TOKEN": token} if token else {}))
        return self.cleanups.start(name, command, env=env, log=self.log(name))

    def netns_path(self, agent: Proc, name: str) -> str:
        """Path of a namespace as the agent sees it ("host": the stack's namespace)."""
        if name == "host":
            return self.ns.path
        return f"/run/netns/{name}" if self.ns is MACHINE else f"/proc/{agent.pid}/root/run/netns/{name}"

    def netns_names(self, agent: Proc) -> list[str]:
        """The named namespaces in the agent's /run/netns."""
        return sorted(os.listdir(f"/proc/{agent.pid}/root/run/netns"))

    async def browser(self, web: Web, *, token: str | None = None) -> Browser:
        ws = await ws_connect(self.ns, web.port, "/ws/topology/", token=token or self.user_token)
        browser = Browser(ws)
        self.opened.append(browser)
        return browser

    async def raw_agent(self, web: Web, *, token: str) -> ClientConnection:
        ws = await ws_connect(self.ns, web.port, "/ws/agent/", token=token)
        self.opened.append(ws)
        return ws

    async def aclose_sockets(self) -> None:
        for item in self.opened:
            with contextlib.suppress(Exception):
                if isinstance(item, Browser):
                    await item.close()
                else:
                    await asyncio.wait_for(item.close(), 3)


def log_count(proc: Proc, text: str) -> int:
    return proc.output().count(text)


async def agent_connected(proc: Proc, *, times: int = 1, timeout: float = 10.0) -> None:
    """Wait until the agent was welcomed `times` times in all (its log says so)."""

    def check() -> bool:
        assert proc.alive, f"the agent exited:\n{proc.tail()}"
        return log_count(proc, "the web app knows this host as") >= times

    await until(check, timeout=timeout, what=f"agent welcome #{times}:\n{proc.tail()}")


# -- Redis and PostgreSQL -------------------------------------------------------------------------


def start_redis(stack: Stack) -> str:
    """A private redis-server on 127.0.0.1 of the namespace, no persistence; returns its URL."""
    port = stack.free_port()
    args = [
        "nsenter",
        f"--net={stack.ns.path}",
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(stack.workdir),
    ]
    proc = stack.cleanups.start("redis", args, env=base_env(), log=stack.log("redis"))
    deadline = time.monotonic() + 10
    while True:
        assert proc.alive, f"redis-server exited:\n{proc.tail()}"
        with contextlib.suppress(OSError), ns_connect(stack.ns.path, port, timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return f"redis://127.0.0.1:{port}/0"
        assert time.monotonic() < deadline, f"redis-server did not answer:\n{proc.tail()}"
        time.sleep(0.05)


def start_postgres(stack: Stack, *, database: str = "switchboard") -> str:
    """A private PostgreSQL cluster (trust auth on 127.0.0.1 of the namespace); returns its URL."""
    base = stack.workdir / "pg"
    data, sockets = base / "data", base / "sock"
    for path in (base, data, sockets):
        path.mkdir(mode=0o700 if path == data else 0o755)
        chown(path, "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]

    def run(args: list[str], *, in_ns: bool = False) -> None:
        full = (["nsenter", f"--net={stack.ns.path}"] if in_ns else []) + as_pg + args
        done = subprocess.run(full, cwd=base, env=base_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    run([f"{PG_BIN}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
    port = stack.free_port()

    def stop() -> None:
        subprocess.run(
            as_pg + [f"{PG_BIN}/pg_ctl", "-D", str(data), "stop", "-m", "immediate", "-w"],
            cwd=base,
            capture_output=True,
            timeout=30,
        )
        pidfile = data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):  # pg_ctl could not stop it
            pid = int(pidfile.read_text().split()[0])
            if str(data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():  # the one we started
                os.kill(pid, signal.SIGKILL)

    stack.cleanups.add(stop)
    options = (
        f"-k {sockets} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    run(
        [
            f"{PG_BIN}/pg_ctl",
            "-D",
            str(data),
            "-l",
            str(base / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ],
        in_ns=True,
    )
    run([f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database], in_ns=True)
    return f"postgres://postgres@127.0.0.1:{port}/{database}"


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
