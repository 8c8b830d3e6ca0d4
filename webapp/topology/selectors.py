"""Reads about topology: each active host's last known state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from webapp.errors import NotFound
from webapp.hosts.models import Host
from webapp.topology.state import KINDS, State


@dataclass(frozen=True)
class HostTopology:
    host: str
    online: bool
    seq: int
    state: State
    last_seen: str | None  # ISO 8601: when the host's agent was last heard


def _record(host: Host) -> HostTopology:
    stored = getattr(host, "state", None)
    state = stored.state if stored else {}
    return HostTopology(
        host=host.name,
        online=host.online,
        seq=stored.seq if stored else 0,
        state={kind: state.get(kind, {}) for kind in KINDS},
        last_seen=host.last_seen.isoformat() if host.last_seen else None,
    )


def topology_list(*, hosts: Iterable[str] | None = None) -> list[HostTopology]:
    """The stored state of every host that is not revoked (or of those named), by name."""
    query = Host.objects.filter(revoked_at__isnull=True).select_related("state")
    if hosts is not None:
        query = query.filter(name__in=list(hosts))
    return [_record(host) for host in query]


def topology_get(*, host: str) -> HostTopology:
    """The stored state of one host that is not revoked."""
    found = topology_list(hosts=[host])
    if not found:
        raise NotFound(f"no host named {host!r}", field="host")
    return found[0]


def host_names() -> list[str]:
    """Names of the hosts that are not revoked, sorted."""
    return list(Host.objects.filter(revoked_at__isnull=True).values_list("name", flat=True))
