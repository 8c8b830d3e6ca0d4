"""Reads of desired state: topologies, their networks and nodes, with a constant number of queries."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from webapp.errors import InvalidInput, NotFound
from webapp.networks.models import Attachment, Network, Node, Topology


def topology_list(*, host: str | None = None) -> QuerySet[Topology]:
    """Topologies (of the host of that name), with how many networks and nodes each has."""
    topologies = Topology.objects.select_related("host", "created_by").annotate(
        network_count=Count("networks", distinct=True), node_count=Count("nodes", distinct=True)
    )
    if host:
        topologies = topologies.filter(host__name=host)
    return topologies.order_by("host__name", "name")


def _nodes_prefetched(nodes: QuerySet[Node]) -> QuerySet[Node]:
    return nodes.prefetch_related(
        Prefetch("attachments", queryset=Attachment.objects.select_related("network").order_by("position")),
        "ports",
        "routes",
    )


def topology_get(*, name: str, host: str | None = None) -> Topology:
    """The topology of that name (on the host of that name, which is needed when several hosts have
    one of that name), with its networks and nodes prefetched."""
    found = Topology.objects.select_related("host", "created_by").filter(name=name)
    if host:
        found = found.filter(host__name=host)
    topologies = list(
        found.prefetch_related(
            Prefetch("networks", queryset=Network.objects.order_by("position")),
            Prefetch("nodes", queryset=_nodes_prefetched(Node.objects.order_by("position"))),
        )[:2]
    )
    if not topologies:
        raise NotFound(f"no topology {name!r}" + (f" on host {host!r}" if host else ""))
    if len(topologies) > 1:
        raise InvalidInput(
            f"topology {name!r} exists on several hosts: say which with ?host=NAME", field="host"
        )
    return topologies[0]


def network_list(*, host: str | None = None, topology: str | None = None) -> QuerySet[Network]:
    """Networks of every topology (of the host and/or topology of those names)."""
    networks = Network.objects.select_related("topology__host")
    if host:
        networks = networks.filter(topology__host__name=host)
    if topology:
        networks = networks.filter(topology__name=topology)
    return networks.order_by("topology__host__name", "topology__name", "position")


def node_list(*, host: str | None = None, topology: str | None = None) -> QuerySet[Node]:
    """Nodes of every topology (of the host and/or topology of those names), with their attachments,
    published ports and routes."""
    nodes = Node.objects.select_related("topology__host")
    if host:
        nodes = nodes.filter(topology__host__name=host)
    if topology:
        nodes = nodes.filter(topology__name=topology)
    return _nodes_prefetched(nodes.order_by("topology__host__name", "topology__name", "position"))
