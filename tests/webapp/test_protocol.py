"""Agent frames are checked before use; a host's state follows snapshots and deltas exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.webapp.conftest import link, state_with
from webapp.hosts.protocol import _FIELDS, ProtocolError, frame_parse
from webapp.topology.state import InvalidState, LiveState, snapshot_lists

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "agent-protocol.md").read_text()
AGENT_CLIENT = REPO / "netcore" / "agent" / "client.py"


def test_a_good_hello_parses() -> None:
    frame = frame_parse(
        json.dumps({"v": 1, "type": "hello", "host": "n1", "agent_version": "1", "protocol": 1})
    )
    assert frame["host"] == "n1"


@pytest.mark.parametrize(
    ("text", "message", "resync"),
    [
        (None, "not binary", False),
        ("{oops", "not JSON", False),
        ('{"v": 1, "type": "delta", "seq": NaN, "events": []}', "not JSON", False),
        ("[1, 2]", "not a list", False),
        ('{"v": 1, "type": "bogus"}', "unknown frame type 'bogus'", False),
        ('{"v": 1}', "unknown frame type None", False),
        ('{"type": "pong", "id": "x"}', '"v": 1', False),
        ('{"v": 1, "type": "hello", "host": "n1", "protocol": 1}', "missing field 'agent_version'", False),
        ('{"v": 1, "type": "delta", "seq": 1}', "missing field 'events'", True),
        ('{"v": 1, "type": "delta", "seq": 1, "events": {}}', "'events' must be a list, not an object", True),
        ('{"v": 1, "type": "snapshot", "seq": true, "state": {}}', "'seq' must be an integer", True),
        ('{"v": 1, "type": "snapshot", "seq": -1, "state": {}}', "negative", True),
        ('{"v": 1, "type": "result", "id": "c1", "ok": true}', "'result' must be an object", False),
        (
            '{"v": 1, "type": "result", "id": "c1", "ok": false, "error": "x"}',
            "'error' must be an object",
            False,
        ),
        ('{"v": 1, "type": "progress", "id": "c1", "done": 1}', "missing field 'total'", False),
        ('{"v": 1, "type": "progress", "id": "c1", "done": -1, "total": 5}', "from 0 to 'total'", False),
        ('{"v": 1, "type": "progress", "id": "c1", "done": 6, "total": 5}', "from 0 to 'total'", False),
        (
            '{"v": 1, "type": "progress", "id": "c1", "done": 1, "total": 5, "step": 7}',
            "'step' must be a string",
            False,
        ),
        (
            '{"v": 1, "type": "progress", "id": "c1", "done": 1, "total": 5, "step": "%s"}' % ("x" * 65),
            "'step' must be 1 to 64 characters long",
            False,
        ),
        (
            '{"v": 1, "type": "progress", "id": "c1", "done": 1, "total": 5, "eta": 3}',
            "unknown fields ['eta']",
            False,
        ),
        (
            '{"v": 1, "type": "result", "id": "c1", "ok": true, "result": {}, "settling": "yes"}',
            "field 'settling' must be a boolean, not a string",
            False,
        ),
        ('{"v": 1, "type": "settled"}', "missing field 'id'", False),
    ],
)
def test_bad_frames_are_refused_with_a_reason(text: str | None, message: str, resync: bool) -> None:
    with pytest.raises(ProtocolError) as caught:
        frame_parse(text)
    assert message in str(caught.value)
    assert caught.value.resync is resync


def test_a_progress_frame_parses_with_or_without_its_step() -> None:
    frame = frame_parse(
        '{"v": 1, "type": "progress", "id": "c1", "done": 128, "total": 500, "step": "building nodes"}'
    )
    assert (frame["done"], frame["total"], frame["step"]) == (128, 500, "building nodes")
    assert "step" not in frame_parse('{"v": 1, "type": "progress", "id": "c1", "done": 0, "total": 0}')


def test_a_result_may_say_its_changes_are_still_settling() -> None:
    frame = frame_parse('{"v": 1, "type": "result", "id": "c1", "ok": true, "result": {}, "settling": true}')
    assert frame["settling"] is True
    assert frame_parse('{"v": 1, "type": "settled", "id": "c1"}')["id"] == "c1"


def _documented_types(heading: str) -> set[str]:
    """The frame types of a table under `heading` in docs/agent-protocol.md."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z.]+)` \|", section, flags=re.MULTILINE))


def test_the_documented_frames_are_the_ones_spoken() -> None:
    """Every agent frame type the doc lists is one the web app parses, and the other way round; the
    web app's frames to the agent (cancel among them) are ones the agent handles."""
    spoken = _documented_types("Agent → web app") | _documented_types("Capture: agent → web app")
    assert spoken == set(_FIELDS)
    agent = AGENT_CLIENT.read_text()
    for kind in _documented_types("Web app → agent") | _documented_types("Capture: web app → agent"):
        assert f'kind == "{kind}"' in agent, kind


def test_deltas_apply_in_order_and_lists_are_the_values() -> None:
    live = LiveState()
    live.replace(seq=1, state=state_with(links={"host|1": link("lo", 1), "host|2": link("br0", 2)}))
    live.apply(
        seq=2,
        events=[
            {"kind": "links", "action": "set", "key": "host|3", "object": link("veth0", 3)},
            {"kind": "links", "action": "del", "key": "host|1", "object": None},
            {"kind": "links", "action": "set", "key": "host|2", "object": link("br1", 2)},
        ],
    )
    assert live.seq == 2
    snapshot = snapshot_lists(live.copy())
    assert snapshot["version"] == 1
    assert [o["name"] for o in snapshot["links"]] == ["br1", "veth0"]
    assert snapshot["routes"] == []


@pytest.mark.parametrize(
    "events",
    [
        {"kind": "links"},
        ["x"],
        [{"kind": "tunnels", "action": "set", "key": "k", "object": {}}],
        [{"kind": "links", "action": "upsert", "key": "k", "object": {}}],
        [{"kind": "links", "action": "set", "key": 3, "object": {}}],
        [{"kind": "links", "action": "set", "key": "k"}],
    ],
)
def test_a_bad_delta_changes_nothing(events: object) -> None:
    live = LiveState()
    live.replace(seq=4, state=state_with(links={"host|1": link("lo", 1)}))
    good = {"kind": "links", "action": "del", "key": "host|1", "object": None}
    with pytest.raises(InvalidState):
        live.apply(seq=5, events=[good, *events] if isinstance(events, list) else events)
    assert live.seq == 4
    assert list(live.copy()["links"]) == ["host|1"]


@pytest.mark.parametrize("state", [[], {"tunnels": {}}, {"links": []}, {"links": {"k": 1}}])
def test_a_bad_snapshot_is_refused(state: object) -> None:
    with pytest.raises(InvalidState):
        LiveState().replace(seq=1, state=state)


def test_a_delta_needs_a_snapshot_first() -> None:
    with pytest.raises(InvalidState, match="before any snapshot"):
        LiveState().apply(seq=1, events=[])
