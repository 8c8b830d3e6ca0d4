"""Fixtures shared by the whole suite.

Kernel tests run inside a throwaway "host" network namespace: the test's thread enters it
for the duration of the test, so netcore (which treats the caller's namespace as the
host) never sees the machine's real interfaces. Every name a test creates carries this
run's prefix, and the suite fails if any namespace it made is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# The namespace the suite started in (the machine's own), held from import, before any test enters
# a throwaway one: a test's thread and its children are in host_ns, and /proc/1 may not be open to us.
_MACHINE_NETNS = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def machine_nft_tables() -> list[tuple[str, str]]:
    """(family, name) of every nftables table in the machine's own namespace; [] without nft."""
    if shutil.which("nft") is None and not os.path.exists("/usr/sbin/nft"):
        return []
    proc = subprocess.run(
        ["nsenter", f"--net=/proc/self/fd/{_MACHINE_NETNS}", "nft", "-j", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
        pass_fds=(_MACHINE_NETNS,),
    )
    listed = json.loads(proc.stdout)["nftables"]
    return [(x["table"]["family"], x["table"]["name"]) for x in listed if "table" in x]


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


# The machine's own namespace as a HostNs, for the tests that must run there: Docker puts its
# bridges, veths and firewall in it (the child processes of this one open it through our fd).
MACHINE = HostNs(name="machine", path=f"/proc/{os.getpid()}/fd/{_MACHINE_NETNS}")


@pytest.fixture
def topo() -> str:
    """A fresh topology name (≤ 8 chars) carrying the run prefix."""
    return f"t{RUN}{next(_counter):02d}"[:8]


@pytest.fixture
def host_ns() -> Iterator[HostNs]:
    """Run the test inside a fresh throwaway network namespace, then remove it and check for leaks."""
    with host_namespace() as ns:
        yield ns


@contextlib.contextmanager
def host_namespace() -> Iterator[HostNs]:
    """This thread inside a fresh throwaway network namespace, then back, with the namespace removed
    and a check that nothing else was left (host_ns for one test; a module's stack uses it too)."""
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


# How to make one device of each kind with iproute2; kinds that need a lower device get a veth.
_KIND_PROBES = {
    "vlan": "ip link add p0 type veth peer name p1 && ip link add x0 link p0 type vlan id 5",
    "ipvlan": "ip link add p0 type veth peer name p1 && ip link add x0 link p0 type ipvlan",
    "macvlan": "ip link add p0 type veth peer name p1 && ip link add x0 link p0 type macvlan",
}


@pytest.fixture(scope="session")
def kernel_has_link_kind():
    """kernel_has_link_kind("dummy") tells whether the running kernel can create that device kind.

    Probed once per kind by creating one with iproute2 (not netcore) inside a throwaway namespace
    (`unshare --net`: it disappears with the probe). The kernel answers an unknown kind with the
    extended ack "Unknown device type"; any other failure means the probe itself is wrong, and fails.
    """
    known: dict[str, bool] = {}

    def has(kind: str) -> bool:
        if kind not in known:
            script = _KIND_PROBES.get(kind, f"ip link add x0 type {kind}")
            probe = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True)
            if probe.returncode != 0 and "Unknown device type" not in probe.stderr:
                raise RuntimeError(f"probing device kind {kind} failed: {probe.stderr.strip()}")
            known[kind] = probe.returncode == 0
        return known[kind]

    return has


def docker_clean(client: Any) -> tuple[list[str], list[str]]:
    """Remove every container, then every network, that this run named; answers their names."""
    containers = [c for c in client.containers.list(all=True) if ours(c.name)]
    for container in containers:
        container.remove(force=True)
    networks = [n for n in client.networks.list() if ours(n.name)]
    for network in networks:
        network.remove()
    return [c.name for c in containers], [n.name for n in networks]


def _docker_or_none() -> Any:
    """The machine's Docker engine, or None without one (a part of the suite may run without it)."""
    from netcore.docker.engine import engine_connect
    from netcore.errors import Unavailable

    try:
        return engine_connect()
    except Unavailable:
        return None


def _swarm_state(client: Any) -> str:
    return client.info()["Swarm"]["LocalNodeState"]


