"""Reads of desired state: topologies, their networks and nodes, with a constant number of queries.

A topology's status is derived, never stored: from its latest operation (cancelled ones aside) and
its host's presence (topology_status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery

from netcore import names
from webapp.errors import InvalidInput, NotFound
from webapp.networks.models import Attachment, Network, Node, PublishedPort, Route, Topology
from webapp.operations.models import Operation

Kind, Status = Operation.Kind, Operation.Status

#: A topology's statuses: new (never applied), pending (an operation queued, its host online),
#: waiting (queued, its host offline), applying (an apply or destroy running), ready (applied, and
#: the last plan found nothing to change), changed (edited since it was applied: plan and apply to
#: make it so), error (the last operation failed), drifted (a plan of the
#: applied topology found the host different, or its live state lacks part of it: networks.drift).
TOPOLOGY_STATUSES = ("new", "pending", "waiting", "applying", "ready", "changed", "error", "drifted")

_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True, slots=True)
class TopologyStatus:
    status: str
    message: str


def plan_changes(result: object) -> list[Mapping[str, Any]]:
    """The changes of a netcore plan result ({topology, applied, counts, changes: [{action, kind,
    name, detail}]}); [] for anything else."""
    changes = result.get("changes") if isinstance(result, Mapping) else None
    if not isinstance(changes, list):
        return []
    return [change for change in changes if isinstance(change, Mapping)]


def plan_lines(result: object) -> list[str]:
    """The plan's changes as netcore prints them: `+ bridge demo-front`, `- veth …`, `~ … (detail)`."""
    lines = []
    for change in plan_changes(result):
        symbol = _SYMBOL.get(str(change.get("action")), "?")
        detail = change.get("detail")
        line = f"{symbol} {change.get('kind')} {change.get('name')}"
        lines.append(f"{line} ({detail})" if detail else line)
    return lines


def _with_status(topologies: QuerySet[Topology]) -> QuerySet[Topology]:
    """What topology_status reads, in one more query: the latest operation and the kind of the
    latest apply or destroy that succeeded."""
    settled = Operation.objects.filter(
        topology_id=OuterRef("pk"), kind__in=[Kind.APPLY, Kind.DESTROY], status=Status.SUCCEEDED
    ).order_by("-created")
    return topologies.annotate(
        settled_kind=Subquery(settled.values("kind")[:1]),
        settled_version=Subquery(settled.values("topology_version")[:1]),
    ).prefetch_related(
        Prefetch(
            "operations",
            queryset=Operation.objects.exclude(status=Status.CANCELLED).order_by("-created")[:1],
            to_attr="latest_operations",
        )
    )


