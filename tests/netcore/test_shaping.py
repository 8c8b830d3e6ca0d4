"""Link shaping against the real kernel: a rate limit (tbf) set, read back, seen by the live model and
felt by real traffic; netem where the kernel has it, a clear refusal where it has not; bad input
refused by field before anything is touched."""

from __future__ import annotations

import socket
import subprocess

import pytest

from netcore import objects
from netcore.errors import InvalidSpec, NotFound, Unsupported
from netcore.live import LiveModel
from netcore.netns import netns_path, netns_run
from netcore.shaping import link_shape, link_unshape
from netcore.shaping_spec import ShapeSpec, shape_parse, shaping_text
from netcore.snapshot import snapshot
from tests.netcore.test_live import Recorder, assert_matches_fresh_snapshot

DATAGRAMS = 600
PAYLOAD = b"x" * 1400


@pytest.mark.parametrize(
    ("fields", "spec"),
    [
        ({"rate": "10mbit"}, ShapeSpec(rate=10_000_000)),
        (
            {"rate": 2_000_000, "burst": "32kb", "queue_ms": 20},
            ShapeSpec(rate=2_000_000, burst=32768, queue_ms=20),
        ),
        ({"rate": "1.5Gbit/s"}, ShapeSpec(rate=1_500_000_000)),
        (
            {"delay": "20ms", "jitter": 5, "loss": "0.5%"},
            ShapeSpec(delay_us=20_000, jitter_us=5000, loss_ppm=5000),
        ),
        ({"delay": "1.5s", "rate": "800kbit"}, ShapeSpec(rate=800_000, delay_us=1_500_000)),
        ({"loss": 100, "delay": None, "burst": ""}, ShapeSpec(loss_ppm=1_000_000)),
    ],
)
def test_shaping_is_read_as_people_write_it(fields, spec):
    assert shape_parse(fields) == spec


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"rate": "10zbit"}, "rate"),
        ({"rate": 10}, "rate"),
        ({"rate": True}, "rate"),
        ({"rate": "500tbit"}, "rate"),
        ({"delay": "-3ms"}, "delay"),
        ({"delay": "61s"}, "delay"),
        ({"delay": "10ms", "jitter": "11ms"}, "jitter"),
        ({"loss": "101%"}, "loss"),
        ({"loss": "some"}, "loss"),
        ({"rate": "1mbit", "burst": "lots"}, "burst"),
        ({"delay": "10ms", "burst": "32kb"}, "burst"),
        ({"rate": "1mbit", "queue_ms": 0}, "queue_ms"),
        ({"rate": "1mbit", "queue_ms": "50"}, "queue_ms"),
        ({"rate": "1mbit", "colour": "red"}, "colour"),
    ],
)
def test_bad_shaping_names_its_field(fields, field):
    with pytest.raises(InvalidSpec) as caught:
        shape_parse(fields)
    assert caught.value.obj == field


def test_shaping_text():
    assert shaping_text({"kind": "tbf", "rate": 10_000_000}) == "tbf 10 Mbit/s"
    text = shaping_text({"kind": "netem", "delay_us": 20000, "jitter_us": 5000, "loss_ppm": 5000})
    assert text == "netem 20 ± 5 ms 0.5% loss"


@pytest.fixture
def pair(host_ns, topo):
    """Two namespaces joined by a veth (a: 198.18.77.1, b: 198.18.77.2); yields their names."""
    a, b = f"{topo}-a", f"{topo}-b"
    host_ns.run(f"ip netns add {a} && ip netns add {b}")
    try:
        objects.veth_create(name="va", peer="vb", netns=a, peer_netns=b)
        objects.address_add(ifname="va", address="198.18.77.1/24", netns=a)
        objects.address_add(ifname="vb", address="198.18.77.2/24", netns=b)
        objects.link_set(name="va", netns=a, up=True)
        objects.link_set(name="vb", netns=b, up=True)
        yield a, b
    finally:
        host_ns.run(f"ip netns del {a}; ip netns del {b}", check=False)


def _received(a: str, b: str) -> int:
    """Send DATAGRAMS at once from a to b and count how many arrive."""

    def listen() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        sock.bind(("198.18.77.2", 9999))
        sock.settimeout(0.5)
        return sock

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(DATAGRAMS):
                sock.sendto(PAYLOAD, ("198.18.77.2", 9999))

    receiver = netns_run(path=netns_path(b), fn=listen)
    try:
        netns_run(path=netns_path(a), fn=send)
        count = 0
        while True:
            try:
                receiver.recv(2048)
            except TimeoutError:
                return count
            count += 1
    finally:
        receiver.close()


def _qdisc(netns: str, link: str) -> str:
    return subprocess.run(
        ["tc", "-n", netns, "qdisc", "show", "dev", link, "root"], capture_output=True, text=True, check=True
    ).stdout


