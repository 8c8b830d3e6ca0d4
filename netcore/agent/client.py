"""The agent's connection to the web app: hello, snapshot, coalesced deltas, commands, reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import threading
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from netcore import __version__
from netcore.agent import PROTOCOL_VERSION
from netcore.agent.captures import Captures
from netcore.agent.commands import LINK_ACTION, run_command, run_link_command
from netcore.agent.docker_watch import DockerWatch, ProtocolState
from netcore.agent.state import Changes, state_of
from netcore.agent.traffic_watch import INTERVAL as TRAFFIC_INTERVAL
from netcore.agent.traffic_watch import TrafficWatch
from netcore.errors import Unavailable
from netcore.explain.answer import explain_request
from netcore.live import Event, LiveModel
from netcore.model import Link, Snapshot
from netcore.names import parse_owner_alias
from netcore.netns import HOST
from netcore.services.lookup import lookup
from netcore.services.runtime import ServiceRuntime

log = logging.getLogger("netcore.agent")

FIRST_DELAY = 0.01  # the first change after a quiet spell leaves within 10 ms
WINDOW = 0.05  # during a burst, at most one delta per 50 ms
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
# a refused token will not fix itself: retry slowly, up to every 5 minutes, saying why each time
REFUSED_BACKOFF_START, REFUSED_BACKOFF_MAX = 2.0, 300.0
REFUSED_CLOSE_CODE = 4003  # the web app revoked or replaced the token of a connected host
REFUSED = (
    "the web app refused this host's token: ask an admin for a new one "
    "(Hosts page or `manage.py hosttoken NAME --rotate`)"
)
HEALTHY_SESSION = 10.0  # seconds a connection must last before the backoff starts over
EVENTS_PER_FRAME = 500  # a burst's delta is split so no frame grows past a few hundred KiB
PROGRESS_INTERVAL = 0.2  # seconds: at most five progress frames a second per command
PROGRESS_STEP = "building nodes"  # what converge reports progress of
CHANGING = ("apply", "destroy")  # commands that change the kernel: the live model waits for them
DOCKER_FIRST_READ = 3.0  # seconds the first snapshot waits for the Docker engine's first read
DOCKER_ACTION = "docker."  # prefix of the commands the Docker engine runs (docker.network.create, ...)


def switchboard_bridge(link: Link) -> bool:
    """A bridge of this host's namespace that Switchboard made (Docker's firewall must let it pass)."""
    return link.netns == HOST and link.kind == "bridge" and parse_owner_alias(link.alias) is not None


def refusal(exc: BaseException) -> str | None:
    """Why the web app refused this host's token (for the log), or None when `exc` is no refusal."""
    if isinstance(exc, InvalidStatus) and exc.response.status_code == 403:
        return "HTTP 403 on the handshake"
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None and exc.rcvd.code == REFUSED_CLOSE_CODE:
        return f"close code {REFUSED_CLOSE_CODE}: the token was revoked or replaced"
    return None


class Backoff:
    """Delays that double from `start` up to `limit`, each with ±20 % jitter."""

    def __init__(self, *, start: float, limit: float) -> None:
        self.start = start
        self.limit = limit
        self.current = start

    def next(self) -> float:
        """The delay before the next attempt; the one after it will be twice as long (up to the limit)."""
        delay = self.current * random.uniform(0.8, 1.2)
        self.current = min(self.current * 2, self.limit)
        return delay

    def reset(self) -> None:
        self.current = self.start


