"""A picture people can read at every size (issue 7, items 1-3 and 5): the network-centric layout, folded
large networks, positions kept across reloads, new objects placed without moving anything.

The page saves positions through the saved-layout API, answered here by tests/browser/conftest.py's
LayoutStore (the API itself is tested in tests/webapp/test_layout_api.py).
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import VISIBLE_POSITION
from tests.browser.frames import demo_host, link_id, networks_host

# Every pair of drawn node boxes (labels included) that overlap, skipping a box and what it contains
# (and host boxes, which hold everything of theirs).
OVERLAPS = """() => {
  const cy = window.switchboard.cy;
  const nodes = cy.nodes().filter((n) => n.data('type') !== 'host' && !n.hasClass('filtered'));
  const boxes = nodes.map((n) => ({ n, b: n.boundingBox({ includeLabels: true, includeOverlays: false }) }));
  const out = [];
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const [a, b] = [boxes[i], boxes[j]];
      if (a.b.x1 < b.b.x2 && b.b.x1 < a.b.x2 && a.b.y1 < b.b.y2 && b.b.y1 < a.b.y2
          && !a.n.ancestors().contains(b.n) && !b.n.ancestors().contains(a.n)) out.push([a.n.id(), b.n.id()]);
    }
  }
  return out.slice(0, 10);
}"""

# Labels drawn smaller than 10 px on screen at the current zoom (font size x zoom).
SMALL_LABELS = """() => {
  const cy = window.switchboard.cy;
  return cy.nodes().filter((n) => n.style('label'))
    .map((n) => [n.id(), parseFloat(n.style('font-size')) * cy.zoom()])
    .filter(([, px]) => px < 10);
}"""


def positions_after_save(topology: Any) -> dict[str, dict[str, float]]:
    topology.idle()
    topology.js("() => window.switchboard.layoutSaved()")
    return topology.positions()


def drag(topology: Any, node_id: str, dx: float, dy: float) -> None:
    """Drag a node with the mouse, as a person would."""
    box = topology.page.locator("#cy").bounding_box()
    x, y = topology.js(VISIBLE_POSITION, node_id)
    topology.page.mouse.move(box["x"] + x, box["y"] + y)
    topology.page.mouse.down()
    topology.page.mouse.move(box["x"] + x + dx, box["y"] + y + dy, steps=5)
    topology.page.mouse.up()


def test_300_endpoints_on_two_networks_are_readable(topology):
    s = networks_host(300)
    topology.send_snapshot(s.snapshot_frame("alpha"))
    # Each network is folded into one node that says how many endpoints it holds.
    groups = topology.js(
        "() => window.switchboard.cy.nodes('.group').map((n) => [n.data('bridge'), n.data('label')])"
    )
    assert sorted(label for _, label in groups) == ["150 endpoints", "150 endpoints"]
    assert topology.js(OVERLAPS) == []
    assert topology.js(SMALL_LABELS) == []
    # The router on both networks stands between their hubs.
    by_name = "(name) => window.switchboard.model.hosts.alpha.byName.get(name)"
    x = {
        name: topology.on_node(topology.js(by_name, name), "e.position('x')")
        for name in ("host|net0", "host|net1", "lab-router|eth0")
    }
    assert x["host|net0"] < x["lab-router|eth0"] < x["host|net1"], x

    # Opened, 150 endpoints are placed around their network without overlapping anything.
    before = topology.positions()
    topology.click_node(groups[0][0] + "|endpoints")
    topology.idle()
    after = topology.positions()
    assert len(after) > len(before) + 300
    assert {k: after[k] for k in before if k in after} == {k: v for k, v in before.items() if k in after}
    assert topology.js(OVERLAPS) == []


def test_the_whole_graph_unfolded_and_laid_out_again_overlaps_nothing(topology):
    s = networks_host(300)
    topology.send_snapshot(s.snapshot_frame("alpha"))
    topology.js("() => window.switchboard.setGrouping(false)")
    topology.idle()
    topology.js("() => window.switchboard.relayout()")
    topology.idle()
    assert topology.js("() => window.switchboard.cy.nodes('.group').length") == 0
    assert topology.js(OVERLAPS) == []
    # The re-layout replaced the saved layout as a whole.
    topology.js("() => window.switchboard.layoutSaved()")
    assert topology.layouts.requests[-1][0] == "PUT"
    assert len(topology.layouts.positions) == len(topology.positions())


def test_a_reload_keeps_every_position_and_a_dragged_node_stays_where_it_was_dropped(topology):
    s = networks_host(20)
    frame = s.snapshot_frame("alpha")
    topology.send_snapshot(frame)
    node = "alpha|lab-ep3|2"
    drag(topology, node, 60, 40)
    before = positions_after_save(topology)
    assert topology.layouts.positions[node] == [before[node]["x"], before[node]["y"]]

    topology.reload()
    topology.send_snapshot(frame)
    after = topology.positions()
    assert after == before


def test_a_new_namespace_appears_next_to_its_network_and_nothing_moves(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    before = topology.positions()
    keys = {kind: set(s.state[kind]) for kind in ("namespaces", "links", "addresses", "routes")}
    s.endpoint("demo-web3", "demo-front", "198.18.1.4/24", "198.18.1.1")
    events = [
        {"kind": kind, "action": "set", "key": key, "object": s.state[kind][key]}
        for kind in keys
        for key in sorted(set(s.state[kind]) - keys[kind])
    ]
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 2, "events": events})
    topology.idle()
    after = topology.positions()
    assert {k: after[k] for k in before} == before
    assert topology.js(OVERLAPS) == []
    # It joins demo-front's endpoints, not demo-back's.
    new = topology.on_node("alpha|demo-web3|2", "e.position()")
    front = before[link_id("alpha", links["front"])]
    back = before[link_id("alpha", links["back"])]
    distance = lambda p, q: ((p["x"] - q["x"]) ** 2 + (p["y"] - q["y"]) ** 2) ** 0.5  # noqa: E731
    assert distance(new, front) < distance(new, back)
    # And it is saved, so a reload shows it there too.
    topology.js("() => window.switchboard.layoutSaved()")
    assert topology.layouts.positions["alpha|demo-web3|2"] == [new["x"], new["y"]]


def test_a_host_namespace_bridge_is_a_hub_outside_the_host_namespace_box(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    front = link_id("alpha", links["front"])
    port = link_id("alpha", links["port1"])
    assert topology.on_node(front, "e.parent().id()") == "alpha"
    assert topology.on_node(port, "e.parent().id()") == "alpha"
    assert topology.on_node("alpha|host|1", "e.parent().id()") == "alpha|ns|host"  # its lo stays in the box
    # No namespace box is drawn inside another one.
    assert topology.js(OVERLAPS) == []


def test_a_node_and_a_container_node_sharing_it_are_found_by_name(topology):
    s, links = demo_host()
    lo = s.state["links"]["demo-web1|1"]
    lo["alias"] = "switchboard:demo:node:node=web1:shared=sidecar"
    links["port1"]["alias"] = "switchboard:demo:veth:node=web1:network=front"
    topology.send_snapshot(s.snapshot_frame("alpha"))
    topology.page.fill("#search", "sidecar")
    assert topology.ids(".match") == {"alpha|ns|demo-web1"}
    assert "sidecar" in topology.on_node("alpha|ns|demo-web1", "e.data('label')")
    topology.page.fill("#search", "web1")
    assert topology.ids(".match") >= {"alpha|ns|demo-web1", link_id("alpha", links["port1"])}


def test_a_network_folded_again_and_reopened_puts_its_endpoints_back_where_they_were(topology):
    s = networks_host(60)
    topology.send_snapshot(s.snapshot_frame("alpha"))
    bridge = topology.js("() => window.switchboard.model.hosts.alpha.byName.get('host|net0')")
    topology.click_node(f"{bridge}|endpoints")
    topology.idle()
    drag(topology, "alpha|lab-ep2|2", 50, 30)  # the user's own arrangement must come back too
    opened = topology.positions()
    topology.click_node(bridge)
    topology.page.get_by_role("button", name="Group endpoints again").click()
    topology.idle()
    assert topology.on_node(f"{bridge}|endpoints", "e.nonempty()")
    topology.page.get_by_role("button", name="Show 30 grouped endpoints").click()
    topology.idle()
    assert topology.positions() == opened
