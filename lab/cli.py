"""`python -m lab up|down|status|supervise`: the lab from the shell (`make lab`, `make lab-down`).

`up` starts the supervisor (`supervise`) in the background, in a session of its own, and returns
once every host's agent is connected, printing one line per host; or fails with the supervisor's
log, the supervisor having removed what it made. The state lives in a directory (`--dir`, default
var/lab of the repository):

- lab.pid: the supervisor's pid, written by it, removed by it when it ends cleanly;
- lab.json: the lab as the supervisor describes it (hosts, their pids, addresses), written before
  anything is made, so that `down` knows what to clean after a supervisor killed with SIGKILL;
- lab.log: the supervisor's log; labN.log: host N's PID 1 and agent (kept after `down`).

`down` stops the supervisor with SIGTERM (it stops the agents, whose namespaces die with them,
removes the underlay and revokes the hosts' tokens). When the supervisor is gone without having
done so (SIGKILL), `down` does it: it kills any host process still there, removes `sblab0` and
every `sblab*` veth of this network namespace, and revokes the hosts. The next `up` does the same
before it starts. Every command works on the network namespace it runs in: the dashboard's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab import tokens, underlay
from lab.hosts import STOP_SIGNALS, LabHost, host_name, tail
from lab.supervisor import Lab, LabError
from lab.tokens import REPO, TokenError
from netcore.netns import netns_run
from netcore.objects import netns_socket

DEFAULT_DIR = REPO / "var" / "lab"
PID_FILE = "lab.pid"
STATE_FILE = "lab.json"
LOG_FILE = "lab.log"
_SUPERVISOR = (b"\0-m\0lab\0", b"\0supervise\0")  # both in /proc/<pid>/cmdline of a supervisor
_HOST = b"lab/inside.py\0"  # in /proc/<pid>/cmdline of a host's PID 1

log = logging.getLogger("lab")


class _Stop(Exception):
    """SIGTERM, SIGINT or SIGHUP reached the supervisor."""


# -- state files ----------------------------------------------------------------------------------


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def supervisor_pid(directory: Path) -> int | None:
    """The pid of the running supervisor of the lab kept in `directory`, if any."""
    try:
        pid = int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_supervisor(pid) else None


def _is_supervisor(pid: int) -> bool:
    cmdline = _cmdline(pid)
    return all(part in cmdline for part in _SUPERVISOR)


def read_state(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(directory / STATE_FILE)


def _host_state(host: LabHost) -> dict[str, Any]:
    return {
        "name": host.name,
        "pid": host.pid,
        "address": f"{host.address}/{underlay.SUBNET4.prefixlen}",
        "address6": f"{host.address6}/{underlay.SUBNET6.prefixlen}",
        "netns": host.netns,
        "log": str(host.log),
    }


def host_lines(state: dict[str, Any]) -> list[str]:
    """One line per host: name, underlay addresses, its namespace's path and how to get a shell in it."""
    lines = []
    for host in state.get("hosts", []):
        shell = f"nsenter --target {host['pid']} --net --mount --pid --uts"
        gone = "" if _HOST in _cmdline(host["pid"]) else "  (gone)"
        where = f"{host['address']:<17} {host['address6']:<17} {host['netns']:<20}"
        lines.append(f"{host['name']:<6} {where} {shell}{gone}")
    return lines


# -- the supervisor -------------------------------------------------------------------------------


