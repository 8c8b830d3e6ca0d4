"""GET /api/v1/networks/TOPOLOGY.NETWORK/overlay/: the consistency check over the hosts' saved states."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.netcore.test_overlay_check import host_state
from tests.webapp.conftest import Account, AgentHost
from webapp.hosts.models import Host
from webapp.networks import overlay
from webapp.networks.overlay import overlays_changed
from webapp.topology.models import HostState

pytestmark = pytest.mark.django_db

FILE = {
    "name": "ov",
    "networks": {
        "mesh": {"driver": "vxlan", "subnet": "198.18.50.0/24", "vni": 5000, "hosts": ["lab1", "lab2"]},
        "side": {"subnet": "198.18.51.0/24"},
    },
    "nodes": {"a1": {"networks": ["mesh"]}, "b1": {"networks": ["mesh"], "host": "lab2"}},
}


@pytest.fixture
def span(operator: Account, make_host: Callable[..., AgentHost]) -> None:
    for index, name in enumerate(("lab1", "lab2"), start=11):
        host = make_host(name).host
        host.underlay = f"198.18.254.{index}"
        host.save()
        HostState.objects.create(host=host, seq=1, state=host_state(name))
    assert (
        operator.api()
        .post("/api/v1/topologies/", {"host": "lab1", "topology": FILE}, format="json")
        .status_code
        == 201
    )


def test_a_consistent_overlay(viewer: Account, span: None) -> None:
    answer = viewer.api().get("/api/v1/networks/ov.mesh/overlay/").json()
    assert answer["consistent"] and answer["findings"] == []
    assert answer["hosts"] == [
        {"name": "lab1", "vtep": "198.18.254.11", "state_known": True},
        {"name": "lab2", "vtep": "198.18.254.12", "state_known": True},
    ]


def test_a_wrong_entry_is_named_with_its_host(viewer: Account, span: None) -> None:
    saved = HostState.objects.get(host__name="lab2")
    for entry in saved.state["fdb"].values():
        if entry["mac"] != "00:00:00:00:00:00":
            entry["dst"] = "198.18.254.99"
    saved.save()
    answer = viewer.api().get("/api/v1/networks/ov.mesh/overlay/").json()
    assert not answer["consistent"]
    [finding] = answer["findings"]
    assert (finding["host"], finding["kind"], finding["found"], finding["repairable"]) == (
        "lab2",
        "WRONG_VTEP",
        "dst 198.18.254.99",
        True,
    )
    assert finding["expected"] == "dst 198.18.254.11 (lab1)"


@pytest.mark.parametrize(
    ("id_", "status", "says"),
    [
        ("ov.side", 400, "does not span hosts"),
        ("ov.nope", 404, "no network 'nope'"),
        ("ov", 400, "is not TOPOLOGY.NETWORK"),
        ("zz.mesh", 404, "no topology"),
    ],
)
def test_what_is_not_an_overlay_is_said(
    viewer: Account, span: None, id_: str, status: int, says: str
) -> None:
    answer = viewer.api().get(f"/api/v1/networks/{id_}/overlay/")
    assert answer.status_code == status and says in answer.json()["message"], answer.json()


@pytest.fixture(autouse=True)
def _worker_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with a worker that has told and digested nothing yet."""
    monkeypatch.setattr(overlay, "_last_findings", {})
    monkeypatch.setattr(overlay, "_digests", {})


def _saved(host: Host) -> dict:
    """What the host's agent connection passes after a save: its host id, seq and state."""
    saved = HostState.objects.get(host=host)
    return {"host_id": host.id, "seq": saved.seq, "state": saved.state}


def test_a_saved_state_that_changes_the_findings_is_told_once(span: None) -> None:
    lab2 = Host.objects.get(name="lab2")
    told = overlays_changed(**_saved(lab2))
    assert [(t.host.name, t.name) for t in told] == [("lab1", "ov")]  # the home row, whose page reads it
    assert overlays_changed(**_saved(lab2)) == []  # nothing new: nobody is told twice
    saved = HostState.objects.get(host=lab2)
    saved.state["neighbours"] = {}
    saved.seq += 1
    saved.save()
    assert [t.name for t in overlays_changed(**_saved(lab2))] == ["ov"]
    assert [t.name for t in overlays_changed(**_saved(Host.objects.get(name="lab1")))] == []  # seen already


def test_after_an_event_only_that_hosts_state_is_read_again(
    span: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is incremental: a state saved by one host is digested (and the state the agent
    connection holds is used, not read back); the other hosts' digests are kept while their saved
    states stay the same. The findings are those of a whole pass all the same."""
    digested: list[str] = []
    digest = overlay.host_digest
    monkeypatch.setattr(
        overlay, "host_digest", lambda view, **kw: digested.append(view.name) or digest(view, **kw)
    )
    lab1, lab2 = Host.objects.get(name="lab1"), Host.objects.get(name="lab2")
    overlays_changed(**_saved(lab2))
    assert sorted(digested) == ["lab1", "lab2"]
    digested.clear()
    saved = HostState.objects.get(host=lab2)
    for entry in saved.state["fdb"].values():
        if entry["mac"] != "00:00:00:00:00:00":
            entry["dst"] = "198.18.254.99"
    saved.seq += 1
    saved.save()
    [told] = overlays_changed(host_id=lab2.id, seq=saved.seq, state=saved.state)
    assert digested == ["lab2"]
    views = [overlay.HostView(h.name, h.underlay, HostState.objects.get(host=h).state) for h in (lab1, lab2)]
    whole = overlay.overlay_check(
        topology="ov", network="mesh", subnet="198.18.50.0/24", vni=5000, dstport=4789, learning=False,
        hosts=views,
    )  # fmt: skip
    answer = overlay.network_overlay(topology=told, network="mesh")
    assert [f["kind"] for f in answer["findings"]] == [f.kind for f in whole] == ["WRONG_VTEP"]
    assert digested == ["lab2"]  # the answer to the API came from the kept digests
