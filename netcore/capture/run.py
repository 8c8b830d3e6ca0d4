"""Run one packet capture: dumpcap inside the namespace writes pcapng, which is copied to a file as it
comes and handed on in chunks; a sample of its packets is summarised by tshark as rows.

Three parts, so that nothing slow can hold the file back:
- the pump thread copies dumpcap's pipe to the file the moment bytes arrive, counts the packets,
  feeds tshark a sample of them (RowBudget, and never more than TSHARK_BACKLOG behind) and reads
  tshark's rows. It waits on nothing but these pipes.
- the caller's thread hands on the file's new bytes and the rows at most every 0.2 s each, watches
  for `cancelled` and stops dumpcap with SIGINT (it then finishes its file).
- dumpcap and tshark, each ended, however the capture ends (a callback that raises ends it too); the
  file is a temporary one unlinked the moment it is made, so it goes with its descriptor, even when
  the process is killed.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import math
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from netcore.capture.dumpcap import (
    STOP_TIMEOUT,
    dumpcap_complaint,
    dumpcap_dropped,
    dumpcap_start,
    dumpcap_stop,
)
from netcore.capture.pcapng import BlockSplitter
from netcore.capture.request import CaptureRequest
from netcore.capture.summary import NOBODY, Row, RowBudget, row_parse, tshark_command

DATA_INTERVAL = 0.2  # seconds between two chunks of the file handed on
MAX_CHUNK = 4 * 1024 * 1024  # bytes of the file in one chunk
ROWS_INTERVAL = 0.2  # seconds between two batches of rows
MAX_ROWS = 200  # rows in one batch
ROWS_PER_SECOND = MAX_ROWS / ROWS_INTERVAL  # what tshark is fed at most: more could not be handed on
TSHARK_BACKLOG = 2000  # packets fed to tshark and not yet summarised: beyond it, none is fed
TSHARK_PENDING = 4 * 1024 * 1024  # bytes waiting for tshark's stdin: beyond it, no packet is added
TSHARK_GRACE = 5.0  # seconds tshark may take to finish its rows once dumpcap has ended
DURATION_GRACE = 5.0  # seconds past its duration after which a dumpcap still running is stopped
TICK = 0.05
READ_SIZE = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # dumpcap's pipe: room for a second of fast traffic while the pump is busy
_F_SETPIPE_SZ = 1031


@dataclass(frozen=True)
class CaptureResult:
    """How a capture ended: `packets` in the file, `dropped` as dumpcap reports, and why it ended.

    `reason` "error": dumpcap stopped on its own after it had started (its interface was deleted,
    say); the file holds what it captured until then, and `message` says what dumpcap said.
    """

    packets: int
    dropped: int
    reason: str
    message: str | None = None

    def to_dict(self) -> dict:
        """The protocol's fields (docs/agent-protocol.md, capture.done), without `message`."""
        return {"packets": self.packets, "dropped": self.dropped, "reason": self.reason}