@pytest.fixture
def docker_engine() -> Iterator[Any]:
    """The machine's Docker engine (started by `make docker`, which `make test` runs), through the
    SDK; every container and network the test named with this run's prefix is removed after it."""
    from netcore.docker.engine import engine_connect

    client = engine_connect()
    try:
        yield client
    finally:
        docker_clean(client)
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _no_leaks_at_end() -> Iterator[None]:
    """Fail the suite if it left a namespace, or a link or nftables table (netcore's are named
    switchboard-<topology>) in the machine's own namespace, or a Docker container or network, or
    the engine in a Swarm it was not in, behind."""
    docker = _docker_or_none()
    swarm_before = _swarm_state(docker) if docker else None
    dnsmasq_before = set(_catalog_dnsmasq())
    vips_before = ("inet", "switchboard-service-vips") in machine_nft_tables()
    etc_before = set(_etc_netns())
    yield
    dnsmasq_left = sorted(set(_catalog_dnsmasq()) - dnsmasq_before)
    for pid in dnsmasq_left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    vips_left = not vips_before and ("inet", "switchboard-service-vips") in machine_nft_tables()
    if vips_left:
        subprocess.run(["nft", "delete", "table", "inet", "switchboard-service-vips"], check=False)
    etc_left = sorted(set(_etc_netns()) - etc_before)
    docker_left: tuple[list[str], list[str]] = ([], [])
    swarm_after = swarm_before
    if docker is not None:
        docker_left = docker_clean(docker)
        swarm_after = _swarm_state(docker)
        if swarm_before == "inactive" and swarm_after != "inactive":
            docker.swarm.leave(force=True)
        docker.close()
    left = _ours()
    for name in left:
        subprocess.run(["ip", "netns", "del", name], check=False)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    stray = [name for name in names if ours(name)]
    for name in stray:
        subprocess.run(["ip", "link", "del", name], check=False)
    tables = [(f, n) for f, n in machine_nft_tables() if n.startswith("switchboard-") and ours(n[12:])]
    for family, name in tables:
        subprocess.run(["nft", "delete", "table", family, name], check=False)
    assert not left, f"the suite left namespaces behind: {left}"
    assert not stray, f"the suite left links in the machine's namespace: {stray}"
    assert not tables, f"the suite left nftables tables in the machine's namespace: {tables}"
    assert docker_left == ([], []), f"the suite left Docker containers and networks behind: {docker_left}"
    assert not dnsmasq_left, f"the suite left the service catalog's dnsmasq processes behind: {dnsmasq_left}"
    assert not vips_left, "the suite left the service VIP table in the machine's namespace"
    assert not etc_left, f"the suite left resolvers in /etc/netns: {etc_left}"
    assert swarm_after == swarm_before, (
        f"the suite left the engine's Swarm {swarm_after} (was {swarm_before})"
    )


