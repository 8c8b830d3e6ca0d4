"""Packet capture for real: two namespaces on a veth pair, known UDP datagrams sent between them,
captured by dumpcap inside one namespace; the pcapng file (read back with tshark) holds exactly
them, the rows describe them, limits stop the capture for the right reason, and refusals name the
field with nothing left running. Then the same through a real agent on a websocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from netcore import netns as ns
from netcore.agent.client import Agent
from netcore.capture.pcapng import BlockSplitter
from netcore.capture.request import capture_request_parse
from netcore.capture.run import CaptureResult, capture_run
from netcore.capture.summary import Row
from netcore.errors import InvalidSpec, NetcoreError, NotFound
from tests.conftest import RUN

SENDER, RECEIVER = "198.18.90.1", "198.18.90.2"
SPORT, DPORT = 40000, 40001


@dataclass
class Pair:
    """Namespace `a` (veth va, SENDER) wired to namespace `b` (veth vb, RECEIVER)."""

    a: str
    b: str

    def send(
        self, count: int, *, port: int = DPORT, size: Callable[[int], int] = lambda i: 20, gap: float = 0.0
    ) -> list[bytes]:
        """`count` UDP datagrams from a to b (SPORT → port), payload i of size(i) bytes; returns them."""
        sock = ns.netns_run(
            path=ns.netns_path(self.a), fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        )
        payloads = [f"sb{i:06d}".encode().ljust(size(i), b".") for i in range(count)]
        with sock:
            sock.bind((SENDER, SPORT))
            for payload in payloads:
                sock.sendto(payload, (RECEIVER, port))
                if gap:
                    time.sleep(gap)
        return payloads


@pytest.fixture
def pair(host_ns) -> Iterator[Pair]:
    names = (f"ca{RUN}a", f"ca{RUN}b")
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        a, b = names
        for cmd in (
            f"ip link add va netns {a} type veth peer name vb netns {b}",
            f"ip -n {a} addr add {SENDER}/24 dev va",
            f"ip -n {b} addr add {RECEIVER}/24 dev vb",
            f"ip -n {a} link set va up",
            f"ip -n {b} link set vb up",
            f"ip -n {b} link set lo up",
            # a known neighbour: no ARP in the capture, only the datagrams
            f"ip -n {a} neigh replace {RECEIVER} dev va"
            f" lladdr $(ip -n {b} -br link show vb | awk '{{print $3}}')",
        ):
            subprocess.run(["sh", "-c", cmd], check=True)
        yield Pair(a, b)
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False)


@dataclass
class Run:
    """What one capture handed on, and how it ended."""

    result: CaptureResult | None = None
    error: NetcoreError | None = None
    started: threading.Event = field(default_factory=threading.Event)
    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    batches: list[tuple[int, list[Row]]] = field(default_factory=list)

    @property
    def rows(self) -> list[Row]:
        return [row for _, batch in self.batches for row in batch]

    @property
    def data(self) -> bytes:
        offset = 0
        for at, chunk in self.chunks:
            assert at == offset, f"chunk at {at}, expected {offset}: a gap or an overlap"
            offset += len(chunk)
        return b"".join(chunk for _, chunk in self.chunks)


def capture(
    request: dict,
    output: str,
    *,
    cancel: threading.Event | None = None,
    then: Callable[[], object] | None = None,
) -> Run:
    """Run a capture here; `then` runs in a thread once dumpcap captures."""
    run = Run()
    senders: list[threading.Thread] = []

    def started() -> None:
        run.started.set()
        if then is not None:
            senders.append(threading.Thread(target=then))
            senders[-1].start()

    try:
        run.result = capture_run(
            capture_request_parse(request),
            on_started=started,
            on_data=lambda offset, chunk: run.chunks.append((offset, chunk)),
            on_rows=lambda seen, rows: run.batches.append((seen, rows)),
            cancelled=(cancel or threading.Event()).is_set,
            output=output,
        )
    except NetcoreError as exc:
        run.error = exc
    for sender in senders:
        sender.join()
    return run


def read_back(path: str) -> list[list[str]]:
    """Each packet of the file as tshark reads it: number, length, source port, destination port, payload."""
    fields = ["frame.number", "frame.len", "udp.srcport", "udp.dstport", "data.data", "frame.interface_name"]
    out = subprocess.run(
        ["tshark", "-r", path, "-n", "-T", "fields", *(x for f in fields for x in ("-e", f))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


def leftovers() -> tuple[list[str], list[str]]:
    """This process's dumpcap and tshark children, and the capture temp directories."""
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                comm, rest = f.read().split(") ", 1)
        except OSError:
            continue
        if int(rest.split()[1]) == os.getpid() and comm.split("(", 1)[1] in ("dumpcap", "tshark"):
            children.append(f"{pid} {comm}")
    temps = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("switchboard-capture-")]
    return children, temps


