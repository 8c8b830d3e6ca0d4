"""The agent's packet captures (docs/agent-protocol.md, "Packet capture").

Each capture runs netcore.capture in a thread of its own (a pool of MAX_CAPTURES threads: a capture
lasts up to an hour and must not take the threads commands and explain use), beside everything else
the agent does and never under its command lock. Its frames go out in order through the agent's
send, each awaited before the next (a slow socket delays the frames, never dumpcap: the file is the
buffer). A capture lives only as long as the connection it was asked on: stop_all() ends them all.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from netcore.capture.request import CaptureRequest, capture_request_parse
from netcore.capture.run import CaptureResult, capture_run
from netcore.capture.summary import Row
from netcore.errors import Busy, Conflict, InvalidSpec, NetcoreError

log = logging.getLogger("netcore.agent")

MAX_CAPTURES = 4  # captures one agent runs at once
SEND_TIMEOUT = 30.0  # seconds a frame may take to go out before the capture gives up

Send = Callable[[dict], Coroutine[Any, Any, None]]


class _Abandoned(Exception):
    """The connection the capture was asked on has ended: nobody is left to send to."""


class _Running:
    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.abandoned = False
        self.task: asyncio.Task | None = None


def _done(capture_id: object, result: CaptureResult | None = None, error: NetcoreError | None = None) -> dict:
    frame: dict = {"type": "capture.done", "id": capture_id}
    if result is not None:
        return {**frame, "ok": True, **result.to_dict(), "error": None}
    assert error is not None
    return {**frame, "ok": False, "packets": 0, "dropped": 0, "reason": "error", "error": error.to_dict()}


class Captures:
    """The captures of one agent, by id."""

    def __init__(self, *, limit: int = MAX_CAPTURES) -> None:
        self.limit = limit
        self._running: dict[str, _Running] = {}
        self._refusals: set[asyncio.Task] = set()
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="netcore-capture")

    def start(self, frame: dict, send: Send) -> None:
        """Begin the capture a `capture` frame asks for (or refuse it with a `capture.done`)."""
        capture_id = frame.get("id")
        try:
            if not isinstance(capture_id, str) or not capture_id:
                raise InvalidSpec("id: a capture needs an id", obj="id")
            request = capture_request_parse(frame.get("request"))
            if capture_id in self._running:
                raise Conflict(f"id: capture {capture_id} is already running", obj="id")
            if len(self._running) >= self.limit:
                raise Busy(
                    f"capture: this agent already runs {self.limit} captures, the most it runs at once;"
                    " stop one or wait for one to end",
                    obj="capture",
                )
        except NetcoreError as exc:
            task = asyncio.create_task(send(_done(capture_id, error=exc)))
            self._refusals.add(task)
            task.add_done_callback(self._refusals.discard)
            return
        running = self._running[capture_id] = _Running()
        running.task = asyncio.create_task(self._run(capture_id, request, running, send))

    def stop(self, capture_id: object) -> None:
        """End that capture now; what it captured is still sent, then its `capture.done`."""
        running = self._running.get(capture_id) if isinstance(capture_id, str) else None
        if running is None:
            log.info("capture.stop of %r: no such capture is running", capture_id)
            return
        running.cancel.set()

    async def stop_all(self) -> None:
        """The connection ended: end every capture, sending nothing more, and wait until each is gone."""
        tasks = []
        for running in self._running.values():
            running.abandoned = True
            running.cancel.set()
            if running.task is not None:
                tasks.append(running.task)
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, capture_id: str, request: CaptureRequest, running: _Running, send: Send) -> None:
        loop = asyncio.get_running_loop()

        def deliver(frame: dict) -> None:  # in the capture's thread: one frame at a time, in order
            if running.abandoned:
                raise _Abandoned
            asyncio.run_coroutine_threadsafe(send({**frame, "id": capture_id}), loop).result(SEND_TIMEOUT)

        def rows(seen: int, batch: list[Row]) -> None:
            deliver({"type": "capture.packets", "seen": seen, "rows": [row.to_dict() for row in batch]})

        def data(offset: int, chunk: bytes) -> None:
            deliver(
                {"type": "capture.data", "offset": offset, "data": base64.b64encode(chunk).decode("ascii")}
            )

        def work() -> dict | None:
            try:
                result = capture_run(
                    request,
                    on_started=lambda: deliver({"type": "capture.started"}),
                    on_data=data,
                    on_rows=rows,
                    cancelled=running.cancel.is_set,
                )
            except _Abandoned:
                return None
            except NetcoreError as exc:
                return _done(capture_id, error=exc)
            except Exception as exc:  # a fault of ours or the machine's: the web app still hears the end
                log.exception("capture %s failed", capture_id)
                return _done(capture_id, error=NetcoreError(f"capture: {exc}", obj="capture"))
            if result.message is not None:
                log.warning("capture %s stopped on its own: %s", capture_id, result.message)
            return _done(capture_id, result=result)

        try:
            done = await loop.run_in_executor(self._pool, work)
            if done is not None and not running.abandoned:
                await send(done)
        finally:
            self._running.pop(capture_id, None)
