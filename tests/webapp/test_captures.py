"""Packet captures, web side: the API's checks (each naming its field) and roles, a fake agent driven
through the real agent connection (frames → the capture's status, rows and file; offset gaps refused;
done, failed, stopped and disconnected ends; the storage limit), the browser socket, the pcap download
equal to the bytes sent, tshark's decode of a real pcapng file, and deletion.

The file the fake agent sends is a real pcapng (written below, block by block, as dumpcap writes
one): tshark reads it for the decode, so what the decode says is what Wireshark would.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator

from netcore.model import Link
from tests.webapp.conftest import (
    RECEIVE_TIMEOUT,
    Account,
    AgentHost,
    Sockets,
    eventually,
    lease_held,
    receive_type,
    state_with,
)
from webapp.asgi import application
from webapp.audit.models import AuditEntry
from webapp.captures import services as capture_services
from webapp.captures.models import Capture, CaptureChunk, CapturePacket
from webapp.hosts import protocol
from webapp.topology.services import host_state_save

# --- a real pcapng file, by hand


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(source: str, destination: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An Ethernet frame holding an IPv4 UDP datagram (the IP checksum right, UDP's left 0: none)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    address = lambda text: bytes(int(part) for part in text.split("."))  # noqa: E731
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, address(source), address(destination)
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def pcapng(frames: list[bytes], *, start: float = 1_700_000_000.0) -> bytes:
    """A pcapng file: section header, one Ethernet interface "veth0", an enhanced packet per frame."""
    section = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    name = b"veth0"
    option = struct.pack("<HH", 2, len(name)) + name + b"\0" * (-len(name) % 4) + struct.pack("<HH", 0, 0)
    interface = _block(1, struct.pack("<HHI", 1, 0, 262144) + option)
    packets = b""
    for i, frame in enumerate(frames):
        micros = int((start + i * 0.5) * 1_000_000)
        header = struct.pack("<IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(frame), len(frame))
        packets += _block(6, header + frame)
    return section + interface + packets


FRAMES = [udp_frame("198.18.0.1", "198.18.0.2", 40000 + i, 9, f"hello {i}".encode()) for i in range(3)]
FILE = pcapng(FRAMES)


def row(number: int, **extra: Any) -> dict[str, Any]:
    values = {
        "number": number,
        "time": 1_700_000_000.0 + (number - 1) * 0.5,
        "interface": "veth0",
        "source": "198.18.0.1",
        "destination": "198.18.0.2",
        "protocol": "UDP",
        "length": len(FRAMES[(number - 1) % 3]),
        "info": f"{39999 + number} → 9 Len=7",
    }
    return {**values, **extra}


# --- helpers


BODY = {
    "host": "h1",
    "namespace": "demo-web1",
    "interfaces": ["eth0"],
    "filter": "udp",
    "count": 3,
    "duration": 30,
}


@pytest.fixture
def h1(make_host: Callable[..., AgentHost]) -> AgentHost:
    h = make_host("h1")
    links = {
        "demo-web1|2": {
            "netns": "demo-web1",
            "index": 2,
            "name": "eth0",
            "kind": "veth",
            "mtu": 1500,
            "mac": "02:00:00:00:00:02",
            "up": True,
            "state": "up",
            "master": None,
            "alias": None,
        }
    }
    state = state_with(links={key: Link(**value).to_dict() for key, value in links.items()})
    host_state_save(host_id=h.host.id, seq=1, state=state)
    return h


async def _send(agent: WebsocketCommunicator, kind: str, **fields: Any) -> None:
    await agent.send_json_to({"v": 1, "type": kind, **fields})


async def _started(sockets: Sockets, h1: AgentHost, operator: Account, body: dict | None = None):
    """An agent connected, a capture started through the API: (agent, capture id, the frame it got)."""
    agent = await sockets.agent(h1.token)
    status, answer = await sockets.http("POST", "/api/v1/captures/", token=operator.token, body=body or BODY)
    assert status == 202, answer
    frame = await receive_type(agent, "capture", skip=("catalog",))
    assert frame["id"] == answer["id"]
    return agent, answer["id"], frame


async def _watcher(sockets: Sockets, token: str, capture_id: str) -> WebsocketCommunicator:
    ws = sockets.open(f"/ws/captures/{capture_id}/", [(b"authorization", f"Token {token}".encode())])
    connected, code = await ws.connect()
    assert connected, code
    return ws


async def _download(token: str, capture_id: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """GET the pcap through the ASGI app, reading the streamed body to its end."""
    headers = [(b"host", b"testserver"), (b"authorization", f"Token {token}".encode())]
    communicator = HttpCommunicator(
        application, "GET", f"/api/v1/captures/{capture_id}/pcap", headers=headers
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], {k.lower(): v for k, v in start["headers"]}, body


def _capture(capture_id: str) -> Capture:
    return Capture.objects.get(pk=capture_id)


# --- the API's checks and roles


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interfaces": []}, "interfaces"),
        ({"interfaces": ["eth0"] * 9}, "interfaces"),
        ({"interfaces": ["a-name-longer-than-15"]}, "interfaces"),
        ({"interfaces": ["eth0", "eth0"]}, "interfaces"),
        ({"interfaces": ["eth 0"]}, "interfaces"),
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"duration": 0.5}, "duration"),
        ({"duration": 3601}, "duration"),
        ({"snaplen": 63}, "snaplen"),
        ({"filter": "x" * 1025}, "filter"),
        ({"filter": "udp\nor tcp"}, "filter"),
        ({"namespace": "a/b"}, "namespace"),
        ({"namespace": ""}, "namespace"),
        ({"host": "nowhere"}, "host"),
        ({"namespace": "no-such-ns"}, "namespace"),
        ({"interfaces": ["eth9"]}, "interfaces"),
    ],
)
def test_a_wrong_field_is_refused_naming_it_and_nothing_is_recorded(
    change: dict[str, Any], field: str, h1: AgentHost, operator: Account
) -> None:
    lease_held(h1.host)
    response = operator.api().post("/api/v1/captures/", {**BODY, **change}, format="json")
    assert response.status_code in (400, 404), response.content
    assert field in response.json()["fields"], response.json()
    assert not Capture.objects.exists()


@pytest.mark.django_db
def test_a_host_without_its_agent_answers_503(h1: AgentHost, operator: Account) -> None:
    response = operator.api().post("/api/v1/captures/", BODY, format="json")
    assert response.status_code == 503, response.content
    assert "no agent connected" in response.json()["message"]
    refused = AuditEntry.objects.get(action="capture.start")
    assert refused.result == AuditEntry.Result.FAILED


@pytest.mark.django_db
def test_viewers_may_not_see_or_start_captures(h1: AgentHost, viewer: Account, operator: Account) -> None:
    capture = Capture.objects.create(host=h1.host, namespace="host", interfaces=["eth0"], count=1, duration=1)
    client = viewer.api()
    for method, url in [
        ("get", "/api/v1/captures/"),
        ("post", "/api/v1/captures/"),
        ("get", f"/api/v1/captures/{capture.id}/"),
        ("delete", f"/api/v1/captures/{capture.id}/"),
        ("post", f"/api/v1/captures/{capture.id}/stop/"),
        ("get", f"/api/v1/captures/{capture.id}/pcap"),
        ("get", f"/api/v1/captures/{capture.id}/packets/1/"),
    ]:
        assert getattr(client, method)(url).status_code == 403, url
    assert Capture.objects.filter(pk=capture.id).exists()
    assert operator.api().get(f"/api/v1/captures/{capture.id}/").status_code == 200


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_viewer_s_capture_socket_is_refused(h1: AgentHost, viewer: Account, sockets: Sockets) -> None:
    capture = await database_sync_to_async(Capture.objects.create)(
        host=h1.host, namespace="host", interfaces=["eth0"], count=1, duration=1
    )
    ws = sockets.open(f"/ws/captures/{capture.id}/", [(b"authorization", f"Token {viewer.token}".encode())])
    assert await ws.connect() == (False, 4003)


# --- a capture through the real agent connection


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_capture_streams_rows_to_its_watchers_and_its_file_downloads_whole(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, frame = await _started(sockets, h1, operator)
    assert frame["request"] == {
        "namespace": "demo-web1",
        "interfaces": ["eth0"],
        "filter": "udp",
        "count": 3,
        "duration": 30.0,
        "snaplen": 262144,
    }
    watcher = await _watcher(sockets, operator.token, capture_id)
    first = await receive_type(watcher, "capture.status")
    assert first["capture"]["status"] == "pending"
    assert (await receive_type(watcher, "capture.rows"))["rows"] == []

    await _send(agent, "capture.started", id=capture_id)
    assert (await receive_type(watcher, "capture.status"))["capture"]["status"] == "running"
    # the file in three pieces, at their offsets; rows as the agent's tshark read them
    cut = [0, 100, len(FILE) - 40, len(FILE)]
    for start, end in zip(cut, cut[1:], strict=False):
        data = base64.b64encode(FILE[start:end]).decode()
        await _send(agent, "capture.data", id=capture_id, offset=start, data=data)
    await _send(agent, "capture.packets", id=capture_id, seen=2, rows=[row(1), row(2)])
    rows = (await receive_type(watcher, "capture.rows", skip=("capture.status",)))["rows"]
    assert [r["number"] for r in rows] == [1, 2]
    assert rows[0]["source"] == "198.18.0.1"
    await _send(agent, "capture.packets", id=capture_id, seen=3, rows=[row(3)])
    await _send(
        agent, "capture.done", id=capture_id, ok=True, packets=3, dropped=0, reason="count", error=None
    )

    done = await eventually(lambda: _capture(capture_id).status == "done" and _capture(capture_id))
    assert (done.packets, done.dropped, done.reason, done.bytes, done.rows_kept) == (
        3,
        0,
        "count",
        len(FILE),
        3,
    )
    assert done.started is not None and done.finished is not None

    status, headers, body = await _download(operator.token, capture_id)
    assert status == 200
    assert body == FILE
    assert headers[b"content-type"] == b"application/x-pcapng"
    assert b'filename="h1-demo-web1-eth0-' in headers[b"content-disposition"]
    assert headers[b"content-disposition"].endswith(b'Z.pcapng"')

    code, answer = await sockets.http("GET", f"/api/v1/captures/{capture_id}/", token=operator.token)
    assert code == 200
    assert [r["number"] for r in answer["packet_rows"]] == [1, 2, 3]
    code, answer = await sockets.http("GET", f"/api/v1/captures/{capture_id}/?after=2", token=operator.token)
    assert [r["number"] for r in answer["packet_rows"]] == [3]
    code, listed = await sockets.http("GET", "/api/v1/captures/", token=operator.token)
    assert [c["id"] for c in listed] == [capture_id]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_file_bytes_at_an_offset_that_does_not_follow_are_refused_and_the_capture_stopped(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, _ = await _started(sockets, h1, operator)
    await _send(agent, "capture.data", id=capture_id, offset=0, data=base64.b64encode(FILE[:64]).decode())
    await _send(agent, "capture.data", id=capture_id, offset=80, data=base64.b64encode(FILE[80:]).decode())
    error = await receive_type(agent, "error")
    assert "from offset 80, not 64" in error["error"]["message"]
    assert (await receive_type(agent, "capture.stop"))["id"] == capture_id
    capture = await database_sync_to_async(_capture)(capture_id)
    assert capture.bytes == 64
    assert "offset 80" in capture.error
    chunks = await database_sync_to_async(
        lambda: list(CaptureChunk.objects.values_list("offset", flat=True))
    )()
    assert chunks == [0]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_capture_the_agent_refuses_fails_with_its_error_naming_the_field(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, _ = await _started(sockets, h1, operator, {**BODY, "filter": "udp port"})
    error = {
        "error": "InvalidSpec",
        "message": "syntax error in filter expression",
        "object": "filter",
        "errno": None,
    }
    await _send(
        agent, "capture.done", id=capture_id, ok=False, packets=0, dropped=0, reason="error", error=error
    )
    capture = await eventually(lambda: _capture(capture_id).status == "failed" and _capture(capture_id))
    assert capture.error == "filter: syntax error in filter expression"
    assert capture.reason == "error"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_stop_asks_the_agent_and_its_answer_keeps_what_was_captured(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, _ = await _started(sockets, h1, operator)
    await _send(agent, "capture.started", id=capture_id)
    await eventually(lambda: _capture(capture_id).status == "running")
    code, answer = await sockets.http("POST", f"/api/v1/captures/{capture_id}/stop/", token=operator.token)
    assert code == 202, answer
    assert (await receive_type(agent, "capture.stop"))["id"] == capture_id
    await _send(agent, "capture.data", id=capture_id, offset=0, data=base64.b64encode(FILE).decode())
    await _send(
        agent, "capture.done", id=capture_id, ok=True, packets=3, dropped=1, reason="stopped", error=None
    )
    capture = await eventually(lambda: _capture(capture_id).status == "stopped" and _capture(capture_id))
    assert (capture.bytes, capture.dropped, capture.error) == (len(FILE), 1, "")
    assert await database_sync_to_async(AuditEntry.objects.filter(action="capture.stop").exists)()
    code, again = await sockets.http("POST", f"/api/v1/captures/{capture_id}/stop/", token=operator.token)
    assert (code, again["status"]) == (200, "stopped")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_when_the_agent_disconnects_its_captures_end_and_keep_what_arrived(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, running, _ = await _started(sockets, h1, operator)
    status, pending = await sockets.http("POST", "/api/v1/captures/", token=operator.token, body=BODY)
    assert status == 202
    await receive_type(agent, "capture")
    await _send(agent, "capture.started", id=running)
    await _send(agent, "capture.data", id=running, offset=0, data=base64.b64encode(FILE).decode())
    await eventually(lambda: _capture(running).bytes == len(FILE))
    watcher = await _watcher(sockets, operator.token, running)
    await receive_type(watcher, "capture.rows", skip=("capture.status",))
    await agent.disconnect()
    told = await receive_type(watcher, "capture.status")
    assert told["capture"]["status"] == "stopped"
    assert told["capture"]["error"] == capture_services.AGENT_GONE
    never = await database_sync_to_async(_capture)(pending["id"])
    assert (never.status, never.error) == ("failed", capture_services.AGENT_GONE_PENDING)
    _, _, body = await _download(operator.token, running)
    assert body == FILE


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_frames_for_a_capture_that_ended_or_is_unknown_ask_the_agent_to_stop_it(
    h1: AgentHost, sockets: Sockets
) -> None:
    agent = await sockets.agent(h1.token)
    await _send(agent, "capture.started", id="not-ours")
    assert (await receive_type(agent, "capture.stop"))["id"] == "not-ours"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_past_its_storage_limit_a_capture_is_stopped_and_says_why(
    h1: AgentHost, operator: Account, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture_services, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(capture_services, "MAX_ROWS", 2)
    agent, capture_id, _ = await _started(sockets, h1, operator)
    await _send(agent, "capture.data", id=capture_id, offset=0, data=base64.b64encode(FILE[:120]).decode())
    assert (await receive_type(agent, "capture.stop"))["id"] == capture_id
    await _send(agent, "capture.packets", id=capture_id, seen=3, rows=[row(1), row(2), row(3)])
    await _send(agent, "capture.data", id=capture_id, offset=120, data=base64.b64encode(FILE[120:]).decode())
    capture = await eventually(lambda: _capture(capture_id).bytes == len(FILE) and _capture(capture_id))
    assert capture.error == "stopped by the web app: the file reached its limit of 0 MiB"
    assert capture.rows_kept == 2  # the third row was past the limit; the file is still whole
    assert await database_sync_to_async(CapturePacket.objects.count)() == 2


# --- decode and delete


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is not installed (Debian's tshark package)"
)
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_packet_decodes_with_tshark_into_layers_and_fields(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, _ = await _started(sockets, h1, operator)
    await _send(agent, "capture.data", id=capture_id, offset=0, data=base64.b64encode(FILE).decode())
    await eventually(lambda: _capture(capture_id).bytes == len(FILE))
    code, decoded = await sockets.http(
        "GET", f"/api/v1/captures/{capture_id}/packets/2/", token=operator.token
    )
    assert code == 200, decoded
    layers = {node["name"]: node for node in decoded["tree"]}
    assert [n["name"] for n in decoded["tree"]] == ["frame", "eth", "ip", "udp", "data"]

    def value(layer: str, name: str) -> str:
        return next(n["value"] for n in layers[layer]["children"] if n["name"] == name)

    assert value("frame", "frame.number") == "2"
    assert value("ip", "ip.src") == "198.18.0.1"
    assert value("ip", "ip.dst") == "198.18.0.2"
    assert value("udp", "udp.srcport") == "40001"
    assert value("udp", "udp.dstport") == "9"
    assert decoded["hex"] == FRAMES[1].hex()
    code, missing = await sockets.http(
        "GET", f"/api/v1/captures/{capture_id}/packets/9/", token=operator.token
    )
    assert code == 404, missing
    assert missing["fields"] == {"number": ["frame 9 is not in the capture's file (yet)"]}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_deleting_a_capture_removes_its_file_and_rows_and_tells_its_watchers(
    h1: AgentHost, operator: Account, sockets: Sockets
) -> None:
    agent, capture_id, _ = await _started(sockets, h1, operator)
    await _send(agent, "capture.data", id=capture_id, offset=0, data=base64.b64encode(FILE).decode())
    await _send(agent, "capture.packets", id=capture_id, seen=3, rows=[row(1), row(2), row(3)])
    await eventually(lambda: _capture(capture_id).rows_kept == 3)
    watcher = await _watcher(sockets, operator.token, capture_id)
    await receive_type(watcher, "capture.rows", skip=("capture.status",))
    code, _ = await sockets.http("DELETE", f"/api/v1/captures/{capture_id}/", token=operator.token)
    assert code == 204
    assert await receive_type(watcher, "capture.deleted", skip=("capture.status", "capture.rows"))
    assert (await watcher.receive_output(RECEIVE_TIMEOUT))["code"] == 4004
    assert (await receive_type(agent, "capture.stop"))["id"] == capture_id  # it was still live

    def left() -> tuple[int, int, int]:
        return Capture.objects.count(), CaptureChunk.objects.count(), CapturePacket.objects.count()

    assert await database_sync_to_async(left)() == (0, 0, 0)
    assert await database_sync_to_async(AuditEntry.objects.filter(action="capture.delete").exists)()


# --- the agent frames' checks (webapp.hosts.protocol)


def _frame(kind: str, **fields: Any) -> str:
    return json.dumps({"v": 1, "type": kind, **fields})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (_frame("capture.data", id="c", offset=0, data="not base64!"), "base64"),
        (_frame("capture.data", id="c", offset=-1, data=""), "negative"),
        (_frame("capture.packets", id="c", seen=1, rows=[row(1, extra=1)]), "exactly"),
        (_frame("capture.packets", id="c", seen=1, rows=[row(0)]), "number"),
        (_frame("capture.packets", id="c", seen=1, rows=[row(1, info="x" * 1025)]), "info"),
        (_frame("capture.packets", id="c", seen=1, rows=[row(1, source="a\0b")]), "source"),
        (_frame("capture.packets", id="c", seen=201, rows=[row(1)] * 201), "at most 200"),
        (_frame("capture.done", id="c", ok=True, packets=1, dropped=0, reason="bored", error=None), "reason"),
        (_frame("capture.done", id="c", ok=False, packets=0, dropped=0, reason="error", error=None), "error"),
        (_frame("capture.started", id="c", extra=1), "unknown fields"),
    ],
)
def test_a_malformed_capture_frame_is_refused(text: str, says: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=says):
        protocol.frame_parse(text)


def test_capture_data_is_decoded_to_its_bytes_when_checked() -> None:
    parsed = protocol.frame_parse(
        _frame("capture.data", id="c", offset=7, data=base64.b64encode(FILE).decode())
    )
    assert parsed["data"] == FILE


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is not installed (Debian's tshark package)"
)
def test_the_hand_written_file_is_a_pcapng_tshark_reads(tmp_path: Path) -> None:
    path = tmp_path / "three.pcapng"
    path.write_bytes(FILE)
    listed = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "frame.interface_name", "-e", "udp.srcport"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert listed[:3] == ["veth0\t40000", "veth0\t40001", "veth0\t40002"]


# --- the pages


@pytest.mark.django_db
def test_the_pages_offer_the_host_s_namespaces_and_show_a_capture(
    h1: AgentHost, operator: Account, viewer: Account, client: Any
) -> None:
    client.force_login(operator.user)
    listed = client.get("/captures/?host=h1&namespace=demo-web1&interface=eth0")
    assert listed.status_code == 200
    page = listed.context["page"]
    assert page["targets"]["h1"] == {"demo-web1": ["eth0"]}
    assert page["prefill"] == {"host": "h1", "namespace": "demo-web1", "interface": "eth0"}
    assert b"No captures yet" in listed.content
    capture = Capture.objects.create(
        host=h1.host,
        namespace="demo-web1",
        interfaces=["eth0"],
        count=5,
        duration=10,
        requested_by=operator.user,
    )
    shown = client.get(f"/captures/{capture.id}/")
    assert shown.status_code == 200
    assert shown.context["page"]["capture"]["id"] == str(capture.id)
    assert shown.context["page"]["ws_path"] == f"/ws/captures/{capture.id}/"
    assert shown.context["page"]["packet_url"] == f"/api/v1/captures/{capture.id}/packets/"
    assert str(capture.id).encode() in client.get("/captures/").content
    assert client.get("/captures/not-a-capture/").status_code == 404
    client.force_login(viewer.user)
    assert client.get("/captures/").status_code == 403
