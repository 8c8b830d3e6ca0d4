"""Health checks of catalog instances: one probe (`probe`) and the monitor that runs every instance's
check on its interval (`HealthMonitor`).

A probe runs from inside a namespace on the instance's network, so it sees what a client there sees:
its socket is made in that namespace (`netns_run`: a socket stays in the namespace it was made in,
about 0.1 ms a socket measured) and then driven by asyncio on the caller's loop. Three kinds, as in
Consul: a TCP connect, an HTTP GET whose status decides (in `CheckSpec.status`: passing; another
below 500: warning; 500 and above or no answer: critical) and a DNS query of type A to the instance
(answers: passing; NXDOMAIN or none: warning; no reply, SERVFAIL, REFUSED: critical).

The monitor keeps one `Health` per instance: critical "not checked yet" until the first result, then
passing only after `rise` passes in a row and critical only after `fall` failures in a row; a warning
and a gone namespace apply at once. An instance without a check serves while its namespace exists.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from netcore.errors import Busy, NetcoreError
from netcore.ipam import IPAddress
from netcore.netns import netns_path, netns_run
from netcore.services.catalog import Catalog, CheckSpec, Health, InstanceSpec

log = logging.getLogger(__name__)

PASSING, WARNING, CRITICAL = "passing", "warning", "critical"
#: How much of an HTTP answer's body goes into the output.
BODY_LIMIT = 1024
#: How often an instance without a check has its namespace looked at (seconds).
NETNS_POLL = 1.0
_HEAD_LIMIT = 16384
_STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})(?: ([^\r\n]*))?\r?$")


@dataclass(frozen=True)
class Probe:
    """One check's result: `status` (passing, warning, critical), what it said, and how long the
    answer took in ms (None when there was none)."""

    status: str
    output: str
    rtt: float | None = None


def netns_file(name: str) -> str:
    """The file of a namespace given by name (under /run/netns; catalog_parse checks it is a name)."""
    return netns_path(name)


def _hostport(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _reason(exc: OSError) -> str:
    """ "connection refused", "no route to host", ... from the kernel's errno."""
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "timed out"
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _socket(source: str | None, family: int, kind: int) -> socket.socket:
    """A non-blocking socket made in the namespace file `source` (None: this thread's)."""

    def make() -> socket.socket:
        sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    return make() if source is None else netns_run(path=source, fn=make)


async def probe(
    check: CheckSpec, *, address: IPAddress, port: int, source: str | None, service_name: str
) -> Probe:
    """Run `check` once against address:port from the namespace file `source` (None: the caller's),
    within `check.timeout`. Never raises for what the network does: that is the result."""
    address = ipaddress.ip_address(address)
    where = _hostport(address, port)
    if check.kind == "tcp":
        what = f"TCP connect to {where}"
    elif check.kind == "http":
        what = f"HTTP GET http://{where}{check.path}"
    elif check.kind == "dns":
        try:
            qname = dns.name.from_text(check.query or service_name)
        except dns.exception.DNSException as exc:
            return Probe(CRITICAL, f"DNS query {check.query or service_name!r}: not a domain name ({exc})")
        what = f"DNS query {qname.to_text(omit_final_dot=True)} A to {where}"
    else:
        return Probe(CRITICAL, f"unknown check kind {check.kind!r}")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        kind = socket.SOCK_DGRAM if check.kind == "dns" else socket.SOCK_STREAM
        # in a namespace, the socket is made by netcore's namespace worker, which an apply may keep
        # busy: waited for off the event loop
        sock = (
            _socket(None, family, kind)
            if source is None
            else await asyncio.to_thread(_socket, source, family, kind)
        )
    except FileNotFoundError:
        return Probe(CRITICAL, f"{what}: namespace {source} (the check's source) is gone")
    except (OSError, NetcoreError) as exc:
        return Probe(CRITICAL, f"{what}: cannot make a socket in namespace {source}: {exc}")
    with sock:
        if check.kind == "tcp":
            return await _tcp(sock, check, (str(address), port), what)
        if check.kind == "http":
            return await _http(sock, check, (str(address), port), what, where)
        return await _dns(sock, check, (str(address), port), what, qname)


