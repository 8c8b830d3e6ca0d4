"""The agent's traffic edges: every `interval` seconds, the namespaces of ours that appeared are armed
(netcore.traffic.arm), every namespace of the live model has its conntrack table read, and the flows
become "talks to" edges (state kind `traffic`), handed on as a whole read of that kind: Changes sends
only what differs. The work runs in a worker thread, never on the event loop, and waits while
`paused()` (the agent runs a command: an apply wants netcore's namespace worker to itself, and a
thousand namespaces' sockets opened on it every interval would slow it). When the agent stops, the
namespaces it armed are disarmed (their table deleted, accounting put back)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from netcore.errors import NetcoreError
from netcore.model import Snapshot
from netcore.traffic.arm import Arming
from netcore.traffic.edges import KIND, traffic_edges
from netcore.traffic.read import namespace_paths, traffic_read

log = logging.getLogger("netcore.agent")

INTERVAL = 2.0  # seconds between reads (the agent's --traffic-interval)

ProtocolState = dict[str, dict[str, dict[str, Any]]]


class TrafficWatch:
    """Reads the host's conntrack tables into protocol state every `interval` seconds."""

    def __init__(
        self,
        *,
        on_state: Callable[[ProtocolState], None],
        snapshot: Callable[[], Snapshot | None],
        interval: float = INTERVAL,
        processes: bool = True,
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        self.on_state = on_state
        self.snapshot = snapshot  # the live model's state, read on the event loop
        self.interval = interval
        self.processes = processes
        self.paused = paused
        self.arming = Arming()
        self.edges: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # a read and the final disarm never overlap
        self._problems: dict[str, str] = {}  # why namespaces could not be read (said when it changes)
        self._failure = ""  # why the last round failed

    @property
    def state(self) -> ProtocolState:
        """The latest edges as protocol state (for a snapshot)."""
        return {KIND: dict(self.edges)}

    async def run(self) -> None:
        """Until cancelled: read, hand on, wait; then disarm what was armed."""
        try:
            while True:
                snap = None if self.paused() else self.snapshot()
                if snap is not None:
                    try:
                        self.edges = await asyncio.to_thread(self.read, snap)
                    except (NetcoreError, OSError) as exc:
                        if str(exc) != self._failure:  # said once, not every interval
                            log.warning("traffic: reading conntrack failed: %s", exc)
                        self._failure = str(exc)
                    except Exception:  # a bug here must not stop the agent: said, and tried again
                        log.exception("traffic: reading conntrack failed")
                    else:
                        self._failure = ""
                        self.on_state(self.state)
                await asyncio.sleep(self.interval)
        finally:
            await asyncio.to_thread(self.close)

    def read(self, snap: Snapshot) -> dict[str, dict[str, Any]]:
        """One round (in a worker thread): arm what is new, read every namespace of `snap`, make edges."""
        with self._lock:
            for name in self.arming.update(snap):
                log.info("traffic: conntrack now tracks %s", name)
            wanted = {n.name for n in snap.namespaces}
            paths = {
                name: path
                for name, path in namespace_paths(processes=self.processes).items()
                if name in wanted
            }
            got = traffic_read(paths)
            for name, problem in got.problems.items():
                if self._problems.get(name) != problem:
                    log.warning("traffic: cannot read the conntrack table of %s: %s", name, problem)
            self._problems = got.problems
            return traffic_edges(got.flows, snap)

    def close(self) -> None:
        """Disarm every namespace this watch armed."""
        with self._lock:
            self.arming.disarm_all()
