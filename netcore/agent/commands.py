"""What the web app can ask an agent to do, run in a worker thread and answered as plain data."""

from __future__ import annotations

import logging
from collections.abc import Callable

from netcore.errors import InvalidSpec, NetcoreError
from netcore.topology import converge, spec

log = logging.getLogger("netcore.agent")


def _plan(
    topology: spec.TopologySpec,
    *,
    progress: converge.Progress | None,
    cancelled: converge.CancelCheck | None,
    nodes: list[str] | None,
) -> converge.Result:
    """plan reports no progress (it builds nothing), but may be cancelled."""
    return converge.plan(topology, cancelled=cancelled, nodes=nodes)


def _destroy(
    topology: spec.TopologySpec,
    *,
    progress: converge.Progress | None,
    cancelled: converge.CancelCheck | None,
    nodes: list[str] | None,
) -> converge.Result:
    """destroy removes all of the topology, whatever nodes are named."""
    return converge.destroy(topology, progress=progress, cancelled=cancelled)


ACTIONS: dict[str, Callable[..., converge.Result]] = {
    "plan": _plan,
    "apply": converge.apply,
    "destroy": _destroy,
}


def _node_names(nodes: object) -> list[str] | None:
    if nodes is None:
        return None
    if not isinstance(nodes, list) or not all(isinstance(name, str) for name in nodes):
        raise InvalidSpec("nodes: a list of node names, or null for every node", obj="nodes")
    return nodes


def run_command(
    action: object,
    topology: object,
    *,
    progress: converge.Progress | None = None,
    cancelled: converge.CancelCheck | None = None,
    nodes: object = None,
) -> dict:
    """Run plan/apply/destroy on a topology file's text; {"ok": True, "result"} or {"ok": False, "error"}.

    `progress(done, total)` hears how many nodes are built; once `cancelled()` is true the run
    stops at its next safe point, removes what it made and answers with a Cancelled error. `nodes`
    (plan and apply): only these nodes' namespaces are read and converged (converge.apply).
    """
    try:
        if action not in ACTIONS:
            raise InvalidSpec(f"action: {action!r} is not one of {', '.join(ACTIONS)}", obj="action")
        assert isinstance(action, str), "it is one of ACTIONS' keys"
        if not isinstance(topology, str):
            raise InvalidSpec("topology: the topology file's text is required", obj="topology")
        result = ACTIONS[action](
            spec.loads(topology, source="topology"),
            progress=progress,
            cancelled=cancelled,
            nodes=_node_names(nodes),
        )
    except NetcoreError as exc:
        log.info("%s failed: %s", action, exc)
        return {"ok": False, "error": exc.to_dict()}
    except Exception as exc:  # a bug must not take the agent down: report it to the caller
        log.exception("%s crashed", action)
        return {
            "ok": False,
            "error": {
                "error": "NetcoreError",
                "message": f"{action} crashed: {exc}",
                "object": None,
                "errno": None,
            },
        }
    log.info("%s: %s", action, result.summary())
    return {"ok": True, "result": result.to_dict()}
