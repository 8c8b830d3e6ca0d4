"""Health checks against real servers: a bridge with its gateway in the test's host namespace, an
instance namespace on it running a TCP listener, an HTTP server or dnsmasq, and a client namespace on
the same bridge to check from. The probes and the monitor run on an asyncio loop in this thread (the
host namespace), as the agent's do.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from netcore.ipam import IPAddress
from netcore.netns import netns_path
from netcore.services.catalog import Catalog, CheckSpec, Health, InstanceSpec, NetworkCatalog, ServiceSpec
from netcore.services.health import HealthMonitor, Probe, probe
from tests.conftest import RUN, HostNs

_names = itertools.count(1)
BRIDGE = f"sb{RUN}b0"
GATEWAY = "198.18.1.1"
INSTANCE = ipaddress.ip_address("198.18.1.10")
CLIENT = "198.18.1.20"
NOBODY = ipaddress.ip_address("198.18.1.99")  # on the subnet, no host has it
INSTANCE6 = ipaddress.ip_address("fd00:1::10")
DNSMASQ = "/usr/sbin/dnsmasq"

# mode address port: "tcp" accepts and closes; "http" answers GET /status/<code> with that code and
# anything else with 200 unless it is /missing (404), the body naming the path and Host header seen;
# "garbage" answers something that is not HTTP; "close" reads the request and closes.
SERVER = r"""
import socket, sys, threading
mode, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}

def handle(conn):
    with conn:
        if mode == "tcp":
            return
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        if mode == "garbage":
            conn.sendall(b"hello there\r\n")
            return
        if mode == "close":
            return
        lines = data.decode().split("\r\n")
        path = lines[0].split()[1]
        host = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("host:")), "")
        code = 404 if path == "/missing" else 200
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
        body = f"path={path} host={host}".encode()
        conn.sendall(
            f"HTTP/1.1 {code} {REASONS.get(code, 'Other')}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode() + body
        )

s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((address, port))
s.listen(64)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""


