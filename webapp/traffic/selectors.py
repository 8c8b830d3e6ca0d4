"""Reads of the traffic history: a host's edges, live or ended, newest first."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from webapp.errors import InvalidInput
from webapp.hosts.selectors import host_exists
from webapp.traffic.models import TrafficEdge

STATES = ("live", "ended", "all")


def traffic_list(
    *, host: str | None = None, state: str = "all", namespace: str | None = None
) -> QuerySet[TrafficEdge]:
    """Edges, live ones first, then by when they ended (latest first), of the host of that name, in
    that state (live, ended or all), with that namespace as client or server. One query, with the host."""
    if state not in STATES:
        raise InvalidInput(f"unknown state {state!r} (use {', '.join(STATES)})", field="state")
    edges = TrafficEdge.objects.select_related("host")
    if host:
        if not host_exists(name=host):
            raise InvalidInput(f"no host named {host!r}", field="host")
        edges = edges.filter(host__name=host)
    if state != "all":
        edges = edges.filter(ended__isnull=state == "live")
    if namespace:
        edges = edges.filter(Q(client=namespace) | Q(server=namespace))
    return edges.order_by(F("ended").desc(nulls_first=True), "-last_seen", "-id")
