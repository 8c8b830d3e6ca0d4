"""The agent's mirror of the Docker engine: a read when it connects, then one after each burst of the
engine's events (container start, die, connect, ...), and the DOCKER-USER rules for this host's
Switchboard bridges kept in step. Without an engine it says so in the state and retries."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from netcore.docker import firewall
from netcore.docker.engine import engine_connect
from netcore.docker.manage import docker_request
from netcore.docker.read import DockerReader, DockerState, engine_missing
from netcore.errors import NetcoreError, Unavailable

log = logging.getLogger("netcore.agent")

RETRY = 5.0  # seconds between attempts to reach an engine that is not there
UNSETTLED_RETRY = 0.05  # seconds before reading again a container caught between two states
BRIDGES_SETTLE = 0.2  # seconds after the last change of this host's bridges before DOCKER-USER is checked
EVENT_TYPES = ["container", "network", "image", "daemon", "node"]
FULL_READ_TYPES = ("image", "daemon", "node")  # events after which the engine and its images are read too

ProtocolState = dict[str, dict[str, dict[str, Any]]]


class DockerWatch:
    """Reads the engine into protocol state whenever it changes, and runs Docker commands."""

    def __init__(self, *, on_state: Callable[[ProtocolState], None], bridges: Callable[[], set[str]]) -> None:
        self.on_state = on_state
        self.bridges = bridges  # this host's Switchboard bridges: DOCKER-USER accepts them
        self.reader: DockerReader | None = None
        self._dirty = asyncio.Event()
        self._full = True  # the next read also reads the engine, its firewall and its images
        self._stale: set[str] = set()  # containers events named since the last read: inspected again
        self._reading = asyncio.Lock()  # one read at a time (the reader's cache is not shared)
        self._stream: Any = None
        self._last: DockerState | None = None  # the latest read
        self._bridges_check: asyncio.TimerHandle | None = None

    def bridges_changed(self) -> None:
        """One of this host's Switchboard bridges came or went: once they settle (an apply makes many),
        check DOCKER-USER against them. Only the firewall is read for that, not the engine: converge
        has added the rules already (netcore.topology.converge.docker_user), this keeps them true."""
        if self._bridges_check is not None:
            self._bridges_check.cancel()
        loop = asyncio.get_running_loop()
        self._bridges_check = loop.call_later(BRIDGES_SETTLE, lambda: loop.create_task(self._sync_bridges()))

    async def _sync_bridges(self) -> None:
        self._bridges_check = None
        async with self._reading:
            if self.reader is None or self._last is None:
                return  # without an engine the firewall is reported with every retry
            accepted = await asyncio.to_thread(self._accept, self.bridges())
            if accepted is not None and accepted != self._last.engine.accepted_bridges:
                self._last = self.reader.accepted(accepted, self._last)
                self.on_state(self._last.to_state())

    @staticmethod
    def _accept(wanted: set[str]) -> tuple[str, ...] | None:
        """DOCKER-USER made to accept exactly `wanted`; the bridges it accepts (None: no such chain)."""
        if firewall.accepted_bridges() is None:
            return None
        firewall.bridges_accept(wanted)
        return tuple(sorted(wanted))

    async def run(self) -> None:
        """Until cancelled: connect, read, follow events; after losing the engine, retry every RETRY s."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                client = await asyncio.to_thread(engine_connect)
                self.reader = DockerReader(client)
                gone = threading.Event()
                self._stream = await asyncio.to_thread(
                    client.events, decode=True, filters={"type": EVENT_TYPES}
                )
                threading.Thread(
                    target=self._follow, args=(loop, gone), daemon=True, name="docker-events"
                ).start()
                log.info("following the Docker engine's events")
                self._full = True
                while not gone.is_set():
                    self._dirty.clear()
                    await self._read()
                    await self._dirty.wait()
            except NetcoreError as exc:
                await self._missing(str(exc))
            except Exception as exc:  # the SDK raises its own errors when the engine goes away
                await self._missing(f"the Docker engine stopped answering: {exc}")
            finally:
                self._close_stream()
            await asyncio.sleep(RETRY)

    async def _missing(self, reason: str) -> None:
        if self.reader is not None:
            log.warning("Docker: %s", reason)
        self.reader = None
        engine = await asyncio.to_thread(engine_missing, reason)
        self.on_state(DockerState(engine=engine).to_state())

    async def read_now(self) -> None:
        """Read the engine now (after a command: its result goes out once the state shows it)."""
        if self.reader is not None:
            try:
                await self._read()
            except NetcoreError as exc:
                log.info("Docker read after a command failed: %s", exc)

    async def _read(self) -> None:
        async with self._reading:
            reader = self.reader
            assert reader is not None, "reads happen only while connected"
            full, self._full = self._full, False
            stale, self._stale = self._stale, set()
            state = await asyncio.to_thread(self._read_and_sync, reader, self.bridges(), full, stale)
            self._last = state
            self.on_state(state.to_state())
            if reader.unsettled:
                asyncio.get_running_loop().call_later(UNSETTLED_RETRY, self._dirty.set)

    @staticmethod
    def _read_and_sync(reader: DockerReader, wanted: set[str], full: bool, stale: set[str]) -> DockerState:
        """A read, after making DOCKER-USER accept exactly `wanted` (this host's Switchboard bridges)."""
        state = reader.read(full=full, stale=stale)
        if set(state.engine.accepted_bridges) != wanted and firewall.bridges_accept(wanted):
            state = reader.read()
        return state

    def _follow(self, loop: asyncio.AbstractEventLoop, gone: threading.Event) -> None:
        """In a thread: every engine event asks for a read; the stream ending means the engine went."""
        try:
            for event in self._stream:
                loop.call_soon_threadsafe(self._event, event)
        except Exception as exc:
            log.info("Docker events ended: %s", exc)
        gone.set()
        loop.call_soon_threadsafe(self._dirty.set)

    def _event(self, event: dict[str, Any]) -> None:
        kind, actor = event.get("Type"), event.get("Actor") or {}
        if kind in FULL_READ_TYPES:
            self._full = True
        elif kind == "container" and actor.get("ID"):
            self._stale.add(actor["ID"])
        elif kind == "network" and (actor.get("Attributes") or {}).get("container"):
            self._stale.add(actor["Attributes"]["container"])  # connect, disconnect
        self._dirty.set()

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            except Exception:  # closing a stream whose engine went away
                log.debug("closing the Docker event stream failed", exc_info=True)
            self._stream = None

    def command(self, action: str, body: Any) -> dict[str, Any]:
        """Run a Docker command (in a worker thread): {"ok", "result"} or {"ok": False, "error"}."""
        try:
            if self.reader is None:
                raise Unavailable("no Docker engine is connected to this host's agent", obj="engine")
            result = docker_request(self.reader.client, action=action, body=body)
        except NetcoreError as exc:
            log.info("docker %s failed: %s", action, exc)
            return {"ok": False, "error": exc.to_dict()}
        log.info("docker %s: %s", action, result)
        return {"ok": True, "result": result}
