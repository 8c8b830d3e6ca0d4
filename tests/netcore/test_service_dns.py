"""netcore.services.dns: a real dnsmasq per network, answering the catalog's zone on the gateway of a
bridge in the test's throwaway namespace; every question is asked from a client namespace on that
bridge, over a veth, as a container would."""

from __future__ import annotations

import ipaddress
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netcore.errors import Conflict, InvalidSpec, NetcoreError, NotFound, Unavailable
from netcore.services.catalog import Health, Srv, Zone, catalog_parse, zone_of
from netcore.services.dns import DnsAnswer, DnsServer, dns_cleanup, dns_query
from tests.conftest import RUN, HostNs

DOMAIN = "sb.internal"
GW4 = ipaddress.ip_address("198.18.60.1")
GW6 = ipaddress.ip_address("fd00:60::1")
_numbers = itertools.count(1)


@dataclass
class Lan:
    """A bridge with the gateway addresses in the test's namespace, and a client namespace on it."""

    bridge: str
    client: str  # the client namespace's file

    def ask(self, name: str, rdtype: str = "A", server: Any = GW4, **kwargs: Any) -> DnsAnswer:
        """dns_query from the client namespace."""
        return dns_query(server=server, name=name, rdtype=rdtype, netns=self.client, **kwargs)


@pytest.fixture
def lan(host_ns: HostNs) -> Iterator[Lan]:
    n = next(_numbers)
    bridge, host_end, client_end, client = f"sb{RUN}b{n}", f"sb{RUN}v{n}", f"sb{RUN}w{n}", f"t{RUN}c{n}"
    host_ns.run(["ip", "netns", "add", client])
    try:
        host_ns.run(
            "ip link set lo up"  # dnsmasq is asked whether it is ready through it, as on any host
            f" && ip link add {bridge} type bridge && ip link set {bridge} up"
            f" && ip addr add {GW4}/24 dev {bridge} && ip -6 addr add {GW6}/64 dev {bridge} nodad"
            f" && ip link add {host_end} type veth peer name {client_end}"
            f" && ip link set {host_end} master {bridge} up && ip link set {client_end} netns {client}"
            f" && ip -n {client} addr add 198.18.60.10/24 dev {client_end}"
            f" && ip -n {client} -6 addr add fd00:60::10/64 dev {client_end} nodad"
            f" && ip -n {client} link set {client_end} up && ip -n {client} link set lo up"
        )
        yield Lan(bridge=bridge, client=f"/run/netns/{client}")
    finally:
        host_ns.run(["ip", "netns", "del", client], check=False)


def dnsmasq_under(path: Path) -> list[int]:
    """Pids of live dnsmasq processes whose command line mentions `path`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"dnsmasq" and str(path).encode() in b" ".join(argv):
            found.append(int(pid))
    return found


def exited(pid: int) -> bool:
    """True once a process has exited and closed its sockets: gone, or a zombie (a process on its way
    out has no command line any more but may still hold them)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.fixture(autouse=True)
