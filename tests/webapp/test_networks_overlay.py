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


def test_a_saved_state_that_changes_the_findings_is_told_once(
    span: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overlay, "_last_findings", {})
    lab2 = Host.objects.get(name="lab2")
    told = overlays_changed(host_id=lab2.id)
    assert [(t.host.name, t.name) for t in told] == [("lab1", "ov")]  # the home row, whose page reads it
    assert overlays_changed(host_id=lab2.id) == []  # nothing new: nobody is told twice
    saved = HostState.objects.get(host=lab2)
    saved.state["neighbours"] = {}
    saved.save()
    assert [t.name for t in overlays_changed(host_id=lab2.id)] == ["ov"]
    assert [t.name for t in overlays_changed(host_id=Host.objects.get(name="lab1").id)] == []  # seen already
