"""The service catalog through the whole stack: the REST API and a topology file's services: section,
daphne, the real agent serving DNS with real dnsmasq on the network's gateway and a VIP with real
nftables, health checks run by the agent, and real traffic from a node: names resolve, the VIP
spreads connections, a health flap takes an instance out and back, a node that stops takes its
instance out and brings it back when it starts, a lease that is not renewed runs out, and a blocking
query wakes on change."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from netcore import netns as ns
from netcore.errors import Unavailable
from netcore.services.dns import dns_query
from tests.stack.harness import Web, until
from tests.stack.scenarios import applied, connected, finished

pytestmark = pytest.mark.asyncio

GATEWAY, VIP = "198.18.44.1", "198.18.44.100"
NODES = {"a": "198.18.44.11", "b": "198.18.44.12", "c": "198.18.44.13"}


def topology(topo: str) -> str:
    nodes = "\n".join(f"  {n}: {{networks: {{lan: {{address: {a}}}}}}}" for n, a in NODES.items())
    return f"name: {topo}\nnetworks:\n  lan: {{subnet: 198.18.44.0/24}}\nnodes:\n{nodes}\n"


@dataclass
class Server:
    """Answers every TCP connection on address:port inside a namespace with its name; stop() closes
    the listener (connections are refused from then on)."""

    name: str
    listener: socket.socket
    stopped: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, name: str, netns_path: str, address: str, port: int) -> Server:
        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(64)
            return s

        server = cls(name, ns.netns_run(path=netns_path, fn=make))
        threading.Thread(target=server._serve, daemon=True).start()
        return server

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(self.name.encode())

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


def ask_vip(client: str) -> str:
    def make() -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    with ns.netns_run(path=client, fn=make) as sock:
        sock.settimeout(2)
        sock.connect((VIP, 80))
        return sock.recv(64).decode()


def _instance_critical(web, name: str) -> dict | None:
    """The instance's detail once the web app says it is critical (None before)."""
    status, detail = web.api("GET", f"/api/v1/services/web/instances/{name}/")
    assert status == 200, detail
    return detail if detail["status"] == "critical" else None


def _fails(client: str) -> bool:
    """Whether a connection to the VIP fails (nobody answers for it any more)."""
    try:
        ask_vip(client)
    except OSError:
        return True
    return False


def resolve(client: str, name: str, rdtype: str = "A") -> list[str] | None:
    try:
        answer = dns_query(
            server=ipaddress.ip_address(GATEWAY), name=name, rdtype=rdtype, netns=client, timeout=1
        )
    except Unavailable:  # dnsmasq restarting for a new SRV set
        return None
    return sorted(answer.records)


def passing(web: Web) -> list[str]:
    status, body = web.api("GET", "/api/v1/services/web/instances/?passing=1")
    assert status == 200, body
    return [i["name"] for i in body]


async def test_the_catalog_served_by_the_agent_answers_names_spreads_a_vip_and_follows_health(
    make_stack, topo
):
    stack = make_stack()
    web, agent, _ = await connected(stack)
    await applied(web, topology(topo))
    path = {n: stack.netns_path(agent, f"{topo}-{n}") for n in NODES}
    servers = {n: Server.start(n, path[n], NODES[n], 8080) for n in ("a", "b")}
    try:
        check = {"kind": "tcp", "interval": 0.3, "timeout": 0.2}
        service = {"name": "web", "host": "alpha", "network": "lan", "port": 80, "vip": VIP, "check": check}
        status, body = await web.aapi("POST", "/api/v1/services/", service)
        assert status == 201, body
        for node in ("a", "b"):
            status, body = await web.aapi(
                "POST", "/api/v1/services/web/instances/", {"node": node, "port": 8080}
            )
            assert status == 201, body

        await until(lambda: passing(web) == ["a", "b"], timeout=10, what="a and b passing in the catalog")
        client = path["c"]
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"], NODES["b"]],
            timeout=5,
            what="the service's name from node c",
        )
        assert resolve(client, "c.lan.sb.internal") == [NODES["c"]]
        srv = await until(
            lambda: resolve(client, "_web._tcp.lan.sb.internal", "SRV"), timeout=5, what="SRV records"
        )
        assert srv == [f"0 1 8080 {n}.web.lan.sb.internal." for n in ("a", "b")]
        assert resolve(client, "example.com") is None or resolve(client, "example.com") == []  # not forwarded
        # the check: node c's own view of the names, beside the catalog's
        status, check = await web.aapi("POST", "/api/v1/services/web/resolve/", {"client": "c"})
        assert status == 200, check
        assert (check["client"], check["netns"], check["server"]) == ("c", f"{topo}-c", GATEWAY)
        assert all(a["agrees"] for a in check["answers"]), check
        by_question = {(a["name"], a["type"]): a for a in check["answers"]}
        assert by_question[("web.lan.sb.internal", "A")]["records"] == [NODES["a"], NODES["b"]]
        status, refused = await web.aapi("POST", "/api/v1/services/web/resolve/", {"client": "nobody"})
        assert status == 404 and "client" in refused["fields"], refused
        hits = Counter([await asyncio.to_thread(ask_vip, client) for _ in range(20)])
        assert hits == {"a": 10, "b": 10}

        # b's server stops: b leaves DNS, the VIP and ?passing; a blocking query wakes on the change
        headers: dict[str, str] = {}
        web.http("GET", "/api/v1/services/web/instances/", token=stack.user_token, response_headers=headers)
        index = int(headers["X-Switchboard-Index"])
        blocking = asyncio.create_task(
            web.aapi("GET", f"/api/v1/services/web/instances/?passing=1&index={index}&wait=20s")
        )
        await asyncio.sleep(0.2)
        assert not blocking.done()
        servers["b"].stop()
        started = time.monotonic()
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"]], timeout=3, what="b out of DNS"
        )
        assert time.monotonic() - started < 0.3 + 1.0 + 0.5  # interval + 1 s, and the poll's own time
        assert Counter([await asyncio.to_thread(ask_vip, client) for _ in range(6)]) == {"a": 6}
        await until(lambda: passing(web) == ["a"], timeout=5, what="b critical in the catalog")
        status, woke = await asyncio.wait_for(blocking, 5)
        assert status == 200 and [i["name"] for i in woke] == ["a"], woke
        status, detail = await web.aapi("GET", "/api/v1/services/web/instances/b/")
        assert detail["status"] == "critical" and "TCP connect to 198.18.44.12:8080" in detail["output"], (
            detail
        )
        assert [p["status"] for p in detail["history"]][-1] == "critical"

        servers["b"] = Server.start("b", path["b"], NODES["b"], 8080)
        await until(lambda: passing(web) == ["a", "b"], timeout=5, what="b passing again")
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"], NODES["b"]],
            timeout=3,
            what="b back",
        )

        # a client's registration with a lease it does not renew runs out: gone from the API and DNS
        lease = {"address": NODES["c"], "port": 9000, "ttl": 2, "name": "lease-c"}
        status, body = await web.aapi("POST", "/api/v1/services/web/instances/", lease)
        assert status == 201, body
        await until(
            lambda: (
                "lease-c" not in [i["name"] for i in web.api("GET", "/api/v1/services/web/instances/")[1]]
            ),
            timeout=6,
            what="the lease to run out",
        )
        status, body = await web.aapi("DELETE", "/api/v1/services/web/")
        assert status == 204, body
        # the network serves no service now: the VIP goes, then its DNS stops (nothing listens on port 53)
        await until(lambda: _fails(client), timeout=10, what="the VIP to go")
        await until(lambda: resolve(client, "web.lan.sb.internal") is None, timeout=5, what="the DNS to stop")
        await asyncio.sleep(0.5)
        assert resolve(client, "web.lan.sb.internal") is None  # stopped, not restarting
    finally:
        for server in servers.values():
            server.stop()
    agent.stop()
    left = stack.ns.run("nft list tables").stdout
    assert "switchboard-service-vips" not in left