def test_a_rate_limit_is_set_read_back_and_felt_by_traffic(pair):
    a, b = pair
    assert _received(a, b) == DATAGRAMS  # unshaped, a veth drops nothing

    link = link_shape(
        name="va", netns=a, spec=shape_parse({"rate": "1mbit", "burst": "16kb", "queue_ms": 20})
    )
    assert link.shaping is not None
    assert (link.shaping.kind, link.shaping.rate, link.shaping.burst) == ("tbf", 1_000_000, 16384)
    assert link.shaping.limit == 125_000 * 20 // 1000 + 16384
    assert "rate 1Mbit burst 16Kb" in _qdisc(a, "va")
    # 840 kB at once through 1 Mbit/s with a 16 KiB burst and a 2.5 kB queue: most are dropped
    assert _received(a, b) < DATAGRAMS // 4

    again = link_shape(name="va", netns=a, spec=shape_parse({"rate": "2gbit"}))  # replaced, not added
    assert again.shaping is not None and again.shaping.rate == 2_000_000_000
    assert [x.shaping for x in snapshot(namespaces=[a]).links if x.name == "va"] == [again.shaping]

    assert link_unshape(name="va", netns=a).shaping is None
    assert link_unshape(name="va", netns=a).shaping is None  # nothing to take off: no error
    assert "tbf" not in _qdisc(a, "va")
    assert _received(a, b) == DATAGRAMS


def test_bad_requests_change_nothing(pair):
    a, _ = pair
    with pytest.raises(InvalidSpec) as caught:
        link_shape(name="va", netns=a, spec=shape_parse({"rate": "1mbit", "burst": 1000}))
    assert caught.value.obj == "burst"  # smaller than a 1514-byte frame: such frames would never pass
    with pytest.raises(NotFound) as missing:
        link_shape(name="nope", netns=a, spec=shape_parse({"rate": "1mbit"}))
    assert missing.value.obj == "nope"
    with pytest.raises(NotFound):
        link_unshape(name="nope", netns=a)
    assert "tbf" not in _qdisc(a, "va")


def _has_netem(netns: str) -> bool:
    """Whether this kernel has the netem qdisc: asked of the kernel itself, on a throwaway veth."""
    subprocess.run(
        ["ip", "-n", netns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"], check=True
    )
    try:
        tried = subprocess.run(
            ["tc", "-n", netns, "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms"],
            capture_output=True,
            text=True,
        )
        return tried.returncode == 0
    finally:
        subprocess.run(["ip", "-n", netns, "link", "del", "probe0"], check=False)


def test_delay_and_loss_where_the_kernel_has_netem_and_a_clear_refusal_where_not(pair):
    a, _ = pair
    spec = shape_parse({"delay": "20ms", "jitter": "2ms", "loss": "1%", "rate": "10mbit"})
    if _has_netem(a):
        link = link_shape(name="va", netns=a, spec=spec)
        assert link.shaping is not None
        assert (link.shaping.kind, link.shaping.delay_us, link.shaping.jitter_us) == ("netem", 20_000, 2000)
        assert link.shaping.loss_ppm == 10_000 and link.shaping.rate == 10_000_000
        return
    with pytest.raises(Unsupported) as caught:
        link_shape(name="va", netns=a, spec=spec)
    assert caught.value.obj == "delay"
    assert "no netem qdisc" in str(caught.value) and "rate limit alone (tbf) can" in str(caught.value)
    assert "netem" not in _qdisc(a, "va")
    link_shape(name="va", netns=a, spec=shape_parse({"rate": "10mbit"}))  # what it can do still works


@pytest.mark.asyncio
async def test_the_live_model_follows_shaping_set_changed_and_removed(pair):
    a, b = pair
    model = LiveModel(processes=False)
    await model.start()
    rec = Recorder(model, keep=lambda e: e.netns == a and e.kind == "link")
    try:
        link_shape(name="va", netns=a, spec=shape_parse({"rate": "10mbit"}))
        await rec.until(lambda events: [e for e in events if e.obj.shaping and e.obj.shaping.rate == 10**7])
        subprocess.run(
            ["tc", "-n", a, "qdisc", "replace", "dev", "va", "root", "handle", "1:", "htb"], check=True
        )
        await rec.until(lambda events: events[-1].obj.shaping and events[-1].obj.shaping.kind == "htb")
        objects.link_set(name="va", netns=a, up=False)  # a link event keeps the qdisc's settings
        await rec.until(lambda events: not events[-1].obj.up and events[-1].obj.shaping.kind == "htb")
        link_unshape(name="va", netns=a)
        await rec.until(lambda events: events[-1].obj.shaping is None)
        await assert_matches_fresh_snapshot(model, {a, b})
    finally:
        rec.close()
        model.close()
