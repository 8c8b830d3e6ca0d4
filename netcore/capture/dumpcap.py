"""dumpcap (Wireshark's capture engine) started inside a network namespace, and its words read back.

dumpcap writes pcapng to its stdout (`-w -`): it flushes each packet to a pipe, so a reader sees a
packet as soon as it is captured, and the reader, not dumpcap's buffering, decides how the file
grows. `-q` keeps its stderr to what matters: "File: -" once the interfaces and filter are accepted,
an error before that, and each interface's received/dropped counts when it ends.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
import shutil
import signal
import subprocess
import time

from netcore import netns as ns
from netcore.capture.request import CaptureRequest
from netcore.errors import InvalidSpec, NetcoreError, NotFound, Unsupported

START_TIMEOUT = 10.0  # seconds dumpcap may take to open its interfaces
STOP_TIMEOUT = 5.0  # seconds dumpcap may take to finish its file after SIGINT, before SIGKILL
_PR_SET_PDEATHSIG = 1
_STARTED = b"File: "
_DROPPED = re.compile(r"^Packets received/dropped on interface .*: (\d+)/(\d+) ", re.M)
_INSTALL = "install Debian's tshark package (it brings dumpcap)"
_libc = ctypes.CDLL(None, use_errno=True)


def program(name: str) -> str:
    """Where Wireshark's `name` (dumpcap, tshark) is; Unsupported when it is not installed."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None)
    if found is None:
        raise Unsupported(f"packet capture needs {name}, which is not installed: {_INSTALL}", obj=name)
    return found


def _die_with_starter() -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends (the agent died)."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def dumpcap_command(request: CaptureRequest) -> list[str]:
    """dumpcap's command line for `request`, writing pcapng to stdout."""
    # -f and -s before the first -i set them for every interface (after one, only for that one)
    argv = [program("dumpcap"), "-q", "-n", "-s", str(request.snaplen)]
    if request.filter:
        argv += ["-f", request.filter]
    for name in request.interfaces:
        argv += ["-i", name]
    argv += ["-c", str(request.count), "-a", f"duration:{request.duration:g}"]
    return [*argv, "-w", "-"]


def dumpcap_start(request: CaptureRequest) -> subprocess.Popen[bytes]:
    """Start dumpcap inside the request's namespace ("host": the caller's own) and wait until it
    captures; NotFound / InvalidSpec naming the field when it refuses the namespace, an interface or
    the filter (it has exited then)."""
    argv = dumpcap_command(request)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"},  # its messages are read back
            preexec_fn=_die_with_starter,
            process_group=0,  # a terminal's Ctrl-C reaches the caller, which stops dumpcap itself
        )

    if request.namespace == ns.HOST:
        proc = start()
    else:
        try:
            path = ns.netns_resolve(request.namespace).path
            # started from netcore's namespace thread while it is inside the namespace: dumpcap is born there
            proc = ns.netns_run(path=path, fn=start)
        except NotFound:
            raise NotFound(f"namespace: {request.namespace} does not exist", obj="namespace") from None
        except OSError as exc:  # the namespace went away between the lookup and the entry
            raise NotFound(f"namespace: {request.namespace}: {exc.strerror}", obj="namespace") from None
    try:
        _wait_started(proc, request)
    except BaseException:
        dumpcap_stop(proc)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        raise
    return proc


def _wait_started(proc: subprocess.Popen[bytes], request: CaptureRequest) -> None:
    assert proc.stderr is not None
    said = b""
    deadline = time.monotonic() + START_TIMEOUT
    while _STARTED not in said:
        left = deadline - time.monotonic()
        if left <= 0:
            raise NetcoreError(
                f"interfaces: dumpcap did not start capturing on {', '.join(request.interfaces)} within"
                f" {START_TIMEOUT:g} s",
                obj="interfaces",
            )
        ready, _, _ = select.select([proc.stderr], [], [], left)
        chunk = os.read(proc.stderr.fileno(), 65536) if ready else b""
        if ready and not chunk:  # it exited: say why
            proc.wait()
            raise dumpcap_error(said.decode("utf-8", "replace"), request)
        said += chunk


def dumpcap_error(said: str, request: CaptureRequest) -> NetcoreError:
    """dumpcap's own words on why it failed, as the NetcoreError naming the field at fault."""
    lines = [
        line.strip() for line in said.splitlines() if line.strip() and not line.startswith("Capturing on")
    ]
    text = " ".join(line.removeprefix("dumpcap: ") for line in lines) or "dumpcap exited without saying why"
    if "Invalid capture filter" in text or "can't parse filter expression" in text:
        return InvalidSpec(f"filter: {request.filter!r} is not a valid capture filter ({text})", obj="filter")
    if "no device named" in text or "No such device" in text:
        return NotFound(f"interfaces: not in namespace {request.namespace} ({text})", obj="interfaces")
    if "not up" in text or "is down" in text:
        return InvalidSpec(f"interfaces: bring the interface up first ({text})", obj="interfaces")
    return NetcoreError(f"interfaces: dumpcap failed ({text})", obj="interfaces")


def dumpcap_complaint(said: str) -> str | None:
    """What dumpcap said went wrong while it captured ("The network adapter ... is no longer
    attached"), from its last words; None when it only reported its counts."""
    lines = [
        line.strip().removeprefix("dumpcap: ") for line in said.splitlines() if line.startswith("dumpcap: ")
    ]
    return " ".join(lines) or None


def dumpcap_dropped(said: str) -> int:
    """Packets dropped (by the kernel or dumpcap) over every interface, from dumpcap's last words."""
    return sum(int(match.group(2)) for match in _DROPPED.finditer(said))


def dumpcap_stop(proc: subprocess.Popen[bytes]) -> None:
    """End dumpcap as Ctrl-C would (it finishes its file), SIGKILL if it does not within STOP_TIMEOUT."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
