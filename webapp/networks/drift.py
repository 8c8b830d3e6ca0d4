"""Drift seen live: what a host's kernel lacks of the topologies applied there, from its agent's state.

Reconcile on connect plans a host's topologies (netcore's plan is the full comparison). Between
connects, the agent's events keep the host's state current in the web app (webapp.hosts.consumers
saves it at most once a second); after each save, drift_check compares it with every topology whose
last operation applied it, and records what is gone or down, so the topology shows `drifted` within a
second or two of someone deleting a veth or flushing an address by hand. Nothing is repaired unless
the topology has auto_repair (or a user asks: services.topology_repair).

`missing` is pure: netcore's parser (spec) and naming rules (names) say what the topology made.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from netcore import names
from netcore.errors import InvalidSpec
from netcore.topology import spec as topology_spec
from netcore.topology.spec import TopologySpec
from webapp.networks.models import Topology
from webapp.networks.services import last_applied, topologies_auto_repair

State = Mapping[str, Mapping[str, Mapping[str, Any]]]


def missing(spec: TopologySpec, state: State) -> list[str]:
    """What of the topology the state lacks (gone) or has down, one line each, in file order."""
    held = state.get("namespaces", {}).values()
    namespaces = {ns["name"] for ns in held}
    host_ns = next((ns["name"] for ns in held if ns.get("kind") == "host"), None)
    links = {(link["netns"], link["name"]): link for link in state.get("links", {}).values()}
    addresses = {
        (a["netns"], a.get("ifname"), f"{a['address']}/{a['prefixlen']}")
        for a in state.get("addresses", {}).values()
    }
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
    for topology in Topology.objects.filter(host_id=host_id).select_related("host"):
        applied = last_applied(topology.id)
        spec = _spec(applied.document) if applied is not None else None
        drift = missing(spec, state) if spec else []
        if drift != topology.drift:
            with transaction.atomic():
                Topology.objects.filter(pk=topology.pk).update(drift=drift)
            topology.drift = drift
            changed.append(topology)
    topologies_auto_repair(changed)
    return changed
