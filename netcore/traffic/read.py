"""Read the conntrack table of each namespace of the host.

A socket is opened inside each namespace (on netcore's namespace worker: a socket stays in the
namespace it was made in) and the dump is read on the caller's thread, so the worker is held only
for the opening. Sockets are closed after each read: a socket kept open would keep its namespace,
and every interface in it, alive after a topology's destroy unmounted it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from netcore import netns as ns
from netcore.errors import NetcoreError
from netcore.netlink.conntrack import Flow, conntrack_dump, conntrack_socket
from netcore.netlink.socket import NetlinkSocket


@dataclass
class TrafficRead:
    """The flows of each namespace read, and why any other could not be read."""

    flows: dict[str, list[Flow]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def namespace_paths(*, processes: bool = True) -> dict[str, str | None]:
    """Every namespace netcore sees, by the name a snapshot gives it, with the path to enter it
    (None: the host, the caller's own)."""
    return {
        info.name: None if info.kind == "host" else info.path for info in ns.netns_list(processes=processes)
    }


def traffic_read(paths: Mapping[str, str | None]) -> TrafficRead:
    """Dump the conntrack table of each namespace (name → path, None for the caller's own). A
    namespace that vanished meanwhile is left out; one that cannot be read is named in `problems`."""
    out = TrafficRead()
    for name, path in paths.items():
        sock: NetlinkSocket | None = None
        try:
            sock = conntrack_socket() if path is None else ns.netns_run(path=path, fn=conntrack_socket)
            out.flows[name] = conntrack_dump(sock, netns=name)
        except (OSError, NetcoreError) as exc:
            if path is None or os.path.exists(path):
                out.problems[name] = str(exc)
        finally:
            if sock is not None:
                sock.close()
    return out
