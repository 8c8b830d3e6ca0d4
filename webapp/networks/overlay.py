"""The overlay consistency check of a network spanning hosts, from the hosts' latest known states.

netcore.topology.overlay_check does the checking; this reads what it needs: the network's VNI, UDP
port and learning mode from the file, each host's VTEP from its share, and each host's live state as
its agent last saved it (webapp.topology's HostState, at most a few seconds behind the kernel).
"""

from __future__ import annotations

from typing import Any

from netcore.topology.overlay_check import HostView, overlay_check
from webapp.errors import InvalidInput, NotFound
from webapp.networks.models import Network, Topology
from webapp.topology.models import HostState


def network_overlay(*, topology: Topology, network: str) -> dict[str, Any]:
    """Findings of the check for `network` of `topology` (its home row or any host's share)."""
    root = topology.span_root or topology
    rows = Network.objects.filter(name=network).filter(topology__in=[root, *root.span_shares.all()])
    shares = list(rows.order_by("topology_id").values_list("topology__host__name", "options", "subnet"))
    if not shares:
        raise NotFound(f"topology {root.name} has no network {network!r}")
    vteps = {host: options.get("local") for host, options, _ in shares}
    if root.span_document is None or not all(vteps.values()):
        raise InvalidInput(
            f"network {network} of topology {root.name} does not span hosts: there is no overlay to check",
            field="network",
        )
    _, options, subnet = shares[0]
    states = dict(HostState.objects.filter(host__name__in=vteps).values_list("host__name", "state"))
    findings = overlay_check(
        topology=root.name,
        network=network,
        subnet=subnet,
        vni=options["vni"],
        dstport=options["dstport"],
        learning=options["learning"],
        hosts=[HostView(name=host, vtep=vtep, state=states.get(host) or {}) for host, vtep in vteps.items()],
    )
    return {
        "topology": root.name,
        "network": network,
        "hosts": [
            {"name": host, "vtep": vtep, "state_known": host in states} for host, vtep in vteps.items()
        ],
        "consistent": not findings,
        "findings": [finding.to_dict() for finding in findings],
    }


# Findings last told to browsers, by (home row id, network): this worker's own memory, so a change is
# told by the worker that saw the state that made it (with several workers, each tells what it saw).
_last_findings: dict[tuple[int, str], frozenset[tuple[str, str, str]]] = {}


def overlays_changed(*, host_id: int) -> list[Topology]:
    """Check again every network spanning hosts that reaches host `host_id` (after its agent's state
    was saved) and return the home rows of those whose findings changed: browsers are told to read the
    check again. So findings follow the kernel within a state save, without anyone polling."""
    roots = {
        row.span_root or row
        for row in Topology.objects.filter(host_id=host_id).select_related("span_root__host", "host")
        if row.span_root_id is not None or row.span_document is not None
    }
    changed = []
    for root in roots:
        bodies = (root.span_document or {}).get("networks") or {}
        networks = [name for name, body in bodies.items() if isinstance(body, dict) and "hosts" in body]
        for network in networks:
            try:
                findings = network_overlay(topology=root, network=network)["findings"]
            except (InvalidInput, NotFound):  # not spanning hosts (any more)
                continue
            seen = frozenset((f["host"], f["kind"], f["object"]) for f in findings)
            if _last_findings.get((root.id, network)) != seen:
                _last_findings[(root.id, network)] = seen
                changed.append(root)
    return list(dict.fromkeys(changed))
