"""Writes about topology: persisting a host's last known state, and users' saved graph layouts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from webapp.errors import InvalidInput
from webapp.topology.models import HostState, SavedLayout
from webapp.topology.selectors import layout_dict, layout_view_check
from webapp.topology.state import State

LAYOUT_MAX_POSITIONS = 30_000
NODE_ID_MAX_CHARS = 512
COORDINATE_MAX = 1e7


def host_state_save(*, host_id: int, seq: int, state: State) -> None:
    """Store a host's state at seq, replacing what was stored (an UPDATE: reading the old state first,
    as update_or_create does, would decode megabytes only to throw them away)."""
    if not HostState.objects.filter(host_id=host_id).update(seq=seq, state=state, updated=timezone.now()):
        HostState.objects.create(host_id=host_id, seq=seq, state=state)


def _coordinate_ok(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and abs(value) <= COORDINATE_MAX


def _positions_clean(positions: object) -> dict[str, list[float]]:
    """The positions as {id: [x, y]} of floats, or InvalidInput naming the first bad entry."""
    if not isinstance(positions, Mapping):
        raise InvalidInput("positions is an object of node id → [x, y]", field="positions")
    clean = {}
    for node, xy in positions.items():
        field = f"positions.{node}"
        if not isinstance(node, str) or not 1 <= len(node) <= NODE_ID_MAX_CHARS:
            raise InvalidInput(f"a node id is 1-{NODE_ID_MAX_CHARS} characters", field=field)
        if not isinstance(xy, list | tuple) or len(xy) != 2 or not all(_coordinate_ok(v) for v in xy):
            raise InvalidInput(
                f"a position is [x, y]: two finite numbers within ±{COORDINATE_MAX:,.0f}", field=field
            )
        clean[node] = [float(xy[0]), float(xy[1])]
    return clean


def _remove_clean(remove: object) -> list[str]:
    if not isinstance(remove, list | tuple):
        raise InvalidInput("remove is a list of node ids", field="remove")
    for index, node in enumerate(remove):
        if not isinstance(node, str):
            raise InvalidInput("a node id is a string", field=f"remove.{index}")
    return list(remove)


def _count_check(positions: Mapping[str, Any]) -> None:
    if len(positions) > LAYOUT_MAX_POSITIONS:
        raise InvalidInput(
            f"a layout holds at most {LAYOUT_MAX_POSITIONS:,} positions (this one would have "
            f"{len(positions):,}): re-layout to reset it",
            field="positions",
        )


def layout_replace(*, user: AbstractBaseUser, view: str, positions: Mapping[str, Any]) -> dict[str, Any]:
    """Store exactly these positions as the user's layout of the view; returns it as saved_layout does."""
    layout_view_check(view)
    clean = _positions_clean(positions)
    _count_check(clean)
    layout, _ = SavedLayout.objects.update_or_create(user=user, view=view, defaults={"positions": clean})
    return layout_dict(view=view, layout=layout)


def layout_merge(
    *, user: AbstractBaseUser, view: str, positions: Mapping[str, Any], remove: Sequence[str]
) -> dict[str, Any]:
    """Set the given positions and drop the `remove` ids (an id in both is dropped) in the user's layout;
    returns it as saved_layout does.

    The stored row is locked for the read-modify-write, so concurrent merges all land. Nothing is
    stored (not even an empty layout) when the request is refused.
    """
    layout_view_check(view)
    clean = _positions_clean(positions)
    gone = _remove_clean(remove)
    with transaction.atomic():
        layout, _ = SavedLayout.objects.select_for_update().get_or_create(user=user, view=view)
        merged = {**layout.positions, **clean}
        for node in gone:
            merged.pop(node, None)
        _count_check(merged)  # refused: the rollback also undoes a layout just created
        layout.positions = merged
        layout.save(update_fields=["positions", "updated"])
    return layout_dict(view=view, layout=layout)
