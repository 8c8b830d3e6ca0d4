"""Read the engine's networks, containers and images, tied to the kernel objects under them.

A DockerReader keeps what it inspected: a container is inspected again only when its summary in the
engine's list changes (started, stopped, connected, disconnected), so a warm read of a hundred
containers is three list calls and a stat of each namespace. Containers are tied to netcore's
namespaces by inode (what /proc/<pid>/ns/net points at), which holds for every mode: a bridge
container's docker:<id> namespace, a host-mode container's host, container:<id> sharing another's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import docker

from netcore import netns as ns
from netcore.docker import firewall
from netcore.docker.engine import ENABLE_HINT, engine_call, engine_error
from netcore.docker.objects import (
    DockerContainer,
    DockerDns,
    DockerEndpoint,
    DockerEngine,
    DockerImage,
    DockerNetwork,
    DockerPair,
    DockerPort,
    DockerSubnet,
)

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
KINDS = ("docker_engine", "docker_networks", "docker_containers", "docker_images")
ENGINE_KEY = "engine"


def _pairs(mapping: dict[str, Any] | None) -> tuple[DockerPair, ...]:
    return tuple(DockerPair(str(k), str(v)) for k, v in sorted((mapping or {}).items()))


def _cidr(address: str, prefix: int) -> str | None:
    return f"{address}/{prefix}" if address else None


def network_of(attrs: dict[str, Any], *, netns_by_file: dict[str, str]) -> DockerNetwork:
    """A network from the engine's inspect (or list) answer."""
    net_id = attrs["Id"]
    driver = attrs.get("Driver") or ""
    options = attrs.get("Options") or {}
    labels = attrs.get("Labels") or {}
    bridge = None
    if driver == "bridge":
        bridge = options.get(BRIDGE_NAME_OPTION) or f"br-{net_id[:12]}"
    netns = None
    if driver == "overlay":  # the overlay's own namespace: /var/run/docker/netns/1-<id[:10]>
        netns = next((n for f, n in netns_by_file.items() if f.endswith(f"-{net_id[:10]}")), None)
    ipam = attrs.get("IPAM") or {}
    subnets = tuple(
        DockerSubnet(
            subnet=pool.get("Subnet", ""),
            gateway=pool.get("Gateway") or None,
            ip_range=pool.get("IPRange") or None,
            aux_addresses=_pairs(pool.get("AuxiliaryAddresses")),
        )
        for pool in ipam.get("Config") or ()
    )
    peers = tuple(DockerPair(p.get("Name", ""), p.get("IP", "")) for p in attrs.get("Peers") or ())
    return DockerNetwork(
        id=net_id,
        name=attrs.get("Name", ""),
        driver=driver,
        scope=attrs.get("Scope", ""),
        internal=bool(attrs.get("Internal")),
        attachable=bool(attrs.get("Attachable")),
        ingress=bool(attrs.get("Ingress")),
        ipv6=bool(attrs.get("EnableIPv6")),
        ipam_driver=ipam.get("Driver") or "default",
        subnets=subnets,
        options=_pairs(options),
        labels=_pairs(labels),
        bridge=bridge,
        netns=netns,
        peers=peers,
        project=labels.get(COMPOSE_PROJECT),
        created=attrs.get("Created", ""),
    )


def _ports(attrs: dict[str, Any], nat: dict[tuple[str, int], str]) -> tuple[DockerPort, ...]:
    ports = []
    for spec, bindings in sorted((attrs["NetworkSettings"].get("Ports") or {}).items()):
        number, _, protocol = spec.partition("/")
        for binding in bindings or [None]:
            host_port = int(binding["HostPort"]) if binding and binding.get("HostPort") else None
            ports.append(
                DockerPort(
                    container_port=int(number),
                    protocol=protocol or "tcp",
                    host_ip=(binding or {}).get("HostIp") or None,
                    host_port=host_port,
                    nat=nat.get((protocol or "tcp", host_port)) if host_port else None,
                )
            )
    return tuple(ports)


def _dns(path: str | None) -> DockerDns | None:
    if not path:
        return None
    try:
        with open(path) as conf:
            lines = conf.read().splitlines()
    except OSError:
        return None
    found: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
    for line in lines:
        words = line.split("#", 1)[0].split()
        if words and words[0] in found:
            found[words[0]].extend(words[1:])
    return DockerDns(tuple(found["nameserver"]), tuple(found["search"]), tuple(found["options"]))


