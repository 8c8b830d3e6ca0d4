"""P13: packet capture (issue 13's speed goal: 10,000 packets/s on one interface reach the browser's
table without losing the pcap's packets; the table may sample, the pcap may not).

Two throwaway namespaces on a veth pair; a paced UDP sender (its own process, in one namespace)
sends RATE datagrams a second to the other, where the capture runs on the receiving veth. Measured
twice:

netcore level, for SECONDS seconds: netcore.capture runs dumpcap on the receiving veth as the agent
does (the same capture_run, its callbacks in place of frames).

- P13 pcap: packets in the file against packets sent (ratio = in pcap / sent; goal 1.0: none lost).
- P13 rows: rows handed to on_rows (the table's sample) against packets sent, report only.
- P13 delay: seconds from the last datagram sent to the on_data call carrying its bytes, report only
  (chunks go at most every 0.2 s, as the protocol allows).

Through the whole stack, WEB_COUNT datagrams: a fresh namespace holding daphne (one worker, in-memory
channel layer, SQLite in the run's scratch directory) and the real agent (bench.live's helpers, as
P3/P4/P8 start them), an operator's API token. The capture is started by POST /api/v1/captures/
(the receiving veth, filter `udp port PORT`, count WEB_COUNT, so it ends by count once the last
datagram is in its file); a websocket client like a browser's (the same token) watches
/ws/captures/<id>/ from a socket made inside that namespace; once the socket says `running` the
sender starts. Afterwards the capture's file is downloaded from GET /api/v1/captures/<id>/pcap and
its packet blocks counted (netcore.capture.pcapng).

- P13 web pcap: packets in the downloaded file against packets sent (goal 1.0: none lost); the
  capture's final `packets` from the API and dumpcap's drops in the note.
- P13 web rows: distinct rows (frame numbers) the socket received against packets sent, report only
  (a sample; there must be some: none makes the row invalid).
- P13 web done: seconds from the last datagram sent to the socket's `capture.status` saying done.
- P13 web last row: seconds from the last datagram sent to the last `capture.rows` frame (rows are
  summarised by tshark behind the file, at most 1000 a second, so this trails).
Times are time.time() in the sender and in the bench (one clock). Everything started here is stopped
and its namespaces deleted in `finally`; the capture's rows die with the run's scratch database.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.figures import Context, Result, figure
from bench.hostns import NETNS_DIR, nsenter, run_in
from bench.live import (
    StackError,
    _manage,
    _start,
    _stop,
    agent_command,
    daphne_command,
    stack_namespace,
    wait_for_port,
)
from netcore.capture.pcapng import BlockSplitter
from netcore.capture.request import capture_request_parse
from netcore.capture.run import capture_run
from netcore.capture.summary import Row
from tests.stack.harness import http_call, ns_connect

RATE = 10_000  # datagrams a second
SECONDS = 3.0
SENDER, RECEIVER, PORT = "198.18.95.1", "198.18.95.2", 40001
WEB_COUNT = 30_000  # datagrams sent through the whole stack (3 s at RATE); the capture's count
WEB_PORT = 8768
WEB_HOST = "bench-p13"
WEB_OPERATOR = "bench-p13-op"
WEB_DURATION = 30  # the capture's duration limit (s): it should end by count long before
READY_TIMEOUT_S = 30.0  # for the agent to be online with the namespaces, and the capture running
QUIET_S = 1.0  # after `done`, rows still arriving within this long of the last frame are counted
ENDED = ("done", "stopped", "failed")

# The paced sender: every millisecond it sends what is due by then; prints {sent, seconds, last}.
SENDER_PY = """
import json, socket, sys, time
rate, seconds, target, port = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"switchboard-p13-" + b"." * 48
total = int(rate * seconds)
sent, start = 0, time.perf_counter()
while sent < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1)
    while sent < due:
        sock.sendto(payload, (target, port))
        sent += 1
    time.sleep(0.0005)
