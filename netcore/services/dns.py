"""DNS for the service catalog: one dnsmasq per managed network, answering on its gateway addresses.

dnsmasq is a real program the agent drives (DESIGN.md), the way libvirt does: each instance reads a
hosts directory (`--hostsdir`) that it re-reads through inotify when a file is renamed into it, so an
address change is a file replace, not a restart. SRV records exist only on dnsmasq's command line
(SIGHUP does not re-read them), so a changed SRV set restarts the process. Only names under the
catalog's domain are answered (`--local`); with no upstream server nothing is forwarded off the
machine, and other names get REFUSED.

Each dnsmasq is a child of the thread that starts it, so it runs in that thread's network namespace
(as `nft` does, see netcore.nft) and gets SIGTERM when that thread ends (PR_SET_PDEATHSIG).

`dns_query` asks one question over UDP (TCP when the answer is truncated), from any namespace: the
health checks, the UI's "check" button and the tests use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from netcore.errors import (
    Conflict,
    InvalidSpec,
    NetcoreError,
    NotFound,
    Unavailable,
    Unsupported,
    from_oserror,
)
from netcore.ipam import IPAddress
from netcore.netns import netns_run
from netcore.services.catalog import DOMAIN, Zone

#: The dnsmasq program: looked up on PATH, then in the sbin directories a non-root PATH may lack.
DNSMASQ = "dnsmasq"
_SBIN = ("/usr/sbin", "/sbin")
_INSTALL_HINT = "install dnsmasq (Debian: apt-get install dnsmasq-base)"
#: How long a starting dnsmasq has to answer, and a stopping one to exit before SIGKILL (seconds).
START_TIMEOUT = 3.0
STOP_TIMEOUT = 2.0
#: dnsmasq's log (its stderr) is emptied when it grows past this many bytes (it logs each re-read).
LOG_LIMIT = 1 << 20
#: Largest UDP answer asked for (EDNS); a larger one comes truncated and is asked again over TCP.
EDNS_PAYLOAD = 1232

#: A DNS name as the catalog makes them: labels of a-z, 0-9, '-' and a leading '_' (SRV names).
_NAME = re.compile(
    r"^(?=.{1,253}\Z)(_?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*_?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"
)
_SOCKET_FOR = re.compile(r"listening socket for (\S+?):")
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def dnsmasq_program() -> str | None:
    """The path of the dnsmasq program, or None when it is not installed."""
    found = shutil.which(DNSMASQ)
    if found is None and os.sep not in DNSMASQ:
        found = shutil.which(DNSMASQ, path=os.pathsep.join(_SBIN))
    return found


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the thread that started it ends (the agent died)."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def _write_atomic(path: str, text: str, *, temp: str) -> None:
    """Write `text` to `temp`, then rename it over `path` (readers see the old file or the new one)."""
    with open(temp, "w") as f:
        f.write(text)
    os.replace(temp, path)


@dataclass(frozen=True)
class DnsAnswer:
    """One DNS answer: its rcode ("NOERROR", "NXDOMAIN", "REFUSED", ...), the answer section's records
    as text ("198.18.1.5"; SRV "0 1 80 a.web.front.sb.internal.") and the round trip in ms."""

    rcode: str
    records: tuple[str, ...]
    rtt: float

    def to_dict(self) -> dict[str, Any]:
        return {"rcode": self.rcode, "records": list(self.records), "rtt": self.rtt}


class DnsServer:
    """One dnsmasq answering one network's zone on its gateway addresses.

    `directory` is the network's own state directory: `hosts/` (the hosts directory dnsmasq
    watches), the temporary file renamed into it, `pid` (for dns_cleanup) and `dnsmasq.log` (its
    stderr). Use it from one long-lived thread: dnsmasq starts in that thread's namespace and dies
    with it.
    """

    def __init__(
        self, *, network: str, listen: Sequence[IPAddress], domain: str, directory: str, port: int = 53
    ) -> None:
        if not listen:
            raise InvalidSpec(f"DNS for network {network}: no gateway address to answer on", obj=network)
        if not DOMAIN.match(domain):
            raise InvalidSpec(f"DNS for network {network}: {domain!r} is not a domain name", obj=network)
        if not 1 <= port <= 65535:
            raise InvalidSpec(
                f"DNS for network {network}: port {port} is not between 1 and 65535", obj=network
            )
        self.network = network
        self.listen: tuple[IPAddress, ...] = tuple(dict.fromkeys(listen))
        self.domain = domain
        self.port = port
        self.directory = os.path.realpath(directory)
        self._hostsdir = os.path.join(self.directory, "hosts")
        self._pidfile = os.path.join(self.directory, "pid")
        self._log = os.path.join(self.directory, "dnsmasq.log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._hosts: str | None = None  # the hosts file last written
        self._argv: list[str] | None = None  # the command line the zone needs; None once stopped

    @property
    def pid(self) -> int | None:
        """The running dnsmasq's pid; None when none runs."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def update(self, zone: Zone) -> None:
        """Serve `zone`: replace the hosts file (dnsmasq re-reads it at once; it handles a change
        before the queries that follow it), and (re)start dnsmasq if it is not running or the SRV
        records changed. Returns once dnsmasq answers; InvalidSpec (nothing touched) for a zone with
        a name outside the domain or a bad address."""
        hosts = self._hosts_file(zone)
        argv = self._command(zone)
        os.makedirs(self._hostsdir, exist_ok=True)
        if hosts != self._hosts or not os.path.exists(os.path.join(self._hostsdir, "catalog")):
            self._write_hosts(hosts)
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(self._log) > LOG_LIMIT:
                os.truncate(self._log, 0)
        if argv != self._argv or self.pid is None:
            self._terminate()
            self._argv = argv
            self._start()

    def ensure_running(self) -> bool:
        """Start dnsmasq again, with the last zone, if it exited (or its last start failed); True if
        it had to. The agent calls this periodically: this is the supervision."""
        if self._argv is None or self.pid is not None:
            return False
        self._terminate()  # reap it, drop its pid file
        os.makedirs(self._hostsdir, exist_ok=True)
        if self._hosts is not None:
            self._write_hosts(self._hosts)
        self._start()
        return True

    def stop(self) -> None:
        """Stop dnsmasq (SIGTERM, SIGKILL after STOP_TIMEOUT) and remove the directory. Idempotent."""
        self._terminate()
        self._argv = None
        self._hosts = None
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.directory)

    # -- internals ------------------------------------------------------------------------------

    def _check_name(self, name: str, what: str) -> None:
        if not _NAME.match(name) or not (name == self.domain or name.endswith(f".{self.domain}")):
            raise InvalidSpec(
                f"DNS for network {self.network}: {what} {name!r} is not a DNS name under {self.domain}",
                obj=self.network,
            )

    def _hosts_file(self, zone: Zone) -> str:
        lines = ["# written by switchboard (netcore.services.dns): do not edit\n"]
        for address, names in zone.hosts:
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                raise InvalidSpec(
                    f"DNS for network {self.network}: {address!r} is not an IP address", obj=self.network
                ) from None
            for name in names:
                self._check_name(name, "host name")
            if names:
                lines.append(f"{parsed} {' '.join(names)}\n")
        return "".join(lines)

    def _command(self, zone: Zone) -> list[str]:
        srv = []
        for record in zone.srv:
            self._check_name(record.name, "SRV name")
            self._check_name(record.target, "SRV target")
            for field, value in (
                ("port", record.port),
                ("priority", record.priority),
                ("weight", record.weight),
            ):
                if not 0 <= value <= 65535:
                    raise InvalidSpec(
                        f"DNS for network {self.network}: SRV {record.name} {field} {value} is not between"
                        " 0 and 65535",
                        obj=self.network,
                    )
            srv.append(
                f"--srv-host={record.name},{record.target},{record.port},{record.priority},{record.weight}"
            )
        program = dnsmasq_program()
        if program is None:
            raise Unsupported(
                f"DNS for network {self.network}: the dnsmasq program is not installed; {_INSTALL_HINT}",
                obj=self.network,
            )
        return [
            program,
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # nothing from /etc/dnsmasq.conf
            "--no-resolv",  # no upstream: nothing is forwarded
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            *(f"--listen-address={address}" for address in self.listen),
            f"--port={self.port}",
            f"--hostsdir={self._hostsdir}",
            f"--local=/{self.domain}/",  # unknown names in the domain: NXDOMAIN
            *srv,
            "--pid-file=",
            # stay root: a change of user or group would clear PR_SET_PDEATHSIG
            "--user=root",
            "--group=root",
            "--log-facility=-",  # to stderr, which is dnsmasq.log
        ]

    def _write_hosts(self, hosts: str) -> None:
        # the temporary file lives outside the hosts directory: dnsmasq would read it there too
        target = os.path.join(self._hostsdir, "catalog")
        _write_atomic(target, hosts, temp=os.path.join(self.directory, "catalog.new"))
        self._hosts = hosts

    def _start(self) -> None:
        assert self._argv is not None, "update() sets the command line first"
        log = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"},  # its messages are read back
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise Unsupported(
                f"DNS for network {self.network}: cannot run {self._argv[0]} ({exc.strerror});"
                f" {_INSTALL_HINT}",
                obj=self.network,
            ) from None
        finally:
            os.close(log)
        try:
            _write_atomic(self._pidfile, f"{self._proc.pid}\n", temp=f"{self._pidfile}.new")
            self._wait_ready(self._proc)
        except BaseException:
            self._terminate()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Until dnsmasq answers on the first listen address; its own error if it exits first."""
        probe = dns.message.make_query("version.bind", dns.rdatatype.TXT, dns.rdataclass.CH)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise self._start_error(proc.returncode)
            try:
                _exchange(probe, server=self.listen[0], port=self.port, timeout=0.2, netns=None)
            except NetcoreError as exc:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"DNS for network {self.network}: dnsmasq did not answer on {self.listen[0]} port"
                        f" {self.port} within {START_TIMEOUT:g} s ({exc}; it is asked from this host, through"
                        f" its loopback interface, which must be up; dnsmasq's log: {self._log})",
                        obj=self.network,
                    ) from None
                time.sleep(0.002)  # refused: not listening yet
                continue
            if proc.poll() is None:
                return

    def _start_error(self, status: int) -> NetcoreError:
        """dnsmasq's own words on why it exited at start, as the matching NetcoreError."""
        try:
            with open(self._log, errors="replace") as f:
                lines = [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            lines = []
        said = [line for line in lines if line.startswith("dnsmasq:") and "FAILED to start up" not in line]
        text = "; ".join(said or lines[-1:]) or f"exit status {status}, nothing logged"
        found = _SOCKET_FOR.search(text)
        where = found.group(1) if found else ", ".join(str(a) for a in self.listen)
        if "in use" in text:
            return Conflict(
                f"DNS for network {self.network}: {where} port {self.port} is taken by another program"
                f" ({text}); stop it or answer on another port",
                obj=self.network,
            )
        if "Cannot assign requested address" in text:
            return NotFound(
                f"DNS for network {self.network}: {where} is not an address of this host ({text}); add it to"
                " the network's bridge first",
                obj=self.network,
            )
        return NetcoreError(
            f"DNS for network {self.network}: dnsmasq exited at start ({text})", obj=self.network
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pidfile)


def _gone(pid: int) -> bool:
    """True once a process has exited (a zombie counts: it answers nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def _is_our_dnsmasq(pid: int, hostsdir: str) -> bool:
    """Whether `pid` is a dnsmasq serving `hostsdir` (not another program that reused the pid)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [arg.decode(errors="replace") for arg in f.read().split(b"\0")]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return os.path.basename(argv[0]) == DNSMASQ and f"--hostsdir={hostsdir}" in argv


def _kill(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.01)


def dns_cleanup(directory: str) -> list[int]:
    """Stop the dnsmasq processes a previous agent left under the state root `directory` (one
    network directory each, as DnsServer makes them) and remove their directories; the pids killed.
    A pid is killed only if it still is dnsmasq serving that directory."""
    root = os.path.realpath(directory)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    killed = []
    for entry in entries:
        pidfile = os.path.join(entry.path, "pid")
        hostsdir = os.path.join(entry.path, "hosts")
        if not entry.is_dir(follow_symlinks=False) or not (
            os.path.exists(pidfile) or os.path.isdir(hostsdir)
        ):
            continue  # not a DnsServer directory
        try:
            with open(pidfile) as f:
                pid: int | None = int(f.read().strip())
        except (FileNotFoundError, ValueError):
            pid = None
        if pid is not None and _is_our_dnsmasq(pid, hostsdir):
            _kill(pid)
            killed.append(pid)
        shutil.rmtree(entry.path)
    return killed


# -- queries ------------------------------------------------------------------------------------


def _socket(family: socket.AddressFamily, kind: socket.SocketKind, netns: str | None) -> socket.socket:
    """A socket made inside the namespace file `netns` (None: the caller's); it stays there."""

    def make() -> socket.socket:
        return socket.socket(family, kind | socket.SOCK_CLOEXEC)

    try:
        return make() if netns is None else netns_run(path=netns, fn=make)
    except OSError as exc:
        raise from_oserror(exc, obj=netns or "host", action="open a DNS socket in namespace") from None


def _exchange(
    query: dns.message.Message, *, server: IPAddress, port: int, timeout: float, netns: str | None
) -> tuple[dns.message.Message, float]:
    """Send `query` to server:port and return the answer with its round trip (ms)."""
    family = socket.AF_INET6 if server.version == 6 else socket.AF_INET
    where = str(server)
    question = query.question[0]
    what = f"{question.name.to_text(omit_final_dot=True)} {dns.rdatatype.to_text(question.rdtype)}"
    start = time.perf_counter()
    try:
        with _socket(family, socket.SOCK_DGRAM, netns) as sock:
            sock.setblocking(False)
            sock.connect((where, port))  # connected: a closed port is refused at once, not timed out
            answer = dns.query.udp(query, where, timeout=timeout, port=port, sock=sock)
        if answer.flags & dns.flags.TC:
            left = max(timeout - (time.perf_counter() - start), 0.001)
            with _socket(family, socket.SOCK_STREAM, netns) as sock:
                sock.settimeout(left)
                sock.connect((where, port))
                sock.setblocking(False)
                answer = dns.query.tcp(query, where, timeout=left, port=port, sock=sock)
    except (dns.exception.Timeout, TimeoutError):
        raise Unavailable(
            f"DNS server {where} port {port} did not answer {what} within {timeout:g} s", obj=where
        ) from None
    except ConnectionRefusedError:
        raise Unavailable(
            f"DNS server {where} port {port} refused {what}: nothing listens there", obj=where
        ) from None
    except (OSError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "connection closed"
        raise Unavailable(f"DNS server {where} port {port}: cannot ask {what}: {reason}", obj=where) from None
    except dns.exception.DNSException as exc:
        raise NetcoreError(
            f"DNS server {where} port {port} answered {what} with a bad message: {exc}", obj=where
        ) from None
    return answer, (time.perf_counter() - start) * 1000


def dns_query(
    *,
    server: IPAddress,
    name: str,
    rdtype: str = "A",
    port: int = 53,
    timeout: float = 2.0,
    netns: str | None = None,
) -> DnsAnswer:
    """Ask `server` for `name`/`rdtype` over UDP (TCP if the answer is truncated), from the namespace
    file `netns` (None: the caller's). Unavailable when the server does not answer or refuses."""
    if not 1 <= port <= 65535:
        raise InvalidSpec(f"DNS query to {server}: port {port} is not between 1 and 65535", obj=str(server))
    if not timeout > 0:
        raise InvalidSpec(f"DNS query to {server}: timeout {timeout:g} s is not positive", obj=str(server))
    try:
        query = dns.message.make_query(
            dns.name.from_text(name),
            dns.rdatatype.from_text(rdtype.upper()),
            use_edns=0,
            payload=EDNS_PAYLOAD,
        )
    except dns.exception.DNSException as exc:
        raise InvalidSpec(f"DNS query {name!r} {rdtype!r}: {exc}", obj=name) from None
    answer, rtt = _exchange(query, server=server, port=port, timeout=timeout, netns=netns)
    records = tuple(rdata.to_text() for rrset in answer.answer for rdata in rrset)
    return DnsAnswer(rcode=dns.rcode.to_text(answer.rcode()), records=records, rtt=rtt)
