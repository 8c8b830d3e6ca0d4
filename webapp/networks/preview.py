"""The connectivity preview beside a plan: who reaches whom once the stored topology is applied,
compared with what the host has of it now (the document last applied), and what the change breaks.

A read: nothing is sent to the host. netcore.topology.reach works it out from the two documents.
"""

from __future__ import annotations

from typing import Any

from netcore.errors import Unsupported
from netcore.topology import reach
from netcore.topology import spec as topology_spec
from webapp.errors import Conflict
from webapp.networks.models import Topology
from webapp.networks.services import last_applied, topology_document


def topology_preview(*, topology: Topology, host_forwards: bool = False) -> dict[str, Any]:
    """reach.diff of the document last applied (none: never applied, or destroyed since) and the
    stored rows, as plain data; `host_forwards` says the host routes between networks (netcore never
    turns forwarding on; Docker does). Conflict when the topology is too large to work out."""
    applied = last_applied(topology.id)
    before = topology_spec.loads(applied.document) if applied is not None else None
    after = topology_spec.parse(topology_document(topology=topology, pinned=True))
    try:
        result = reach.diff(before, after, host_forwards=host_forwards)
    except Unsupported as exc:
        raise Conflict(f"no connectivity preview: {exc}") from None
    return {**result.to_dict(), "applied": applied is not None, "host_forwards": host_forwards}