last = time.time()
print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start, "last": last}))
"""


def _pair(ctx: Context, made: list[str] | None = None) -> tuple[str, str]:
    """Two fresh namespaces, sender (c0, SENDER) and receiver (c1, RECEIVER), on a veth pair; each
    goes into `made` as soon as it exists."""
    made = [] if made is None else made
    a = ctx.run.add_host(ctx.tag("ca"))
    made.append(a)
    b = ctx.run.add_host(ctx.tag("cb"))
    made.append(b)
    for ns, argv in (
        (a, ["ip", "link", "add", "c0", "type", "veth", "peer", "name", "c1", "netns", b]),
        (a, ["ip", "addr", "add", f"{SENDER}/24", "dev", "c0"]),
        (b, ["ip", "addr", "add", f"{RECEIVER}/24", "dev", "c1"]),
        (a, ["ip", "link", "set", "c0", "up"]),
        (b, ["ip", "link", "set", "c1", "up"]),
    ):
        subprocess.run([*nsenter(ns), *argv], check=True, capture_output=True)
    return a, b


def _sender_argv(ns: str, count: int) -> list[str]:
    """The paced sender in `ns`: `count` datagrams at RATE a second to RECEIVER:PORT."""
    return [*nsenter(ns), sys.executable, "-c", SENDER_PY, str(RATE), str(count / RATE), RECEIVER, str(PORT)]


def _sent(stdout: str) -> dict[str, Any] | None:
    """The sender's {sent, seconds, last}; None when it printed none."""
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _rate_note(sent: dict[str, Any]) -> tuple[float, bool, str]:
    """(rate reached, whether it is close enough to RATE for the figure to count, a note if not)."""
    rate = sent["sent"] / sent["seconds"]
    valid = rate >= RATE * 0.95
    return rate, valid, "" if valid else f"the sender reached only {rate:,.0f}/s of the {RATE:,}/s asked"


def _netcore_rows(ctx: Context) -> list[Result]:
    """netcore level: capture_run with callbacks, RATE for SECONDS."""
    a, b = _pair(ctx)
    total = int(RATE * SECONDS)
    request = capture_request_parse(
        {"namespace": b, "interfaces": ["c1"], "filter": f"udp port {PORT}", "count": total, "duration": 60}
    )
    splitter = BlockSplitter()
    seen = {"packets": 0, "rows": 0, "all_at": None}
    sender: list[subprocess.CompletedProcess[str]] = []

    def send() -> None:
        sender.append(subprocess.run(_sender_argv(a, total), capture_output=True, text=True, check=False))

    thread = threading.Thread(target=send)

    def on_data(offset: int, chunk: bytes) -> None:
        seen["packets"] += sum(is_packet for is_packet, _ in splitter.feed(chunk))
        if seen["packets"] >= total and seen["all_at"] is None:
            seen["all_at"] = time.time()

    def on_rows(packets: int, rows: list[Row]) -> None:
        seen["rows"] += len(rows)

    try:
        result = capture_run(
            request, on_started=thread.start, on_data=on_data, on_rows=on_rows, cancelled=lambda: False
        )
    finally:
        if thread.ident is not None:
            thread.join()
        ctx.run.delete([a, b])
    done = sender[0] if sender else None
    sent = _sent(done.stdout) if done else None
    if sent is None:
        note = f"the sender failed: {done.stderr.strip()[-300:] if done else 'not started'}"
        return [Result("P13 pcap", "packets sent", None, None, 1.0, note)]
    rate, valid, slow = _rate_note(sent)
    note = (
        f"{sent['sent']} sent at {rate:,.0f}/s, {result.packets} in the pcap, {result.dropped} dropped"
        f" (dumpcap), ended by {result.reason}"
    )
    note = "; ".join(filter(None, [note, slow]))
    delay = seen["all_at"] - sent["last"] if seen["all_at"] is not None else None
    return [
        Result("P13 pcap", "share of sent in pcap", result.packets, sent["sent"], 1.0, note, valid=valid),
        Result(
            "P13 rows",
            "share of sent in rows",
            seen["rows"],
            sent["sent"],
            None,
            f"{seen['rows']} rows handed on (a sample: at most 1000 a second)",
        ),
        Result(
            "P13 delay",
            "last sent -> on_data",
            None,
            delay,
            None,
            "seconds from the last datagram sent to the on_data call that carried it",
        ),
    ]


# --- through the whole stack -----------------------------------------------------------------------


