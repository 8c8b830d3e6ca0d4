"""The measuring side of the live figures P3 and P4: browser-like websocket clients and kernel changes.

Run by `bench.live` inside the figure's throwaway namespace (`nsenter --net=...`), so its sockets reach
that namespace's daphne on 127.0.0.1 and its kernel changes land in the namespace the agent watches:
`python -m bench.live_client < job.json`. The job is one JSON object
`{"mode": "p3" | "p4", "url", "token", "host", "prefix", ...}` on stdin (tokens stay out of `ps`);
the results are one JSON object on the last line of stdout. Times are `time.monotonic()` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from netcore import live, names
from netcore import requests as rq
from netcore.netlink import codec as c
from netcore.netlink import parse
from netcore.netlink.socket import NetlinkSocket
from netcore.snapshot import snapshot
from netcore.topology import converge, spec
from netcore.topology.desired import desired

ACTIONS = ("set", "del")


class Viewer:
    """One browser socket on /ws/topology/: when each link's first `set`/`del` event for our host arrived."""

    def __init__(self, ws: ClientConnection, host: str) -> None:
        self.ws = ws
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.online: asyncio.Future[float] = self.loop.create_future()
        self.seen: dict[str, dict[str, float]] = {action: {} for action in ACTIONS}
        self.waiters: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.frames: list[tuple[float, str, int]] = []  # (arrival, type, bytes) of our host's topology frames
        self.snapshots = 0  # topology.snapshot frames of our host with the agent online
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                arrived = time.monotonic()  # before parsing: the frame is here
                self._on_frame(json.loads(raw), arrived, len(raw))

    def _on_frame(self, frame: dict[str, Any], arrived: float, size: int) -> None:
        if frame.get("host") != self.host:
            return
        kind = frame.get("type", "")
        if kind in ("topology.snapshot", "topology.delta"):
            self.frames.append((arrived, kind, size))
        if kind == "topology.snapshot" and frame.get("online"):
            self.snapshots += 1
            if not self.online.done():
                self.online.set_result(arrived)
            else:  # a fresh snapshot (after a gap or a reconnect of the agent) shows its links too
                for link in (frame.get("state") or {}).get("links", {}).values():
                    self._saw("set", link.get("name"), arrived)
        elif kind == "topology.delta":
            for event in frame.get("events", ()):
                if event.get("kind") == "links" and event.get("action") in ACTIONS:
                    self._saw(event["action"], (event.get("object") or {}).get("name"), arrived)

    def _saw(self, action: str, name: str | None, arrived: float) -> None:
        seen = self.seen[action]
        if name is None or name in seen:
            return
        seen[name] = arrived
        waiter = self.waiters.pop((action, name), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(arrived)

    def expect(self, action: str, name: str) -> asyncio.Future[float]:
        """A future resolved with the arrival time of the first `action` event of link `name`."""
        fut = self.loop.create_future()
        if name in self.seen[action]:
            fut.set_result(self.seen[action][name])
        else:
            self.waiters[(action, name)] = fut
        return fut

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        self.task.cancel()


async def open_viewer(url: str, token: str, host: str, *, deadline: float) -> Viewer:
    """Connect like a browser with a user token (retrying until `deadline` while daphne starts)."""
    while True:
        try:
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Token {token}"},
                proxy=None,
                max_size=None,
                open_timeout=max(1.0, deadline - time.monotonic()),
            )
            return Viewer(ws, host)
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def open_viewers(job: dict, count: int, *, timeout: float) -> tuple[list[Viewer], float]:
    """`count` viewers (at most 20 handshakes at a time); returns them and the seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    gate = asyncio.Semaphore(20)

    async def one() -> Viewer:
        async with gate:
            return await open_viewer(job["url"], job["token"], job["host"], deadline=deadline)

    viewers = await asyncio.gather(*(one() for _ in range(count)))
    return list(viewers), time.monotonic() - start


async def wait_online(viewers: list[Viewer], *, timeout: float) -> int:
    """Wait until every viewer holds the host's live snapshot; return how many do."""
    await asyncio.wait([v.online for v in viewers], timeout=timeout)
    return sum(v.online.done() for v in viewers)


