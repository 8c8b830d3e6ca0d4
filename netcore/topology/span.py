"""Topologies that span hosts: one file, and each host's share of it.

A ``driver: vxlan`` network may name the hosts it spans, and a node the host it runs on::

    name: ov
    networks:
      mesh:
        driver: vxlan
        subnet: 198.18.50.0/24
        vni: 5000
        hosts: [lab1, lab2, lab3]        # or {lab1: 198.18.254.11, ...}: each host's VTEP address
      local: {subnet: 198.18.51.0/24}    # no hosts: on the file's home host only
    nodes:
      a1: {networks: [mesh, local]}      # on the home host
      b1: {networks: [mesh], host: lab2}

The whole file is validated and its addresses allocated once (netcore.topology.spec), so addresses
are unique across every host. Each host's share is then an ordinary topology file of the same name
holding the networks that reach the host, its own nodes (addresses pinned) and their routes; each
spanning network in it gets the host's VTEP address as ``local`` and static forwarding state for the
other hosts: their VTEPs as ``peers`` (head-end replication) and, unless ``learning: true``
(flood-and-learn over the same unicast peers), every node of the other hosts as ``remote_nodes``
(FDB and neighbour entries: ARP answered locally, nothing flooded). A node added on one host thus
changes the share of every other host of its networks, which is what the control plane (the web
app) re-applies there.

A host's VTEP address comes from the network's ``hosts`` mapping, else from the caller's ``vteps``
(the address each host is known to have on the underlay).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from netcore.errors import InvalidSpec
from netcore.names import excerpt
from netcore.topology import spec as topology_spec

#: Keys the share sets on a spanning network: a file may not give them.
_SET_BY_SPAN = ("local", "remote", "group", "peers", "remote_nodes")


@dataclass(frozen=True)
class Span:
    """A topology split by host: `shares` maps the home host and each other host with anything of it
    to its topology file (home first, then hosts in the order the file names them)."""

    spec: topology_spec.TopologySpec
    shares: Mapping[str, dict[str, Any]]


def spans_hosts(document: object) -> bool:
    """Whether a topology document names hosts (a network's `hosts` or a node's `host`)."""
    if not isinstance(document, Mapping):
        return False
    networks, nodes = document.get("networks"), document.get("nodes")
    return (isinstance(networks, Mapping) and any(_has(body, "hosts") for body in networks.values())) or (
        isinstance(nodes, Mapping) and any(_has(body, "host") for body in nodes.values())
    )


def span_split(document: Mapping[str, Any], *, home: str, vteps: Mapping[str, str]) -> Span:
    """Validate a (possibly) spanning topology and split it into each host's share.

    `home` is the host the file belongs to (its networks without `hosts` and nodes without `host`
    are there); `vteps` the known underlay address of each host. Every problem is raised at once as
    an InvalidSpec, netcore's own problems with the span's.
    """
    problems: list[str] = []
    plain = copy.deepcopy(dict(document))
    net_hosts = _network_hosts(plain, home=home, vteps=vteps, problems=problems)
    node_hosts = _node_hosts(plain, home=home, problems=problems)
    try:
        spec = topology_spec.parse(plain)
    except InvalidSpec as err:
        problems.extend(err.problems)
        raise _invalid(problems) from None
    _check_placement(spec, net_hosts, node_hosts, home=home, problems=problems)
    if problems:
        raise _invalid(problems)
    hosts = _hosts_in_order(home, net_hosts, node_hosts)
    shares = {host: _share(spec, plain, host, net_hosts, node_hosts) for host in hosts}
    kept = {host: share for host, share in shares.items() if host == home or _has_content(share)}
    return Span(spec=spec, shares=kept)


def _has(body: object, key: str) -> bool:
    return isinstance(body, Mapping) and key in body


def _invalid(problems: list[str]) -> InvalidSpec:
    error = InvalidSpec("\n".join(problems), obj="topology")
    error.problems = problems
    return error


def _network_hosts(
    plain: dict[str, Any], *, home: str, vteps: Mapping[str, str], problems: list[str]
) -> dict[str, dict[str, str]]:
    """Each network's hosts with their VTEP addresses ({home: ""} for a network on the home host
    only); removes `hosts` from `plain` so netcore's parser sees an ordinary file."""
    found: dict[str, dict[str, str]] = {}
    networks = plain.get("networks")
    if not isinstance(networks, Mapping):
        return found
    for name, body in networks.items():
        if not isinstance(body, dict) or "hosts" not in body:
            found[str(name)] = {home: ""}
            continue
        path = f"networks.{name}"
        given = body.pop("hosts")
        if body.get("driver") != "vxlan":
            problems.append(f"{path}.hosts: only a vxlan network spans hosts (add driver: vxlan)")
        for key in _SET_BY_SPAN:
            if key in body:
                problems.append(f"{path}.{key}: set for each host from the hosts of a spanning network")
        found[str(name)] = _vteps_of(given, path, vteps=vteps, problems=problems)
    return found


