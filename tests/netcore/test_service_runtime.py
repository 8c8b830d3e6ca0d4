"""The agent's service runtime end to end on the real kernel: a catalog in, then DNS answered by real
dnsmasq on the gateway, a VIP spreading real connections, health checks deciding both, and a health
flap taking an instance out of DNS and the VIP and back. Runs in `host_ns` on the network of
test_service_vip (a bridge, three instances running servers, a client)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netcore.errors import Unavailable
from netcore.services.dns import dns_query
from netcore.services.runtime import RESOLV_MARK, ServiceRuntime
from netcore.services.vip import vip_read
from tests.netcore.test_service_vip import CLIENT, GATEWAY, INSTANCES, PORT, SERVER, VIP, Net, net, spread

__all__ = ["net"]  # the fixture, used by name

DNS_PORT = 5353  # not 53: the machine may run a resolver of its own on a wildcard address


def catalog(
    net: Net, *, version: int = 1, interval: float = 0.2, instances: tuple[str, ...] = ("i1", "i2", "i3")
) -> dict[str, Any]:
    return {
        "version": version,
        "domain": "sb.internal",
        "networks": [
            {
                "name": "front",
                "bridge": net.bridge,
                "gateways": [GATEWAY],
                "subnets": ["198.18.5.0/24"],
                "nodes": [{"name": "client", "addresses": [CLIENT], "netns": net.spaces["c"]}],
                "services": [
                    {
                        "name": "web",
                        "protocol": "tcp",
                        "port": 80,
                        "vip": VIP,
                        "check": {"kind": "tcp", "interval": interval, "timeout": 0.1, "rise": 1, "fall": 1},
                        "instances": [
                            {"id": who, "address": INSTANCES[who], "port": PORT, "netns": net.spaces[who]}
                            for who in instances
                        ],
                    }
                ],
            }
        ],
    }


def addresses(net: Net, name: str = "web.front.sb.internal", rdtype: str = "A") -> list[str] | None:
    """The records the client gets for `name`; None while dnsmasq restarts (for a new SRV set)."""
    try:
        answer = dns_query(
            server=ipaddress.ip_address(GATEWAY),
            name=name,
            rdtype=rdtype,
            port=DNS_PORT,
            netns=net.path("c"),
            timeout=1,
        )
    except Unavailable:
        return None
    return sorted(answer.records)


async def until(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Seconds until check() holds (polled in a thread: it may block), failing after `timeout`."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def test_dns_vip_and_health_follow_the_catalog_and_a_flap(net: Net, host_ns, tmp_path: Path) -> None:
    host_ns.run("ip link set lo up")
    states: list[dict] = []
    runtime = ServiceRuntime(
        on_state=states.append,
        directory=str(tmp_path / "services"),
        etc_netns=str(tmp_path / "etc"),
        dns_port=DNS_PORT,
    )
    all3 = sorted(INSTANCES.values())

    async def scenario() -> None:
        task = asyncio.create_task(runtime.run())
        try:
            await asyncio.sleep(0.05)
            reply = await runtime.apply(catalog(net))
            assert reply == {"ok": True, "version": 1}, reply
            await until(lambda: addresses(net) == all3, timeout=3, what="all three instances in DNS")
            srv = [f"0 1 {PORT} {who}.web.front.sb.internal." for who in ("i1", "i2", "i3")]
            await until(
                lambda: addresses(net, "_web._tcp.front.sb.internal", "SRV") == srv,
                timeout=3,
                what="SRV records",
            )
            assert addresses(net, "client.front.sb.internal") == [CLIENT]
            resolv = (tmp_path / "etc" / net.spaces["c"] / "resolv.conf").read_text()
            assert resolv.startswith(RESOLV_MARK) and f"nameserver {GATEWAY}" in resolv
            assert await asyncio.to_thread(spread, net, 30) == {"i1": 10, "i2": 10, "i3": 10}

            # i2's server stops: it leaves DNS and the VIP within its interval (0.2 s) + 1 s
            server = net.servers[1]
            server.send_signal(signal.SIGKILL)
            server.wait()
            took = await until(
                lambda: addresses(net) == [INSTANCES["i1"], INSTANCES["i3"]],
                timeout=1.2,
                what="i2 out of DNS",
            )
            assert took < 1.2
            assert await asyncio.to_thread(spread, net, 20) == {"i1": 10, "i3": 10}
            health = states[-1]["service_health"]
            assert health["front|web|i2"]["status"] == "critical"
            assert "refused" in health["front|web|i2"]["output"]

            # it comes back: DNS and the VIP take it again
            argv = ["nsenter", f"--net={net.path('i2')}", sys.executable, "-c", SERVER, "i2", str(PORT)]
            back = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            net.servers[1] = back
            assert back.stdout is not None and back.stdout.readline() == "ready\n"
            await until(lambda: addresses(net) == all3, timeout=1.2, what="i2 back in DNS")
            assert await asyncio.to_thread(spread, net, 30) == {"i1": 10, "i2": 10, "i3": 10}

            # a new catalog without i3: out of DNS and the VIP at once, no check needed
            reply = await runtime.apply(catalog(net, version=2, instances=("i1", "i2")))
            assert reply["ok"]
            assert addresses(net) == [INSTANCES["i1"], INSTANCES["i2"]]
            assert await asyncio.to_thread(spread, net, 20) == {"i1": 10, "i2": 10}
            assert "front|web|i3" not in runtime.state["service_health"]

            refused = await runtime.apply({"networks": [{"name": "Bad"}]})
            assert not refused["ok"] and "networks[0]" in refused["error"]["message"]
            assert addresses(net) == [INSTANCES["i1"], INSTANCES["i2"]]  # a bad catalog changes nothing
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    # stopped: no dnsmasq, no VIP table or route, no resolver file left
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _dnsmasq_under(p, tmp_path)]
    left = vip_read()
    assert (left.table, left.vips, left.routes) == (False, (), ()) or not left.vips
    assert not (tmp_path / "etc" / net.spaces["c"] / "resolv.conf").exists()


def _dnsmasq_under(pid: str, root: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "dnsmasq" in cmdline and str(root) in cmdline


def test_a_catalog_on_a_network_not_yet_built_waits_for_its_bridge(host_ns, tmp_path: Path) -> None:
    host_ns.run("ip link set lo up")
    runtime = ServiceRuntime(
        on_state=lambda state: None,
        directory=str(tmp_path / "s"),
        etc_netns=str(tmp_path / "e"),
        dns_port=DNS_PORT,
    )
    document = {
        "networks": [
            {
                "name": "later",
                "bridge": "sbnotthere0",
                "gateways": ["198.18.6.1"],
                "subnets": ["198.18.6.0/24"],
                "services": [{"name": "web", "port": 80, "vip": "198.18.6.100", "instances": []}],
            }
        ]
    }

    async def scenario() -> dict[str, str]:
        task = asyncio.create_task(runtime.run())
        try:
            await asyncio.sleep(0.05)
            reply = await runtime.apply(document)
            assert reply["ok"], reply
            return reply.get("problems", {})
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    problems = asyncio.run(scenario())
    assert "sbnotthere0" in problems["VIP of later/web"]
    assert "198.18.6.1" in problems["DNS of network later"]
    signal.getsignal(signal.SIGINT)  # the runtime leaves the process's signal handling alone