@pytest.fixture
def clean() -> Iterator[None]:
    before = leftovers()[1]
    yield
    children, temps = leftovers()
    assert children == [], f"capture processes left running: {children}"
    assert sorted(set(temps) - set(before)) == [], "capture temp directories left behind"


@pytest.fixture
def output(tmp_path) -> str:
    return str(tmp_path / "capture.pcapng")


def request(pair: Pair, **kw) -> dict:
    return {
        "namespace": pair.b,
        "interfaces": ["vb"],
        "filter": f"udp port {DPORT}",
        "count": 1000,
        "duration": 20,
    } | kw


def test_the_file_holds_exactly_the_datagrams_sent_and_the_rows_describe_them(pair, output, clean):
    sent: list[bytes] = []
    run = capture(request(pair, count=25), output, then=lambda: sent.extend(pair.send(25, gap=0.01)))
    assert run.error is None and run.result is not None
    assert (run.result.packets, run.result.reason, run.result.dropped) == (25, "count", 0)
    packets = read_back(output)
    assert [p[2:5] for p in packets] == [[str(SPORT), str(DPORT), payload.hex()] for payload in sent]
    with open(output, "rb") as f:
        assert run.data == f.read()  # the chunks handed on are the file, in order, without a gap
    assert os.stat(output).st_mode & 0o777 == 0o600
    rows = run.rows
    assert [row.number for row in rows] == list(range(1, 26))  # slow traffic: a row for every packet
    for row in rows:
        assert (row.source, row.destination, row.protocol, row.interface) == (SENDER, RECEIVER, "UDP", "vb")
        assert row.length == 14 + 20 + 8 + 20 and f"{SPORT} → {DPORT}" in row.info
        assert abs(row.time - time.time()) < 60
    assert run.batches[-1][0] == 25  # the last report counts every packet
    assert all(len(batch) <= 200 for _, batch in run.batches)


def test_several_interfaces_are_captured_into_one_file(pair, output, clean):
    def traffic() -> None:
        pair.send(3)
        sock = ns.netns_run(
            path=ns.netns_path(pair.b), fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        )
        with sock:
            for _ in range(2):
                sock.sendto(b"on loopback", ("127.0.0.1", DPORT))

    run = capture(request(pair, interfaces=["vb", "lo"], count=5), output, then=traffic)
    assert run.result is not None and run.result.packets == 5, run.error
    assert sorted(p[5] for p in read_back(output)) == ["lo", "lo", "vb", "vb", "vb"]
    assert sorted({row.interface for row in run.rows}) == ["lo", "vb"]


def test_fast_traffic_keeps_every_packet_in_the_file_and_samples_the_rows(pair, output, clean):
    count = 3000
    sent: list[bytes] = []
    run = capture(
        request(pair, count=count),
        output,
        then=lambda: sent.extend(pair.send(count, size=lambda i: 1 + i % 700)),
    )
    assert run.result is not None and run.result.packets == count, run.error
    packets = read_back(output)
    assert [p[4] for p in packets] == [payload.hex() for payload in sent]
    rows = run.rows
    assert 0 < len(rows) < count  # a burst faster than a table can show: a sample
    numbers = [row.number for row in rows]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1 and numbers[-1] <= count
    for row in rows:  # each sampled row describes the packet its number points at in the file
        assert row.length == int(packets[row.number - 1][1])
    assert all(len(batch) <= 200 for _, batch in run.batches)


def test_a_filter_that_excludes_the_traffic_captures_nothing_until_its_duration(pair, output, clean):
    run = capture(request(pair, filter="udp port 9", duration=1.5), output, then=lambda: pair.send(10))
    assert run.result is not None, run.error
    assert (run.result.packets, run.result.reason) == (0, "duration")
    assert read_back(output) == [] and run.rows == []
    assert run.data[:4] == b"\x0a\x0d\x0d\x0a"  # a valid pcapng file all the same (its section header)