class Kernel:
    """Single link changes in this namespace, on one netlink socket, timestamped before the request."""

    def __init__(self) -> None:
        self.sock = NetlinkSocket.open()
        self.made: set[str] = set()

    def create(self, name: str) -> float:
        self.made.add(name)
        start = time.monotonic()
        self.sock.run([rq.bridge_create(name=name)])
        return start

    def delete(self, name: str) -> None:
        self.sock.run([rq.link_delete(name=name, missing_ok=True)])
        self.made.discard(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sock.run([rq.link_delete(name=n, missing_ok=True) for n in sorted(self.made)])
        self.sock.close()


async def single_changes(viewers: list[Viewer], job: dict) -> dict[str, Any]:
    """`changes` times: create bridge `<prefix><i>`, wait until every viewer got its `set` event,
    delete it, wait for the `del` event, pause `spacing` seconds. Latencies are per viewer and change."""
    prefix, count, spacing, timeout = job["prefix"], job["changes"], job["spacing"], job["change_timeout"]
    kernel = Kernel()
    latencies: list[list[float]] = []  # per change, in the order the viewers got it
    misses = del_misses = 0
    try:
        for i in range(count):
            name = f"{prefix}{i}"
            names.validate_ifname(name, field="bench link")
            waits = [v.expect("set", name) for v in viewers]
            made = kernel.create(name)
            await asyncio.wait(waits, timeout=timeout)
            latencies.append(sorted(fut.result() - made for fut in waits if fut.done()))
            for viewer, fut in zip(viewers, waits, strict=True):
                if not fut.done():
                    misses += 1
                    fut.cancel()
                    viewer.waiters.pop(("set", name), None)
            waits = [v.expect("del", name) for v in viewers]
            kernel.delete(name)
            await asyncio.wait(waits, timeout=timeout)
            for viewer, fut in zip(viewers, waits, strict=True):
                if not fut.done():
                    del_misses += 1
                    fut.cancel()
                    viewer.waiters.pop(("del", name), None)
            await asyncio.sleep(spacing)
    finally:
        kernel.close()
    return {"latencies": latencies, "misses": misses, "del_misses": del_misses, "changes": count}


def burst_topology(name: str, endpoints: int, subnet: str) -> str:
    """The burst's topology file: one bridge network and `endpoints` nodes n001... on it."""
    width = max(3, len(str(endpoints)))
    lines = [f"name: {name}", "networks:", f"  lan: {{subnet: {subnet}}}", "nodes:"]
    lines += [f"  n{i:0{width}d}: {{networks: [lan]}}" for i in range(1, endpoints + 1)]
    return "\n".join(lines) + "\n"


class Observer:
    """Kernel events in this (the host) namespace, read as they happen on one subscribed netlink socket.

    It counts every rtnetlink notification (links, addresses, routes, neighbours and fdb) and notes
    when each link name first appeared. A full LiveModel would see the same, but costs as much CPU as
    the agent's own during a burst, which on a small machine would slow the agent it measures.
    """

    def __init__(self) -> None:
        self.sock = NetlinkSocket.open(groups=live.GROUPS)
        self.sock.sock.setblocking(False)
        self.events = 0
        self.overflows = 0  # ENOBUFS: the kernel dropped notifications (counts are then low)
        self.last_event = 0.0
        self.first_seen: dict[str, float] = {}
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        now = time.monotonic()
        try:
            self.sock.read_events(lambda buf, kind, start, end: self._on_message(now, buf, kind, start, end))
        except OSError:
            self.overflows += 1

    def _on_message(self, now: float, buf: bytearray, kind: int, start: int, end: int) -> None:
        self.events += 1
        self.last_event = now
        if kind == c.RTM_NEWLINK:
            self.first_seen.setdefault(parse.link(buf, start, end).name, now)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


def namespace_objects(names: list[str]) -> int:
    """Objects (links, addresses, routes, neighbours, fdb entries) in the named namespaces now.

    A namespace appearing reaches the agent's live model as one event per object it holds."""
    snap = snapshot(namespaces=names, processes=False)
    return sum(len(x) for x in (snap.links, snap.addresses, snap.routes, snap.neighbours, snap.fdb))


async def quiet(observer: Observer, viewer: Viewer, *, quiet_s: float, timeout: float) -> None:
    """Wait until neither the kernel nor the socket has produced anything for `quiet_s` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        last = max(observer.last_event, viewer.frames[-1][0] if viewer.frames else 0.0)
        if time.monotonic() - last >= quiet_s:
            return
        await asyncio.sleep(0.05)


async def burst(viewer: Viewer, job: dict) -> dict[str, Any]:
    """Apply an N-endpoint topology; per host veth, the time from its creation to its `set` frame."""
    topo = spec.loads(burst_topology(job["topology"], job["endpoints"], job["subnet"]))
    order = [p.host_name for node in desired(topo).nodes for p in node.ports]  # the order apply builds them
    observer = Observer()
    marks: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()
    applied = False
    try:
        await quiet(observer, viewer, quiet_s=0.3, timeout=10)
        events0, frames0 = observer.events, len(viewer.frames)
        start = time.monotonic()

        def progress(done: int, total: int) -> None:
            marks.append((done, time.monotonic()))

        applied = True
        await loop.run_in_executor(None, lambda: converge.apply(topo, progress=progress))
        apply_s = time.monotonic() - start
        waits = [viewer.expect("set", name) for name in order]
        await asyncio.wait(waits, timeout=job["burst_timeout"])
        await quiet(observer, viewer, quiet_s=0.5, timeout=5)
        host_events, frames = observer.events - events0, viewer.frames[frames0:]
        endpoint_ns = [n.netns for n in desired(topo).nodes]
        inside = await loop.run_in_executor(None, lambda: namespace_objects(endpoint_ns))
        events = host_events + len(endpoint_ns) + inside
        latencies, from_observer, missing_frames = [], 0, 0
        for i, name in enumerate(order):
            done_at = next((t for done, t in marks if done > i // converge.CHUNK * converge.CHUNK), None)
            candidates = [t for t in (observer.first_seen.get(name), done_at) if t is not None]
            if name not in viewer.seen["set"] or not candidates:
                missing_frames += 1
                continue
            made = min(candidates)
            from_observer += made == observer.first_seen.get(name)
            latencies.append(viewer.seen["set"][name] - made)
        return {
            "latencies": latencies,
            "endpoints": len(order),
            "missing": missing_frames,
            "not_observed": sum(name not in observer.first_seen for name in order),
            "from_observer": from_observer,
            "events": events,
            "host_events": host_events,
            "endpoint_objects": inside,
            "overflows": observer.overflows,
            "frames": len(frames),
            "snapshots": sum(kind == "topology.snapshot" for _, kind, _ in frames),
            "max_frame_bytes": max((size for _, _, size in frames), default=0),
            "apply_s": apply_s,
            "chunks": len(marks) - 1,
        }
    finally:
        if applied:
            await loop.run_in_executor(None, lambda: converge.destroy(topo))
        observer.close()


async def with_viewers(job: dict, count: int, body: Callable[[list[Viewer]], Any]) -> dict[str, Any]:
    viewers, connect_s = await open_viewers(job, count, timeout=job["timeout"])
    try:
        online = await wait_online(viewers, timeout=job["timeout"])
        out = {"clients": count, "connect_s": connect_s, "online": online}
        if online == count:
            out.update(await body(viewers))
        return out
    finally:
        await asyncio.gather(*(v.close() for v in viewers))


async def p3(job: dict) -> dict[str, Any]:
    async def body(viewers: list[Viewer]) -> dict[str, Any]:
        single = await single_changes(viewers, job)
        return {"single": single, "burst": await burst(viewers[0], job)}

    return await with_viewers(job, 1, body)


async def p4(job: dict) -> dict[str, Any]:
    async def body(viewers: list[Viewer]) -> dict[str, Any]:
        single = await single_changes(viewers, job)
        single["snapshots"] = [v.snapshots for v in viewers]
        return {"single": single}

    return await with_viewers(job, job["clients"], body)


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main() -> int:
    job = json.load(sys.stdin)
    raise_nofile(4 * job.get("clients", 1) + 256)
    sys.setswitchinterval(0.001)  # the apply thread must not hold the timestamping loop up for 5 ms
    out = asyncio.run({"p3": p3, "p4": p4}[job["mode"]](job))
    print(json.dumps(out, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
