"""GET /api/v1/topologies/<name>/preview/: who reaches whom once the stored topology is applied,
against the document last applied on its host, and what the change interrupts."""

from __future__ import annotations

from typing import Any

import pytest

from netcore.topology import reach
from tests.webapp.conftest import Account
from webapp.operations.models import Operation

pytestmark = pytest.mark.django_db

DOC = """\
name: pv
networks:
  red: {subnet: 198.18.50.0/24}
  blue: {subnet: 198.18.51.0/24}
nodes:
  a: {networks: {red: {address: 198.18.50.10}}}
  b: {networks: [red]}
  c: {networks: [blue]}
"""


def preview(account: Account, query: str = "") -> Any:
    response = account.api().get(f"/api/v1/topologies/pv/preview/{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def run(operator: Account, kind: str, host: str = "h1") -> None:
    """Queue `kind` through the API and record it as the agent's success."""
    response = operator.api().post(f"/api/v1/topologies/pv/{kind}/?host={host}")
    assert response.status_code == 202, response.json()
    Operation.objects.filter(id=response.json()["operation"]).update(status=Operation.Status.SUCCEEDED)


def edit(operator: Account, document: str) -> None:
    current = operator.api().get("/api/v1/topologies/pv/").json()
    body = {"topology": document, "version": current["version"]}
    response = operator.api().put("/api/v1/topologies/pv/", body, format="json")
    assert response.status_code == 200, response.json()


def test_never_applied_every_reachable_pair_is_gained(
    operator: Account, viewer: Account, make_host: Any
) -> None:
    make_host("h1")
    assert (
        operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": DOC}, format="json").status_code
        == 201
    )
    body = preview(viewer)
    assert body["applied"] is False and body["host_forwards"] is False
    assert body["pairs_before"] == 0 and body["pairs_after"] == 2
    assert body["gained"] == [
        {
            "source": "a",
            "target": "b",
            "network": "red",
            "address": "198.18.50.2",
            "how": "L2",
            "path": ["a", "b", "a"],
        },
        {
            "source": "b",
            "target": "a",
            "network": "red",
            "address": "198.18.50.10",
            "how": "L2",
            "path": ["b", "a", "b"],
        },
    ]
    assert body["lost"] == body["interrupted"] == body["recreated"] == []
    assert body["counts"] == {"gained": 2, "lost": 0, "interrupted": 0, "recreated": 0}
    # a host that routes between networks: c is reached through the gateways
    routed = preview(viewer, "?host_forwards=true")
    assert routed["host_forwards"] is True and routed["pairs_after"] == 6
    assert {"source": "a", "target": "c", "how": "L3"}.items() <= routed["gained"][1].items()


def test_after_apply_a_change_shows_what_is_lost_interrupted_and_recreated(
    operator: Account, viewer: Account, make_host: Any
) -> None:
    make_host("h1")
    operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": DOC}, format="json")
    run(operator, "apply")
    unchanged = preview(viewer)
    assert unchanged["applied"] is True
    assert unchanged["counts"] == {"gained": 0, "lost": 0, "interrupted": 0, "recreated": 0}
    assert unchanged["pairs_before"] == unchanged["pairs_after"] == 2

    changed = (
        DOC.replace("198.18.50.10", "198.18.50.11")
        .replace("{subnet: 198.18.50.0/24}", "{subnet: 198.18.50.0/24, mtu: 1400}")
        .replace("  c: {networks: [blue]}\n", "  c: {networks: [blue]}\n  d: {networks: [blue]}\n")
        .replace("  b: {networks: [red]}\n", "")
    )
    edit(operator, changed)
    body = preview(viewer)
    assert [(p["source"], p["target"], p.get("reason")) for p in body["lost"]] == [
        ("a", "b", "the node or its network is removed"),
        ("b", "a", "the node or its network is removed"),
    ]
    assert [(p["source"], p["target"], p["how"]) for p in body["gained"]] == [
        ("c", "d", "L2"),
        ("d", "c", "L2"),
    ]
    assert body["interrupted"] == [{"node": "a", "why": "address 198.18.50.10 → 198.18.50.11 on red"}]
    assert body["recreated"] == []  # the MTU changes in place

    run(operator, "destroy")  # nothing on the host any more: everything is gained again
    assert preview(viewer)["applied"] is False and preview(viewer)["pairs_before"] == 0


def test_host_names_the_topology_and_unknown_ones_are_404(
    operator: Account, viewer: Account, make_host: Any
) -> None:
    make_host("h1")
    make_host("h2")
    for host, doc in (("h1", DOC), ("h2", DOC.replace("  c: {networks: [blue]}\n", ""))):
        created = operator.api().post("/api/v1/topologies/", {"host": host, "topology": doc}, format="json")
        assert created.status_code == 201, created.json()
    assert preview(viewer, "?host=h1&host_forwards=1")["pairs_after"] == 6
    assert preview(viewer, "?host=h2&host_forwards=1")["pairs_after"] == 2
    assert viewer.api().get("/api/v1/topologies/pv/preview/").status_code == 400  # which host's?
    missing = viewer.api().get("/api/v1/topologies/nope/preview/?host=h1")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"


def test_too_large_to_work_out_is_a_conflict_naming_the_limit(
    operator: Account, viewer: Account, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_host("h1")
    operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": DOC}, format="json")
    monkeypatch.setattr(reach, "MAX_PAIRS", 5)
    response = viewer.api().get("/api/v1/topologies/pv/preview/")
    assert response.status_code == 409
    assert response.json()["message"] == (
        "no connectivity preview: topology pv has about 9 pairs of a node and an address of another;"
        " reach works out at most 5"
    )