def topology_status(topology: Topology) -> TopologyStatus:
    """The topology's status and a sentence saying why (of a topology from topology_list or
    topology_get)."""
    latest: Operation | None = next(iter(getattr(topology, "latest_operations", ())), None)
    host = topology.host
    if latest is None:
        return TopologyStatus("new", "never applied")
    if latest.status == Status.PENDING:
        if host.online:
            return TopologyStatus("pending", f"{latest.kind} queued on host {host.name}")
        if host.revoked:
            since = "revoked"
        elif host.last_seen is not None:
            since = f"offline since {host.last_seen.isoformat()}"
        else:
            since = "never connected"
        return TopologyStatus("waiting", f"waiting for host {host.name} ({since})")
    if latest.status == Status.RUNNING:
        if latest.kind == Kind.PLAN:
            return TopologyStatus("pending", f"planning on host {host.name}")
        verb = "applying" if latest.kind == Kind.APPLY else "destroying"
        return TopologyStatus("applying", f"{verb} on host {host.name}")
    if latest.status == Status.FAILED:
        return TopologyStatus("error", latest.error)
    applied = getattr(topology, "settled_version", None)
    changed = TopologyStatus(
        "changed",
        f"changed since version {applied} was applied on host {host.name}: plan, then apply, to make it so",
    )
    if latest.kind == Kind.APPLY:
        if topology.drift:  # seen live since (networks.drift)
            lines = "\n".join(topology.drift)
            return TopologyStatus("drifted", f"host {host.name} differs from the applied topology:\n{lines}")
        if applied is not None and applied != topology.version:
            return changed
        return TopologyStatus("ready", f"applied on host {host.name}")
    if getattr(topology, "settled_kind", None) != Kind.APPLY:  # a plan of a topology not applied
        destroyed = getattr(topology, "settled_kind", None) == Kind.DESTROY
        return TopologyStatus("new", f"destroyed on host {host.name}" if destroyed else "never applied")
    if latest.topology_version is not None and latest.topology_version != applied:
        # a plan of edits made since the apply: what applying them would do, not drift
        lines = plan_lines(latest.result)
        return TopologyStatus(changed.status, "\n".join([changed.message, *lines]))
    lines = plan_lines(latest.result) or list(topology.drift)
    if lines:
        return TopologyStatus(
            "drifted", f"host {host.name} differs from the applied topology:\n" + "\n".join(lines)
        )
    if applied is not None and applied != topology.version:
        return changed
    return TopologyStatus("ready", f"applied on host {host.name}; the last plan found nothing to change")


def topology_list(*, host: str | None = None) -> QuerySet[Topology]:
    """Topologies (of the host of that name), with how many networks and nodes each has and what
    their status is read from."""
    topologies = _with_span(
        _with_status(Topology.objects.select_related("host", "created_by", "span_root__host"))
    ).annotate(network_count=Count("networks", distinct=True), node_count=Count("nodes", distinct=True))
    if host:
        topologies = topologies.filter(host__name=host)
    return topologies.order_by("host__name", "name")


def _with_span(topologies: QuerySet[Topology]) -> QuerySet[Topology]:
    """What topology_span reads, in two more queries whatever the number of rows, and without the
    spanning file and shares (hundreds of kilobytes each; read when used): whether a row is a home row,
    and the share rows of each home row."""
    shares = Topology.objects.select_related("host").only("id", "span_root_id", "host__name").order_by("id")
    return (
        topologies.defer(
            "span_document",
            "span_share",
            "span_root__span_document",
            "span_root__span_share",
            "span_root__drift",
        )
        .annotate(span_home=Q(span_document__isnull=False))
        .prefetch_related(
            Prefetch("span_shares", queryset=shares, to_attr="share_rows"),
            Prefetch("span_root__span_shares", queryset=shares, to_attr="share_rows"),
        )
    )


def topology_span(topology: Topology) -> dict[str, Any] | None:
    """For a topology spanning hosts: its home host and every host with a share of it (home first);
    None for a topology on one host."""
    home = getattr(topology, "span_home", None)
    if home is None:
        home = topology.span_document is not None
    root = topology.span_root or (topology if home else None)
    if root is None:
        return None
    rows = getattr(root, "share_rows", None)
    if rows is None:
        rows = Topology.objects.filter(span_root=root).select_related("host").order_by("id")
    return {"home": root.host.name, "hosts": [root.host.name, *(row.host.name for row in rows)]}


def topology_get(*, name: str, host: str | None = None) -> Topology:
    """The topology of that name (on the host of that name, which is needed when several hosts have
    one of that name, and to name a host's share of a topology spanning hosts), with its networks
    prefetched; its nodes are read as rows (topology_nodes)."""
    found = _with_span(
        _with_status(Topology.objects.select_related("host", "created_by", "span_root__host"))
    ).filter(name=name)
    # a topology spanning hosts is named by its home row; a host's share by ?host=
    found = found.filter(host__name=host) if host else found.filter(span_root__isnull=True)
    found = found.prefetch_related(Prefetch("networks", queryset=Network.objects.order_by("position")))
    topologies = list(found[:2])
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
    """Nodes of every topology (of the host and/or topology of those names), in file order; their
    rows as the API lists them come from node_rows."""
    nodes = Node.objects.all()
    if host:
        nodes = nodes.filter(topology__host__name=host)
    if topology:
        nodes = nodes.filter(topology__name=topology)
    return nodes.order_by("topology__host__name", "topology__name", "position")