async def test_a_file_s_services_are_served_and_a_node_instance_follows_its_node_out_and_back(
    make_stack, topo
):
    stack = make_stack()
    web, agent, _ = await connected(stack)
    check = "{kind: tcp, interval: 0.3, timeout: 0.2}"
    declared = topology(topo) + (
        f"services:\n  web:\n    network: lan\n    port: 80\n    vip: {VIP}\n    check: {check}\n"
        "    instances: [{node: a, port: 8080}, {node: b, port: 8080}]\n"
    )
    await applied(web, declared)
    path = {n: stack.netns_path(agent, f"{topo}-{n}") for n in NODES}
    servers = {n: Server.start(n, path[n], NODES[n], 8080) for n in ("a", "b")}
    try:
        client = path["c"]
        await until(lambda: passing(web) == ["a", "b"], timeout=10, what="the file's instances passing")
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"], NODES["b"]],
            timeout=5,
            what="the file's service in DNS",
        )
        assert Counter([await asyncio.to_thread(ask_vip, client) for _ in range(4)]) == {"a": 2, "b": 2}

        # node b stops (its namespace goes, as when it is deleted by hand): b leaves DNS and the VIP
        stack.ns.run(f"nsenter -t {agent.pid} -m ip netns del {topo}-b")
        servers.pop("b").stop()
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"]], timeout=3, what="b out of DNS"
        )
        assert Counter([await asyncio.to_thread(ask_vip, client) for _ in range(4)]) == {"a": 4}
        # the web app hears it from the agent's next delta (the agent's own DNS and VIP went first)
        detail = await until(
            lambda: _instance_critical(web, "b"), timeout=3, what="the web app to say b is critical"
        )
        assert "namespace" in detail["output"], detail

        # the node starts again (a repair rebuilds it): b is checked and comes back by itself
        status, body = await web.aapi("POST", f"/api/v1/topologies/{topo}/repair/?host=alpha")
        assert status == 202, body
        assert (await finished(web, body["operation"]))["status"] == "succeeded"
        servers["b"] = Server.start("b", path["b"], NODES["b"], 8080)
        await until(lambda: passing(web) == ["a", "b"], timeout=5, what="b passing again")
        await until(
            lambda: resolve(client, "web.lan.sb.internal") == [NODES["a"], NODES["b"]],
            timeout=3,
            what="b back in DNS",
        )

        # the file's service goes with the file's section: out of the catalog, the VIP and DNS
        status, body = await web.aapi("GET", f"/api/v1/topologies/{topo}/?host=alpha")
        update = {"topology": topology(topo), "version": body["version"]}
        status, body = await web.aapi("PUT", f"/api/v1/topologies/{topo}/?host=alpha", update)
        assert status == 200, body
        assert (await web.aapi("GET", "/api/v1/services/web/"))[0] == 404
        await until(lambda: _fails(client), timeout=10, what="the VIP to go")
        await until(lambda: resolve(client, "web.lan.sb.internal") is None, timeout=5, what="the DNS to stop")
    finally:
        for server in servers.values():
            server.stop()
    agent.stop()
