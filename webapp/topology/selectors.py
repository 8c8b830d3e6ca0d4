"""Reads about topology: each active host's last known state, and users' saved graph layouts."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from webapp.errors import InvalidInput, NotFound
from webapp.hosts.models import Host
from webapp.topology.models import LAYOUT_VIEW_PATTERN, SavedLayout
from webapp.topology.state import KINDS, State

_LAYOUT_VIEW_RE = re.compile(LAYOUT_VIEW_PATTERN)


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


def layout_view_check(view: str) -> None:
    """Refuse a layout view name that is not 1-40 lowercase letters, digits or '-' (not first)."""
    if not _LAYOUT_VIEW_RE.fullmatch(view):
        raise InvalidInput(
            "a view name is 1-40 lowercase letters, digits or '-', starting with a letter or digit",
            field="view",
        )


def layout_dict(*, view: str, layout: SavedLayout | None) -> dict[str, Any]:
    """{"view", "positions", "updated"} of a stored layout, or of none ({} and None)."""
    if layout is None:
        return {"view": view, "positions": {}, "updated": None}
    return {"view": view, "positions": layout.positions, "updated": layout.updated}


def saved_layout(*, user: AbstractBaseUser, view: str) -> dict[str, Any]:
    """The user's node positions in a view: {"view", "positions": {id: [x, y]}, "updated"}."""
    layout_view_check(view)
    return layout_dict(view=view, layout=SavedLayout.objects.filter(user=user, view=view).first())
