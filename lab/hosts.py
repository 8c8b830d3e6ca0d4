"""One simulated host: its own network, mount, PID and UTS namespaces, with a real agent in them.

`host_spawn` starts

    setpriv --pdeathsig KILL -- unshare --net --mount --pid --uts --fork --kill-child=KILL
        --propagation private --mount-proc  python -I lab/inside.py --name labN --go-fd FD -- AGENT...

`unshare` makes the namespaces and forks `lab/inside.py` as PID 1 of the new PID namespace (see
there: private /run, hostname, then the agent). The host is gone as soon as that PID 1 is: the
kernel kills every process of a PID namespace whose init ends, and then the host's network and
mount namespaces (with `eth0`, which takes its peer on the bridge with it, and every namespace the
agent made under its private /run/netns) are freed.

Nothing is left running when the supervisor dies, even by SIGKILL: `setpriv --pdeathsig` has the
kernel kill `unshare` when the supervisor's thread that started it ends, and `--kill-child` has it
kill the host's PID 1 when `unshare` ends.

LabHost is what callers see of a running host: its PID 1 as the machine sees it (`pid`), through
which everything of the host is reached (`/proc/<pid>/ns/net`, `nsenter --target <pid> ...`,
`/proc/<pid>/root/run/netns/<name>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab import underlay
from lab.tokens import PYTHON, REPO

INSIDE = REPO / "lab" / "inside.py"
NAME_PREFIX = "lab"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}  # lab/inside.py passes them to the agent
# what a host's processes may see of the supervisor's environment (not its DATABASE_URL and such)
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def host_name(index: int) -> str:
    return f"{NAME_PREFIX}{index}"


@dataclass(frozen=True)
class LabHost:
    """A running simulated host."""

    name: str  # lab1..labN, also its hostname
    index: int  # N
    pid: int  # its PID 1 (lab/inside.py), as the supervisor's PID namespace numbers it
    address: str  # underlay IPv4 address on its eth0, e.g. 198.18.254.11 (a /24)
    address6: str  # underlay IPv6 address on its eth0, e.g. fd00:254::11 (a /64)
    log: Path  # the output of its PID 1 and of its agent

    @property
    def netns(self) -> str:
        """The host's own network namespace (what its agent reports as "host")."""
        return f"/proc/{self.pid}/ns/net"

    def netns_path(self, name: str) -> str:
        """A namespace the host made, by name ("host": its own network namespace)."""
        return self.netns if name == "host" else f"/proc/{self.pid}/root/run/netns/{name}"

    @property
    def nsenter(self) -> list[str]:
        """The command that enters the host: followed by a command, or alone for a shell in it."""
        return ["nsenter", "--target", str(self.pid), "--net", "--mount", "--pid", "--uts"]

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside the host (subprocess.run's keyword arguments; output captured as text)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        kwargs.setdefault("timeout", 30)
        return subprocess.run([*self.nsenter, *args], **kwargs)

    def restart_agent(self) -> None:
        """Restart the host's agent, as a service manager would (lab/inside.py: SIGUSR1)."""
        os.kill(self.pid, signal.SIGUSR1)


@dataclass
class HostProcess:
    """The supervisor's handle on a host being started or running."""

    name: str
    index: int
    popen: subprocess.Popen  # setpriv → unshare, outside the host
    log: Path
    go: int  # write end of the pipe lab/inside.py waits on
    pid: int | None = None  # the host's PID 1, once found
    closed: bool = field(default=False)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def info(self) -> LabHost:
        assert self.pid is not None
        return LabHost(
            name=self.name,
            index=self.index,
            pid=self.pid,
            address=str(underlay.address4(self.index).ip),
            address6=str(underlay.address6(self.index).ip),
            log=self.log,
        )

    def tail(self, lines: int = 20) -> str:
        return tail(self.log, lines)


def host_spawn(*, index: int, log: Path, agent: list[str]) -> HostProcess:
    """Start host N (its PID 1 waits for `host_go`); the caller's thread must outlive the host."""
    name = host_name(index)
    read, write = os.pipe2(os.O_CLOEXEC)
    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        "setpriv",
        "--pdeathsig",
        "KILL",
        "--",
        "unshare",
        "--net",
        "--mount",
        "--pid",
        "--uts",
        "--fork",
        "--kill-child=KILL",
        "--propagation",
        "private",
        "--mount-proc",
        PYTHON,
        "-I",
        str(INSIDE),
        "--name",
        name,
        "--go-fd",
        str(read),
        "--",
        *agent,
    ]
    # Started with the stop signals blocked: a host's PID 1 ignores the signals it has no handler
    # for yet, but keeps blocked ones pending, so a stop sent while it starts is not lost.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(read,),
                start_new_session=True,  # a Ctrl-C meant for the supervisor reaches it alone
            )
    except BaseException:
        os.close(write)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(read)
    return HostProcess(name=name, index=index, popen=popen, log=log, go=write)


def host_pid1(host: HostProcess) -> int | None:
    """The host's PID 1 (unshare's only child) once unshare has forked it, else None."""
    pid = host.popen.pid
    with contextlib.suppress(OSError, ValueError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            host.pid = int(children[0])
    return host.pid


def host_go(host: HostProcess, *, token: str) -> None:
    """Hand the host its agent token: its PID 1 starts the agent."""
    try:
        os.write(host.go, token.encode() + b"\n")
    finally:
        host_close_pipe(host)


def host_close_pipe(host: HostProcess) -> None:
    if not host.closed:
        host.closed = True
        os.close(host.go)


def host_signal(host: HostProcess, sig: int) -> None:
    """Signal the host's PID 1 (as long as unshare still waits for it, the pid is still its)."""
    if host.pid is not None and host.alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(host.pid, sig)


async def hosts_stop(hosts: list[HostProcess], *, timeout: float = 5.0) -> None:
    """SIGTERM every host's PID 1 (which passes it to the agent), wait for them together; SIGKILL the
    ones still running after `timeout` (killing unshare kills its child, `--kill-child`).

    Async because the agents say goodbye to the dashboard through the relays of the same loop."""
    for host in hosts:
        host_close_pipe(host)  # a host still waiting for its token ends at once
        host_signal(host, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(h.alive for h in hosts) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for host in hosts:
        if host.alive:
            host_signal(host, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                host.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            host.popen.wait(timeout)
