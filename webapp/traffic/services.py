"""Writes of the traffic history, from what a host's agent reports of its `traffic` state kind."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.traffic.models import TrafficEdge

TRAFFIC_KIND = "traffic"  # the agent's state kind (docs/agent-protocol.md, "State")
_REPORTED = ("client", "server", "server_address", "protocol", "port", "flows", "packets", "bytes", "seen_in")
_UPDATED = [*_REPORTED, "last_seen", "ended", "peak_flows", "packets_seen", "bytes_seen"]


def _take(edge: TrafficEdge, report: Mapping[str, Any], now: datetime.datetime) -> None:
    """Make `edge` what `report` says (live), counting what its sums grew by since the last report."""
    was_live = edge.ended is None
    grew_packets = report["packets"] - edge.packets if was_live else report["packets"]
    grew_bytes = report["bytes"] - edge.bytes if was_live else report["bytes"]
    edge.packets_seen += max(0, grew_packets)
    edge.bytes_seen += max(0, grew_bytes)
    for field in _REPORTED:
        setattr(edge, field, report[field])
    edge.peak_flows = max(edge.peak_flows, report["flows"])
    edge.last_seen = now
    edge.ended = None


def _changed(edge: TrafficEdge, report: Mapping[str, Any]) -> bool:
    return edge.ended is not None or any(getattr(edge, field) != report[field] for field in _REPORTED)


def traffic_apply(
    *, host_id: int, reports: Mapping[str, Mapping[str, Any] | None], whole: bool = False
) -> int:
    """Keep what a host's agent reports of its traffic edges (`reports`: key → object, None when the
    agent deleted it), in one transaction: a reported edge is live (created, updated, or live again
    keeping its first_seen), a deleted one ended. With `whole` (a snapshot) the reports are every
    live edge of the host: the live ones they lack ended. Unchanged edges are not written. Returns
    how many rows were written."""
    now = timezone.now()
    with transaction.atomic():
        found = TrafficEdge.objects.filter(host_id=host_id)
        if whole:
            found = found.filter(ended__isnull=True) | found.filter(key__in=list(reports))
        else:
            found = found.filter(key__in=list(reports))
        edges = {edge.key: edge for edge in found}
        created: list[TrafficEdge] = []
        updated: list[TrafficEdge] = []
        for key, report in reports.items():
            edge = edges.get(key)
            if report is None:
                if edge is not None and edge.ended is None:
                    edge.ended = now
                    updated.append(edge)
            elif edge is None:
                edge = TrafficEdge(host_id=host_id, key=key, first_seen=now, last_seen=now, ended=now)
                _take(edge, report, now)
                created.append(edge)
            elif _changed(edge, report):
                _take(edge, report, now)
                updated.append(edge)
        if whole:
            for key, edge in edges.items():
                if key not in reports and edge.ended is None:
                    edge.ended = now
                    updated.append(edge)
        TrafficEdge.objects.bulk_create(created)
        TrafficEdge.objects.bulk_update(updated, _UPDATED)
    return len(created) + len(updated)


def traffic_prune(*, now: datetime.datetime | None = None) -> int:
    """Forget edges that ended more than SWITCHBOARD_TRAFFIC_HISTORY_DAYS ago; how many were removed."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.TRAFFIC_HISTORY_DAYS)
    removed, _ = TrafficEdge.objects.filter(ended__lt=cutoff).delete()
    return removed