def node_netns(topology: str, nodes: Mapping[str, Node], node: Node) -> str | None:
    """The namespace holding `node`'s interfaces, as the host names it: its own, the one at the end
    of its container: chain, or None in host mode (the host's own). `nodes`: its topology's, by name."""
    seen = set()
    while node.mode == Node.Mode.CONTAINER and node.container_of in nodes and node.name not in seen:
        seen.add(node.name)
        node = nodes[node.container_of]
    return None if node.mode == Node.Mode.HOST else names.namespace_name(topology, node.name)


def topology_nodes(topology: Topology) -> list[dict[str, Any]]:
    """The topology's nodes as node_rows makes them, in file order, without their host and
    topology (the topology they are shown in says those)."""
    ids = list(topology.nodes.order_by("position").values_list("id", flat=True))
    return [{k: v for k, v in row.items() if k not in ("host", "topology")} for row in node_rows(ids)]


def node_rows(ids: list[int]) -> list[dict[str, Any]]:
    """The nodes of those ids, in that order, as plain rows with their attachments, published
    ports and routes: four queries whatever the count, and no model instances (2000 nodes with
    their children built as instances take most of a second)."""
    nodes = {
        row["id"]: row
        for row in Node.objects.filter(id__in=ids).values(
            "id", "name", "mode", "container_of", "topology__name", "topology__host__name"
        )
    }
    rows: dict[int, dict[str, Any]] = {
        node_id: {
            "name": node["name"],
            "mode": node["mode"],
            "container": node["container_of"],
            "attachments": [],
            "ports": [],
            "routes": [],
            "host": node["topology__host__name"],
            "topology": node["topology__name"],
        }
        for node_id, node in ((node_id, nodes[node_id]) for node_id in ids if node_id in nodes)
    }
    attachments = Attachment.objects.filter(node_id__in=ids).order_by("node_id", "position")
    for node_id, network, ifname, address, static in attachments.values_list(
        "node_id", "network__name", "ifname", "address", "static"
    ):
        rows[node_id]["attachments"].append(
            {"network": network, "ifname": ifname, "address": address, "static": static}
        )
    ports = PublishedPort.objects.filter(node_id__in=ids).order_by("node_id", "position")
    for port in ports.values(
        "node_id", "text", "protocol", "host_ip", "host_port_first", "host_port_last",
        "container_port_first", "container_port_last",
    ):  # fmt: skip
        rows[port["node_id"]]["ports"].append(
            {
                "text": port["text"],
                "protocol": port["protocol"],
                "host_ip": port["host_ip"],
                "host_ports": [port["host_port_first"], port["host_port_last"]],
                "container_ports": [port["container_port_first"], port["container_port_last"]],
            }
        )
    routes = Route.objects.filter(node_id__in=ids).order_by("node_id", "position")
    for node_id, to, via, dev in routes.values_list("node_id", "to", "via", "dev"):
        rows[node_id]["routes"].append({"to": to, "via": via, "dev": dev})
    return list(rows.values())


def route_list(
    *, host: str | None = None, topology: str | None = None, node: str | None = None
) -> QuerySet[Route]:
    """Routes of every node (of the host, topology and/or node of those names), in file order."""
    routes = Route.objects.select_related("node__topology__host")
    if host:
        routes = routes.filter(node__topology__host__name=host)
    if topology:
        routes = routes.filter(node__topology__name=topology)
    if node:
        routes = routes.filter(node__name=node)
    return routes.order_by("node__topology__host__name", "node__topology__name", "position")