def _mode(network_mode: str, endpoints: tuple[DockerEndpoint, ...], drivers: dict[str, str]) -> str:
    """host, none, container, or the driver of the container's networks (bridge, overlay, ...)."""
    if network_mode in ("host", "none"):
        return network_mode
    if network_mode.startswith("container:"):
        return "container"
    for endpoint in endpoints:
        if endpoint.network_id in drivers:
            return drivers[endpoint.network_id]
    return "bridge"


def container_of(
    attrs: dict[str, Any],
    *,
    netns: str | None,
    drivers: dict[str, str],
    nat: dict[tuple[str, int], str],
) -> DockerContainer:
    """A container from the engine's inspect answer; `netns` is its namespace as netcore names it."""
    settings = attrs["NetworkSettings"]
    network_mode = attrs["HostConfig"].get("NetworkMode") or "default"
    endpoints = tuple(
        DockerEndpoint(
            network=name,
            network_id=ep.get("NetworkID") or "",
            ipv4=_cidr(ep.get("IPAddress") or "", ep.get("IPPrefixLen") or 0),
            ipv6=_cidr(ep.get("GlobalIPv6Address") or "", ep.get("GlobalIPv6PrefixLen") or 0),
            gateway=ep.get("Gateway") or None,
            mac=(ep.get("MacAddress") or "").lower() or None,
            aliases=tuple(ep.get("Aliases") or ()),
        )
        for name, ep in sorted((settings.get("Networks") or {}).items())
        if name not in ("host", "none")
    )
    labels = attrs["Config"].get("Labels") or {}
    state = attrs["State"]
    running = state.get("Running") and state.get("Pid")
    command = [*(attrs.get("Path") and [attrs["Path"]] or []), *(attrs.get("Args") or [])]
    return DockerContainer(
        id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        image=attrs["Config"].get("Image") or attrs.get("Image", ""),
        state=state.get("Status", "unknown"),
        network_mode=network_mode,
        mode=_mode(network_mode, endpoints, drivers),
        shares=network_mode.partition(":")[2] or None if network_mode.startswith("container:") else None,
        netns=netns if running else None,
        pid=state["Pid"] if running else None,
        hostname=attrs["Config"].get("Hostname") or "",
        command=" ".join(command),
        endpoints=endpoints,
        ports=_ports(attrs, nat),
        dns=_dns(attrs.get("ResolvConfPath")) if running else None,
        project=labels.get(COMPOSE_PROJECT),
        service=labels.get(COMPOSE_SERVICE),
        labels=_pairs(labels),
        created=attrs.get("Created", ""),
    )


def image_of(attrs: dict[str, Any]) -> DockerImage:
    """An image from the engine's image list."""
    tags = tuple(t for t in attrs.get("RepoTags") or () if t != "<none>:<none>")
    created = attrs.get("Created")
    return DockerImage(
        id=attrs["Id"], tags=tags, size=int(attrs.get("Size") or 0), created=str(created or "")
    )


def _namespaces() -> tuple[int, dict[int, str], dict[str, str]]:
    """The caller's namespace inode, netcore's names of Docker's namespaces (no container has
    another) by inode, and by file name."""
    by_inode = {info.inode: info.name for info in ns.netns_list(processes=False, named=False)}
    by_file = {name.removeprefix("docker:"): name for name in by_inode.values() if name.startswith("docker:")}
    return ns.host_inode(), by_inode, by_file


def _netns_of(pid: int, by_inode: dict[int, str]) -> str | None:
    try:
        inode = os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None
    return by_inode.get(inode, f"pid:{pid}")


def _summary_key(summary: dict[str, Any]) -> str:
    """What of a container's list entry changes when its network view does ("Status" ages by itself)."""
    return json.dumps({k: v for k, v in summary.items() if k != "Status"}, sort_keys=True)


@dataclass
class DockerState:
    """One read of the engine: every object, keyed as the agent protocol carries them."""

    engine: DockerEngine
    networks: dict[str, DockerNetwork] = field(default_factory=dict)
    containers: dict[str, DockerContainer] = field(default_factory=dict)
    images: dict[str, DockerImage] = field(default_factory=dict)

    def to_state(self) -> dict[str, dict[str, dict[str, Any]]]:
        """As protocol state: {kind: {key: object}} for the four Docker kinds."""
        return {
            "docker_engine": {ENGINE_KEY: self.engine.to_dict()},
            "docker_networks": {k: v.to_dict() for k, v in self.networks.items()},
            "docker_containers": {k: v.to_dict() for k, v in self.containers.items()},
            "docker_images": {k: v.to_dict() for k, v in self.images.items()},
        }


