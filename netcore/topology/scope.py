"""Which nodes an apply has to converge, from the document applied last and the new one.

An apply reads every namespace of its topology (netcore.topology.state), which for hundreds of
nodes is most of its time. When the caller knows the host matched the last applied document (the
apply succeeded and nothing has drifted since), only the nodes whose part of the document changed
need their namespaces read and converged; the host's own objects (bridges, VXLAN devices and their
entries, NAT) are converged whole anyway. So adding a node to a 300-node topology, or another host's
node to a spanning network (only forwarding entries change here), costs one namespace or none.

Both documents are compiled ones (every address pinned), which is what makes comparing them as data
sound: the same document gives the same kernel state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Network keys that only feed the VXLAN device's forwarding entries, converged on every apply.
FORWARDING_KEYS = ("peers", "remote_nodes")


def changed_nodes(before: object, after: Mapping[str, Any]) -> list[str] | None:
    """The nodes of `after` (or of `before`, removed since) whose namespaces an apply of `after` must
    converge, when `before` was applied and the host still matches it; None when anything beyond
    nodes and forwarding entries changed (a network, the name, a key unknown here): then every node."""
    if not isinstance(before, Mapping) or set(before) - {"name", "networks", "nodes", "routes"}:
        return None
    if set(after) - {"name", "networks", "nodes", "routes"} or before.get("name") != after.get("name"):
        return None
    if _without_forwarding(before.get("networks")) != _without_forwarding(after.get("networks")):
        return None
    old, new = _mapping(before.get("nodes")), _mapping(after.get("nodes"))
    if old is None or new is None:
        return None
    routes_old, routes_new = _routes(before.get("routes")), _routes(after.get("routes"))
    if routes_old is None or routes_new is None:
        return None
    changed = _differing(old, new) | _differing(routes_old, routes_new)
    for name in list(changed):  # a node in container mode lives in its container's namespace
        for body in (old.get(name), new.get(name)):
            mode = body.get("mode") if isinstance(body, Mapping) else None
            if isinstance(mode, str) and mode.startswith("container:"):
                changed.add(mode.removeprefix("container:"))
    return sorted(changed)


def _differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def _mapping(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return {}
    return value if isinstance(value, Mapping) else None


def _without_forwarding(networks: object) -> object:
    if not isinstance(networks, Mapping):
        return networks
    return {name: _body_without_forwarding(body) for name, body in networks.items()}


def _body_without_forwarding(body: object) -> object:
    if not isinstance(body, Mapping):
        return body
    return {key: value for key, value in body.items() if key not in FORWARDING_KEYS}


def _routes(routes: object) -> dict[str, list[Any]] | None:
    """The routes by node, in file order."""
    if routes is None:
        return {}
    if not isinstance(routes, list):
        return None
    by_node: dict[str, list[Any]] = {}
    for route in routes:
        if not isinstance(route, Mapping) or not isinstance(route.get("node"), str):
            return None
        by_node.setdefault(route["node"], []).append(route)
    return by_node