@dataclass
class Lab:
    """The bridge, an instance namespace (INSTANCE) and a client namespace (CLIENT) on it."""

    host: HostNs
    instance_ns: str
    client_ns: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def serve(self, mode: str, port: int, address: IPAddress = INSTANCE) -> subprocess.Popen:
        """A server process in the instance namespace, listening once this returns."""
        argv = ["nsenter", f"--net={netns_path(self.instance_ns)}", sys.executable, "-c", SERVER]
        proc = subprocess.Popen([*argv, mode, str(address), str(port)], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", f"the {mode} server on port {port} did not start"
        return proc

    def dnsmasq(self, port: int) -> subprocess.Popen:
        """dnsmasq in the instance namespace: x.test is 198.18.0.9, nx.test does not exist, anything
        else is refused (no upstream)."""
        argv = [
            "nsenter",
            f"--net={netns_path(self.instance_ns)}",
            DNSMASQ,
            "--no-resolv",
            "--no-hosts",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--user=root",
            "--log-facility=-",
            "--address=/x.test/198.18.0.9",
            "--address=/nx.test/",
            f"--listen-address={INSTANCE}",
            "--bind-interfaces",
            f"--port={port}",
        ]
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stderr is not None
        for line in proc.stderr:  # it binds before it says it started
            if "started" in line:
                break
        else:
            pytest.fail(f"dnsmasq did not start (exit {proc.wait()})")
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        proc.kill()
        proc.wait()


def _veth_into(host: HostNs, *, netns: str, index: int, address: str, address6: str) -> None:
    outside, inside = f"sb{RUN}v{index}", f"sb{RUN}p{index}"
    host.run(
        f"ip link add {outside} type veth peer name {inside} && ip link set {inside} netns {netns}"
        f" && ip link set {outside} master {BRIDGE} up"
        f" && ip -n {netns} link set {inside} name eth0 && ip -n {netns} addr add {address}/24 dev eth0"
        f" && ip -n {netns} addr add {address6}/64 dev eth0 nodad"
        f" && ip -n {netns} link set eth0 up && ip -n {netns} link set lo up"
    )


@pytest.fixture
def lab(host_ns: HostNs) -> Iterator[Lab]:
    n = next(_names)
    lab = Lab(host=host_ns, instance_ns=f"i{RUN}h{n}", client_ns=f"c{RUN}h{n}")
    try:
        host_ns.run(
            f"ip link set lo up && ip link add {BRIDGE} type bridge && ip addr add {GATEWAY}/24 dev {BRIDGE}"
            f" && ip addr add fd00:1::1/64 dev {BRIDGE} nodad"
            f" && ip link set {BRIDGE} up && ip netns add {lab.instance_ns} && ip netns add {lab.client_ns}"
        )
        _veth_into(host_ns, netns=lab.instance_ns, index=0, address=str(INSTANCE), address6=str(INSTANCE6))
        _veth_into(host_ns, netns=lab.client_ns, index=1, address=CLIENT, address6="fd00:1::20")
        yield lab
    finally:
        for proc in lab.procs:
            if proc.poll() is None:
                lab.stop(proc)
        for name in (lab.instance_ns, lab.client_ns):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def run(
    check: CheckSpec, *, port: int, address=INSTANCE, source: str | None = None, name: str = "web"
) -> Probe:
    return asyncio.run(probe(check, address=address, port=port, source=source, service_name=name))


# -- probe ----------------------------------------------------------------------------------------


def test_tcp_probe_passes_and_fails_with_the_reason(lab: Lab) -> None:
    server = lab.serve("tcp", 8000)
    check = CheckSpec(kind="tcp", interval=1.0, timeout=1.0)

    result = run(check, port=8000)
    assert result.status == "passing"
    assert result.output.startswith("TCP connect to 198.18.1.10:8000: ok in ")
    assert result.output.endswith(" ms")
    assert result.rtt is not None and result.rtt > 0

    lab.stop(server)
    result = run(check, port=8000)
    assert result == Probe("critical", "TCP connect to 198.18.1.10:8000: connection refused", None)


def test_probes_over_ipv6(lab: Lab) -> None:
    lab.serve("http", 8080, address=INSTANCE6)
    tcp = run(CheckSpec(kind="tcp", interval=1.0, timeout=1.0), address=INSTANCE6, port=8080)
    assert tcp.status == "passing"
    assert tcp.output.startswith("TCP connect to [fd00:1::10]:8080: ok in ")
    http = run(CheckSpec(kind="http", interval=1.0, timeout=1.0, path="/v6"), address=INSTANCE6, port=8080)
    assert http == Probe(
        "passing",
        "HTTP GET http://[fd00:1::10]:8080/v6: 200 OK Output: path=/v6 host=[fd00:1::10]:8080",
        http.rtt,
    )
    refused = run(CheckSpec(kind="tcp", interval=1.0, timeout=1.0), address=INSTANCE6, port=8081)
    assert refused == Probe("critical", "TCP connect to [fd00:1::10]:8081: connection refused")


def test_tcp_probe_to_nobody_times_out_within_its_timeout(lab: Lab) -> None:
    check = CheckSpec(kind="tcp", interval=1.0, timeout=0.5)
    start = time.monotonic()
    result = run(check, address=NOBODY, port=8000)
    took = time.monotonic() - start
    assert result == Probe("critical", "TCP connect to 198.18.1.99:8000: timed out after 0.5 s", None)
    assert 0.45 <= took < 1.0, f"the probe took {took:.2f} s with a 0.5 s timeout"


def test_http_probe_status_decides_and_path_is_asked(lab: Lab) -> None:
    lab.serve("http", 8080)

    def get(path: str) -> Probe:
        return run(CheckSpec(kind="http", interval=1.0, timeout=1.0, path=path), port=8080)

    ok = get("/health")
    assert ok.status == "passing"
    assert ok.output == (
        "HTTP GET http://198.18.1.10:8080/health: 200 OK Output: path=/health host=198.18.1.10:8080"
    )
    assert ok.rtt is not None

    slow_down = get("/status/429")
    assert slow_down.status == "warning"
    assert slow_down.output.startswith("HTTP GET http://198.18.1.10:8080/status/429: 429 Too Many Requests")

    missing = get("/missing")
    assert missing.status == "warning"
    assert ": 404 Not Found Output: path=/missing " in missing.output

    broken = get("/status/503")
    assert broken.status == "critical"
    assert ": 503 Service Unavailable Output: path=/status/503 " in broken.output

    # the status range is the check's
    narrow = run(
        CheckSpec(kind="http", interval=1.0, timeout=1.0, path="/status/429", status=(200, 429)), port=8080
    )
    assert narrow.status == "passing"


def test_http_probe_without_an_http_answer_is_critical(lab: Lab) -> None:
    lab.serve("garbage", 8081)
    lab.serve("close", 8082)
    check = CheckSpec(kind="http", interval=1.0, timeout=1.0)

    garbled = run(check, port=8081)
    assert garbled.status == "critical"
    assert garbled.output == "HTTP GET http://198.18.1.10:8081/: not an HTTP answer: 'hello there'"

    closed = run(check, port=8082)
    assert closed == Probe(
        "critical", "HTTP GET http://198.18.1.10:8082/: connection closed without an answer"
    )

    refused = run(check, port=8083)
    assert refused == Probe("critical", "HTTP GET http://198.18.1.10:8083/: connection refused")


@pytest.mark.skipif(not __import__("os").path.exists(DNSMASQ), reason=f"{DNSMASQ} is not installed")
def test_dns_probe_answers_decide(lab: Lab) -> None:
    lab.dnsmasq(5353)

    def ask(query: str, port: int = 5353, name: str = "web") -> Probe:
        return run(CheckSpec(kind="dns", interval=1.0, timeout=0.5, query=query), port=port, name=name)

    found = ask("x.test")
    assert found.status == "passing"
    assert found.output == "DNS query x.test A to 198.18.1.10:5353: NOERROR, 198.18.0.9"
    assert found.rtt is not None

    # no query: the service's name
    assert ask("", name="a.x.test").output == "DNS query a.x.test A to 198.18.1.10:5353: NOERROR, 198.18.0.9"

    missing = ask("nx.test")
    assert (missing.status, missing.output) == (
        "warning",
        "DNS query nx.test A to 198.18.1.10:5353: NXDOMAIN",
    )
    refused = ask("elsewhere.test")
    assert (refused.status, refused.output) == (
        "critical",
        "DNS query elsewhere.test A to 198.18.1.10:5353: REFUSED",
    )

    nothing = ask("x.test", port=5354)
    assert nothing == Probe("critical", "DNS query x.test A to 198.18.1.10:5354: connection refused", None)
    silent = run(CheckSpec(kind="dns", interval=1.0, timeout=0.3, query="x.test"), address=NOBODY, port=53)
    assert silent == Probe("critical", "DNS query x.test A to 198.18.1.99:53: timed out after 0.3 s", None)


def test_probe_runs_from_its_source_namespace(lab: Lab) -> None:
    lab.serve("http", 8080)
    check = CheckSpec(kind="http", interval=1.0, timeout=0.5, path="/health")
    client = netns_path(lab.client_ns)

    from_client = run(check, port=8080, source=client)
    assert from_client.status == "passing"
    assert from_client.output.endswith("host=198.18.1.10:8080")

    lab.host.run(f"ip -n {lab.client_ns} link set eth0 down")
    cut_off = run(check, port=8080, source=client)
    assert cut_off == Probe("critical", "HTTP GET http://198.18.1.10:8080/health: network is unreachable")
    assert run(check, port=8080).status == "passing"  # from the host it still works

    tcp = run(CheckSpec(kind="tcp", interval=1.0, timeout=0.5), port=8080, source=client)
    assert tcp == Probe("critical", "TCP connect to 198.18.1.10:8080: network is unreachable")

    missing = netns_path(f"m{RUN}none")
    gone = run(check, port=8080, source=missing)
    assert gone.status == "critical"
    assert (
        gone.output
        == f"HTTP GET http://198.18.1.10:8080/health: namespace {missing} (the check's source) is gone"
    )


# -- monitor --------------------------------------------------------------------------------------


def catalog(*services: ServiceSpec) -> Catalog:
    network = NetworkCatalog(
        name="lab",
        bridge=BRIDGE,
        gateways=(ipaddress.ip_address(GATEWAY),),
        subnets=(ipaddress.ip_network("198.18.1.0/24"),),
        services=services,
    )
    return Catalog(version=1, networks=(network,))


class Recorder:
    """on_change: every map it was handed, and each instance's distinct results in order."""

    def __init__(self) -> None:
        self.maps: list[dict[str, Health]] = []
        self.results: dict[str, list[Health]] = {}

    def __call__(self, states: dict[str, Health]) -> None:
        self.maps.append(states)
        for key, health in states.items():
            seen = self.results.setdefault(key, [])
            if not seen or seen[-1] != health:
                seen.append(health)


async def until(what: Callable[[], bool], *, timeout: float, say: Callable[[], str]) -> float:
    """Wait for `what` (polling); the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, say()
        await asyncio.sleep(0.01)
    return time.monotonic()


def test_monitor_applies_rise_and_fall(lab: Lab) -> None:
    server = lab.serve("tcp", 8000)
    check = CheckSpec(kind="tcp", interval=0.2, timeout=0.15, rise=2, fall=2)
    web = ServiceSpec(
        name="web", protocol="tcp", port=80, check=check, instances=(InstanceSpec("a", INSTANCE, 8000),)
    )
    key = "lab|web|a"
    seen = Recorder()
    monitor = HealthMonitor(on_change=seen)

    def status() -> str:
        return monitor.states()[key].status

    async def main() -> None:
        monitor.set(catalog(web))
        first = monitor.states()[key]
        assert (first.status, first.output, first.rtt) == ("critical", "not checked yet", None)
        task = asyncio.create_task(monitor.run())
        try:
            await until(
                lambda: status() == "passing", timeout=2, say=lambda: f"never passing: {monitor.states()}"
            )
            since_passing = monitor.states()[key].since
            await asyncio.sleep(0.5)  # more passes: `checked` moves, `since` does not
            assert monitor.states()[key].since == since_passing
            assert monitor.states()[key].checked > since_passing

            lab.stop(server)
            stopped = time.monotonic()
            failed = await until(
                lambda: status() == "critical", timeout=3, say=lambda: f"never critical: {monitor.states()}"
            )
            assert 0.15 <= failed - stopped <= 2 * check.interval + 0.5, (
                f"critical {failed - stopped:.2f} s after"
            )

            lab.serve("tcp", 8000)
            await until(
                lambda: status() == "passing", timeout=3, say=lambda: f"never back: {monitor.states()}"
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())

    history = seen.results[key]
    assert history[0].output == "not checked yet"
    assert all(h.checked < later.checked for h, later in itertools.pairwise(history[1:]))
    refused = "TCP connect to 198.18.1.10:8000: connection refused"
    down = [i for i, h in enumerate(history) if h.output.startswith(refused)]
    # the first failure leaves it passing, the second makes it critical
    assert history[down[0]].status == "passing"
    assert history[down[0]].output == f"{refused} (1 of 2 failures before critical)"
    assert history[down[0]].rtt is None
    assert (history[down[1]].status, history[down[1]].output) == ("critical", refused)
    assert history[down[1]].since == history[down[1]].checked
    # back: the first pass leaves it critical, the second makes it passing
    back = history[down[-1] + 1 :]
    assert back[0].status == "critical"
    assert back[0].output.endswith(" ms (1 of 2 passes before passing)")
    assert back[1].status == "passing"
    assert back[1].since == back[1].checked
    # since moves exactly when the status does
    for before, after in itertools.pairwise(history):
        if before.status == after.status:
            assert after.since == before.since, (before, after)
        else:
            assert after.since == after.checked, (before, after)
    # on_change got the whole map, every time
    assert all(set(m) == {key} for m in seen.maps)


def test_monitor_knows_gone_namespaces_and_instances_without_checks(lab: Lab) -> None:
    lab.serve("tcp", 8000)
    lives = f"g{RUN}h{next(_names)}"
    lab.host.run(f"ip netns add {lives}")
    try:
        check = CheckSpec(kind="tcp", interval=0.2, timeout=0.15, fall=3)
        checked = ServiceSpec(
            name="checked",
            protocol="tcp",
            port=80,
            check=check,
            instances=(InstanceSpec("a", INSTANCE, 8000, netns=lives),),
        )
        unchecked = ServiceSpec(
            name="plain",
            protocol="tcp",
            port=80,
            instances=(
                InstanceSpec("b", INSTANCE, 8000, netns=netns_path(lives)),  # by path
                InstanceSpec("c", INSTANCE, 8000),  # no namespace: always serving
                InstanceSpec("d", INSTANCE, 8000, netns=f"n{RUN}never"),
            ),
        )
        monitor = HealthMonitor(on_change=Recorder())

        def state(key: str) -> tuple[str, str]:
            health = monitor.states()[f"lab|{key}"]
            return health.status, health.output

        serving = ("passing", "no check: serving while its namespace exists")

        async def main() -> None:
            monitor.set(catalog(checked, unchecked))
            assert state("plain|b") == serving
            assert state("plain|c") == serving
            assert state("plain|d") == ("critical", f"namespace n{RUN}never is gone")
            task = asyncio.create_task(monitor.run())
            try:
                await until(lambda: state("checked|a")[0] == "passing", timeout=2, say=monitor.states)
                lab.host.run(f"ip netns del {lives}")
                # at once, not after `fall` (3) checks: a gone namespace is no probe's guess
                await until(
                    lambda: state("checked|a")[0] == "critical",
                    timeout=check.interval + 0.3,
                    say=monitor.states,
                )
                assert state("checked|a") == ("critical", f"namespace {lives} is gone")
                await until(lambda: state("plain|b")[0] == "critical", timeout=1.5, say=monitor.states)
                assert state("plain|b") == ("critical", f"namespace {netns_path(lives)} is gone")
                assert state("plain|c") == serving
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
    finally:
        subprocess.run(["ip", "netns", "del", lives], check=False, capture_output=True)


def test_monitor_set_keeps_unchanged_instances(lab: Lab) -> None:
    lab.serve("tcp", 8000)
    check = CheckSpec(kind="tcp", interval=0.5, timeout=0.3)

    def service(*instances: InstanceSpec) -> ServiceSpec:
        return ServiceSpec(name="web", protocol="tcp", port=80, check=check, instances=instances)

    a, b, c = (InstanceSpec(x, INSTANCE, 8000) for x in "abc")
    seen = Recorder()
    monitor = HealthMonitor(on_change=seen)

    async def main() -> None:
        monitor.set(catalog(service(a, b, c)))
        task = asyncio.create_task(monitor.run())
        try:
            await until(
                lambda: all(h.status == "passing" for h in monitor.states().values()),
                timeout=2,
                say=monitor.states,
            )
            before = monitor.states()
            changed_b = InstanceSpec("b", INSTANCE, 8001)  # nothing listens there
            d = InstanceSpec("d", INSTANCE, 8000)
            monitor.set(catalog(service(a, changed_b, d)))
            after = monitor.states()
            assert list(after) == ["lab|web|a", "lab|web|b", "lab|web|d"]
            assert after["lab|web|a"] is before["lab|web|a"]  # state kept
            assert after["lab|web|b"].output == "not checked yet"
            assert after["lab|web|d"].output == "not checked yet"

            # the new and changed ones are checked at once; a stays on its schedule
            await until(
                lambda: (
                    monitor.states()["lab|web|d"].status == "passing"
                    and monitor.states()["lab|web|b"].output.endswith("connection refused")
                ),
                timeout=0.4,
                say=monitor.states,
            )
            assert monitor.states()["lab|web|a"].checked == before["lab|web|a"].checked or (
                monitor.states()["lab|web|a"].checked - before["lab|web|a"].checked >= check.interval * 0.8
            )
            await asyncio.sleep(check.interval * 2)
            a_results = [h.checked for h in seen.results["lab|web|a"][1:]]
            gaps = [later - earlier for earlier, later in itertools.pairwise(a_results)]
            assert gaps and all(check.interval * 0.8 <= gap <= check.interval * 1.5 for gap in gaps), gaps
            assert monitor.states()["lab|web|a"].since == before["lab|web|a"].since
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert "lab|web|c" not in seen.maps[-1]
    assert set(seen.maps[-1]) == {"lab|web|a", "lab|web|b", "lab|web|d"}