def engine_missing(reason: str) -> DockerEngine:
    """The engine object when none answers, saying why and how to start one."""
    return DockerEngine(
        available=False,
        error=f"{reason}; {ENABLE_HINT}",
        version=None,
        api_version=None,
        swarm="inactive",
        swarm_manager=False,
        node_addr=None,
        forward_policy=firewall.forward_policy(),
        bridge_nf_call_iptables=firewall.bridge_nf_call_iptables(),
        accepted_bridges=tuple(firewall.accepted_bridges() or ()),
    )


class DockerReader:
    """Reads the engine, re-inspecting only the containers whose list entry changed; a partial read
    (after a container or network changed) also keeps the engine, its firewall and its images as
    last read, and Docker's NAT rules unless a container with ports changed."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._inspected: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (summary key, inspect answer)
        self._engine: DockerEngine | None = None
        self._images: dict[str, DockerImage] = {}
        self._nat: dict[tuple[str, int], str] = {}
        self.unsettled = False  # the last read saw a container in between two states: read again soon

    def engine(self) -> DockerEngine:
        """The engine's version, its Swarm role and the firewall around it."""
        api = self.client.api
        with engine_call(obj="engine", action="read"):
            version = api.version()
            swarm = api.info().get("Swarm") or {}
        return DockerEngine(
            available=True,
            error=None,
            version=version.get("Version"),
            api_version=api.api_version,
            swarm=swarm.get("LocalNodeState") or "inactive",
            swarm_manager=bool(swarm.get("ControlAvailable")),
            node_addr=swarm.get("NodeAddr") or None,
            forward_policy=firewall.forward_policy(),
            bridge_nf_call_iptables=firewall.bridge_nf_call_iptables(),
            accepted_bridges=tuple(firewall.accepted_bridges() or ()),
        )

    def accepted(self, bridges: tuple[str, ...], state: DockerState) -> DockerState:
        """`state` with the engine's accepted bridges now `bridges` (DOCKER-USER was just changed),
        which the partial reads after it keep too."""
        assert self._engine is not None, "a read came first"
        self._engine = replace(self._engine, accepted_bridges=bridges)
        return replace(state, engine=self._engine)

    def read(self, *, full: bool = True, stale: Collection[str] = ()) -> DockerState:
        """Everything the engine has now (full=False: see the class); the containers whose ids are in
        `stale` (an event named them) are inspected again whatever their list entry says.
        NetcoreError (Unavailable, ...) when the engine cannot be read."""
        api = self.client.api
        full = full or self._engine is None
        if full:
            self._engine = self.engine()
        try:
            summaries = api.containers(all=True)
            network_list = [
                api.inspect_network(n["Id"], verbose=True) if n.get("Driver") == "overlay" else n
                for n in api.networks()
            ]
            if full:
                self._images = {i["Id"]: image_of(i) for i in api.images()}
            changed = [
                s
                for s in summaries
                if s["Id"] in stale or self._inspected.get(s["Id"], ("",))[0] != _summary_key(s)
            ]
            self.unsettled = False
            for summary in changed:
                attrs = api.inspect_container(summary["Id"])
                # the list is a snapshot the engine updates after its events and the container itself
                # (a container that died is still listed running for a while): an answer that
                # disagrees with it is not kept as the listed state's, so the next read inspects again
                agrees = attrs["State"].get("Status") == summary.get("State")
                self._inspected[summary["Id"]] = (_summary_key(summary) if agrees else "", attrs)
                self.unsettled |= not agrees
        except docker.errors.NotFound:
            return self.read(full=full)  # something went away between list and inspect: read again
        except Exception as exc:
            raise engine_error(exc, obj="engine", action="read") from None
        present = {s["Id"] for s in summaries}
        for gone in set(self._inspected) - present:
            del self._inspected[gone]
        if full or any(s.get("Ports") for s in changed):
            self._nat = firewall.published_ports() if any(s.get("Ports") for s in summaries) else {}
        host, by_inode, by_file = _namespaces()
        by_inode[host] = ns.HOST
        networks = {n["Id"]: network_of(n, netns_by_file=by_file) for n in network_list}
        drivers = {net_id: net.driver for net_id, net in networks.items()}
        containers = {}
        for cid, (_, attrs) in self._inspected.items():
            pid = attrs["State"].get("Pid") or 0
            netns = _netns_of(pid, by_inode) if pid else None
            containers[cid] = container_of(attrs, netns=netns, drivers=drivers, nat=self._nat)
        assert self._engine is not None, "a full read sets it"
        return DockerState(
            engine=self._engine, networks=networks, containers=containers, images=dict(self._images)
        )
