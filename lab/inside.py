"""PID 1 of a simulated host: its private /run and hostname, then the agent, then an init's duties.

Started by `lab.hosts` as the command of `unshare --net --mount --pid --uts --fork --mount-proc`, so
it runs as PID 1 of the host's new PID namespace, in the host's own network, mount and UTS
namespaces (their /proc already shows only the host's processes). Standard library only: run
as a script (`python -I lab/inside.py`), it imports nothing of the repository.

What it does, in order:

1. mounts an empty tmpfs on /run (with /run/netns in it): the host's named namespaces are its own,
   and vanish with its mount namespace;
2. sets the hostname (UTS namespace) to the host's name, which the agent reports;
3. waits on `--go-fd` for the supervisor, which meanwhile brings the host's network up from
   outside (`lo`, the underlay `eth0`) and opens the dashboard relay's listening socket in it.
   The supervisor writes the host's agent token and closes the pipe: the token reaches the agent
   through its environment only, never a command line nor this process's environment. End of
   file without a token means the supervisor went away: the host exits.
4. forks the agent (the command after `--`) with SWITCHBOARD_AGENT_TOKEN in its environment;
5. stays as the namespace's init: passes SIGTERM, SIGINT and SIGHUP on to the agent (an init only
   receives the signals it has a handler for, so the agent, not being PID 1, behaves as on a
   real host), reaps every orphan (a shell opened with nsenter leaves some), and exits with the
   agent's status when the agent ends. The kernel then kills whatever else still runs in the
   host, and the host's namespaces are freed. SIGUSR1 restarts the agent instead, as a service
   manager would (SIGTERM, then a new agent once it ended): what the agent made stays.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import sys

_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# what the agent may see of the environment it was given (the token is added by main)
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "PYTHONUNBUFFERED")

_agent: int | None = None
_restarting = False  # SIGUSR1 asked for a new agent once this one has ended


def _mount_run() -> None:
    """An empty tmpfs on /run with /run/netns in it (the mount namespace is private: nothing of it
    reaches the machine's mounts)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"sblab", b"/run", b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=755") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount a tmpfs on /run: {os.strerror(err)}")
    os.mkdir("/run/netns", 0o755)


def _read_token(fd: int) -> str:
    """Everything the supervisor writes on the pipe until it closes it: the agent's token."""
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode().strip()


def _forward(signum: int, _frame: object) -> None:
    if _agent is None:
        sys.exit(128 + signum)  # stopped before the agent started
    with contextlib.suppress(ProcessLookupError):
        os.kill(_agent, signum)


def _restart(_signum: int, _frame: object) -> None:
    """SIGUSR1: stop the agent; the wait loop starts a new one when it has ended."""
    global _restarting
    if _agent is not None:
        _restarting = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(_agent, signal.SIGTERM)


def _start(name: str, command: list[str], env: dict[str, str]) -> int:
    """Fork the agent; its pid."""
    pid = os.fork()
    if pid == 0:
        for signum in (*_FORWARDED, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execve(command[0], command, env)
        except OSError as exc:
            print(f"lab host {name}: cannot start the agent {command[0]}: {exc}", file=sys.stderr)
        os._exit(127)
    return pid


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    global _agent, _restarting
    parser = argparse.ArgumentParser(prog="lab/inside.py", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the host's name, set as its hostname")
    parser.add_argument("--go-fd", type=int, required=True, help="pipe the supervisor writes the token on")
    parser.add_argument("agent", nargs=argparse.REMAINDER, help="-- and the agent's command line")
    args = parser.parse_args(argv)
    command = args.agent[1:] if args.agent[:1] == ["--"] else args.agent
    if not command:
        parser.error("the agent's command is missing (after --)")
    for signum in _FORWARDED:
        signal.signal(signum, _forward)
    # lab.hosts starts this process with them blocked: as PID 1 it would have dropped any that came
    # before the handlers were there; blocked, they waited, and arrive now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)

    _mount_run()
    socket.sethostname(args.name)
    token = _read_token(args.go_fd)
    if not token:
        print(f"lab host {args.name}: the supervisor went away before the host was ready", file=sys.stderr)
        return 1

    env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
    env["SWITCHBOARD_AGENT_TOKEN"] = token
    signal.signal(signal.SIGUSR1, _restart)
    _agent = _start(args.name, command, env)
    while True:  # an init reaps every child; PEP 475 retries the wait after a forwarded signal
        try:
            child, status = os.wait()
        except ChildProcessError:
            return 0
        if child != _agent:
            continue
        if not _restarting:
            return _exit_code(status)
        _restarting = False
        _agent = _start(args.name, command, env)


if __name__ == "__main__":
    sys.exit(main())