class _Pump(threading.Thread):
    """Copies dumpcap's output to the file and feeds tshark its sample; see the module's docstring."""

    def __init__(self, *, source: int, file: int, tshark: subprocess.Popen[bytes]) -> None:
        super().__init__(name="netcore-capture-pump", daemon=True)
        self.source = source
        self.file = file
        self.tshark = tshark
        self.written = 0  # bytes in the file
        self.packets = 0  # packets in the file
        self.error: BaseException | None = None
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._aborted = threading.Event()
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC)

    def take_rows(self) -> list[Row]:
        """The rows summarised since the last call."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def rows_waiting(self) -> bool:
        with self._lock:
            return bool(self._rows)

    def abort(self) -> None:
        """End the pump now, whatever is left unread (the capture failed or was abandoned)."""
        self._aborted.set()
        os.write(self._wake_write, b"x")

    def close(self) -> None:
        """After join(): release what the pump held."""
        os.close(self._wake_read)
        os.close(self._wake_write)

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the caller's thread raises it
            self.error = exc

    def _loop(self) -> None:
        assert self.tshark.stdin is not None and self.tshark.stdout is not None
        splitter = BlockSplitter()
        budget = RowBudget(rate=ROWS_PER_SECOND, burst=MAX_ROWS)
        numbers: collections.deque[int] = collections.deque()  # fed to tshark, not yet summarised
        pending = bytearray()  # for tshark's stdin
        lines = bytearray()  # from tshark's stdout
        source: int | None = self.source
        os.set_blocking(self.tshark.stdin.fileno(), False)
        feed: int | None = self.tshark.stdin.fileno()
        rows: int | None = self.tshark.stdout.fileno()
        while (source is not None or rows is not None) and not self._aborted.is_set():
            if source is None and feed is not None and not pending:
                self.tshark.stdin.close()  # all fed: tshark ends once it has printed the last rows
                feed = None
            wanted = [fd for fd in (self._wake_read, source, rows) if fd is not None]
            readable, writable, _ = select.select(wanted, [feed] if feed is not None and pending else [], [])
            if source in readable:
                data = os.read(source, READ_SIZE)
                if not data:
                    source = None
                    continue
                _write_all(self.file, data)
                self.written += len(data)
                for is_packet, block in splitter.feed(data):
                    if is_packet:
                        self.packets += 1
                        if feed is None or len(numbers) >= TSHARK_BACKLOG or len(pending) > TSHARK_PENDING:
                            continue
                        if not budget.take():
                            continue
                        numbers.append(self.packets)
                    if feed is not None:
                        pending += block
            if feed is not None and feed in writable:
                try:
                    del pending[: os.write(feed, pending[:65536])]
                except BlockingIOError:
                    pass
                except BrokenPipeError:  # tshark died: the file goes on without rows
                    self.tshark.stdin.close()
                    feed = None
                    pending.clear()
            if rows is not None and rows in readable:
                data = os.read(rows, 65536)
                if not data:
                    rows = None
                    continue
                lines += data
                *complete, rest = lines.split(b"\n")
                lines = bytearray(rest)
                parsed = [row_parse(line, numbers.popleft() if numbers else 0) for line in complete]
                with self._lock:
                    self._rows.extend(row for row in parsed if row is not None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sample(rows: list[Row], limit: int) -> list[Row]:
    """At most `limit` rows, spread evenly over `rows`."""
    if len(rows) <= limit:
        return rows
    return [rows[i * len(rows) // limit] for i in range(limit)]


def _start_tshark() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        tshark_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        process_group=0,  # as dumpcap: a terminal's Ctrl-C is the caller's to handle
        env={"PATH": os.environ.get("PATH", os.defpath), "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"},
    )


def capture_run(
    request: CaptureRequest,
    *,
    on_started: Callable[[], None],
    on_data: Callable[[int, bytes], None],
    on_rows: Callable[[int, list[Row]], None],
    cancelled: Callable[[], bool],
    output: str | None = None,
) -> CaptureResult:
    """Capture as `request` says, in this thread, until its count or duration, or `cancelled()`.

    on_started(): dumpcap accepted the namespace, interfaces and filter. on_data(offset, chunk): the
    file's next bytes (pcapng), in order, at most MAX_CHUNK every DATA_INTERVAL. on_rows(seen, rows):
    packets in the file so far and at most MAX_ROWS new summary rows (a sample when traffic is fast),
    at most every ROWS_INTERVAL. The file is written to `output` (mode 0600) if given, else to an
    unnamed temporary file (gone with the capture). NetcoreError naming the field when a part is
    refused (nothing is left running then); an exception raised by a callback ends the capture.
    """
    file = -1
    tshark: subprocess.Popen[bytes] | None = None
    dumpcap: subprocess.Popen[bytes] | None = None
    pump: _Pump | None = None
    try:
        tshark = _start_tshark()  # it takes ~0.5 s to load its dissectors: meanwhile dumpcap starts
        dumpcap = dumpcap_start(request)
        assert dumpcap.stdout is not None and dumpcap.stderr is not None
        # the file once dumpcap runs (a refused capture leaves none); its pipe holds what comes meanwhile
        if output is None:  # unnamed at once: it goes with the last descriptor, even on kill -9
            file, name = tempfile.mkstemp(prefix="switchboard-capture-")
            os.unlink(name)
        else:
            file = os.open(output, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with contextlib.suppress(OSError):  # above pipe-max-size: the default pipe works, with less slack
            fcntl.fcntl(dumpcap.stdout.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
        pump = _Pump(source=dumpcap.stdout.fileno(), file=file, tshark=tshark)
        pump.start()
        on_started()
        started = time.monotonic()
        stopped_at: float | None = None
        reason: str | None = None  # set when this side stopped dumpcap
        ended_at: float | None = None
        sent = 0
        data_at = rows_at = -math.inf
        reported = 0
        while True:
            if pump.error is not None:  # the file cannot be written: stop now, not at the duration
                raise pump.error
            now = time.monotonic()
            if dumpcap.poll() is None:
                if stopped_at is None and cancelled():
                    reason = "stopped"
                elif stopped_at is None and now - started > request.duration + DURATION_GRACE:
                    reason = "duration"  # dumpcap overran its own limit
                if reason is not None and stopped_at is None:
                    dumpcap.send_signal(signal.SIGINT)
                    stopped_at = now
                elif stopped_at is not None and now - stopped_at > STOP_TIMEOUT:
                    dumpcap.kill()
            elif ended_at is None:
                ended_at = now
            elif pump.is_alive() and now - ended_at > TSHARK_GRACE:
                tshark.kill()  # its last rows are not worth waiting for any longer
            written = pump.written
            if written > sent and now - data_at >= DATA_INTERVAL:
                chunk = os.pread(file, min(written - sent, MAX_CHUNK), sent)
                on_data(sent, chunk)
                sent += len(chunk)
                data_at = now
            if now - rows_at >= ROWS_INTERVAL:
                seen, rows = pump.packets, pump.take_rows()
                if rows or seen != reported:
                    on_rows(seen, _sample(rows, MAX_ROWS))
                    reported, rows_at = seen, now
            if (
                ended_at is not None
                and not pump.is_alive()
                and sent == pump.written
                and reported == pump.packets
                and not pump.rows_waiting()
            ):
                break
            time.sleep(TICK)
        if pump.error is not None:
            raise pump.error
        said = dumpcap.stderr.read().decode("utf-8", "replace")
        message = None
        if reason is None and (dumpcap.returncode != 0 or dumpcap_complaint(said)):
            reason = "error"
            message = dumpcap_complaint(said) or f"dumpcap exited with status {dumpcap.returncode}"
        if reason is None:
            reason = "count" if pump.packets >= request.count else "duration"
        return CaptureResult(pump.packets, dumpcap_dropped(said), reason, message)
    finally:
        if pump is not None and pump.is_alive():
            pump.abort()
        if dumpcap is not None:
            dumpcap_stop(dumpcap)
        if tshark is not None:
            tshark.kill()
            tshark.wait()
        if pump is not None:
            pump.join()
            pump.close()
        for proc in (dumpcap, tshark):
            for pipe in (proc.stdin, proc.stdout, proc.stderr) if proc is not None else ():
                if pipe is not None and not pipe.closed:
                    pipe.close()
        if file >= 0:
            os.close(file)
