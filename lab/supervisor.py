"""The lab supervisor: N simulated hosts, their underlay and their relays to the dashboard, as one object.

`Lab` runs everything on one thread of its own, with an event loop:

- the thread first enters the namespace at `netns_path` if one is given (the dashboard's: where it
  listens on 127.0.0.1:port and where the underlay bridge goes; default: the caller's own), so every
  netlink socket and every relayed connection it opens is made there;
- it starts the hosts (lab.hosts): each one is started by this thread, and `setpriv --pdeathsig`
  ties its life to it, so the hosts die with the thread, also when the process is killed;
- it builds the underlay (lab.underlay) and configures each host's `lo` and `eth0` from outside,
  through a netlink socket made inside the host's namespace, then opens the host's relay listener
  (lab.relay) there, and only then hands the host its token, so its agent's first connection
  attempt already finds the relay;
- `start` returns once every host's agent was welcomed by the dashboard (its log says so), or
  raises LabError after `timeout` seconds, having removed everything it made.

Registration is the caller's: `manage(name, underlay)` returns a token for host `name` whose underlay
address (its VTEP in networks spanning hosts) is `underlay` (e.g. lab.tokens.register, or a test
stack's `host_token`), and `revoke(name)`, if given, is called for each host at `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lab import hosts as lab_hosts
from lab import underlay
from lab.hosts import HostProcess, LabHost, host_name
from lab.relay import Relay, relay_listener
from lab.tokens import PYTHON
from netcore.netlink.socket import NetlinkSocket
from netcore.netns import netns_open_socket

log = logging.getLogger("lab")

WELCOME = "the web app knows this host as"  # the agent's log line once the dashboard took its hello
REFUSED = "refused this host's token"  # the agent's log line when its token is not accepted
_CLONE_NEWNET = 0x40000000


class LabError(Exception):
    """The lab could not be started (everything it had made is removed again) or stopped cleanly."""


def _enter_netns(path: str) -> None:
    """Move the calling thread into the network namespace at `path`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabError(f"cannot enter the network namespace {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Lab:
    """N simulated hosts lab1..labN whose agents report to the dashboard at 127.0.0.1:`port`.

    Use as a context manager, or call `start()` and `stop()`. After `start`, `hosts` lists them
    (LabHost: name, pid, address, address6, netns, netns_path(name), nsenter, run(args), log).
    """

    def __init__(
        self,
        *,
        hosts: int = 3,
        port: int = 8000,
        workdir: Path,
        manage: Callable[[str, str], str],
        revoke: Callable[[str], None] | None = None,
        netns_path: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not 1 <= hosts <= underlay.MAX_HOSTS:
            raise LabError(f"a lab has 1 to {underlay.MAX_HOSTS} hosts, not {hosts}")
        if not 1 <= port <= 65535:
            raise LabError(f"{port} is not a TCP port")
        self.count = hosts
        self.port = port
        self.workdir = Path(workdir)
        self.manage = manage
        self.revoke = revoke
        self.netns_path = netns_path
        self.timeout = timeout
        self.hosts: list[LabHost] = []
        self._registered: list[str] = []
        self._procs: list[HostProcess] = []
        self._links: list[str] = []  # links this lab made in the supervisor's namespace
        self._sock: NetlinkSocket | None = None
        self._relay = Relay(port=port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._starting: asyncio.Task | None = None

    # -- the public side --------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [host_name(i) for i in range(1, self.count + 1)]

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name} in this lab")

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Lab:
        """Register the hosts, start them, and return once every agent is connected (else LabError)."""
        if self._thread is not None:
            raise LabError("this lab was started already")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            tokens = {}
            for index, name in enumerate(self.names, start=1):
                tokens[name] = self.manage(name, str(underlay.address4(index).ip))
                self._registered.append(name)
            ready = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(ready,), name="lab", daemon=True)
            self._thread.start()
            ready.wait()
            if self._loop is None:
                raise LabError(f"the lab's thread could not start: {self._failed}")
            asyncio.run_coroutine_threadsafe(self._up(tokens), self._loop).result()
        except BaseException:
            try:
                self.stop()
            except Exception:
                log.exception("cleaning up after a failed start")
            raise
        return self

    def stop(self) -> None:
        """Stop the agents (their hosts' namespaces go with them), the relays, remove the underlay,
        then revoke the hosts' tokens if `revoke` was given. Safe to call again."""
        errors: list[BaseException] = []
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._down(), loop).result(timeout=60)
            except BaseException as exc:
                errors.append(exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        self.hosts = []
        if self.revoke is not None:
            while self._registered:
                name = self._registered.pop()
                try:
                    self.revoke(name)
                    log.info("%s: token revoked", name)
                except Exception as exc:
                    errors.append(exc)
        self._registered.clear()
        if errors:
            raise LabError(f"stopping the lab: {errors[0]}") from errors[0]

    # -- the lab's thread -------------------------------------------------------------------------

    _failed: BaseException | None = None

    def _run(self, ready: threading.Event) -> None:
        try:
            if self.netns_path:
                _enter_netns(self.netns_path)
            loop = asyncio.new_event_loop()
        except BaseException as exc:
            self._failed = exc
            ready.set()
            return
        asyncio.set_event_loop(loop)
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _where(self) -> str:
        return f"the network namespace {self.netns_path}" if self.netns_path else "this network namespace"

    async def _check_dashboard(self) -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 3)
        except (OSError, TimeoutError) as exc:
            raise LabError(
                f"no dashboard answers on 127.0.0.1:{self.port} in {self._where()} ({exc}): start it first"
                " (make run)"
            ) from None
        writer.close()

    async def _up(self, tokens: dict[str, str]) -> None:
        self._starting = asyncio.current_task()
        await self._check_dashboard()
        self._sock = sock = NetlinkSocket.open()
        if underlay.BRIDGE in underlay.leftovers(sock):
            raise LabError(
                f"{underlay.BRIDGE} already exists in {self._where()}: a lab runs there, or the supervisor of"
                " one was killed (python -m lab down removes what it left)"
            )
        underlay.bridge_create(sock)
        self._links.append(underlay.BRIDGE)
        deadline = time.monotonic() + self.timeout
        agent = [PYTHON, "-m", "netcore.agent", "--url", f"ws://127.0.0.1:{self.port}/ws/agent/"]
        for index in range(1, self.count + 1):
            log_path = self.workdir / f"{host_name(index)}.log"
            self._procs.append(lab_hosts.host_spawn(index=index, log=log_path, agent=agent))
        for proc in self._procs:
            started = functools.partial(lab_hosts.host_pid1, proc)
            pid = await self._until(started, deadline, "to start", [proc])
            netns = f"/proc/{pid}/ns/net"
            underlay.host_link(sock, index=proc.index, host_netns=netns)
            self._links.append(underlay.port_name(proc.index))
            host_sock = netns_open_socket(path=netns)
            try:
                underlay.host_configure(host_sock, index=proc.index)
            finally:
                host_sock.close()
            await self._relay.serve(relay_listener(netns=netns, port=self.port), host=proc.name)
            lab_hosts.host_go(proc, token=tokens[proc.name])
            log.info("%s: pid %d, underlay %s", proc.name, pid, underlay.address4(proc.index))
        await self._until(self._all_welcomed, deadline, "to connect to the dashboard", self._procs)
        self.hosts = [proc.info() for proc in self._procs]

    def _all_welcomed(self) -> bool:
        welcomed = True
        for proc in self._procs:
            text = proc.tail(400)
            if REFUSED in text:
                raise LabError(f"the dashboard refused {proc.name}'s token:\n{proc.tail()}")
            welcomed = welcomed and WELCOME in text
        return welcomed

    async def _until(self, check: Callable[[], object], deadline: float, what: str, procs: list) -> object:
        while True:
            result = check()
            if result:
                return result
            for proc in procs:
                if not proc.alive:
                    raise LabError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
            if time.monotonic() > deadline:
                late = ", ".join(p.name for p in procs)
                tails = "\n".join(f"--- {p.name} ({p.log})\n{p.tail(10)}" for p in procs)
                raise LabError(f"timed out after {self.timeout:g} s waiting for {late} {what}:\n{tails}")
            await asyncio.sleep(0.05)

    async def _down(self) -> None:
        errors: list[BaseException] = []
        if self._starting is not None and not self._starting.done():  # start() was interrupted (a signal)
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        try:
            await lab_hosts.hosts_stop(self._procs)
            log.info("hosts stopped: %s", ", ".join(p.name for p in self._procs) or "none")
        except BaseException as exc:
            errors.append(exc)
        try:
            await self._relay.close()
        except BaseException as exc:
            errors.append(exc)
        if self._sock is not None:
            try:
                underlay.remove(self._sock, self._links)
                log.info("underlay removed: %s", ", ".join(self._links) or "none")
                self._links.clear()
            except BaseException as exc:
                errors.append(exc)
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self._procs.clear()
        if errors:
            raise errors[0]
