"""Writes about topology: persisting a host's last known state."""

from __future__ import annotations

from webapp.topology.models import HostState
from webapp.topology.state import State


def host_state_save(*, host_id: int, seq: int, state: State) -> None:
    """Store a host's state at seq, replacing what was stored."""
    HostState.objects.update_or_create(host_id=host_id, defaults={"seq": seq, "state": state})
