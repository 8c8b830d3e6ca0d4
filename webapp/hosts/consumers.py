"""The agent websocket (/ws/agent/): one connection per host, protocol v1 (docs/agent-protocol.md).

Presence is a lease on the host's row: the connection takes it when the agent says hello, renews it
every lease_renew_interval() while it is open (an idle agent stays online) and ends it on
disconnect. When the worker dies without running disconnect, nobody renews it and the host goes
offline when it runs out (webapp.topology.presence tells the browsers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from netcore.services.catalog import HEALTH_KIND
from webapp import layer
from webapp.captures import relay as capture_relay
from webapp.catalog.docker import docker_registrations_sync
from webapp.catalog.selectors import catalog_for_host, host_has_services
from webapp.catalog.services import catalog_applied, health_apply, health_forget, leases_expire
from webapp.hosts import protocol
from webapp.hosts.ask import QUESTIONS
from webapp.hosts.models import Host
from webapp.hosts.selectors import host_token_current, lease_renew_interval
from webapp.hosts.services import host_authenticate, host_connected, host_disconnected, host_lease_renew
from webapp.networks.drift import drift_check
from webapp.networks.overlay import overlays_changed
from webapp.networks.services import topologies_reconcile_on_connect, topology_reconcile_after_plan
from webapp.operations.models import Operation
from webapp.operations.services import (
    operation_finish,
    operation_message,
    operation_progress,
    operation_start_next,
    operations_fail_running,
    progress_text,
)
from webapp.sockets import header_token
from webapp.topology.services import host_state_save
from webapp.topology.state import InvalidState, LiveState
from webapp.traffic.services import TRAFFIC_KIND, traffic_apply, traffic_prune

log = logging.getLogger(__name__)

SAVE_INTERVAL = 1.0  # seconds: the state is persisted at most this often while deltas flow
TOKEN_CHECK_INTERVAL = 2.0  # seconds between checks that the agent's token still stands
RESYNC_RETRY = 10.0  # seconds before asking again for a snapshot that has not come
PROGRESS_SAVE_INTERVAL = 1.0  # seconds: a running operation's progress is stored at most this often
LEASE_SWEEP_INTERVAL = 1.0  # seconds between looks for the host's service instances whose lease ran out
ASK_FORGET = 60.0  # seconds after which a question (webapp.hosts.ask) the agent never answered is forgotten
DOCKER_KINDS = ("docker_engine", "docker_networks", "docker_containers")  # what service labels depend on
TRAFFIC_PRUNE_INTERVAL = 3600.0  # seconds between two removals of old ended traffic edges (webapp.traffic)


def command_frame(operation: Operation) -> dict[str, Any]:
    """The agent frame that runs an operation: a topology file (plan, apply, destroy, with its node
    scope), a Docker request ({"action", "request"} as webapp.containers stored it) or a link's
    shaping (as webapp.topology.shaping stored it)."""
    if operation.kind in (Operation.Kind.DOCKER, Operation.Kind.SHAPE):
        document = json.loads(operation.document)
        prefix = "docker" if operation.kind == Operation.Kind.DOCKER else "link"
        action = f"{prefix}.{document['action']}"
        return protocol.frame("command", id=str(operation.id), action=action, request=document["request"])
    scope = {} if operation.nodes is None else {"nodes": operation.nodes}
    return protocol.frame(
        "command", id=str(operation.id), action=operation.kind, topology=operation.document, **scope
    )


def _operations_on_hello(*, host_id: int, fail_running: bool) -> list[Operation]:
    """In one trip to the database thread: fail what an earlier connection left running (returned),
    then queue the level-based reconcile plans of the host's applied topologies (their frames and
    wakes go out from the service)."""
    failed = operations_fail_running(host_id=host_id) if fail_running else []
    topologies_reconcile_on_connect(host_id=host_id)
    return failed


def _traffic_store(*, host_id: int, reports: dict[str, Any], whole: bool, prune: bool) -> None:
    """Keep the host's traffic edges (a snapshot's are `whole`), and with `prune` forget old ended ones."""
    traffic_apply(host_id=host_id, reports=reports, whole=whole)
    if prune:
        traffic_prune()


def _state_store(*, host_id: int, seq: int, state: dict[str, Any], health: bool) -> None:
    """Persist a host's state; with `health`, also its service instances' health (all of it: an
    instance the agent does not report is unknown), in the same trip to the database thread."""
    host_state_save(host_id=host_id, seq=seq, state=state)
    if health:
        health_apply(host_id=host_id, reports=state.get(HEALTH_KIND, {}), whole=True)


class AgentConsumer(AsyncWebsocketConsumer):
    """Keeps the host's live state, fans it out to browsers, persists it, and runs the host's
    operations (webapp.operations) one at a time: the oldest pending one when it has none running,
    on hello, on `operation.wake` and when the agent answers the one it ran. On hello it queues a
    reconcile plan of each topology applied on the host (webapp.networks.services)."""

    host: Host | None = None
    lease_task: asyncio.Task | None = None
    traffic_pruned = float("-inf")  # when this connection last forgot old traffic edges (monotonic)
    traffic_pending: dict[str, Any] | None = None  # traffic reports not stored yet (see _traffic)
    traffic_whole = False  # they are a snapshot's: every live edge of the host
    traffic_task: asyncio.Task | None = None
    captures_task: asyncio.Task | None = None  # ends the captures an earlier connection left live

    async def connect(self) -> None:
        token = header_token(self.scope)
        host = await database_sync_to_async(host_authenticate)(token=token) if token else None
        if host is None:
            await self.close(code=layer.CLOSE_FORBIDDEN)  # before accept: HTTP 403
            return
        self.host = host
        self.live = LiveState()
        self.greeted = False
        self.replaced = False
        self.running: str | None = None  # id of the operation sent to the agent, until it answers
        self.running_operation: Operation | None = None  # that operation, with its latest progress
        self.progress_task: asyncio.Task | None = None  # stores its progress (see _on_progress)
        self.progress_saved_at = 0.0
        self.saved_at = 0.0
        self.resync_asked: float | None = None  # when the outstanding `resync` was sent
        self.save_lock = asyncio.Lock()
        self.save_task: asyncio.Task | None = None
        self.drift_task: asyncio.Task | None = None  # networks.drift of the saved state (see _save)
        # commands answered whose changes the agent is still sending (result "settling", then "settled"):
        # the state is not the kernel's yet, so drift is not checked until they settle
        self.settling: set[str] = set()
        self.drift_state: tuple[int, dict[str, Any]] | None = None  # (seq, saved state) yet to check
        self.token_task = asyncio.create_task(self._watch_token())
        self.catalog_task: asyncio.Task | None = None  # sends the catalog, then expires leases (once greeted)
        self.health_whole = False  # a snapshot came: the next save stores all of its health too
        # questions sent (webapp.hosts.ask), by id: (channel awaiting the answer, when)
        self.asking: dict[str, tuple[str, float]] = {}
        self.captures: set[str] = set()  # ids of the captures sent to the agent (webapp.captures)
        self.catalog_lock = asyncio.Lock()
        group = layer.agent_group(host.id)
        await self.channel_layer.group_send(group, {"type": "agent.replace", "channel": self.channel_name})
        await self.channel_layer.group_add(group, self.channel_name)
        await self.channel_layer.group_add(layer.AGENTS, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        host = self.host
        if host is None:
            return
        await self.channel_layer.group_discard(layer.agent_group(host.id), self.channel_name)
        await self.channel_layer.group_discard(layer.AGENTS, self.channel_name)
        if self.running is not None:  # no answer will come through this connection
            try:
                failed = await database_sync_to_async(operations_fail_running)(
                    host_id=host.id, operation_id=self.running
                )
            except DatabaseError:  # the agent's next hello fails it
                log.exception("host %s: could not record that operation %s failed", host, self.running)
                failed = []
            self.running = None
            await self._announce(failed)
        tasks = (
            self.save_task,
            self.token_task,
            self.lease_task,
            self.drift_task,
            self.progress_task,
            self.catalog_task,
        )
        for task in tasks:
            if task:
                task.cancel()
        ending = [task for task in (self.traffic_task, self.captures_task) if task is not None]
        if ending:  # what the agent reported is kept, even as it goes
            await asyncio.wait(ending)
        if self.captures:  # the agent kills its captures with the connection: what arrived is kept
            await capture_relay.agent_gone(host_id=host.id, ids=self.captures)
        if self.replaced:
            return  # the newer connection owns the host's state and presence now
        if self.live.known:
            await self._save()
        gone = await database_sync_to_async(host_disconnected)(host=host, holder=self.channel_name)
        if gone is not None:  # else a newer connection (maybe on another worker) holds the lease
            await self._status(gone)
            await database_sync_to_async(health_forget)(host_id=host.id)

    # Frames from the agent

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = protocol.frame_parse(text_data)
            if frame["type"] != "hello" and not self.greeted:
                raise protocol.ProtocolError(f"{frame['type']}: the first frame must be hello")
            await getattr(self, f"_on_{frame['type'].replace('.', '_')}")(frame)
        except protocol.ProtocolError as err:
            log.warning("agent of host %s: %s", self.host, err)
            await self._send(protocol.error_frame(str(err)))
            if err.resync:
                await self._state_lost()
        except Exception:
            # A fault of ours: an uncaught exception would close the socket with 1011 without
            # running disconnect(), leaving the host "online"; answer it like a bad frame instead.
            log.exception("agent of host %s: could not handle a frame", self.host)
            await self._send(protocol.error_frame("the web app could not handle this frame"))
            await self._state_lost()

    async def _on_hello(self, frame: dict[str, Any]) -> None:
        if frame["protocol"] != protocol.VERSION:
            raise protocol.ProtocolError(
                f"hello: protocol {frame['protocol']} is not supported; this server speaks {protocol.VERSION}"
            )
        self.host = await database_sync_to_async(host_connected)(
            host=self.host,
            holder=self.channel_name,
            hostname=frame["host"],
            agent_version=frame["agent_version"],
        )
        self.greeted = True
        if self.lease_task is None:
            self.lease_task = asyncio.create_task(self._keep_lease())
        await self._send(protocol.frame("welcome", host=self.host.name))
        await self._status(self.host)
        # an operation left running by an earlier connection gets no answer there
        failed = await database_sync_to_async(_operations_on_hello)(
            host_id=self.host.id, fail_running=self.running is None
        )
        await self._announce(failed)
        # captures an earlier connection left live end (in a task: the state's frames go first)
        ended = capture_relay.agent_gone(host_id=self.host.id, keep=set(self.captures))
        self.captures_task = asyncio.create_task(ended)
        await self._operations_next()
        if self.catalog_task is None:
            self.catalog_task = asyncio.create_task(self._catalog_keep(serving=bool(frame.get("catalog"))))

    async def _on_snapshot(self, frame: dict[str, Any]) -> None:
        try:
            self.live.replace(seq=frame["seq"], state=frame["state"])
        except InvalidState as err:
            raise protocol.ProtocolError(f"snapshot: {err}", resync=True) from None
        self.resync_asked = None
        await self.channel_layer.group_send(
            layer.TOPOLOGY,
            layer.snapshot_message(
                host=self.host.name, online=True, seq=self.live.seq, state=self.live.copy()
            ),
        )
        self.health_whole = True  # the snapshot's health is the whole of it: stored with the state
        await self._save()
        await self._docker_registrations()
        self._traffic(frame["state"].get(TRAFFIC_KIND, {}), whole=True)

    async def _on_delta(self, frame: dict[str, Any]) -> None:
        if self.live.stale:  # sent before the agent read our resync: the snapshot will hold it
            await self._ask_resync()
            return
        try:
            self.live.apply(seq=frame["seq"], events=frame["events"])
        except InvalidState as err:
            raise protocol.ProtocolError(f"delta: {err}", resync=True) from None
        await self.channel_layer.group_send(
            layer.TOPOLOGY, layer.delta_message(host=self.host.name, seq=frame["seq"], events=frame["events"])
        )
        health = {
            e["key"]: e["object"] if e["action"] == "set" else None
            for e in frame["events"]
            if e["kind"] == HEALTH_KIND
        }
        if health:
            await database_sync_to_async(health_apply)(host_id=self.host.id, reports=health)
        if any(e["kind"] in DOCKER_KINDS for e in frame["events"]):
            await self._docker_registrations()
        traffic = {
            e["key"]: e["object"] if e["action"] == "set" else None
            for e in frame["events"]
            if e["kind"] == TRAFFIC_KIND
        }
        if traffic:
            self._traffic(traffic, whole=False)
        self._save_soon()

    async def _on_result(self, frame: dict[str, Any]) -> None:
        if frame.get("settling"):
            self.settling.add(frame["id"])
        reply = {"ok": frame["ok"], "result": frame.get("result"), "error": frame.get("error")}
        running = self.running_operation if frame["id"] == self.running else None
        if running is not None and running.kind in (Operation.Kind.DOCKER, Operation.Kind.SHAPE):
            await self._save()  # its changes came first: stored before it ends, for the requests after it
        operation = await database_sync_to_async(operation_finish)(
            host_id=self.host.id, operation_id=frame["id"], reply=reply
        )
        if operation is None:
            log.info("agent of host %s: result for unknown operation %s", self.host, frame["id"])
        else:
            await self._announce([operation])
            # a reconcile plan: queue the apply it calls for, if any (announced and woken by the service)
            await database_sync_to_async(topology_reconcile_after_plan)(operation=operation)
        if frame["id"] == self.running:
            self.running = None
            await self._operations_next()

    async def _on_settled(self, frame: dict[str, Any]) -> None:
        """The agent has sent every change of a command it answered: the state is whole again, and
        its drift is checked with the next save."""
        self.settling.discard(frame["id"])
        self._save_soon()

    async def _on_progress(self, frame: dict[str, Any]) -> None:
        """How far the running operation is: browsers hear every report (the agent sends at most
        five a second); the database gets the latest at most every PROGRESS_SAVE_INTERVAL."""
        operation = self.running_operation
        if operation is None or frame["id"] != self.running:
            return  # it came after the operation's result: nothing runs to report on
        operation.progress = progress_text(step=frame.get("step"), done=frame["done"], total=frame["total"])
        operation.progress_done, operation.progress_total = frame["done"], frame["total"]
        await self._announce([operation])
        if self.progress_task is None or self.progress_task.done():
            delay = max(0.0, self.progress_saved_at + PROGRESS_SAVE_INTERVAL - time.monotonic())
            self.progress_task = asyncio.create_task(self._progress_save_after(delay))

    async def _progress_save_after(self, delay: float) -> None:
        """Store the running operation's latest progress after `delay` (reports that come meanwhile
        are carried by this write; one that ended meanwhile is left as it ended)."""
        await asyncio.sleep(delay)
        self.progress_saved_at = time.monotonic()
        operation = self.running_operation
        if operation is None or operation.progress_total is None:
            return
        try:
            await database_sync_to_async(operation_progress)(
                host_id=self.host.id,
                operation_id=str(operation.id),
                progress=operation.progress,
                done=operation.progress_done,
                total=operation.progress_total,
            )
        except DatabaseError:  # the next report tries again; browsers had it anyway
            log.exception("host %s: could not store the progress of operation %s", self.host, operation.id)

    async def _on_catalog_applied(self, frame: dict[str, Any]) -> None:
        """The agent serves the catalog version it names, or says why it could not: kept for the
        Services page."""
        if not frame["ok"]:
            log.error("host %s could not serve its service catalog: %s", self.host, frame.get("error"))
        await database_sync_to_async(catalog_applied)(
            host_id=self.host.id,
            ok=frame["ok"],
            version=frame.get("version") if isinstance(frame.get("version"), int) else None,
            problems=frame.get("problems"),
            error=frame.get("error"),
        )

    async def _on_resolved(self, frame: dict[str, Any]) -> None:
        """The agent's answers to a `resolve`: to the request waiting for them."""
        await self._answered(frame, "answers")

    async def _on_explained(self, frame: dict[str, Any]) -> None:
        """The agent's answer to an `explain`: to the request waiting for it."""
        await self._answered(frame, "answer")

    async def _answered(self, frame: dict[str, Any], field: str) -> None:
        reply, _ = self.asking.pop(frame["id"], (None, 0.0))
        if reply is not None:
            answer = {"ok": frame["ok"], field: frame.get(field), "error": frame.get("error")}
            await self.channel_layer.send(reply, {"type": "ask.reply", **answer})

    async def _on_capture_started(self, frame: dict[str, Any]) -> None:
        await self._capture_frame(capture_relay.on_started(host_id=self.host.id, frame=frame))

    async def _on_capture_data(self, frame: dict[str, Any]) -> None:
        await self._capture_frame(capture_relay.on_data(host_id=self.host.id, frame=frame))

    async def _on_capture_packets(self, frame: dict[str, Any]) -> None:
        await self._capture_frame(capture_relay.on_packets(host_id=self.host.id, frame=frame))

    async def _on_capture_done(self, frame: dict[str, Any]) -> None:
        self.captures.discard(frame["id"])
        await self._capture_frame(capture_relay.on_done(host_id=self.host.id, frame=frame))

    async def _capture_frame(self, handled: Awaitable[list[dict[str, Any]]]) -> None:
        """A capture frame, stored and shown to its watchers (webapp.captures.relay); then the
        frames that answer it (a capture.stop, an error for a refused one) go to the agent."""
        for reply in await handled:
            await self._send(reply)

    async def _on_pong(self, frame: dict[str, Any]) -> None:
        """Nothing to do: the agent is alive."""

    async def _on_error(self, frame: dict[str, Any]) -> None:
        """The agent could not read one of our frames: log it (never answer an error with one)."""
        log.warning("agent of host %s reported: %.500s", self.host, frame["error"])

    # Channel-layer messages (see webapp.layer)

    async def operation_wake(self, event: dict[str, Any]) -> None:
        try:
            await self._operations_next()
        except Exception:  # an exception here would close the socket without running disconnect()
            log.exception("host %s: could not start its next operation", self.host)

    async def operation_cancel(self, event: dict[str, Any]) -> None:
        """Someone cancelled an operation of the host: if the agent runs it, ask it to stop."""
        if event["id"] == self.running:
            await self._send(protocol.frame("cancel", id=self.running))

    async def agent_revoke(self, event: dict[str, Any]) -> None:
        await self.close(code=layer.CLOSE_FORBIDDEN)

    async def agent_replace(self, event: dict[str, Any]) -> None:
        if event["channel"] != self.channel_name:
            self.replaced = True
            await self.close(code=layer.CLOSE_REPLACED)

    async def catalog_push(self, event: dict[str, Any]) -> None:
        """The host's service catalog changed (or the agent just said hello): send it the whole of it.
        One at a time, each read afresh: the last one sent is the newest."""
        if not self.greeted:
            return
        async with self.catalog_lock:
            docker = self.live.objects("docker_networks") if self.live.known else None  # newer than stored
            catalog = await database_sync_to_async(catalog_for_host)(self.host.id, docker_networks=docker)
            await self._send(protocol.frame("catalog", catalog=catalog))

    async def ask_request(self, event: dict[str, Any]) -> None:
        """Send the agent a question (webapp.hosts.ask: `resolve`, `explain`); its answer goes to
        event["reply"]."""
        if not self.greeted or event["kind"] not in QUESTIONS:
            return
        now = time.monotonic()
        for stale in [k for k, (_, sent) in self.asking.items() if now - sent > ASK_FORGET]:
            del self.asking[stale]  # the agent never answered: the request gave up long ago
        self.asking[event["id"]] = (event["reply"], now)
        await self._send(protocol.frame(event["kind"], id=event["id"], request=event["request"]))

    async def capture_request(self, event: dict[str, Any]) -> None:
        """Start a capture (webapp.captures.services): send the agent its `capture` frame. Before
        hello it is not sent: hello ends it as left by an earlier connection."""
        if self.greeted:
            self.captures.add(event["id"])
            await self._send(protocol.frame("capture", id=event["id"], request=event["request"]))

    async def capture_stop(self, event: dict[str, Any]) -> None:
        """Someone stopped a capture, or deleted a live one: ask the agent to stop it."""
        if self.greeted:
            await self._send(protocol.frame("capture.stop", id=event["id"]))

    async def state_request(self, event: dict[str, Any]) -> None:
        if not self.live.known or event.get("host") not in (None, self.host.name):
            return
        message = layer.snapshot_message(
            host=self.host.name, online=True, seq=self.live.seq, state=self.live.copy(), stale=self.live.stale
        )
        try:
            await self.channel_layer.send(event["reply_channel"], message)
        except ChannelFull:  # that browser is not reading: it falls back to the stored state
            log.info("host %s: state not sent to %s, its channel is full", self.host, event["reply_channel"])

    # Helpers

    async def _operations_next(self) -> None:
        """Send the agent the host's oldest pending operation, unless one is running (or this
        connection does not hold the host's lease)."""
        if not self.greeted or self.running is not None:
            return
        operation = await database_sync_to_async(operation_start_next)(
            host_id=self.host.id, holder=self.channel_name
        )
        if operation is None:
            return
        self.running, self.running_operation = str(operation.id), operation
        await self._announce([operation])
        await self._send(command_frame(operation))

    async def _announce(self, operations: list[Operation]) -> None:
        for operation in operations:
            await self.channel_layer.group_send(
                layer.TOPOLOGY, operation_message(operation, host=self.host.name)
            )

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))

    async def _status(self, host: Host) -> None:
        await self.channel_layer.group_send(
            layer.TOPOLOGY,
            layer.status_message(
                host=host.name,
                online=host.online,
                agent_version=host.agent_version,
                last_seen=host.last_seen.isoformat() if host.last_seen else None,
                stale=host.online and self.live.stale,
            ),
        )

    async def _state_lost(self) -> None:
        """A snapshot or delta was refused: the kept state is stale (browsers are told) until the
        agent sends the snapshot asked for."""
        if self.live.known and not self.live.stale:
            self.live.refused()
            await self._status(self.host)
        await self._ask_resync()

    async def _docker_registrations(self) -> None:
        """Register the service instances the host's containers' labels ask for (webapp.catalog.docker)."""
        try:
            await database_sync_to_async(docker_registrations_sync)(
                host_id=self.host.id,
                engine=self.live.objects("docker_engine").get("engine"),
                networks=self.live.objects("docker_networks"),
                containers=self.live.objects("docker_containers"),
            )
        except DatabaseError:  # the next container event or snapshot tries again
            log.exception("host %s: could not register its containers' services", self.host)

    def _traffic(self, reports: dict[str, Any], *, whole: bool) -> None:
        """Keep the history of the host's traffic edges (webapp.traffic) in a task of its own, so the
        connection answers its frames meanwhile: reports that come during a write are merged into the
        next one (one transaction), a snapshot's replacing what was pending."""
        if whole or self.traffic_pending is None:
            self.traffic_pending, self.traffic_whole = {}, whole
        for key, report in reports.items():
            if report is None and self.traffic_whole:
                self.traffic_pending.pop(key, None)  # a snapshot's reports are the live edges
            else:
                self.traffic_pending[key] = report
        if self.traffic_task is None or self.traffic_task.done():
            self.traffic_task = asyncio.create_task(self._traffic_drain())

    async def _traffic_drain(self) -> None:
        """Store the pending traffic reports until none are left (one transaction each)."""
        while self.traffic_pending is not None:
            reports, whole = self.traffic_pending, self.traffic_whole
            self.traffic_pending, self.traffic_whole = None, False
            prune = time.monotonic() - self.traffic_pruned > TRAFFIC_PRUNE_INTERVAL
            try:
                await database_sync_to_async(_traffic_store)(
                    host_id=self.host.id, reports=reports, whole=whole, prune=prune
                )
            except DatabaseError:  # the next snapshot ends or restores what this one missed
                log.exception("host %s: could not store its traffic edges", self.host)
                continue
            if prune:
                self.traffic_pruned = time.monotonic()

    async def _ask_resync(self) -> None:
        """Ask the agent for a snapshot, unless a request is outstanding (re-asked after RESYNC_RETRY)."""
        now = time.monotonic()
        if self.resync_asked is not None and now - self.resync_asked < RESYNC_RETRY:
            return
        self.resync_asked = now
        await self._send(protocol.frame("resync"))

    async def _watch_token(self) -> None:
        """Close the connection once its token is revoked or rotated, even when that happened in
        another process the channel layer does not reach (the in-memory layer)."""
        while True:
            await asyncio.sleep(TOKEN_CHECK_INTERVAL)
            current = await database_sync_to_async(host_token_current)(
                host_id=self.host.id, token_hash=self.host.token_hash
            )
            if not current:
                await self.close(code=layer.CLOSE_FORBIDDEN)
                return

    async def _catalog_keep(self, *, serving: bool) -> None:
        """Send the agent its catalog (unless it serves none and the host has none), then remove the
        host's service instances whose lease ran out (their client stopped renewing), every second."""
        if serving or await database_sync_to_async(host_has_services)(host_id=self.host.id):
            await self.catalog_push({})
        while True:
            await asyncio.sleep(LEASE_SWEEP_INTERVAL)
            try:
                await database_sync_to_async(leases_expire)(host_id=self.host.id)
            except DatabaseError:
                log.exception("host %s: could not expire its service instances' leases", self.host)

    async def _keep_lease(self) -> None:
        """Renew the host's presence lease while the connection is open, whether frames come or not.

        A connection that finds the lease gone closes: with 4003 when its token no longer stands,
        else with 4009 as replaced (a newer connection of the host, maybe on another worker, took it).
        """
        while True:
            await asyncio.sleep(lease_renew_interval())
            try:
                held = await database_sync_to_async(host_lease_renew)(
                    host=self.host, holder=self.channel_name
                )
            except DatabaseError:  # tried again next time; if it keeps failing the lease runs out
                log.exception("host %s: could not renew its presence lease", self.host)
                continue
            if held:
                continue
            current = await database_sync_to_async(host_token_current)(
                host_id=self.host.id, token_hash=self.host.token_hash
            )
            log.info(
                "host %s: the connection lost its presence lease (%s)",
                self.host,
                "taken by a newer connection" if current else "token revoked or rotated",
            )
            self.replaced = current
            await self.close(code=layer.CLOSE_REPLACED if current else layer.CLOSE_FORBIDDEN)
            return

    async def _save(self) -> None:
        """Persist the live state now (saves run one at a time, each taking the latest state), then
        check the drift of the host's topologies from it, in a task of its own: this connection
        keeps answering its frames meanwhile."""
        async with self.save_lock:
            self.saved_at = time.monotonic()
            seq, state = self.live.seq, self.live.copy()
            whole, self.health_whole = self.health_whole, False
            try:
                save = database_sync_to_async(_state_store)
                await save(host_id=self.host.id, seq=seq, state=state, health=whole)
            except DatabaseError:
                log.exception("host %s: could not store its state", self.host)
                return
        if self.settling:
            return  # a command's changes are still coming: _on_settled saves (and checks) again
        self.drift_state = (seq, state)
        if self.drift_task is None or self.drift_task.done():
            self.drift_task = asyncio.create_task(self._drift())

    async def _drift(self) -> None:
        """Record what the host's applied topologies lack in the latest saved state (networks.drift)
        and tell browsers of each topology whose drift changed, and of each topology spanning hosts
        whose overlay check changed (networks.overlay); a state saved meanwhile is next."""
        while self.drift_state is not None:
            (seq, state), self.drift_state = self.drift_state, None
            try:
                changed = await database_sync_to_async(drift_check)(host_id=self.host.id, state=state)
            except DatabaseError:
                log.exception("host %s: could not check its topologies' drift", self.host)
                continue
            try:
                overlays = await database_sync_to_async(overlays_changed)(
                    host_id=self.host.id, seq=seq, state=state
                )
            except DatabaseError:
                log.exception("host %s: could not check the overlays it is on", self.host)
                overlays = []
            for topology in [*changed, *overlays]:
                await self.channel_layer.group_send(
                    layer.TOPOLOGY, layer.desired_message(host=topology.host.name, topology=topology.name)
                )

    def _save_soon(self) -> None:
        """Persist within SAVE_INTERVAL of the last save, once for however many deltas come meanwhile."""
        if self.save_task is None or self.save_task.done():
            delay = max(0.0, self.saved_at + SAVE_INTERVAL - time.monotonic())
            self.save_task = asyncio.create_task(self._save_after(delay))

    async def _save_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._save()