def _timed_out(check: CheckSpec) -> str:
    return f"timed out after {check.timeout:g} s"


async def _tcp(sock: socket.socket, check: CheckSpec, peer: tuple[str, int], what: str) -> Probe:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            await loop.sock_connect(sock, peer)
    except TimeoutError:
        return Probe(CRITICAL, f"{what}: {_timed_out(check)}")
    except OSError as exc:
        return Probe(CRITICAL, f"{what}: {_reason(exc)}")
    rtt = _ms(start)
    return Probe(PASSING, f"{what}: ok in {rtt:.1f} ms", rtt)


def _http_status(check: CheckSpec, head: bytes, body: bytes, what: str, rtt: float | None) -> Probe | None:
    """The result of an answer whose status line is `head`'s first line; None if it has none."""
    line = head.split(b"\n", 1)[0]
    match = _STATUS_LINE.match(line)
    if match is None:
        return None
    code = int(match.group(1))
    reason = (match.group(2) or b"").decode("latin-1").strip()
    text = " ".join(body.decode("utf-8", errors="replace").split())
    output = f"{what}: {code}{' ' + reason if reason else ''}{' Output: ' + text if text else ''}"
    low, high = check.status
    if low <= code <= high:
        return Probe(PASSING, output, rtt)
    return Probe(WARNING if code < 500 else CRITICAL, output, rtt)


def _dechunk(body: bytes) -> bytes:
    """What a chunked body received so far says (as much as there is)."""
    out = bytearray()
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


async def _http(sock: socket.socket, check: CheckSpec, peer: tuple[str, int], what: str, where: str) -> Probe:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {check.path} HTTP/1.1\r\nHost: {where}\r\nUser-Agent: Switchboard-health\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    data = bytearray()
    start = time.perf_counter()
    rtt: float | None = None
    head_end = -1
    timed_out = False
    try:
        async with asyncio.timeout(check.timeout):
            await loop.sock_connect(sock, peer)
            await loop.sock_sendall(sock, request)
            while True:
                chunk = await loop.sock_recv(sock, 4096)
                if not chunk:
                    break
                if rtt is None:
                    rtt = _ms(start)
                data += chunk
                if head_end < 0:
                    head_end = data.find(b"\r\n\r\n")
                if head_end >= 0 and len(data) - head_end - 4 >= BODY_LIMIT:
                    break
                if head_end < 0 and len(data) > _HEAD_LIMIT:
                    break
    except TimeoutError:
        timed_out = True
    except OSError as exc:
        if not data:
            return Probe(CRITICAL, f"{what}: {_reason(exc)}")
    if head_end >= 0:
        head, body = bytes(data[:head_end]), bytes(data[head_end + 4 :])
        if re.search(rb"(?im)^transfer-encoding:.*chunked", head):
            body = _dechunk(body)
    else:
        head, body = bytes(data), b""
    if b"\n" in head or (data and not timed_out):
        result = _http_status(check, head, body[:BODY_LIMIT], what, rtt)
        if result is not None:
            return result
        shown = bytes(data[:60]).decode("latin-1").split("\r\n", 1)[0]
        return Probe(CRITICAL, f"{what}: not an HTTP answer: {shown!r}", rtt)
    if timed_out:
        return Probe(CRITICAL, f"{what}: {_timed_out(check)}")
    return Probe(CRITICAL, f"{what}: connection closed without an answer", rtt)


async def _dns(
    sock: socket.socket, check: CheckSpec, peer: tuple[str, int], what: str, qname: dns.name.Name
) -> Probe:
    loop = asyncio.get_running_loop()
    query = dns.message.make_query(qname, dns.rdatatype.A)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout):
            await loop.sock_connect(sock, peer)
            await loop.sock_sendall(sock, query.to_wire())
            while True:  # a stray datagram (an old answer) is not the answer
                wire = await loop.sock_recv(sock, 65535)
                try:
                    answer = dns.message.from_wire(wire)
                except dns.exception.DNSException as exc:
                    return Probe(CRITICAL, f"{what}: malformed answer ({exc})", _ms(start))
                if query.is_response(answer):
                    break
    except TimeoutError:
        return Probe(CRITICAL, f"{what}: {_timed_out(check)}")
    except OSError as exc:
        return Probe(CRITICAL, f"{what}: {_reason(exc)}")
    rtt = _ms(start)
    rcode = answer.rcode()
    name = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.NOERROR:
        records = [rd.to_text() for rrset in answer.answer for rd in rrset]
        if records:
            return Probe(PASSING, f"{what}: NOERROR, {', '.join(records[:8])}", rtt)
        return Probe(WARNING, f"{what}: NOERROR, no answer", rtt)
    if rcode == dns.rcode.NXDOMAIN:
        return Probe(WARNING, f"{what}: NXDOMAIN", rtt)
    return Probe(CRITICAL, f"{what}: {name}", rtt)