def _catalog_dnsmasq() -> list[int]:
    """Pids of the dnsmasq processes serving a service catalog (each has a --hostsdir)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"dnsmasq") and any(a.startswith(b"--hostsdir=") for a in cmdline):
            found.append(int(pid))
    return found


def _etc_netns() -> list[str]:
    """The /etc/netns entries of namespaces this run made (resolvers the catalog writes)."""
    try:
        return [name for name in os.listdir("/etc/netns") if ours(name)]
    except FileNotFoundError:
        return []


def _ns_path(name: str) -> str | None:
    """The namespace file of a /run/netns name; None for "host" (the caller's namespace)."""
    from netcore.netns import HOST, netns_path

    return None if name == HOST else netns_path(name)


def _in_ns(where: str | None, fn):
    """fn() run inside the namespace file `where` (None = here); sockets made there stay there."""
    from netcore.netns import netns_run

    return fn() if where is None else netns_run(path=where, fn=fn)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _listening(*, where: str | None, address: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket bound to address:port and listening, made inside `where`. Errors propagate."""

    def make() -> socket.socket:
        s = socket.socket(_family(address), socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(1)
        except BaseException:
            s.close()
            raise
        return s

    return _in_ns(where, make)


def _client(*, where: str | None, address: str, timeout: float) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(_family(address), socket.SOCK_STREAM)
        s.settimeout(timeout)
        return s

    return _in_ns(where, make)


def _echo(
    listener: socket.socket, sender: socket.socket, *, address: str, port: int, timeout: float
) -> bytes:
    """Connect `sender` to the listener, send random bytes, return what came back; closes both sockets.

    Raises OSError from the client's side (connect, send, receive) when the bytes do not get through.
    """
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
    assert echoed[0] == payload, f"the echo from {address} came back as {echoed[0]!r}, not {payload!r}"
    return echoed[0]


def tcp_echo(
    *, server_ns: str, client_ns: str, address: str, port: int = 7000, timeout: float = 3.0
) -> bytes:
    """Send bytes over real TCP from a socket in client_ns to one listening in server_ns; return the echo.

    Namespaces are /run/netns names ("host" = the caller's namespace).
    """
    return tcp_echo_at(
        server=_ns_path(server_ns), client=_ns_path(client_ns), address=address, port=port, timeout=timeout
    )


def tcp_echo_at(
    *, server: str | None, client: str | None, address: str, port: int = 7000, timeout: float = 3.0
) -> bytes:
    """tcp_echo between namespace files (paths; None = the caller's namespace).

    Sockets stay in the namespace they were created in, so both are made there and then used here.
    """
    listener = _listening(where=server, address=address, port=port, timeout=timeout)
    try:
        sender = _client(where=client, address=address, timeout=timeout)
    except BaseException:
        listener.close()
        raise
    return _echo(listener, sender, address=address, port=port, timeout=timeout)


_IFA_F_TENTATIVE = 0x40
_IFA_F_DADFAILED = 0x08


def _ipv6_flags(where: str | None) -> list[tuple[str, str, int]]:
    """(interface, address, IFA flags) of every IPv6 address in namespace file `where`."""

    def read() -> list[tuple[str, str, int]]:
        try:
            with open("/proc/thread-self/net/if_inet6") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:  # IPv6 disabled
            return []
        out = []
        for line in lines:
            addr, _index, _plen, _scope, flags, ifname = line.split()
            text = str(ipaddress.IPv6Address(bytes.fromhex(addr)))
            out.append((ifname, text, int(flags, 16)))
        return out

    return _in_ns(where, read)


def wait_for_dad(where: str | None, *, timeout: float = 5.0) -> None:
    """Wait until no IPv6 address in namespace file `where` is tentative; fail on one that failed DAD.

    A tentative address cannot be bound or used as a source, so a connection could fail for that
    reason alone: negative reachability checks must not start before DAD is over.
    """
    deadline = time.monotonic() + timeout
    while True:
        flags = _ipv6_flags(where)
        failed = [(i, a) for i, a, f in flags if f & _IFA_F_DADFAILED]
        assert not failed, f"IPv6 duplicate address detection failed for {failed} in {where or 'host'}"
        tentative = [(i, a) for i, a, f in flags if f & _IFA_F_TENTATIVE]
        if not tentative:
            return
        assert time.monotonic() < deadline, (
            f"IPv6 addresses {tentative} in {where or 'host'} still tentative after {timeout} s"
            " (add them with nodad, or wait for DAD) : a reachability check would be unfair"
        )
        time.sleep(0.05)


def can_connect(
    *, server_ns: str, client_ns: str, address: str, port: int = 7001, timeout: float = 1.0
) -> bool:
    """True if a TCP connection from client_ns reaches a server listening on address in server_ns.

    Used to show that something is NOT reachable, so only the client's side may fail: the server
    must bind and listen (an error there propagates, it would make "cannot connect" true for the
    wrong reason), and no IPv6 address of the client may still be in DAD. False means the client's
    connect, send or receive failed (refused, unreachable, timed out).
    """
    server, client = _ns_path(server_ns), _ns_path(client_ns)
    try:
        listener = _listening(where=server, address=address, port=port, timeout=timeout)
    except OSError as exc:
        raise AssertionError(
            f"cannot listen on {address} port {port} in {server_ns} ({exc}): a check that the client cannot"
            " connect needs a server that is listening"
        ) from exc
    try:
        if _family(address) == socket.AF_INET6:
            wait_for_dad(client)
        sender = _client(where=client, address=address, timeout=timeout)
    except BaseException:
        listener.close()
        raise
    try:
        _echo(listener, sender, address=address, port=port, timeout=timeout)
    except OSError:
        return False
    return True