@dataclass
class WebStack:
    """daphne + the agent in `ns`; the sender and receiver namespaces; an operator's API token."""

    ns: str
    sender_ns: str
    receiver_ns: str
    token: str
    logs: list[Path]

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.ns)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http_call(self.path, WEB_PORT, method, path, token=self.token, body=body, timeout=60)

    def download(self, path: str) -> tuple[int, bytes]:
        """GET `path` as bytes (http_call decodes text; the capture's file is binary)."""
        conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=60)
        conn.sock = ns_connect(self.path, WEB_PORT, timeout=60)
        try:
            conn.request("GET", path, headers={"Authorization": f"Token {self.token}", "Accept": "*/*"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def tail(self, chars: int = 400) -> str:
        text = " | ".join(
            f"{p.name}: {p.read_text(errors='replace')[-chars:]}" for p in self.logs if p.exists()
        )
        return " ".join(text.split())


@contextlib.contextmanager
def web_stack(ctx: Context) -> Iterator[WebStack]:
    """A fresh namespace with daphne and the agent (which sees the sender and receiver namespaces,
    made before it starts); all of it gone afterwards."""
    ns, workdir, env = stack_namespace(ctx, "p13w")
    made = [ns]
    procs: list[subprocess.Popen] = []
    logs = [workdir / "daphne.log", workdir / "agent.log"]
    try:
        a, b = _pair(ctx, made)
        _manage(env, "migrate", "--noinput")
        host_token = _manage(env, "hosttoken", WEB_HOST).strip().splitlines()[-1]
        token = _manage(env, "adduser", WEB_OPERATOR, "--role", "operator").strip().splitlines()[-1]
        stack = WebStack(ns, a, b, token, logs)
        procs.append(_start(ns, daphne_command(WEB_PORT), env, logs[0]))
        if not run_in(ns, wait_for_port(WEB_PORT), timeout=60).ok:
            raise StackError(f"daphne is not listening on {WEB_PORT} after 30 s: {stack.tail()}")
        procs.append(
            _start(ns, agent_command(WEB_PORT), {**env, "SWITCHBOARD_AGENT_TOKEN": host_token}, logs[1])
        )
        yield stack
    finally:
        try:
            _stop(list(reversed(procs)))  # the agent first: it stops its captures
        finally:
            ctx.run.delete(made)
            ctx.settle()


def _start_capture(stack: WebStack) -> dict[str, Any]:
    """POST /api/v1/captures/ on the receiver's veth; retried while the agent is not online yet (503)
    or the host's state does not show the namespace and its interface yet (404)."""
    body = {
        "host": WEB_HOST,
        "namespace": stack.receiver_ns,
        "interfaces": ["c1"],
        "filter": f"udp port {PORT}",
        "count": WEB_COUNT,
        "duration": WEB_DURATION,
    }
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        status, answer = stack.call("POST", "/api/v1/captures/", body)
        if status == 202:
            return answer
        if status not in (503, 404) or time.monotonic() > deadline:
            raise StackError(f"POST /api/v1/captures/: {status} {str(answer)[:300]} | {stack.tail()}")
        time.sleep(0.2)


@dataclass
class Watcher:
    """The browser's socket on /ws/captures/<id>/: when each frame came, which rows, the last status."""

    running: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    status: dict[str, Any] = field(default_factory=dict)
    numbers: set[int] = field(default_factory=set)
    rows: int = 0  # rows received, repeats included
    row_frames: int = 0
    first_row_at: float | None = None
    last_row_at: float | None = None
    ended_at: float | None = None
    last_frame_at: float = 0.0
    odd: list[str] = field(default_factory=list)  # frames a watcher should not get

    async def read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                now = time.time()  # before parsing: the frame is here
                self.last_frame_at = now
                self._on_frame(json.loads(raw), now)

    def _on_frame(self, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        if kind == "capture.status":
            self.status = frame["capture"]
            if self.status["status"] != "pending":
                self.running.set()
            if self.status["status"] in ENDED and self.ended_at is None:
                self.ended_at = now
                self.ended.set()
        elif kind == "capture.rows":
            rows = frame.get("rows") or []
            if rows:
                self.rows += len(rows)
                self.row_frames += 1
                self.numbers.update(row["number"] for row in rows)
                self.first_row_at = self.first_row_at or now
                self.last_row_at = now
        else:
            self.odd.append(str(kind))
            self.running.set()
            self.ended.set()


async def _watch_and_send(stack: WebStack, capture_id: str) -> tuple[Watcher, dict[str, Any]]:
    """Watch the capture's socket; start the sender once it runs; wait until it ended and rows stop."""
    watcher = Watcher()
    sock = await asyncio.to_thread(ns_connect, stack.path, WEB_PORT)
    ws = await connect(
        f"ws://127.0.0.1:{WEB_PORT}/ws/captures/{capture_id}/",
        sock=sock,
        additional_headers={"Authorization": f"Token {stack.token}"},
        proxy=None,
        max_size=None,
        open_timeout=10,
    )
    reader = asyncio.create_task(watcher.read(ws))
    try:
        try:
            await asyncio.wait_for(watcher.running.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            raise StackError(
                f"the capture did not run within {READY_TIMEOUT_S:g} s: {watcher.status} | {stack.tail()}"
            ) from None
        if watcher.ended.is_set():
            raise StackError(f"the capture ended before anything was sent: {watcher.status} {watcher.odd}")
        proc = await asyncio.create_subprocess_exec(
            *_sender_argv(stack.sender_ns, WEB_COUNT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        sent = _sent(out.decode(errors="replace"))
        if sent is None:
            raise StackError(f"the sender failed: {' '.join(err.decode(errors='replace').split())[-300:]}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher.ended.wait(), WEB_DURATION + 10)
        while watcher.ended.is_set() and time.time() - watcher.last_frame_at < QUIET_S:
            await asyncio.sleep(0.05)  # rows still on their way after `done`
        return watcher, sent
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _count_packets(data: bytes) -> int:
    return sum(is_packet for is_packet, _ in BlockSplitter().feed(data))


def _web_rows(ctx: Context) -> list[Result]:
    with web_stack(ctx) as stack:
        capture = _start_capture(stack)
        watcher, sent = asyncio.run(_watch_and_send(stack, capture["id"]))
        status, final = stack.call("GET", f"/api/v1/captures/{capture['id']}/?limit=1")
        if status != 200:
            raise StackError(f"GET the capture: {status} {str(final)[:300]}")
        got, pcap = stack.download(f"/api/v1/captures/{capture['id']}/pcap")
        if got != 200:
            raise StackError(f"GET the capture's pcap: {got} {pcap[:300]!r}")
    in_pcap = _count_packets(pcap)
    rate, valid, slow = _rate_note(sent)
    whole = final["status"] == "done" and final["packets"] == in_pcap and len(pcap) == final["bytes"]
    note = (
        f"{sent['sent']} sent at {rate:,.0f}/s; the capture {final['status']} ({final['reason']}), API"
        f" packets {final['packets']}, dropped {final['dropped']} (dumpcap); downloaded pcap"
        f" {len(pcap):,} bytes ({final['bytes']:,} stored), {in_pcap} packets"
    )
    if not whole:
        note += "; the API's packets or bytes differ from the file, or the capture did not end done"
    if watcher.odd:
        note += f"; the socket also got {', '.join(watcher.odd)}"
    note = "; ".join(filter(None, [note, slow]))
    span = (
        f" over {watcher.last_row_at - watcher.first_row_at:.1f} s"
        if watcher.first_row_at and watcher.last_row_at
        else ""
    )
    rows_note = (
        f"{len(watcher.numbers)} distinct rows ({watcher.rows} with repeats) in {watcher.row_frames}"
        f" capture.rows frames{span}; the capture kept {final['rows_kept']} rows (a sample: at most 1000"
        " a second)"
    )
    last = sent["last"]
    done_s = watcher.ended_at - last if watcher.ended_at is not None else None
    row_s = watcher.last_row_at - last if watcher.last_row_at is not None else None
    return [
        Result(
            "P13 web pcap",
            "share of sent in downloaded pcap",
            in_pcap,
            sent["sent"],
            1.0,
            note,
            valid=valid and whole,
        ),
        Result(
            "P13 web rows",
            "share of sent in socket rows",
            len(watcher.numbers),
            sent["sent"],
            None,
            rows_note,
            valid=bool(watcher.numbers),
        ),
        Result(
            "P13 web done",
            "last sent -> status done",
            None,
            done_s,
            None,
            "seconds from the last datagram sent to the socket's capture.status saying it ended"
            + (
                "" if done_s is not None else f" (it had not, {WEB_DURATION + 10} s after: {final['status']})"
            ),
        ),
        Result(
            "P13 web last row",
            "last sent -> last row",
            None,
            row_s,
            None,
            "seconds from the last datagram sent to the last capture.rows frame at the socket",
        ),
    ]


@figure("P13", order=96)
def p13_capture(ctx: Context) -> list[Result]:
    rows = _netcore_rows(ctx)
    try:
        rows += _web_rows(ctx)
    except Exception as exc:  # the netcore level's rows stand even when the stack's fail
        note = f"failed: {type(exc).__name__}: {exc}"
        rows.append(Result("P13 web pcap", "share of sent in downloaded pcap", None, None, 1.0, note, False))
    return rows