class _Command:
    """A command the agent was sent: its cancel flag and when it last reported progress."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.reported_at: float | None = None

    def report_due(self) -> bool:
        """True (and the time noted) when a progress frame may go now: PROGRESS_INTERVAL after the last."""
        now = time.monotonic()
        if self.reported_at is not None and now - self.reported_at < PROGRESS_INTERVAL:
            return False
        self.reported_at = now
        return True


class Agent:
    """Keeps the live model of this host and mirrors it to the web app over one websocket."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        processes: bool = True,
        docker: bool = True,
        traffic_interval: float = TRAFFIC_INTERVAL,
    ) -> None:
        self.url = url
        self.token = token
        self.processes = processes
        self.model: LiveModel | None = None
        self.changes = Changes()
        self.docker = DockerWatch(on_state=self._docker_state, bridges=self._bridges) if docker else None
        self.docker_state: ProtocolState = {}  # the latest read of the Docker engine
        self.services = ServiceRuntime(on_state=self._services_state)
        self.traffic = (
            TrafficWatch(
                on_state=self._traffic_state,
                snapshot=self._snapshot,
                interval=traffic_interval,
                processes=processes,
                paused=lambda: self._command_lock.locked(),  # an apply has the namespace worker
            )
            if traffic_interval > 0
            else None
        )  # conntrack's "talks to" edges (state kind `traffic`); off with --traffic-interval 0
        self.docker_read = asyncio.Event()  # set by the first read: the first snapshot waits for it
        self.bridges: set[str] = set()  # this host's Switchboard bridges (DockerWatch keeps them accepted)
        self.ws: ClientConnection | None = None
        self.seq = 0
        self._flush_at: asyncio.TimerHandle | None = None
        self._last_flush = 0.0
        self._command_lock = asyncio.Lock()
        self._commands: dict[str, _Command] = {}  # by id: the commands received and not yet answered
        self._tasks: set[asyncio.Task] = set()
        self.captures = Captures()  # packet captures: each lives as long as the connection it came on

    async def run(self) -> None:
        """Run until cancelled: reconnect with backoff whenever the connection drops.

        A refused token (HTTP 403 on the handshake, or close code 4003) is logged as an error
        each time and retried on a backoff of its own, from 2 s doubling to 5 minutes.
        """
        self.model = LiveModel(processes=self.processes)
        await self.model.start()
        self.bridges = {link.name for link in self.model.snapshot().links if switchboard_bridge(link)}
        pump = asyncio.create_task(self._pump_events(self.model))
        docker = asyncio.create_task(self.docker.run()) if self.docker else None
        services = asyncio.create_task(self.services.run())
        traffic = asyncio.create_task(self.traffic.run()) if self.traffic else None
        backoff = Backoff(start=BACKOFF_START, limit=BACKOFF_MAX)
        refused_backoff = Backoff(start=REFUSED_BACKOFF_START, limit=REFUSED_BACKOFF_MAX)
        try:
            while True:
                refused = None
                try:
                    async with connect(
                        self.url,
                        additional_headers={"Authorization": f"Token {self.token}"},
                        proxy=None,
                        max_size=None,
                        compression=None,
                        open_timeout=10,
                    ) as ws:
                        started = asyncio.get_running_loop().time()
                        try:
                            await self._session(ws)
                        finally:
                            # only a session that lasted resets the backoff: a server that accepts
                            # and then drops at once must not be hammered
                            if asyncio.get_running_loop().time() - started > HEALTHY_SESSION:
                                backoff.reset()
                                refused_backoff.reset()
                except ConnectionClosed as exc:
                    if not (refused := refusal(exc)):
                        log.warning("connection to %s closed: %s", self.url, exc)
                except (OSError, InvalidHandshake, TimeoutError) as exc:
                    if not (refused := refusal(exc)):
                        log.warning("cannot connect to %s: %s", self.url, exc)
                if refused:
                    delay = refused_backoff.next()
                    log.error("%s [%s]; retrying in %.0f s", REFUSED, refused, delay)
                else:
                    delay = backoff.next()
                    log.info("reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
        finally:
            pump.cancel()
            if docker:
                docker.cancel()
            services.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await services  # its dnsmasq processes and VIPs go with it
            if traffic:
                traffic.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await traffic  # the namespaces it armed are disarmed
            self.model.close()

    async def _session(self, ws: ClientConnection) -> None:
        self.seq = 0
        await self._send(
            ws,
            {
                "type": "hello",
                "host": socket.gethostname(),
                "agent_version": __version__,
                "protocol": PROTOCOL_VERSION,
                "catalog": len(self.services.catalog.networks),  # networks it serves: the web app resends
            },
        )
        self.ws = ws
        try:
            if self.docker is not None:  # the engine's first read belongs in the first snapshot
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.docker_read.wait(), DOCKER_FIRST_READ)
            await self._send_snapshot(ws)
            log.info("connected to %s", self.url)
            async for raw in ws:
                await self._handle(ws, raw)
        finally:
            self.ws = None
            await self.captures.stop_all()

    async def _send(self, ws: ClientConnection, frame: dict) -> None:
        await ws.send(json.dumps({"v": PROTOCOL_VERSION, **frame}, separators=(",", ":")))

    async def _send_snapshot(self, ws: ClientConnection) -> None:
        # a state sent as the whole truth is read from the kernel, not from memory: whatever the
        # model got wrong is corrected here (and the differences go out as ordinary events)
        assert self.model is not None, "run() starts the model before it connects"
        state = state_of(self.model.refresh()) | self.docker_state | self.services.state
        if self.traffic is not None:
            state |= self.traffic.state
        self.changes.reset(state)
        self.seq += 1
        await self._send(ws, {"type": "snapshot", "seq": self.seq, "state": state})

    # -- deltas -------------------------------------------------------------------------------

    async def _pump_events(self, model: LiveModel) -> None:
        async for event in model.events():
            self._take(event)
            self._schedule_flush()

    def _take(self, event: Event) -> None:
        self.changes.add(event)
        self._bridge_event(event)

    def _bridge_event(self, event: Event) -> None:
        link = event.obj
        if not isinstance(link, Link) or not switchboard_bridge(link):
            return
        before = len(self.bridges)
        (self.bridges.add if event.action == "new" else self.bridges.discard)(link.name)
        if self.docker and len(self.bridges) != before:
            self.docker.bridges_changed()

    def _bridges(self) -> set[str]:
        return set(self.bridges)

    def _docker_state(self, state: ProtocolState) -> None:
        """A new read of the Docker engine: what differs from the last goes out with the next delta."""
        self.docker_state = state
        self.docker_read.set()
        if self.model is not None:
            self.model.docker_changed()
        self.changes.replace(state)
        self._schedule_flush()

    def _services_state(self, state: ProtocolState) -> None:
        """New health of the catalog's instances: what differs goes out with the next delta."""
        self.changes.replace(state)
        self._schedule_flush()

    def _traffic_state(self, state: ProtocolState) -> None:
        """A new read of the conntrack tables' edges: what differs goes out with the next delta."""
        self.changes.replace(state)
        self._schedule_flush()

    def _snapshot(self) -> Snapshot | None:
        """The live model's state (the namespaces and addresses traffic edges are placed with)."""
        return self.model.snapshot() if self.model is not None else None

    def _schedule_flush(self) -> None:
        if self._flush_at is not None or self.ws is None:
            return
        loop = asyncio.get_running_loop()
        when = max(loop.time() + FIRST_DELAY, self._last_flush + WINDOW)
        self._flush_at = loop.call_at(when, self._spawn_flush)

    def _spawn_flush(self) -> None:
        # the coroutine is made when it runs: a flush cancelled before (by _settle) leaves none unawaited
        self._spawn(self._flush())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_now(self) -> None:
        """Send what is pending at once, instead of when the flush scheduled for it is due."""
        if self._flush_at is not None:
            self._flush_at.cancel()
        await self._flush()

    async def _flush(self) -> None:
        self._flush_at = None
        ws = self.ws
        if ws is None:
            return
        self._last_flush = asyncio.get_running_loop().time()
        events = self.changes.take()
        for start in range(0, len(events), EVENTS_PER_FRAME):
            self.seq += 1
            frame = {"type": "delta", "seq": self.seq, "events": events[start : start + EVENTS_PER_FRAME]}
            with contextlib.suppress(ConnectionClosed):
                await self._send(ws, frame)
        if len(self.changes):
            self._schedule_flush()

    # -- requests from the web app -------------------------------------------------------------

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
            kind = frame["type"]
        except (ValueError, TypeError, KeyError):
            await self._protocol_error(ws, f"cannot read frame: {str(raw)[:200]!r}")
            return
        if kind == "welcome":
            log.info("the web app knows this host as %s", frame.get("host"))
        elif kind == "command":
            self._spawn(self._command(frame))
        elif kind == "catalog":
            self._spawn(self._catalog(frame))
        elif kind == "resolve":
            self._spawn(self._resolve(frame))
        elif kind == "explain":
            self._spawn(self._explain(frame))
        elif kind == "capture":
            self.captures.start(frame, self._send_now)
        elif kind == "capture.stop":
            self.captures.stop(frame.get("id"))
        elif kind == "cancel":
            self._cancel(frame.get("id"))
        elif kind == "resync":
            await self._send_snapshot(ws)
        elif kind == "ping":
            await self._send(ws, {"type": "pong", "id": frame.get("id")})
        elif kind == "error":
            log.warning("the web app reported: %s", frame.get("error"))
        else:
            await self._protocol_error(ws, f"unknown frame type {kind!r}")

    async def _protocol_error(self, ws: ClientConnection, message: str) -> None:
        log.warning("%s", message)
        await self._send(ws, {"type": "error", "error": {"error": "ProtocolError", "message": message}})

    async def _command(self, frame: dict) -> None:
        """Run one command in a worker thread (one at a time), reporting progress at most every
        PROGRESS_INTERVAL and stopping at a safe point once a `cancel` for it comes; then answer."""
        command_id = frame.get("id")
        action = frame.get("action")
        if isinstance(action, str) and action.startswith(DOCKER_ACTION):
            await self._docker_command(command_id, action.removeprefix(DOCKER_ACTION), frame.get("request"))
            return
        if isinstance(action, str) and action.startswith(LINK_ACTION):
            await self._link_command(command_id, action.removeprefix(LINK_ACTION), frame.get("request"))
            return
        command = _Command()
        if isinstance(command_id, str):
            self._commands[command_id] = command
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:  # called in the worker thread
            if total and command.report_due():
                report = {"type": "progress", "id": command_id, "done": done, "total": total}
                loop.call_soon_threadsafe(self._spawn, self._send_now({**report, "step": PROGRESS_STEP}))

        model = self.model if action in CHANGING else None
        try:
            async with self._command_lock:
                if model is not None:
                    model.hold()
                try:
                    reply = await asyncio.to_thread(
                        run_command,
                        action,
                        frame.get("topology"),
                        progress=progress,
                        cancelled=command.cancel.is_set,
                        nodes=frame.get("nodes"),
                    )
                    settling = {"settling": True} if model is not None else {}
                    await self._send_now({"type": "result", "id": command_id, **reply, **settling})
                finally:
                    if model is not None:
                        await self._settle(model, command_id)
        finally:
            if isinstance(command_id, str):
                self._commands.pop(command_id, None)

    async def _docker_command(self, command_id: object, action: str, request: object) -> None:
        """A Docker command runs beside topology commands (the engine serialises its own work). The
        engine is read again before the answer, and what changed is sent first: once the web app
        hears the result, its state shows the change (the kernel objects follow as live events)."""
        if self.docker is None:
            error = Unavailable("this agent runs without Docker (--no-docker)", obj="engine")
            reply = {"ok": False, "error": error.to_dict()}
        else:
            reply = await asyncio.to_thread(self.docker.command, action, request)
            await self.docker.read_now()  # what it changed goes out before the result
            await self._flush_now()
        await self._send_now({"type": "result", "id": command_id, **reply})

    async def _link_command(self, command_id: object, action: str, request: object) -> None:
        """Shape a link or take its shaping off (one qdisc change, in turn with topology commands). The
        kernel's qdisc event is read and sent before the result: once the web app hears the result,
        its state shows the change."""
        async with self._command_lock:
            reply = await asyncio.to_thread(run_link_command, action, request)
            if self.model is not None:
                self.model.catch_up()
                for event in self.model.take_events():
                    self._take(event)
            await self._flush_now()
            await self._send_now({"type": "result", "id": command_id, **reply})

    async def _catalog(self, frame: dict) -> None:
        """Serve the catalog the web app sent (DNS, VIPs, checks), then say which version is served."""
        reply = await self.services.apply(frame.get("catalog"))
        await self._flush_now()  # the new instances' first health goes out before the answer
        await self._send_now({"type": "catalog.applied", **reply})

    async def _resolve(self, frame: dict) -> None:
        """Ask DNS questions from inside a namespace, as a client there would (the catalog's check)."""
        reply = await asyncio.to_thread(lookup, frame.get("request"))
        await self._send_now({"type": "resolved", "id": frame.get("id"), **reply})

    async def _explain(self, frame: dict) -> None:
        """Why can (or can't) a namespace reach an address: the path walk and a probe (netcore.explain)."""
        snapshot = self.model.snapshot() if self.model is not None else None  # the live state, in memory
        reply = await asyncio.to_thread(explain_request, frame.get("request"), snapshot=snapshot)
        await self._send_now({"type": "explained", "id": frame.get("id"), **reply})

    async def _settle(self, model: LiveModel, command_id: object) -> None:
        """After a command that changed the kernel with the live model held (LiveModel.hold: the
        apply runs at netcore's own speed, and its result goes out at once, marked `settling`): the
        model catches up, what changed goes out as deltas, then `settled` says the state is whole
        again (the web app checks drift only then). The next command waits for this."""
        model.release()
        for event in model.take_events():
            self._take(event)
        await self._flush_now()
        await self._send_now({"type": "settled", "id": command_id})

    def _cancel(self, command_id: object) -> None:
        """Ask the command with that id to stop at its next safe point; one that has ended (or was
        never sent) is left alone: its result is on its way or sent."""
        command = self._commands.get(command_id) if isinstance(command_id, str) else None
        if command is None:
            log.info("cancel of %r: no such command is running", command_id)
            return
        log.info("cancelling command %s", command_id)
        command.cancel.set()

    async def _send_now(self, frame: dict) -> None:
        """Send a frame on the current connection, if there is one (else it is dropped)."""
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(ws, frame)
