"""Fixtures shared by the whole suite.

Kernel tests run inside a throwaway "host" network namespace: the test's thread enters it
for the duration of the test, so netcore (which treats the caller's namespace as the
host) never sees the machine's real interfaces. Every name a test creates carries this
run's prefix, and the suite fails if any namespace it made is left behind.
"""

from __future__ import annotations

import ctypes
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

RUN = secrets.token_hex(2)  # 4 hex chars, part of every name this run creates
NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = iter(range(1, 10**6))


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


# Names this run makes start with a short letter prefix and then RUN ("sbt-<RUN>-h3", "t<RUN>05-a",
# "sb<RUN>pa"). Matching RUN anywhere in a name would also claim other people's objects (benchmarks name
# namespaces like "p7-n00937" or "sbnlb-e296"), and the fixtures delete what they claim.
_OURS = re.compile(rf"[a-z]{{0,3}}-?{RUN}")


def ours(name: str) -> bool:
    """True if a namespace or link name was made by this run."""
    return _OURS.match(name) is not None


def _ours() -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if ours(n))
    except FileNotFoundError:
        return []


@dataclass
class HostNs:
    """The throwaway namespace a test runs in; `run(cmd)` runs a command inside it via nsenter."""

    name: str
    path: str

    def run(
        self, cmd: str | list[str], *, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess:
        args = ["nsenter", f"--net={self.path}", *(["sh", "-c", cmd] if isinstance(cmd, str) else cmd)]
        return subprocess.run(args, capture_output=True, text=True, check=check, input=input)

    def netcore(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        """`python -m netcore ARGS` inside this namespace."""
        return self.run([sys.executable, "-m", "netcore", *args], check=check)


@pytest.fixture
def topo() -> str:
    """A fresh topology name (≤ 8 chars) carrying the run prefix."""
    return f"t{RUN}{next(_counter):02d}"[:8]


@pytest.fixture
def host_ns() -> Iterator[HostNs]:
    """Run the test inside a fresh throwaway network namespace, then remove it and check for leaks."""
    name = f"sbt-{RUN}-h{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    path = os.path.join(NETNS_DIR, name)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        yield HostNs(name, path)
    finally:
        _setns(home)
        os.close(home)
        os.close(target)
        left = [n for n in _ours() if n != name and not n.startswith("sbt-")]
        for leftover in left:
            subprocess.run(["ip", "netns", "del", leftover], check=False)
        subprocess.run(["ip", "netns", "del", name], check=False)
        assert not left, f"test left namespaces behind: {left}"


@pytest.fixture(scope="session", autouse=True)
def _no_leaks_at_end() -> Iterator[None]:
    """Fail the suite if it left a namespace, or a link in the machine's own namespace, behind."""
    yield
    left = _ours()
    for name in left:
        subprocess.run(["ip", "netns", "del", name], check=False)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    stray = [name for name in names if ours(name)]
    for name in stray:
        subprocess.run(["ip", "link", "del", name], check=False)
    assert not left, f"the suite left namespaces behind: {left}"
    assert not stray, f"the suite left links in the machine's namespace: {stray}"


def tcp_echo(
    *, server_ns: str, client_ns: str, address: str, port: int = 7000, timeout: float = 3.0
) -> bytes:
    """Send bytes over real TCP from a socket in client_ns to one listening in server_ns; return the echo.

    Namespaces are /run/netns names ("host" = the caller's namespace).
    """
    from netcore.netns import HOST, netns_path

    def path(name: str) -> str | None:
        return None if name == HOST else netns_path(name)

    return tcp_echo_at(
        server=path(server_ns), client=path(client_ns), address=address, port=port, timeout=timeout
    )


def tcp_echo_at(
    *, server: str | None, client: str | None, address: str, port: int = 7000, timeout: float = 3.0
) -> bytes:
    """tcp_echo between namespace files (paths; None = the caller's namespace).

    Sockets stay in the namespace they were created in, so both are made there and then used here.
    """
    from netcore.netns import netns_run

    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def make(listen: bool) -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        if listen:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(1)
        return s

    def in_ns(where: str | None, listen: bool) -> socket.socket:
        if where is None:
            return make(listen)
        return netns_run(path=where, fn=lambda: make(listen))

    listener = in_ns(server, True)
    sender = in_ns(client, False)
    payload = secrets.token_bytes(16)
    echoed: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # the client never got through: its side reports that
        with conn:
            conn.sendall(conn.recv(64))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        sender.connect((address, port))
        sender.sendall(payload)
        echoed.append(sender.recv(64))
    finally:
        sender.close()
        thread.join(timeout)
        listener.close()
    assert echoed[0] == payload
    return echoed[0]


def can_connect(
    *, server_ns: str, client_ns: str, address: str, port: int = 7001, timeout: float = 1.0
) -> bool:
    """True if a TCP connection gets through (used to show that something is NOT reachable)."""
    try:
        tcp_echo(server_ns=server_ns, client_ns=client_ns, address=address, port=port, timeout=timeout)
    except OSError:
        return False
    return True
