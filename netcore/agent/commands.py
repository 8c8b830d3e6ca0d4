"""What the web app can ask an agent to do, run in a worker thread and answered as plain data."""

from __future__ import annotations

import logging
from collections.abc import Callable

from netcore.errors import InvalidSpec, NetcoreError
from netcore.shaping import link_shape, link_unshape
from netcore.shaping_spec import shape_parse
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


LINK_ACTION = "link."  # prefix of the commands that change one link (link.shape, link.unshape)


def run_link_command(action: str, request: object) -> dict:
    """Shape a link or take its shaping off: {"ok": True, "result": the link} or {"ok": False, "error"}.
    `request` is {"netns", "link", "shaping"} (shaping: netcore.shaping_spec's fields; shape only)."""
    try:
        if not isinstance(request, dict):
            raise InvalidSpec("request: expected an object", obj="request")
        netns, name = request.get("netns"), request.get("link")
        if not isinstance(netns, str) or not netns:
            raise InvalidSpec("netns: the link's namespace", obj="netns")
        if not isinstance(name, str) or not name:
            raise InvalidSpec("link: the interface's name", obj="link")
        if action == "shape":
            link = link_shape(netns=netns, name=name, spec=shape_parse(request.get("shaping")))
        elif action == "unshape":
            link = link_unshape(netns=netns, name=name)
        else:
            raise InvalidSpec(f"action: link.{action} is not link.shape or link.unshape", obj="action")
    except NetcoreError as exc:
        log.info("link.%s failed: %s", action, exc)
        return {"ok": False, "error": exc.to_dict()}
    log.info("link.%s %s in %s: %s", action, name, netns, link.shaping)
    return {"ok": True, "result": link.to_dict()}
