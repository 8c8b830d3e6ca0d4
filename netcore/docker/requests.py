"""Every request the engine may be sent through Switchboard, by action, with the check it gets
first (pure: the web app checks requests with the code the agent runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netcore.docker import compose, spec
from netcore.errors import InvalidSpec

CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    **spec.CHECKS,
    "compose.up": compose.compose_up,
    "compose.down": compose.compose_down,
}


def request_check(action: Any, body: Any) -> dict[str, Any]:
    """The checked, normalised request for `action` (one of CHECKS); InvalidSpec naming the field."""
    if action not in CHECKS:
        raise InvalidSpec(f"action: {action!r} is not one of {', '.join(CHECKS)}", obj="action")
    return CHECKS[action](body)
