"""The overlay consistency check of a network spanning hosts, from the hosts' latest known states.

netcore.topology.overlay_check does the checking; this reads what it needs: the network's VNI, UDP
port and learning mode from the file, each host's VTEP from its share, and each host's live state as
its agent last saved it (webapp.topology's HostState, at most a few seconds behind the kernel).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q

from netcore.topology.overlay_check import HostDigest, HostView, host_digest, overlay_check
from webapp.errors import InvalidInput, NotFound
from webapp.networks.models import Network, Topology
from webapp.topology.models import HostState
from webapp.topology.state import State


def network_overlay(
    *, topology: Topology, network: str, known: tuple[int, int, State] | None = None
) -> dict[str, Any]:
    """Findings of the check for `network` of `topology` (its home row or any host's share). `known`:
    (host id, seq, state) of a state the caller holds and just saved, used instead of reading it back."""
    root = topology.span_root or topology
    rows = Network.objects.filter(name=network).filter(Q(topology=root) | Q(topology__span_root=root))
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
    saved = {
        host: (host_id, seq, updated)
        for host, host_id, seq, updated in HostState.objects.filter(host__name__in=vteps).values_list(
            "host__name", "host_id", "seq", "updated"
        )
    }
    digests = [
        _digest(
            root=root,
            network=network,
            subnet=subnet,
            host=host,
            vtep=vtep,
            saved=saved.get(host),
            known=known,
        )
        for host, vtep in vteps.items()
    ]
    findings = overlay_check(
        topology=root.name,
        network=network,
        subnet=subnet,
        vni=options["vni"],
        dstport=options["dstport"],
        learning=options["learning"],
        hosts=digests,
    )
    return {
        "topology": root.name,
        "network": network,
        "hosts": [{"name": host, "vtep": vtep, "state_known": host in saved} for host, vtep in vteps.items()],
        "consistent": not findings,
        "findings": [finding.to_dict() for finding in findings],
    }


# Each host's digest for each spanning network (netcore's HostDigest), by (host id, home row id, network,
# VTEP, subnet), with the saved state (its `updated`) it was made from: this worker's own memory. A check
# after one host's state is saved digests that state only; the others' digests are reused while their
# saved states stay the same.
_digests: dict[tuple[int, int, str, str, str], tuple[datetime, HostDigest]] = {}


def _digest(
    *,
    root: Topology,
    network: str,
    subnet: str,
    host: str,
    vtep: str,
    saved: tuple[int, int, datetime] | None,
    known: tuple[int, int, State] | None,
) -> HostDigest:
    if saved is None:  # no state saved yet: a host with nothing
        return host_digest(HostView(host, vtep, {}), topology=root.name, network=network, subnet=subnet)
    host_id, seq, updated = saved
    key = (host_id, root.id, network, vtep, subnet)
    cached = _digests.get(key)
    if cached is not None and cached[0] == updated:
        return cached[1]
    if known is not None and known[:2] == (host_id, seq):
        state = known[2]
    else:
        state = HostState.objects.filter(host_id=host_id).values_list("state", flat=True).first() or {}
    digest = host_digest(HostView(host, vtep, state), topology=root.name, network=network, subnet=subnet)
    _digests[key] = (updated, digest)
    return digest


# Findings last told to browsers, by (home row id, network): this worker's own memory, so a change is
# told by the worker that saw the state that made it (with several workers, each tells what it saw).
_last_findings: dict[tuple[int, str], frozenset[tuple[str, str, str]]] = {}


def overlays_changed(*, host_id: int, seq: int, state: State) -> list[Topology]:
    """Check again every network spanning hosts that reaches host `host_id` (after its agent's state
    `state`, at `seq`, was saved) and return the home rows of those whose findings changed: browsers
    are told to read the check again. So findings follow the kernel within a state save, without
    anyone polling; only this host's state is digested again (the others' digests are kept)."""
    rows = (
        Topology.objects.filter(host_id=host_id)
        .filter(Q(span_root__isnull=False) | Q(span_document__isnull=False))
        .select_related("span_root__host", "host")
        .defer("drift", "span_share", "span_root__drift", "span_root__span_share")
    )
    roots = {row.span_root or row for row in rows}
    changed = []
    for root in roots:
        bodies = (root.span_document or {}).get("networks") or {}
        networks = [name for name, body in bodies.items() if isinstance(body, dict) and "hosts" in body]
        for network in networks:
            try:
                findings = network_overlay(topology=root, network=network, known=(host_id, seq, state))[
                    "findings"
                ]
            except (InvalidInput, NotFound):  # not spanning hosts (any more)
                continue
            seen = frozenset((f["host"], f["kind"], f["object"]) for f in findings)
            if _last_findings.get((root.id, network)) != seen:
                _last_findings[(root.id, network)] = seen
                changed.append(root)
    return list(dict.fromkeys(changed))