def test_stopping_early_keeps_a_whole_file(pair, output, clean):
    cancel = threading.Event()

    def packets_written() -> int:
        with open(output, "rb") as f:
            return sum(is_packet for is_packet, _ in BlockSplitter().feed(f.read()))

    def traffic_then_stop() -> None:
        pair.send(7, gap=0.01)
        deadline = time.monotonic() + 30
        while packets_written() < 7 and time.monotonic() < deadline:  # dumpcap has written them
            time.sleep(0.05)
        cancel.set()

    run = capture(request(pair, duration=600), output, cancel=cancel, then=traffic_then_stop)
    assert run.result is not None, run.error
    assert (run.result.packets, run.result.reason) == (7, "stopped")
    assert len(read_back(output)) == 7  # tshark reads it to the end without complaint (check=True)
    with open(output, "rb") as f:
        assert run.data == f.read()


@pytest.mark.parametrize(
    ("change", "kind", "field"),
    [
        ({"filter": "udp port"}, InvalidSpec, "filter"),
        ({"interfaces": ["nosuch0"]}, NotFound, "interfaces"),
        ({"interfaces": ["vb", "nosuch0"]}, NotFound, "interfaces"),
        ({"namespace": f"ca{RUN}zz"}, NotFound, "namespace"),
        ({"count": 0}, InvalidSpec, "count"),
        ({"duration": 3601}, InvalidSpec, "duration"),
        ({"snaplen": 10}, InvalidSpec, "snaplen"),
        ({"interfaces": []}, InvalidSpec, "interfaces"),
        ({"interfaces": ["a/b"]}, InvalidSpec, "interfaces"),
        ({"interfaces": [f"v{i}" for i in range(9)]}, InvalidSpec, "interfaces"),
        ({"interfaces": ["vb", "vb"]}, InvalidSpec, "interfaces"),
        ({"count": True}, InvalidSpec, "count"),
        ({"duration": float("nan")}, InvalidSpec, "duration"),
        ({"filter": "udp " * 300}, InvalidSpec, "filter"),
        ({"bogus": 1}, InvalidSpec, "bogus"),
    ],
)
def test_refusals_name_the_field_and_leave_nothing_running(pair, output, clean, change, kind, field):
    run = capture(request(pair) | change, output)
    assert run.result is None and not run.started.is_set()
    assert type(run.error) is kind and run.error.to_dict()["object"] == field, run.error


def test_a_missing_field_is_named():
    for key in ("namespace", "interfaces", "filter", "count", "duration"):
        data = {"namespace": "host", "interfaces": ["lo"], "filter": "", "count": 1, "duration": 1}
        del data[key]
        with pytest.raises(InvalidSpec) as refused:
            capture_request_parse(data)
        assert refused.value.obj == key


def test_an_interface_deleted_while_capturing_ends_it_with_reason_error_and_a_whole_file(pair, output, clean):
    def traffic_then_delete() -> None:
        pair.send(3)
        time.sleep(0.3)
        subprocess.run(["ip", "-n", pair.b, "link", "del", "vb"], check=True)

    run = capture(request(pair, duration=600), output, then=traffic_then_delete)
    assert run.result is not None, run.error
    assert run.result.reason == "error" and "vb" in (run.result.message or "")
    assert len(read_back(output)) == run.result.packets  # whatever it caught, in a file tshark reads whole
    with open(output, "rb") as f:
        assert run.data == f.read()


def test_the_cli_writes_the_file_and_prints_the_rows(pair, host_ns, output, clean):
    def traffic() -> None:
        deadline = time.monotonic() + 30
        while not os.path.exists(output) and time.monotonic() < deadline:  # made once dumpcap runs
            time.sleep(0.05)
        pair.send(4, gap=0.01)

    sender = threading.Thread(target=traffic)
    sender.start()
    done = host_ns.netcore("capture", pair.b, "vb", "-f", f"udp port {DPORT}", "-c", "4", "-w", output)
    sender.join()
    assert done.returncode == 0, done.stderr
    assert "4 packets written" in done.stderr and "ended by count" in done.stderr
    assert done.stdout.count(f"{SENDER} → {RECEIVER} UDP") == 4
    assert len(read_back(output)) == 4
    refused = host_ns.netcore("capture", pair.b, "nosuch0", "-w", output + ".not")
    assert refused.returncode == 1 and "interfaces:" in refused.stderr
    assert not os.path.exists(output + ".not")


