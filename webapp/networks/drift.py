"""Drift seen live: what a host's kernel lacks of the topologies applied there, from its agent's state.

Reconcile on connect plans a host's topologies (netcore's plan is the full comparison). Between
connects, the agent's events keep the host's state current in the web app (webapp.hosts.consumers
saves it at most once a second); after each save, drift_check compares it with every topology whose
last operation applied it, and records what is gone, down or routed elsewhere (with an overlay's
forwarding entries missing, wrong or extra: netcore.topology.overlay), so the topology shows
`drifted` within a second or two of someone deleting a veth, flushing an address or changing a route
by hand. Nothing is repaired unless the topology has auto_repair (or a user asks: topology_repair).

`missing` is pure: netcore's parser (spec) and naming rules (names) say what the topology made.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from netcore import names
from netcore.errors import InvalidSpec
from netcore.ipam import IPAddress, IPNetwork
from netcore.topology import spec as topology_spec
from netcore.topology.overlay_entries import overlay_drift
from netcore.topology.spec import NodeSpec, TopologySpec
from webapp.networks.models import Topology
from webapp.networks.services import last_applied, topologies_auto_repair

State = Mapping[str, Mapping[str, Mapping[str, Any]]]
_IP_VERSION = {2: 4, 10: 6}  # a route's address family (AF_INET, AF_INET6) as an IP version


def missing(spec: TopologySpec, state: State) -> list[str]:
    """What of the topology the state lacks (gone), has down or routes elsewhere, one line each, in
    file order."""
    held = state.get("namespaces", {}).values()
    namespaces = {ns["name"] for ns in held}
    host_ns = next((ns["name"] for ns in held if ns.get("kind") == "host"), None)
    links = {(link["netns"], link["name"]): link for link in state.get("links", {}).values()}
    addresses = {
        (a["netns"], a.get("ifname"), f"{a['address']}/{a['prefixlen']}")
        for a in state.get("addresses", {}).values()
    }
    routes: dict[str, dict[tuple[int, str], Mapping]] = {}
    for route in state.get("routes", {}).values():
        family = _IP_VERSION.get(route.get("family"))
        routes.setdefault(route["netns"], {})[(family, route["dst"])] = route
    lines: list[str] = []

    def link_line(netns: str | None, name: str, what: str) -> None:
        link = links.get((netns, name)) if netns is not None else None
        if link is None:
            lines.append(f"- {what} {name} is gone")
        elif not link.get("up"):
            lines.append(f"~ {what} {name} is down")

    for network in spec.networks.values():
        link_line(host_ns, names.bridge_name(spec.name, network.name), "bridge")
    for node in spec.nodes.values():
        if node.mode not in ("bridge", "none"):
            continue  # host mode has no namespace; container mode lives in another node's
        netns = names.namespace_name(spec.name, node.name)
        if netns not in namespaces:
            lines.append(f"- namespace {netns} is gone")
            continue
        for att in node.attachments:
            link_line(host_ns, names.host_veth_name(spec.name, node.name, att.network), "veth")
            link_line(netns, att.ifname, f"interface (in {netns})")
            prefix = spec.networks[att.network].subnet.prefixlen
            cidr = f"{att.address}/{prefix}"
            if (netns, att.ifname) in links and (netns, att.ifname, cidr) not in addresses:
                lines.append(f"- address {cidr} on {att.ifname} in {netns} is gone")
        if all((netns, att.ifname) in links for att in node.attachments):  # else the routes went with it
            lines += _route_lines(netns, wanted_routes(spec, node), routes.get(netns, {}))
    return lines


def wanted_routes(spec: TopologySpec, node: NodeSpec) -> list[tuple[IPNetwork, IPAddress | None]]:
    """The routes apply gives the namespace of `node` (destination, gateway): the file's routes of
    the nodes living there and the default route netcore adds (spec.default_route)."""
    netns = names.namespace_name(spec.name, node.name)
    wanted = [(r.to, r.via) for r in spec.routes if topology_spec.netns_of(spec, r.node) == netns]
    default = topology_spec.default_route(spec, node, (to for to, _ in wanted))
    return wanted if default is None else [default, *wanted]


def _route_lines(
    netns: str, wanted: list[tuple[IPNetwork, IPAddress | None]], have: Mapping[tuple[int, str], Mapping]
) -> list[str]:
    lines = []
    for to, via in wanted:
        route = have.get((4 if to.version == 4 else 6, "default" if to.prefixlen == 0 else str(to)))
        if route is None:
            lines.append(f"- route {to} in {netns} is gone")
        elif via is not None and route.get("gateway") != str(via):
            lines.append(
                f"~ route {to} in {netns} goes via {route.get('gateway') or 'no gateway'}, not {via}"
            )
    return lines


@functools.lru_cache(maxsize=64)
def _spec(document: str) -> TopologySpec | None:
    """The applied document parsed, once: this runs after every save of a host's state (up to once a
    second per host), and a document stays the same until the next apply."""
    try:
        return topology_spec.loads(document)
    except InvalidSpec:  # a document netcore applied parses: only a newer netcore could refuse it
        return None


def drift_check(*, host_id: int, state: State) -> list[Topology]:
    """Record what each applied topology of the host lacks in `state`, and queue a repair of those
    with auto_repair that drifted; the topologies whose record changed (so browsers can be told)."""
    changed = []
    # not the spanning file and shares (hundreds of kilobytes): this runs after every state save
    topologies = (
        Topology.objects.filter(host_id=host_id).select_related("host").defer("span_document", "span_share")
    )
    for topology in topologies:
        applied = last_applied(topology.id)
        spec = _spec(applied.document) if applied is not None else None
        drift = missing(spec, state) + overlay_drift(spec, state) if spec else []
        if drift != topology.drift:
            with transaction.atomic():
                Topology.objects.filter(pk=topology.pk).update(drift=drift)
            topology.drift = drift
            changed.append(topology)
    topologies_auto_repair(changed)
    return changed