def _vteps_of(given: object, path: str, *, vteps: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    if isinstance(given, list):
        pairs: list[tuple[object, object]] = [(host, None) for host in given]
    elif isinstance(given, Mapping):
        pairs = list(given.items())
    else:
        problems.append(f"{path}.hosts: a list of host names or a mapping of host name to VTEP address")
        return {}
    if not pairs:
        problems.append(f"{path}.hosts: name at least one host")
    found: dict[str, str] = {}
    for host, address in pairs:
        if not isinstance(host, str) or not host:
            problems.append(f"{path}.hosts: {excerpt(host)} is not a host name")
            continue
        if host in found:
            problems.append(f"{path}.hosts.{host}: named twice")
            continue
        text = vteps.get(host, "") if address is None else str(address)
        if not text:
            problems.append(
                f"{path}.hosts.{host}: no underlay address known for host {host}: give it here "
                f"({host}: 198.18.254.11) or set the host's underlay address"
            )
            continue
        try:
            vtep = ip_address(text)
        except ValueError:
            problems.append(f"{path}.hosts.{host}: {excerpt(text)} is not an IP address")
            continue
        if vtep.is_multicast or vtep.is_unspecified:
            problems.append(f"{path}.hosts.{host}: {vtep} is not a unicast address")
            continue
        found[host] = str(vtep)
    versions = {ip_address(address).version for address in found.values()}
    if len(versions) > 1:
        problems.append(f"{path}.hosts: the VTEP addresses must all be IPv4 or all IPv6")
    clashing = {address for address in found.values() if list(found.values()).count(address) > 1}
    for address in sorted(clashing):
        problems.append(f"{path}.hosts: two hosts have the VTEP address {address}")
    return found


def _node_hosts(plain: dict[str, Any], *, home: str, problems: list[str]) -> dict[str, str]:
    """Each node's host; removes `host` from `plain`."""
    found: dict[str, str] = {}
    nodes = plain.get("nodes")
    if not isinstance(nodes, Mapping):
        return found
    for name, body in nodes.items():
        host = body.pop("host", home) if isinstance(body, dict) else home
        if not isinstance(host, str) or not host:
            problems.append(f"nodes.{name}.host: {excerpt(host)} is not a host name")
            host = home
        found[str(name)] = host
    return found


def _check_placement(
    spec: topology_spec.TopologySpec,
    net_hosts: Mapping[str, Mapping[str, str]],
    node_hosts: Mapping[str, str],
    *,
    home: str,
    problems: list[str],
) -> None:
    """A node's networks reach its host; a container-mode node is on its container's host."""
    for node in spec.nodes.values():
        host = node_hosts.get(node.name, home)
        for attachment in node.attachments:
            reach = net_hosts.get(attachment.network, {home: ""})
            if host not in reach:
                problems.append(
                    f"nodes.{node.name}.networks.{attachment.network}: network {attachment.network} does not "
                    f"reach host {host} (it is on {', '.join(reach)})"
                )
        if node.container is not None and node_hosts.get(node.container, home) != host:
            problems.append(
                f"nodes.{node.name}.host: it shares the namespace of node {node.container}, which is on host "
                f"{node_hosts.get(node.container, home)}"
            )


def _hosts_in_order(
    home: str, net_hosts: Mapping[str, Mapping[str, str]], node_hosts: Mapping[str, str]
) -> list[str]:
    hosts = [home]
    for host in [*(h for reach in net_hosts.values() for h in reach), *node_hosts.values()]:
        if host not in hosts:
            hosts.append(host)
    return hosts


def _share(
    spec: topology_spec.TopologySpec,
    plain: Mapping[str, Any],
    host: str,
    net_hosts: Mapping[str, Mapping[str, str]],
    node_hosts: Mapping[str, str],
) -> dict[str, Any]:
    """The topology file of `host`: its networks, its nodes with their addresses pinned, their routes."""
    bodies: Mapping[str, Any] = plain.get("networks") or {}
    networks: dict[str, Any] = {}
    for name, network in spec.networks.items():
        reach = net_hosts.get(name, {})
        if host not in reach:
            continue
        body = dict(bodies.get(name) or {})
        body["gateway"] = str(network.gateway)
        if reach.get(host):  # a spanning network: this host's VTEP and the others' forwarding state
            body["local"] = reach[host]
            peers = [address for other, address in reach.items() if other != host]
            body.setdefault("learning", False)
            if peers:
                body["peers"] = peers
            if peers and not body["learning"]:
                body["remote_nodes"] = [
                    {"address": str(attachment.address), "vtep": reach[node_hosts[node.name]]}
                    for node in spec.nodes.values()
                    if node_hosts[node.name] != host
                    for attachment in node.attachments
                    if attachment.network == name
                ]
        networks[name] = body
    node_bodies: Mapping[str, Any] = plain.get("nodes") or {}
    nodes: dict[str, Any] = {}
    for name, node in spec.nodes.items():
        if node_hosts[name] != host:
            continue
        body = dict(node_bodies.get(name) or {})
        if node.attachments:
            body["networks"] = {a.network: {"address": str(a.address)} for a in node.attachments}
        nodes[name] = body
    share: dict[str, Any] = {"name": spec.name, "networks": networks, "nodes": nodes}
    routes = [r for r in plain.get("routes") or [] if isinstance(r, Mapping) and r.get("node") in nodes]
    if routes:
        share["routes"] = routes
    return share


def _has_content(share: Mapping[str, Any]) -> bool:
    return bool(share["networks"] or share["nodes"])
