"""Overlays on the topology page (issue 10 items 6 and 7): a network spanning hosts drawn as one.

Three lab hosts' snapshots (frames.overlay_hosts: a bridge, a VXLAN device and an endpoint on each,
FDB and neighbour entries to the other hosts) come from the FakeServer. The page must draw one tunnel
per pair of VXLAN devices, labelled with the VNI, follow FDB deltas, show a tunnel to a VTEP no host
has, light the overlay when a device is selected, and show the overlay check (GET
/api/v1/networks/T.N/overlay/, answered here by Playwright) as a badge and in the device's panel,
with a Re-apply button for operators whose progress comes as operation.status frames.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import ORIGIN, FakeServer, LayoutStore, TopologyPage, _render_harness, _serve
from tests.browser.frames import ZERO_MAC, HostState, link_id, overlay_hosts, overlay_mac, vtep

SCHEMA = Path(__file__).resolve().parents[2] / "netcore" / "schema" / "snapshot.schema.json"
HOSTS = ["lab1", "lab2", "lab3"]
SPANNING = [
    {
        "name": "ov",
        "host": name,
        "status": "ready",
        "status_message": "",
        "span": {"home": "lab1", "hosts": HOSTS},
    }
    for name in HOSTS
]
FINDINGS = [
    {
        "host": "lab2",
        "kind": "MISSING_FDB",
        "object": f"fdb {overlay_mac(3)} on ov-mesh.vx",
        "expected": f"dst {vtep(3)} (lab3)",
        "found": "none",
        "repairable": True,
        "why": "no forwarding entry for a remote endpoint's MAC",
    },
    {
        "host": "lab2",
        "kind": "STALE_NEIGHBOUR",
        "object": "neighbour 198.18.100.9 on ov-mesh.vx",
        "expected": "no entry",
        "found": "lladdr 02:42:c6:12:64:09",
        "repairable": True,
        "why": "a neighbour entry for an address no endpoint of another host has",
    },
]


def overlay_answer(findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "topology": "ov",
        "network": "mesh",
        "hosts": [{"name": f"lab{i}", "vtep": vtep(i), "state_known": True} for i in (1, 2, 3)],
        "consistent": not findings,
        "findings": findings,
    }


class OverlayApi:
    """The networks API (list and overlay check) and apply, as the page calls them, answered in memory."""

    def __init__(self) -> None:
        self.answer = overlay_answer(FINDINGS)
        self.overlay_reads: list[str] = []
        self.applies: list[str] = []

    def networks(self, route: Any) -> None:
        url = urlsplit(route.request.url)
        if url.path == "/api/v1/networks/":
            assert parse_qs(url.query)["topology"] == ["ov"]
            body: Any = {
                "count": 1,
                "next": None,
                "previous": None,
                "results": [{"name": "mesh", "driver": "vxlan"}],
            }
        elif url.path == "/api/v1/networks/ov.mesh/overlay/":
            self.overlay_reads.append(route.request.url)
            body = self.answer
        else:
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    def apply(self, route: Any) -> None:
        assert route.request.method == "POST"
        self.applies.append(route.request.url)
        body = {"operation": "op-reapply", "status": "pending", "url": "/api/v1/operations/op-reapply/"}
        route.fulfill(status=202, content_type="application/json", body=json.dumps(body))


def open_page(browser: Any, *, operator: bool) -> Iterator[tuple[TopologyPage, OverlayApi]]:
    layouts = LayoutStore()
    layouts.desired = SPANNING  # the page reads it on load: the overlay check is read then
    edit = {"can_operate": True, "networks_url": "/networks/", "operations_url": "/api/v1/operations/"}
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    server = FakeServer()
    context.route(
        f"{ORIGIN}/**",
        lambda route: _serve(
            route, lambda: _render_harness(HOSTS, layouts.config(), edit=edit if operator else None), layouts
        ),
    )
    context.route_web_socket(f"ws://{ORIGIN.removeprefix('http://')}/ws/topology/", server.accept)
    api = OverlayApi()
    context.route(f"{ORIGIN}/api/v1/networks/**", api.networks)  # routes added later are tried first
    context.route(f"{ORIGIN}/api/v1/topologies/*/apply/**", api.apply)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{ORIGIN}/topology/")
    page.wait_for_function("() => document.body.dataset.wsStatus === 'open'")
    yield TopologyPage(page, server, layouts), api
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def lab(browser: Any) -> Iterator[tuple[TopologyPage, OverlayApi]]:
    """The topology page of an operator, with the FakeServer about to send lab1..lab3."""
    yield from open_page(browser, operator=True)


@pytest.fixture
def lab_viewer(browser: Any) -> Iterator[tuple[TopologyPage, OverlayApi]]:
    yield from open_page(browser, operator=False)


def send_lab(topology: TopologyPage) -> list[tuple[HostState, dict[str, dict[str, Any]]]]:
    hosts = overlay_hosts(3)
    for i, (s, _) in enumerate(hosts, start=1):
        topology.send_snapshot(s.snapshot_frame(f"lab{i}"))
    return hosts


def vx(i: int) -> str:
    return f"lab{i}|host|4"  # lo, eth0, ov-mesh, ov-mesh.vx


def tunnels(topology: TopologyPage) -> dict[frozenset[str], dict[str, Any]]:
    """Every tunnel edge drawn: its two ends -> its label and classes."""
    drawn = topology.js(
        "() => window.switchboard.cy.$('edge.tunnel').map((e) => "
        "({ends: [e.source().id(), e.target().id()], label: e.data('label'), classes: e.classes()}))"
    )
    return {frozenset(e["ends"]): {"label": e["label"], "classes": e["classes"]} for e in drawn}


def drop_events(s: HostState, dst: str) -> list[dict[str, Any]]:
    """Events deleting every FDB entry of `s` whose dst is `dst` (and removing them from `s`)."""
    keys = [key for key, entry in s.state["fdb"].items() if entry["dst"] == dst]
    for key in keys:
        del s.state["fdb"][key]
    return [{"kind": "fdb", "action": "del", "key": key, "object": None} for key in keys]


def test_overlay_hosts_follow_the_netcore_schema():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    hosts = overlay_hosts(3)
    for s, _ in hosts:
        jsonschema.validate(s.as_netcore_snapshot(), schema)
    assert link_id("lab3", hosts[2][1]["vxlan"]) == vx(3)


def test_a_tunnel_joins_the_vxlan_devices_of_every_pair_of_hosts(lab):
    topology, _ = lab
    send_lab(topology)
    drawn = tunnels(topology)
    assert set(drawn) == {frozenset({vx(1), vx(2)}), frozenset({vx(1), vx(3)}), frozenset({vx(2), vx(3)})}
    assert {t["label"] for t in drawn.values()} == {"VNI 5000"}
    # Arced above the hub rows, not through the bridges; past lab2, higher.
    assert "arc-1" in drawn[frozenset({vx(1), vx(2)})]["classes"]
    assert "arc-2" in drawn[frozenset({vx(1), vx(3)})]["classes"]
    assert not [c for t in drawn.values() for c in t["classes"] if c.startswith("oneway")]  # both ways
    for i in (1, 2, 3):
        # Hosts are boxes holding their devices; each device says its VNI and VTEP.
        assert topology.on_node(vx(i), "e.ancestors('.host').id()") == f"lab{i}"
        assert topology.on_node(vx(i), "e.data('label')") == f"ov-mesh.vx\nVNI 5000 · {vtep(i)}"
    edge = topology.js("() => window.switchboard.cy.$('edge.tunnel').first().style('line-style')")
    assert edge == "dashed"

    # The legend has them, and a filter hides them.
    page = topology.page
    assert page.locator("#legend [data-legend='VXLAN tunnel']").count() == 1
    page.locator("#kind-filters").get_by_label("Tunnels").uncheck()
    assert topology.ids("edge.tunnel") == topology.ids("edge.filtered")
    page.locator("#kind-filters").get_by_label("Tunnels").check()
    assert not topology.ids("edge.filtered")


def test_selecting_a_vxlan_device_lights_its_peers_and_their_endpoints_and_names_the_hosts(lab):
    topology, _ = lab
    hosts = send_lab(topology)
    topology.click_node(vx(1))
    lit = topology.ids(".lit")
    for i, (_, links) in enumerate(hosts, start=1):
        for role in ("vxlan", "bridge", "port", "endpoint"):
            assert link_id(f"lab{i}", links[role]) in lit, (i, role)
    assert link_id("lab2", hosts[1][1]["eth0"]) in topology.ids(".dimmed")  # the underlay is not the overlay
    assert frozenset({vx(2), vx(3)}) in {
        frozenset(e)
        for e in topology.js(
            "() => window.switchboard.cy.$('edge.lit').map((e) => [e.source().id(), e.target().id()])"
        )
    }

    # The panel: where each FDB entry sends frames (the VTEP's host) and the neighbour entries.
    panel = topology.page.locator("#details-body")
    fdb_rows = panel.locator("section", has_text="FDB: where frames go").locator("tbody tr").all_inner_texts()
    rows = sorted(" ".join(row.split()) for row in fdb_rows)
    assert rows == sorted(
        [
            f"{ZERO_MAC} (flood) {vtep(2)} lab2 permanent",
            f"{ZERO_MAC} (flood) {vtep(3)} lab3 permanent",
            f"{overlay_mac(2)} {vtep(2)} lab2 permanent",
            f"{overlay_mac(3)} {vtep(3)} lab3 permanent",
        ]
    )
    neighbours = panel.locator("section", has_text="Neighbours").locator("tbody tr").all_inner_texts()
    assert [" ".join(row.split()) for row in neighbours] == [
        f"198.18.100.3 {overlay_mac(2)} lab2 permanent",
        f"198.18.100.4 {overlay_mac(3)} lab3 permanent",
    ]

    topology.page.keyboard.press("Escape")
    assert not topology.ids(".lit") and not topology.ids(".dimmed")


def test_fdb_deltas_change_the_tunnels_and_a_wrong_entry_points_at_an_unknown_vtep(lab):
    topology, _ = lab
    hosts = send_lab(topology)
    before = topology.positions()
    (lab1, _), (lab2, _) = hosts[0], hosts[1]
    pair = frozenset({vx(1), vx(2)})

    # lab1 forgets lab2: lab2 still sends to lab1, one way (arrowed towards lab1, the source end).
    topology.send_delta(
        {"type": "topology.delta", "host": "lab1", "seq": 2, "events": drop_events(lab1, vtep(2))}
    )
    assert "oneway-backward" in tunnels(topology)[pair]["classes"]
    # lab2 forgets lab1 too: no tunnel between them; the others stay.
    topology.send_delta(
        {"type": "topology.delta", "host": "lab2", "seq": 2, "events": drop_events(lab2, vtep(1))}
    )
    assert set(tunnels(topology)) == {frozenset({vx(1), vx(3)}), frozenset({vx(2), vx(3)})}

    # A per-MAC entry to a VTEP no host has: drawn to a small "unknown" node beside lab1's device.
    key = lab1.fdb(hosts[0][1]["vxlan"], "02:42:c6:12:64:99", dst="198.18.254.99", self_entry=True)
    event = {"kind": "fdb", "action": "set", "key": key, "object": lab1.state["fdb"][key]}
    topology.send_delta({"type": "topology.delta", "host": "lab1", "seq": 3, "events": [event]})
    topology.idle()
    unknown = "lab1|vtep|198.18.254.99"
    assert topology.on_node(unknown, "e.data('label')") == "VTEP 198.18.254.99\n(unknown)"
    assert topology.on_node(unknown, "e.parent().id()") == "lab1"
    assert "tunnel-unknown" in tunnels(topology)[frozenset({vx(1), unknown})]["classes"]
    after = topology.positions()
    assert {k: after[k] for k in before} == before, "nothing drawn moved"
    device, placed = after[vx(1)], after[unknown]
    assert abs(device["x"] - placed["x"]) + abs(device["y"] - placed["y"]) < 400

    # lab2's entry for lab1 back brings the tunnel back; deleting the wrong entry removes the node.
    lab2.fdb(hosts[1][1]["vxlan"], ZERO_MAC, dst=vtep(1), self_entry=True)
    back = [
        {"kind": "fdb", "action": "set", "key": k, "object": v}
        for k, v in lab2.state["fdb"].items()
        if v["dst"] == vtep(1)
    ]
    topology.send_delta({"type": "topology.delta", "host": "lab2", "seq": 3, "events": back})
    assert "oneway-backward" in tunnels(topology)[pair]["classes"]  # lab1 still has none for lab2
    gone = [{"kind": "fdb", "action": "del", "key": key, "object": None}]
    topology.send_delta({"type": "topology.delta", "host": "lab1", "seq": 4, "events": gone})
    topology.idle()
    assert unknown not in topology.ids("node")


WAIT_FINDINGS = "([id, n]) => window.switchboard.cy.getElementById(id).data('findings') === n"


def test_overlay_findings_are_a_badge_on_the_device_and_listed_with_a_reapply_button(lab):
    topology, api = lab
    send_lab(topology)
    page = topology.page
    page.wait_for_function(WAIT_FINDINGS, arg=[vx(2), 2])
    assert "overlay-findings" in topology.on_node(vx(2), "e.classes()")
    assert topology.on_node(vx(2), "e.style('background-image')").startswith("data:image/svg+xml")
    assert topology.on_node(vx(1), "e.data('findings')") == 0
    assert "overlay-findings" not in topology.on_node(vx(1), "e.classes()")
    assert api.overlay_reads and parse_qs(urlsplit(api.overlay_reads[0]).query)["host"] == ["lab1"]

    # lab1 has nothing to fix; lab2's panel lists what the check found there.
    topology.click_node(vx(1))
    panel = page.locator("#details-body")
    assert "Nothing found on lab1; 2 findings on other hosts." in panel.inner_text()
    topology.click_node(vx(2))
    text = panel.inner_text()
    assert "2 findings on lab2:" in text
    for finding in FINDINGS:
        for field in ("kind", "object", "expected", "found", "why"):
            assert finding[field] in text, (finding["kind"], field)

    # Re-apply lab2: one POST for that host, its progress from the operation.status frames.
    button = panel.get_by_role("button", name="Re-apply lab2")
    button.click()
    page.wait_for_function("() => document.querySelector('[data-reapply-status=\"pending\"]')")
    assert [parse_qs(urlsplit(url).query)["host"] for url in api.applies] == [["lab2"]]
    assert urlsplit(api.applies[0]).path == "/api/v1/topologies/ov/apply/"
    assert panel.get_by_role("button", name="Re-applying lab2…").is_disabled()
    assert page.locator('[data-operation="op-reapply"]').is_visible()  # the page's operations list

    def status(state: str, **extra: Any) -> None:
        operation = {
            "id": "op-reapply",
            "host": "lab2",
            "kind": "apply",
            "status": state,
            "topology": "ov",
            **extra,
        }
        topology.server.send({"type": "operation.status", "operation": operation})

    status("running", progress="building nodes 1/1", done=1, total=1)
    page.wait_for_function("() => document.querySelector('[data-reapply-status=\"running\"]')")
    assert "apply running… building nodes 1/1" in panel.inner_text()

    # Done, and the host repaired: the page reads the check again on that frame.
    api.answer = overlay_answer([])
    reads = len(api.overlay_reads)
    status("succeeded")
    page.wait_for_function(WAIT_FINDINGS, arg=[vx(2), 0])
    assert len(api.overlay_reads) > reads
    assert "overlay-findings" not in topology.on_node(vx(2), "e.classes()")
    page.wait_for_function("() => document.querySelector('[data-overlay=\"consistent\"]')")
    consistent = panel.locator("[data-overlay='consistent']")
    assert consistent.inner_text() == "✓ Overlay consistent"
    assert panel.get_by_role("button", name="Re-apply lab2").count() == 0


def test_a_viewer_sees_the_findings_without_a_reapply_button(lab_viewer):
    topology, api = lab_viewer
    send_lab(topology)
    topology.page.wait_for_function(WAIT_FINDINGS, arg=[vx(2), 2])
    topology.click_node(vx(2))
    panel = topology.page.locator("#details-body")
    assert "2 findings on lab2:" in panel.inner_text()
    assert panel.locator("button[data-reapply]").count() == 0

    # A desired.changed frame for the topology reads the check again.
    api.answer = overlay_answer(FINDINGS[:1])
    topology.server.send({"type": "desired.changed", "host": "lab1", "topology": "ov"})
    topology.page.wait_for_function(WAIT_FINDINGS, arg=[vx(2), 1])