# -- the monitor --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Entry:
    network: str
    service: str
    instance: InstanceSpec
    check: CheckSpec | None
    passes: int = 0
    failures: int = 0
    results: int = 0
    task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.network}|{self.service}|{self.instance.id}"

    def same(self, other: _Entry) -> bool:
        """Whether `other` is this instance's check unchanged (its state and schedule carry over)."""
        return (self.instance.address, self.instance.port, self.check) == (
            other.instance.address,
            other.instance.port,
            other.check,
        )

    def gone(self) -> str | None:
        """The instance's namespace, if it has one and it no longer exists."""
        netns = self.instance.netns
        if netns is not None and not os.path.exists(netns_file(netns)):
            return netns
        return None


class HealthMonitor:
    """Runs every catalog instance's check on its interval (one asyncio task per checked instance,
    one for the namespaces of those without) and keeps the health map, handing the whole map to
    `on_change` in the loop after any Health changes (results arriving in one loop turn: one call).

    Every check result is a change (`checked` moves). An instance without a check changes only when
    its namespace comes or goes (looked at every NETNS_POLL seconds): `checked` is when that was seen."""

    def __init__(self, *, on_change: Callable[[dict[str, Health]], None]) -> None:
        self._on_change = on_change
        self._entries: dict[str, _Entry] = {}
        self._states: dict[str, Health] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task | None = None
        self._dirty = False
        self._notify_pending = False

    def states(self) -> dict[str, Health]:
        """The current health of every instance, by key ("network|service|instance")."""
        return dict(self._states)

    def set(self, catalog: Catalog) -> None:
        """Check what `catalog` lists: unchanged instances keep their state and schedule, new ones
        are checked at once (with a little jitter), removed ones leave the map. Call it in the loop
        that runs `run` (or before)."""
        wanted: dict[str, _Entry] = {}
        for network in catalog.networks:
            for service in network.services:
                for instance in service.instances:
                    entry = _Entry(network.name, service.name, instance, service.check)
                    wanted[entry.key] = entry
        now = time.time()
        entries: dict[str, _Entry] = {}
        states: dict[str, Health] = {}
        for key, new in wanted.items():
            old = self._entries.get(key)
            if old is not None and old.same(new):
                old.instance = new.instance  # weight and netns may change without a new schedule
                entries[key] = old
                states[key] = self._states[key]
                if old.check is None:
                    fresh = self._unchecked_health(old, now)
                    if (fresh.status, fresh.output) != (states[key].status, states[key].output):
                        states[key] = fresh
                continue
            if old is not None:
                self._stop(old)
            entries[key] = new
            if new.check is None:
                states[key] = self._unchecked_health(new, now)
            else:
                states[key] = Health(
                    network=new.network,
                    service=new.service,
                    instance=new.instance.id,
                    status=CRITICAL,
                    output="not checked yet",
                    checked=now,
                    since=now,
                )
            self._start(new)
        for key, old in self._entries.items():
            if key not in entries:
                self._stop(old)
        changed = states != self._states or list(states) != list(self._states)
        self._entries, self._states = entries, states
        if changed:
            self._changed()

    async def run(self) -> None:
        """Run the checks until cancelled."""
        if self._loop is not None:
            raise Busy("the health monitor is already running", obj="health monitor")
        self._loop = asyncio.get_running_loop()
        try:
            for entry in self._entries.values():
                self._start(entry)
            self._watcher = self._loop.create_task(self._watch_namespaces(), name="health-netns")
            if self._dirty:
                self._changed()
            await asyncio.Future()
        finally:
            tasks = [e.task for e in self._entries.values() if e.task is not None]
            if self._watcher is not None:
                tasks.append(self._watcher)
            for entry in self._entries.values():
                entry.task = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._watcher = None
            self._loop = None

    # -- scheduling

    def _start(self, entry: _Entry) -> None:
        if self._loop is None or entry.check is None or entry.task is not None:
            return
        entry.task = self._loop.create_task(self._run_check(entry), name=f"health {entry.key}")

    def _stop(self, entry: _Entry) -> None:
        if entry.task is not None:
            entry.task.cancel()
            entry.task = None

    async def _run_check(self, entry: _Entry) -> None:
        check = entry.check
        assert check is not None
        loop = asyncio.get_running_loop()
        await asyncio.sleep(random.uniform(0, min(check.interval, 1.0) / 10))
        due = loop.time()
        while True:
            gone = entry.gone()
            if gone is not None:
                result = Probe(CRITICAL, f"namespace {gone} is gone")
            else:
                try:
                    result = await probe(
                        check,
                        address=entry.instance.address,
                        port=entry.instance.port,
                        source=netns_file(check.source) if check.source else None,
                        service_name=entry.service,
                    )
                except Exception as exc:  # a bug in a probe must not end the instance's checks
                    log.exception("health check of %s failed", entry.key)
                    result = Probe(CRITICAL, f"the check failed: {exc}")
            self._record(entry, result, final=gone is not None)
            due = max(due + check.interval, loop.time())
            await asyncio.sleep(due - loop.time())

    async def _watch_namespaces(self) -> None:
        while True:
            await asyncio.sleep(NETNS_POLL)
            now = time.time()
            for key, entry in self._entries.items():
                if entry.check is not None:
                    continue
                state = self._unchecked_health(entry, now)
                if state.status != self._states[key].status or state.output != self._states[key].output:
                    self._states[key] = state
                    self._changed()

    # -- states

    def _unchecked_health(self, entry: _Entry, now: float) -> Health:
        gone = entry.gone()
        return Health(
            network=entry.network,
            service=entry.service,
            instance=entry.instance.id,
            status=CRITICAL if gone else PASSING,
            output=f"namespace {gone} is gone" if gone else "no check: serving while its namespace exists",
            checked=now,
            since=now,
        )

    def _record(self, entry: _Entry, result: Probe, *, final: bool = False) -> None:
        """Apply one result with the check's rise and fall (`final`: at once, whatever they say)."""
        check = entry.check
        assert check is not None
        current = self._states.get(entry.key)
        if current is None or self._entries.get(entry.key) is not entry:
            return  # removed or replaced while the probe ran
        first = entry.results == 0
        entry.results += 1
        status, output = result.status, result.output
        if result.status == PASSING:
            entry.passes, entry.failures = entry.passes + 1, 0
            if not (first or current.status == PASSING or entry.passes >= check.rise):
                status = current.status
                output += f" ({entry.passes} of {check.rise} passes before passing)"
        elif result.status == CRITICAL:
            entry.passes, entry.failures = 0, entry.failures + 1
            if not (first or final or current.status == CRITICAL or entry.failures >= check.fall):
                status = current.status
                output += f" ({entry.failures} of {check.fall} failures before critical)"
        else:
            entry.passes = entry.failures = 0
        now = time.time()
        self._states[entry.key] = Health(
            network=entry.network,
            service=entry.service,
            instance=entry.instance.id,
            status=status,
            output=output,
            checked=now,
            since=current.since if status == current.status else now,
            rtt=result.rtt,
        )
        self._changed()

    def _changed(self) -> None:
        """Hand the map to on_change once this loop turn is over (or when run starts)."""
        if self._loop is None:
            self._dirty = True
            return
        self._dirty = False
        if not self._notify_pending:
            self._notify_pending = True
            self._loop.call_soon(self._notify)

    def _notify(self) -> None:
        self._notify_pending = False
        self._on_change(dict(self._states))


__all__ = ["BODY_LIMIT", "HealthMonitor", "Probe", "netns_file", "probe"]