class WebApp:
    """The web app's end of the agent's socket, as far as captures go: answers hello, sends what a
    test asks, keeps every frame the agent sends."""

    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.connected: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()
        self.arrived = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.receive(ws)

    async def receive(self, ws: ServerConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "hello":
                await ws.send(json.dumps({"v": 1, "type": "welcome", "host": "test"}))
            elif frame["type"] == "snapshot" and not self.connected.done():
                self.connected.set_result(ws)
            elif frame["type"].startswith("capture."):
                self.frames.append(frame)
                self.arrived.set()

    async def until(self, test: Callable[[], bool], timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not test():
                self.arrived.clear()
                await self.arrived.wait()

    def of(self, capture_id: str, kind: str) -> list[dict]:
        return [f for f in self.frames if f["id"] == capture_id and f["type"] == kind]


async def with_agent(body: Callable[[WebApp, ServerConnection], object]) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # the test's "host" namespace
    web = WebApp()
    async with serve(web.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[index]
        agent = Agent(
            url=f"ws://127.0.0.1:{port}/ws/agent/",
            token="t",
            processes=False,
            docker=False,
            traffic_interval=0,
        )
        task = asyncio.create_task(agent.run())
        try:
            ws = await asyncio.wait_for(web.connected, 30)
            await body(web, ws)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


@pytest.mark.asyncio
async def test_the_agent_streams_a_capture_and_refuses_beyond_its_limit(pair, clean):
    async def body(web: WebApp, ws: ServerConnection) -> None:
        ask = request(pair, count=10)
        for n in range(5):  # four run at once; the fifth is refused
            await ws.send(json.dumps({"v": 1, "type": "capture", "id": f"c{n}", "request": ask}))
        await web.until(lambda: len(web.of("c4", "capture.done")) == 1)
        await web.until(lambda: all(web.of(f"c{n}", "capture.started") for n in range(4)))
        await asyncio.to_thread(pair.send, 10, gap=0.01)
        await web.until(lambda: all(web.of(f"c{n}", "capture.done") for n in range(4)))
        for n in range(4):
            done = web.of(f"c{n}", "capture.done")[0]
            assert (done["ok"], done["packets"], done["reason"], done["error"]) == (True, 10, "count", None)
            chunks = web.of(f"c{n}", "capture.data")
            assert [c["offset"] for c in chunks] == [
                sum(len(base64.b64decode(c["data"])) for c in chunks[:i]) for i in range(len(chunks))
            ]
            rows = [row for f in web.of(f"c{n}", "capture.packets") for row in f["rows"]]
            assert [row["number"] for row in rows] == list(range(1, 11))
            assert web.frames.index(done) > web.frames.index(chunks[-1])  # done comes after the last data
        refused = web.of("c4", "capture.done")[0]
        assert (refused["ok"], refused["reason"], refused["error"]["error"], refused["error"]["object"]) == (
            False,
            "error",
            "Busy",
            "capture",
        )
        # with room again, a filter dumpcap refuses gets only a capture.done naming the field
        bad_filter = ask | {"filter": "udp port"}
        await ws.send(json.dumps({"v": 1, "type": "capture", "id": "bad", "request": bad_filter}))
        await web.until(lambda: bool(web.of("bad", "capture.done")))
        bad = web.of("bad", "capture.done")[0]
        assert (bad["ok"], bad["error"]["error"], bad["error"]["object"]) == (False, "InvalidSpec", "filter")
        assert web.of("bad", "capture.started") == [] and web.of("c4", "capture.started") == []

    await with_agent(body)


@pytest.mark.asyncio
async def test_the_agent_stops_a_capture_on_request_and_all_of_them_when_the_connection_drops(pair, clean):
    async def body(web: WebApp, ws: ServerConnection) -> None:
        for name in ("stop-me", "orphan"):
            await ws.send(
                json.dumps({"v": 1, "type": "capture", "id": name, "request": request(pair, duration=600)})
            )
        await web.until(
            lambda: bool(web.of("stop-me", "capture.started") and web.of("orphan", "capture.started"))
        )
        await asyncio.to_thread(pair.send, 4, gap=0.01)
        await web.until(lambda: any(f["seen"] == 4 for f in web.of("stop-me", "capture.packets")))
        await ws.send(json.dumps({"v": 1, "type": "capture.stop", "id": "stop-me"}))
        await web.until(lambda: bool(web.of("stop-me", "capture.done")))
        done = web.of("stop-me", "capture.done")[0]
        assert (done["ok"], done["packets"], done["reason"]) == (True, 4, "stopped")
        assert web.of("orphan", "capture.done") == []
        await ws.close()  # the agent's connection drops: its captures end with it
        async with asyncio.timeout(30):
            while leftovers()[0]:
                await asyncio.sleep(0.1)

    await with_agent(body)