def supervise(*, hosts: int, port: int, directory: Path, timeout: float) -> int:
    """Run a lab in the foreground until SIGTERM, SIGINT or SIGHUP; 0 if it started and stopped cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s lab %(levelname)s %(message)s")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    names = [host_name(i) for i in range(1, hosts + 1)]
    (directory / PID_FILE).write_text(f"{os.getpid()}\n")
    state: dict[str, Any] = {"state": "starting", "supervisor": os.getpid(), "port": port, "names": names}
    _write_state(directory, state)

    def stop(signum: int, _frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # one stop at a time: the clean-up must not be cut short
        log.info("%s: stopping the lab", signal.Signals(signum).name)
        raise _Stop(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    lab = Lab(
        hosts=hosts,
        port=port,
        workdir=directory,
        manage=tokens.register,
        revoke=tokens.revoke,
        timeout=timeout,
    )
    code = 0
    try:
        lab.start()
        _write_state(directory, {**state, "state": "running", "hosts": [_host_state(h) for h in lab.hosts]})
        log.info("lab of %d hosts running; dashboard relay to 127.0.0.1:%d", hosts, port)
        while True:
            signal.pause()
    except _Stop:
        pass  # said by the handler
    except (LabError, TokenError) as exc:
        log.error("%s", exc)
        code = 1
    finally:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            lab.stop()
        except Exception as exc:
            log.error("%s", exc)
            code = 1
        else:
            for name in (STATE_FILE, PID_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
            log.info("lab stopped")
    return code


# -- clean-up after a supervisor that did not ----------------------------------------------------


def _kill_hosts(state: dict[str, Any] | None) -> list[str]:
    """SIGKILL every host PID 1 of `state` still running (only processes that are hosts' PID 1)."""
    killed = []
    for host in (state or {}).get("hosts", []):
        if _HOST in _cmdline(host["pid"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(host["pid"], signal.SIGKILL)
                killed.append(host["name"])
    deadline = time.monotonic() + 5
    while any(_HOST in _cmdline(h["pid"]) for h in (state or {}).get("hosts", [])):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return killed


def clean_leftovers(directory: Path, *, keep: frozenset[str] = frozenset()) -> list[str]:
    """What a supervisor killed with SIGKILL leaves: host processes (normally none), sblab0 and sblab*
    veths of this namespace, the hosts' tokens (but those of `keep`, about to be rotated), the state
    files. Returns what it did, in words."""
    done = []
    state = read_state(directory)
    if killed := _kill_hosts(state):
        done.append(f"killed hosts {', '.join(killed)}")
    with netns_socket(None) as sock:
        if removed := underlay.remove(sock):
            done.append(f"removed {', '.join(removed)}")
    if state is not None:
        names = [name for name in state.get("names", []) if name not in keep]
        for name in names:
            tokens.revoke(name)
        if names:
            done.append(f"revoked {', '.join(names)}")
    for name in (STATE_FILE, PID_FILE):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    return done


# -- commands -------------------------------------------------------------------------------------


def _dashboard_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    except OSError:
        return False
    return True


def _reaches(client: dict[str, Any], server: dict[str, Any]) -> bool:
    """Whether a TCP connection from one host to another's underlay address gets through (the
    listening socket is made inside the server host, the connecting one inside the client host)."""
    address = server["address"].split("/")[0]

    def listen() -> socket.socket:
        sock = socket.socket()
        sock.bind((address, 0))
        sock.listen(1)
        return sock

    listener = netns_run(path=server["netns"], fn=listen)
    try:
        with netns_run(path=client["netns"], fn=socket.socket) as sock:
            sock.settimeout(2)
            sock.connect(listener.getsockname())
    except OSError:
        return False
    finally:
        listener.close()
    return True


def _underlay_warning(state: dict[str, Any]) -> str | None:
    """Whether lab1 reaches lab2 over the underlay; a hint why not (Docker's FORWARD policy) if not."""
    hosts = state.get("hosts", [])
    if len(hosts) < 2:
        return None
    first, second = hosts[0], hosts[1]
    target = second["address"].split("/")[0]
    if _reaches(first, second):
        return None
    return (
        f"warning: {first['name']} cannot reach {second['name']} ({target}) over {underlay.BRIDGE}. When"
        " dockerd runs here, its iptables FORWARD policy drops frames crossing other bridges too"
        f" (bridge-nf-call-iptables): iptables -I DOCKER-USER -i {underlay.BRIDGE} -o {underlay.BRIDGE}"
        " -j ACCEPT lets them through."
    )


def up(*, hosts: int, port: int, directory: Path, timeout: float) -> int:
    if (pid := supervisor_pid(directory)) is not None:
        print(
            f"a lab already runs (supervisor pid {pid}): `python -m lab status` shows it,"
            " `python -m lab down` stops it",
            file=sys.stderr,
        )
        return 1
    if not 1 <= hosts <= underlay.MAX_HOSTS:
        print(f"a lab has 1 to {underlay.MAX_HOSTS} hosts, not {hosts}", file=sys.stderr)
        return 2
    if done := clean_leftovers(directory, keep=frozenset(host_name(i) for i in range(1, hosts + 1))):
        print(f"cleaned up after a lab whose supervisor was killed: {'; '.join(done)}")
    if not _dashboard_answers(port):
        print(f"no dashboard answers on 127.0.0.1:{port}: start it first (make run)", file=sys.stderr)
        return 1
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = directory / LOG_FILE
    command = [sys.executable, "-m", "lab", "supervise", "--hosts", str(hosts), "--port", str(port)]
    command += ["--dir", str(directory), "--timeout", str(timeout)]
    with open(log_path, "wb") as out:
        supervisor = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout + 10 + 3 * hosts  # registration: a manage.py run per host
    while True:
        state = read_state(directory)
        if state and state.get("state") == "running" and state.get("supervisor") == supervisor.pid:
            break
        if supervisor.poll() is not None:
            print(f"the lab did not start; {log_path}:\n{tail(log_path)}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            supervisor.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                supervisor.wait(30)
            print(f"the lab did not start in time; {log_path}:\n{tail(log_path)}", file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(f"lab of {hosts} hosts up (supervisor pid {supervisor.pid}, logs in {directory}):")
    print("\n".join(host_lines(state)))
    if warning := _underlay_warning(state):
        print(warning, file=sys.stderr)
    print("a shell in a host: its nsenter command above; `make lab-down` (python -m lab down) stops them")
    return 0


def down(*, directory: Path) -> int:
    code = 0
    if (pid := supervisor_pid(directory)) is not None:
        state = read_state(directory) or {}
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15 + 2 * len(state.get("names", []))
        while _is_supervisor(pid):
            if time.monotonic() > deadline:
                print(f"the supervisor (pid {pid}) did not stop in time: killed", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                code = 1
                break
            time.sleep(0.05)
        print(f"lab stopped (supervisor pid {pid})")
    done = clean_leftovers(directory)
    if done:
        print(f"cleaned up: {'; '.join(done)}")
    elif pid is None:
        print("no lab runs")
    return code


def status(*, directory: Path) -> int:
    pid = supervisor_pid(directory)
    state = read_state(directory)
    if pid is None:
        with netns_socket(None) as sock:
            left = underlay.leftovers(sock)
        print("no lab runs")
        if left or state is not None:
            what = ", ".join(left) or "its state"
            print(f"left behind by a killed supervisor: {what} (python -m lab down removes it)")
        return 1
    if state is None or state.get("state") != "running":
        print(f"a lab is starting (supervisor pid {pid})")
        return 0
    print(f"lab of {len(state['hosts'])} hosts, supervisor pid {pid}, dashboard 127.0.0.1:{state['port']}:")
    print("\n".join(host_lines(state)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab", description="Simulated hosts on this machine, each with its own agent."
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"the lab's state and logs (default {DEFAULT_DIR})"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start a lab in the background; returns once every host's agent is connected"),
        ("supervise", "run a lab in the foreground until SIGTERM or Ctrl-C (what `up` starts)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--hosts", type=int, default=3, help="number of hosts lab1..labN (default 3)")
        command.add_argument("--port", type=int, default=8000, help="the dashboard's port on 127.0.0.1")
        command.add_argument("--timeout", type=float, default=30.0, help="seconds for the agents to connect")
        command.add_argument("--dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    for name, text in (("down", "stop the lab and remove every trace of it"), ("status", "what runs")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    try:
        if args.command == "up":
            return up(hosts=args.hosts, port=args.port, directory=directory, timeout=args.timeout)
        if args.command == "supervise":
            return supervise(hosts=args.hosts, port=args.port, directory=directory, timeout=args.timeout)
        if args.command == "down":
            return down(directory=directory)
        return status(directory=directory)
    except (LabError, TokenError, OSError) as exc:
        print(f"lab {args.command}: {exc}", file=sys.stderr)
        return 1