def no_dnsmasq_left(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves a dnsmasq behind (and kill it, so the next test starts clean)."""
    yield
    left = dnsmasq_under(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"the test left dnsmasq processes behind: {left}"


def web(**instances: tuple[str, int]) -> list[dict]:
    """Instances of the web service: id → (address, port)."""
    return [
        {"id": i, "address": a, "port": p, "weight": 2 if i == "b" else 1} for i, (a, p) in instances.items()
    ]


def zone(lan: Lan, instances: list[dict], passing: list[str]) -> Zone:
    """The front network's zone, through the real catalog path: the instances `passing` serve."""
    catalog = catalog_parse(
        {
            "version": 1,
            "domain": DOMAIN,
            "networks": [
                {
                    "name": "front",
                    "bridge": lan.bridge,
                    "gateways": [str(GW4), str(GW6)],
                    "subnets": ["198.18.60.0/24", "fd00:60::/64"],
                    "nodes": [{"name": "n1", "addresses": ["198.18.60.10", "fd00:60::10"]}],
                    "services": [{"name": "web", "protocol": "tcp", "port": 80, "instances": instances}],
                }
            ],
        }
    )
    health = {
        f"front|web|{i['id']}": Health(
            network="front",
            service="web",
            instance=i["id"],
            status="passing" if i["id"] in passing else "critical",
            output="",
            checked=0.0,
            since=0.0,
        )
        for i in instances
    }
    return zone_of(catalog.networks[0], catalog.domain, health)


def server(tmp_path: Path, *, listen: tuple = (GW4, GW6), port: int = 53) -> DnsServer:
    return DnsServer(
        network="front", listen=listen, domain=DOMAIN, directory=str(tmp_path / "dns" / "front"), port=port
    )


THREE = web(
    a=("198.18.60.21", 8080), b=("198.18.60.22", 8081), c=("fd00:60::23", 8082), d=("198.18.60.24", 8083)
)


def test_answers_the_zone_and_nothing_else(lan: Lan, tmp_path: Path):
    dns = server(tmp_path)
    try:
        dns.update(zone(lan, THREE, passing=["a", "b", "c"]))  # d is critical: its addresses are not in DNS
        answer = lan.ask("web.front.sb.internal")
        assert answer.rcode == "NOERROR" and sorted(answer.records) == ["198.18.60.21", "198.18.60.22"]
        assert lan.ask("web.front.sb.internal", "AAAA").records == ("fd00:60::23",)
        assert lan.ask("b.web.front.sb.internal").records == ("198.18.60.22",)
        srv = {  # every registered instance, d too: only a serving one's target resolves
            "0 1 8080 a.web.front.sb.internal.",
            "0 2 8081 b.web.front.sb.internal.",
            "0 1 8082 c.web.front.sb.internal.",
            "0 1 8083 d.web.front.sb.internal.",
        }
        for name in ("web.front.sb.internal", "_web._tcp.front.sb.internal"):
            answer = lan.ask(name, "SRV")
            assert answer.rcode == "NOERROR" and set(answer.records) == srv, name
        assert lan.ask("n1.front.sb.internal").records == ("198.18.60.10",)
        assert lan.ask("n1.front.sb.internal", "AAAA", server=GW6).records == ("fd00:60::10",)  # on IPv6 too
        assert lan.ask("d.web.front.sb.internal").rcode == "NXDOMAIN"
        assert lan.ask("nothing.front.sb.internal").rcode == "NXDOMAIN"
        outside = lan.ask("example.com")
        assert outside.rcode == "REFUSED" and outside.records == ()  # not forwarded anywhere
        assert outside.rtt > 0 and outside.to_dict() == {
            "rcode": "REFUSED",
            "records": [],
            "rtt": outside.rtt,
        }
    finally:
        dns.stop()


def test_an_address_change_is_answered_at_once_without_a_restart(lan: Lan, tmp_path: Path):
    dns = server(tmp_path)
    try:
        dns.update(zone(lan, web(a=("198.18.60.21", 8080)), passing=["a"]))
        pid = dns.pid
        for last in range(30, 60):  # the very next question sees each change
            dns.update(zone(lan, web(a=(f"198.18.60.{last}", 8080)), passing=["a"]))
            assert lan.ask("a.web.front.sb.internal").records == (f"198.18.60.{last}",)
        assert dns.pid == pid
        dns.update(zone(lan, THREE, passing=["a", "b"]))  # b, c and d registered: new SRV records, a restart
        assert dns.pid not in (pid, None)
        assert set(lan.ask("_web._tcp.front.sb.internal", "SRV").records) == {
            "0 1 8080 a.web.front.sb.internal.",
            "0 2 8081 b.web.front.sb.internal.",
            "0 1 8082 c.web.front.sb.internal.",
            "0 1 8083 d.web.front.sb.internal.",
        }
        pid = dns.pid
        dns.update(zone(lan, THREE, passing=["a"]))  # b fails its check: out of DNS, no restart
        assert lan.ask("b.web.front.sb.internal").rcode == "NXDOMAIN"
        assert sorted(lan.ask("web.front.sb.internal").records) == ["198.18.60.21"]
        assert dns.pid == pid
        dns.update(zone(lan, web(a=("198.18.60.21", 9090)), passing=["a"]))  # a new port
        assert dns.pid not in (pid, None)
        assert lan.ask("web.front.sb.internal", "SRV").records == ("0 1 9090 a.web.front.sb.internal.",)
        assert lan.ask("b.web.front.sb.internal").rcode == "NXDOMAIN"
    finally:
        dns.stop()


def test_ensure_running_restarts_a_dnsmasq_that_died(lan: Lan, tmp_path: Path):
    dns = server(tmp_path)
    try:
        dns.update(zone(lan, THREE, passing=["a"]))
        pid = dns.pid
        assert pid is not None and dns.ensure_running() is False
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not dns.ensure_running():
            assert time.monotonic() < deadline, "ensure_running never saw dnsmasq die"
            time.sleep(0.01)
        assert dns.pid not in (pid, None)
        assert lan.ask("web.front.sb.internal").records == ("198.18.60.21",)
    finally:
        dns.stop()


def test_stop_removes_everything_and_cleanup_stops_an_orphan(lan: Lan, tmp_path: Path):
    dns = server(tmp_path)
    orphan = DnsServer(
        network="back", listen=[GW4], domain=DOMAIN, directory=str(tmp_path / "dns" / "back"), port=5300
    )
    try:
        dns.update(zone(lan, THREE, passing=["a"]))
        pid = dns.pid
        dns.stop()
        assert dns.pid is None and pid is not None and exited(pid)
        assert not os.path.exists(dns.directory)
        dns.stop()  # idempotent
        with pytest.raises(Unavailable):
            lan.ask("web.front.sb.internal", timeout=0.5)

        # an agent that went away without stopping its dnsmasq: the next one cleans up after it
        orphan.update(Zone(hosts=(("198.18.60.21", ("x.back.sb.internal",)),), srv=()))
        orphan_pid = orphan.pid
        assert lan.ask("x.back.sb.internal", port=5300).records == ("198.18.60.21",)
        assert dns_cleanup(str(tmp_path / "dns")) == [orphan_pid]
        assert orphan.pid is None  # it exited
        assert os.listdir(tmp_path / "dns") == []
        assert dns_cleanup(str(tmp_path / "dns")) == []
        assert dns_cleanup(str(tmp_path / "nothing-here")) == []
    finally:
        dns.stop()
        orphan.stop()


def test_dnsmasq_dies_with_the_agent(lan: Lan, tmp_path: Path):
    script = (
        "import ipaddress, sys, time\n"
        "from netcore.services.catalog import Zone\n"
        "from netcore.services.dns import DnsServer\n"
        f"dns = DnsServer(network='front', listen=[ipaddress.ip_address('{GW4}')], domain='{DOMAIN}',"
        " directory=sys.argv[1])\n"
        "dns.update(Zone(hosts=(('198.18.60.21', ('a.front.sb.internal',)),), srv=()))\n"
        "print(dns.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    # the agent: a child of this thread, so in the test's namespace
    agent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "dns")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert agent.stdout is not None
        pid = int(agent.stdout.readline())
        assert lan.ask("a.front.sb.internal").records == ("198.18.60.21",)
        agent.kill()  # no chance to stop its dnsmasq
        agent.wait()
        deadline = time.monotonic() + 5
        while not exited(pid):
            assert time.monotonic() < deadline, f"dnsmasq {pid} outlived the agent that started it"
            time.sleep(0.01)
        with pytest.raises(Unavailable):
            lan.ask("a.front.sb.internal", timeout=0.5)
    finally:
        agent.kill()
        agent.wait()
        agent.stdout.close()


def test_cleanup_leaves_a_process_that_reused_the_pid(tmp_path: Path):
    directory = tmp_path / "dns" / "front"
    (directory / "hosts").mkdir(parents=True)
    (directory / "pid").write_text(f"{os.getpid()}\n")  # this pytest, not a dnsmasq
    assert dns_cleanup(str(tmp_path / "dns")) == []
    assert not directory.exists()


def test_a_listen_address_not_on_the_host_is_refused_with_dnsmasqs_words(lan: Lan, tmp_path: Path):
    dns = server(tmp_path, listen=(ipaddress.ip_address("198.18.60.99"),))
    try:
        with pytest.raises(NotFound) as caught:
            dns.update(zone(lan, THREE, passing=["a"]))
        message = str(caught.value)
        assert "network front" in message and "198.18.60.99" in message
        assert "Cannot assign requested address" in message  # dnsmasq's own line
        assert dns.pid is None and dnsmasq_under(tmp_path) == []
    finally:
        dns.stop()


def test_a_taken_port_is_a_conflict_and_supervision_retries(lan: Lan, tmp_path: Path):
    dns = server(tmp_path)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # made in the test's namespace
    try:
        taken.bind((str(GW4), 53))
        with pytest.raises(Conflict) as caught:
            dns.update(zone(lan, THREE, passing=["a"]))
        message = str(caught.value)
        assert "network front" in message and "198.18.60.1 port 53" in message and "in use" in message
        assert dns.pid is None and dnsmasq_under(tmp_path) == []
        taken.close()
        assert dns.ensure_running() is True  # the port is free again
        assert lan.ask("web.front.sb.internal").records == ("198.18.60.21",)
    finally:
        taken.close()
        dns.stop()


def test_a_zone_with_names_outside_the_domain_is_refused_before_anything_starts(tmp_path: Path):
    dns = server(tmp_path)
    bad_zones = [
        Zone(hosts=(("198.18.60.5", ("example.com",)),), srv=()),
        Zone(hosts=(("198.18.60.500", ("a.front.sb.internal",)),), srv=()),
        Zone(hosts=(), srv=(Srv("web.front.sb.internal", "x,y.front.sb.internal", 80, 0, 1),)),
        Zone(hosts=(), srv=(Srv("web.front.sb.internal", "a.front.sb.internal", 70000, 0, 1),)),
    ]
    for bad in bad_zones:
        with pytest.raises(InvalidSpec, match="network front"):
            dns.update(bad)
    assert not os.path.exists(dns.directory)
    with pytest.raises(InvalidSpec, match="not a domain name"):
        DnsServer(network="front", listen=[GW4], domain="Bad Domain", directory=str(tmp_path))
    with pytest.raises(InvalidSpec, match="no gateway address"):
        DnsServer(network="front", listen=[], domain=DOMAIN, directory=str(tmp_path))


def test_a_large_answer_comes_whole_over_tcp(lan: Lan, tmp_path: Path):
    many = web(**{f"i{n}": (f"198.18.60.{100 + n}", 9000 + n) for n in range(80)})
    dns = server(tmp_path)
    try:
        dns.update(zone(lan, many, passing=[i["id"] for i in many]))
        answer = lan.ask("web.front.sb.internal", "SRV")  # more than fits in 1232 bytes of UDP
        assert answer.rcode == "NOERROR" and len(answer.records) == 80
        assert "0 1 9079 i79.web.front.sb.internal." in answer.records
    finally:
        dns.stop()


def test_dns_query_says_which_server_did_not_answer(lan: Lan):
    with pytest.raises(Unavailable, match=r"198\.18\.60\.1 port 5353 refused"):
        # nothing listens: refused at once (asked over loopback, where ICMP is not rate-limited)
        dns_query(server=GW4, name="web.front.sb.internal", port=5353)

    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # listens, never answers
    try:
        mute.bind((str(GW4), 5354))
        with pytest.raises(Unavailable, match=r"198\.18\.60\.1 port 5354 did not answer .* within 0\.2 s"):
            lan.ask("web.front.sb.internal", port=5354, timeout=0.2)
    finally:
        mute.close()
    with pytest.raises(InvalidSpec):
        lan.ask("web.front.sb.internal", "NOSUCHTYPE")
    with pytest.raises(NetcoreError, match="t-nowhere"):
        dns_query(server=GW4, name="x.sb.internal", netns="/run/netns/t-nowhere")
