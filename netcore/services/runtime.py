"""The agent's service catalog at work: health checks, one dnsmasq per network and the VIP table,
kept in step with the catalog the web app sends and with every health change.

A health change reaches DNS and the VIPs here, on the host, without a round trip to the web app: an
instance that fails its check leaves both as soon as its state turns critical. The web app hears the
health as state (kind `service_health`) for its pages and history.

Blocking work (files, dnsmasq starts, `nft`) runs on one worker thread this runtime makes from the
event loop's thread, so it runs in the loop's network namespace, one step at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from netcore.errors import NetcoreError
from netcore.services.catalog import (
    HEALTH_KIND,
    SERVING,
    Catalog,
    Health,
    NetworkCatalog,
    catalog_parse,
    vip_targets,
    zone_of,
)
from netcore.services.dns import DnsServer, dns_cleanup
from netcore.services.health import HealthMonitor
from netcore.services.vip import VipTable

log = logging.getLogger("netcore.agent")

STATE_DIR = "/run/switchboard/services"
ETC_NETNS = "/etc/netns"
SUPERVISE_EVERY = 1.0  # seconds between checks that each dnsmasq still runs
#: First line of every resolv.conf written here: only such files are ever replaced or removed.
RESOLV_MARK = "# written by switchboard: the service catalog's DNS for this namespace"

ProtocolState = dict[str, dict[str, dict[str, Any]]]


class ServiceRuntime:
    """Serves one host's catalog; `on_state` gets the health of every instance as protocol state."""

    def __init__(
        self,
        *,
        on_state: Callable[[ProtocolState], None],
        directory: str = STATE_DIR,
        etc_netns: str = ETC_NETNS,
        dns_port: int = 53,
    ) -> None:
        self.on_state = on_state
        self.directory = directory
        self.etc_netns = etc_netns
        self.dns_port = dns_port
        self.catalog = Catalog()
        self.monitor = HealthMonitor(on_change=self._health_changed)
        self.vips = VipTable()
        self.servers: dict[str, DnsServer] = {}
        self.resolvers: set[str] = set()  # namespaces whose resolv.conf this runtime wrote
        self.errors: dict[str, str] = {}  # what cannot be served now ("DNS of network x", "VIP of x/y") → why
        self._vip_bridges: frozenset[str] = frozenset()  # the bridges VIPs were last applied on
        self._placement: dict[str, dict[str, Any]] = {}  # instance key → where it is (see _protocol)
        self._serving: frozenset[str] = frozenset()  # the instances serving as last reconciled
        self._worker: ThreadPoolExecutor | None = None
        self._step = asyncio.Lock()
        self._dirty = asyncio.Event()

    @property
    def state(self) -> ProtocolState:
        """The health of every instance, as the protocol carries it."""
        return self._protocol(self.monitor.states())

    def _protocol(self, states: dict[str, Health]) -> ProtocolState:
        """Each instance's health with where it is (address, port, namespace, the network's bridge and
        the service's VIP), so a page can draw it beside the namespaces and bridges it lives on."""
        return {
            HEALTH_KIND: {key: {**h.to_dict(), **self._placement.get(key, {})} for key, h in states.items()}
        }

    async def run(self) -> None:
        """Check, serve and supervise until cancelled; then stop every dnsmasq and remove the VIPs."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="services")
        try:
            await self._blocking(self._start_clean)
            monitor = asyncio.create_task(self.monitor.run())
            try:
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._dirty.wait(), SUPERVISE_EVERY)
                    self._dirty.clear()
                    await self._reconcile()  # also every SUPERVISE_EVERY: a dnsmasq that died restarts
            finally:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
        finally:
            await asyncio.shield(self._blocking(self._stop_all))
            self._worker.shutdown(wait=True)
            self._worker = None

    async def apply(self, data: object) -> dict[str, Any]:
        """Take a new catalog from the web app: {"ok": True, "version"} once DNS and VIPs follow it,
        or {"ok": False, "error"} (a catalog that does not parse changes nothing)."""
        try:
            catalog = catalog_parse(data)
        except NetcoreError as exc:
            return {"ok": False, "error": exc.to_dict()}
        self.catalog = catalog
        self._placement = placement(catalog)
        self.monitor.set(catalog)
        self.on_state(self.state)
        await self._reconcile()
        reply: dict[str, Any] = {"ok": True, "version": catalog.version}
        if self.errors:
            reply["problems"] = dict(self.errors)
        return reply

    def _health_changed(self, states: dict[str, Health]) -> None:
        """Every result goes to the web app; DNS and VIPs change only when an instance starts or stops
        serving (most results only move `checked` and the round trip)."""
        self.on_state(self._protocol(states))
        serving = frozenset(key for key, h in states.items() if h.status in SERVING)
        if serving != self._serving:
            self._serving = serving
            self._dirty.set()

    async def _blocking(self, fn: Callable[[], None]) -> None:
        assert self._worker is not None, "run() makes the worker"
        await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def _reconcile(self) -> None:
        """DNS, VIPs and resolvers as the catalog and the health now say."""
        if self._worker is None:
            return
        async with self._step:
            catalog, health = self.catalog, self.monitor.states()
            try:
                await self._blocking(lambda: self._serve(catalog, health))
            except Exception:  # a fault of ours must not end the service: logged, tried again in a second
                log.exception("service catalog: could not serve catalog version %d", catalog.version)
                self.errors = {"catalog": "the agent failed to serve it: see its log"}

    # -- on the worker thread -------------------------------------------------------------------

    def _start_clean(self) -> None:
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        for pid in dns_cleanup(self.directory):
            log.info("stopped dnsmasq %d left by an earlier agent", pid)

    def _serve(self, catalog: Catalog, health: dict[str, Health]) -> None:
        served = [net for net in catalog.networks if net.services]
        for name in set(self.servers) - {net.name for net in served}:
            self.servers.pop(name).stop()
        problems: dict[str, str] = {}
        self._serve_vips(catalog, health, problems)  # first: a failed instance gets no new connection
        for network in served:
            self._serve_dns(network, catalog.domain, health, problems)
        self._write_resolvers(served, catalog.domain)
        for where, problem in problems.items():
            if self.errors.get(where) != problem:  # each problem is logged once, not every second
                log.error("service catalog, %s: %s", where, problem)
        self.errors = problems

    def _serve_vips(self, catalog: Catalog, health: dict[str, Health], problems: dict[str, str]) -> None:
        """The VIPs whose bridge exists (a topology not applied yet has none: its VIPs wait for it)."""
        vips = []
        for vip in vip_targets(catalog, health):
            if _link_exists(vip.bridge):
                vips.append(vip)
            else:
                problems[f"VIP of {vip.service}"] = (
                    f"bridge {vip.bridge} is not on this host (topology not applied?)"
                )
        bridges = frozenset(v.bridge for v in vips)
        try:
            # a bridge made again lost the VIP routes on it: read the kernel, not memory, then
            self.vips.apply(vips, force=bridges != self._vip_bridges)
            self._vip_bridges = bridges
        except NetcoreError as exc:
            problems["VIPs"] = str(exc)

    def _serve_dns(
        self, network: NetworkCatalog, domain: str, health: dict[str, Health], problems: dict[str, str]
    ) -> None:
        server = self.servers.get(network.name)
        listen = tuple(network.gateways)
        if server is not None and (server.listen != listen or server.domain != domain):
            server.stop()
            server = None
        try:
            if server is None:
                server = DnsServer(
                    network=network.name,
                    listen=listen,
                    domain=domain,
                    directory=os.path.join(self.directory, network.name),
                    port=self.dns_port,
                )
                self.servers[network.name] = server
            server.update(zone_of(network, domain, health))
            server.ensure_running()
        except NetcoreError as exc:
            problems[f"DNS of network {network.name}"] = str(exc)

    def _write_resolvers(self, served: list[NetworkCatalog], domain: str) -> None:
        """Each node's namespace resolves through the DNS of its first served network."""
        wanted: dict[str, str] = {}
        for network in served:
            if not network.gateways:
                continue
            for node in network.nodes:
                if node.netns and node.netns not in wanted:
                    wanted[node.netns] = (
                        f"{RESOLV_MARK}\nnameserver {network.gateways[0]}\n"
                        f"search {network.name}.{domain} {domain}\noptions timeout:1 attempts:2\n"
                    )
        for netns, text in wanted.items():
            path = os.path.join(self.etc_netns, netns, "resolv.conf")
            current = self._read(path)
            if current is not None and not current.startswith(RESOLV_MARK):
                continue  # someone else's resolver: left alone
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if current != text:
                with open(f"{path}.switchboard", "w") as f:
                    f.write(text)
                os.replace(f"{path}.switchboard", path)
        for netns in self.resolvers - wanted.keys():
            self._remove_resolver(netns)
        self.resolvers = set(wanted)

    @staticmethod
    def _read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _remove_resolver(self, netns: str) -> None:
        path = os.path.join(self.etc_netns, netns, "resolv.conf")
        if (self._read(path) or "").startswith(RESOLV_MARK):
            os.unlink(path)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # only if empty

    def _stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
        for netns in self.resolvers:
            self._remove_resolver(netns)
        self.resolvers.clear()
        try:
            self.vips.clear()
        except NetcoreError as exc:
            log.error("service addresses: %s", exc)


def placement(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Where each instance of the catalog is, by its health key."""
    found = {}
    for network in catalog.networks:
        for service in network.services:
            for i in service.instances:
                found[f"{network.name}|{service.name}|{i.id}"] = {
                    "address": str(i.address),
                    "port": i.port,
                    "netns": i.netns,
                    "bridge": network.bridge,
                    "vip": None
                    if service.vip is None
                    else f"{service.vip}:{service.port}/{service.protocol}",
                }
    return found


def _link_exists(name: str) -> bool:
    """Whether this thread's namespace has a link of that name."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True
