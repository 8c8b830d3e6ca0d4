"""Labels that carry what engineers look for, and a details panel that neither jumps nor wraps.

Issue 7, items 4 and 6: an interface's label shows its addresses, a bridge's its subnet and gateway
(its own address), a VXLAN device's VNI and remote; the address lines are drawn only once zoomed in
enough to read them; a namespace's panel lists its own routes, an interface's the routes through it;
selecting an element already on screen moves nothing.
"""

from __future__ import annotations

from tests.browser.frames import demo_host, link_id

LABEL = "(id) => window.switchboard.cy.getElementById(id).style('label')"
# Returns nothing: cy.zoom(z) returns cy itself, which Playwright would try to send back (seconds, or a
# crashed page).
ZOOM = "(z) => { window.switchboard.cy.zoom(z); }"


def test_interface_label_shows_its_addresses_and_follows_deltas(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    web1 = link_id("alpha", links["web1"])
    assert topology.on_node(web1, "e.data('label')") == "eth0\n198.18.1.2/24"

    # Add an IPv6 and two more IPv4 addresses: IPv4 first, at most two, then "+N".
    events = []
    for cidr in ("2001:db8::2/64", "198.18.1.20/24", "198.18.1.10/24"):
        before = set(s.state["addresses"])
        s.address(links["web1"], cidr)
        (key,) = set(s.state["addresses"]) - before
        events.append({"kind": "addresses", "action": "set", "key": key, "object": s.state["addresses"][key]})
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 2, "events": events})
    topology.idle()
    assert topology.on_node(web1, "e.data('label')") == "eth0\n198.18.1.2/24\n198.18.1.10/24\n+2"

    # Removing addresses updates it too.
    gone = [{"kind": "addresses", "action": "del", "key": e["key"], "object": None} for e in events]
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 3, "events": gone})
    topology.idle()
    assert topology.on_node(web1, "e.data('label')") == "eth0\n198.18.1.2/24"


def test_bridge_shows_its_subnet_and_vxlan_its_vni_and_remote(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    front = topology.on_node(link_id("alpha", links["front"]), "e.data('label')")
    assert front == "demo-front\n198.18.1.1/24"
    vxlan = topology.on_node(link_id("alpha", links["vxlan"]), "e.data('label')")
    assert vxlan == "demo-back.vx\nVNI 4242 → 198.18.0.2"
    # Loopback keeps its name only (its addresses are always the same).
    assert topology.on_node("alpha|demo-web1|1", "e.data('label')") == "lo"


def test_address_lines_are_drawn_only_when_zoomed_in(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    web1, front = link_id("alpha", links["web1"]), link_id("alpha", links["front"])
    topology.js(ZOOM, 1.5)
    assert topology.js(LABEL, web1) == "eth0\n198.18.1.2/24"
    topology.js(ZOOM, 0.3)
    assert topology.js(LABEL, web1) == "eth0"
    assert topology.js(LABEL, front) == "demo-front"
    assert topology.js(LABEL, "alpha|ns|demo-web1") == "demo-web1"  # boxes keep their names
    topology.js(ZOOM, 1.2)
    assert topology.js(LABEL, front) == "demo-front\n198.18.1.1/24"


def test_namespace_panel_lists_its_own_routes_and_an_interface_the_routes_through_it(topology):
    s, links = demo_host()
    s.route(links["eth0"], "203.0.113.0/24", gateway="198.18.0.254")  # a host route, on eth0
    s.route(links["front"], "192.0.2.0/24")  # a host route, on demo-front
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    details = page.locator("#details")

    topology.click_node("alpha|ns|demo-db")
    assert page.locator("#details-title").inner_text() == "demo-db"
    text = details.inner_text()
    assert "198.18.2.0/24" in text and "via 198.18.2.1" in text
    assert "198.18.1.0/24" not in text and "via 198.18.1.1" not in text  # demo-web1's
    assert "203.0.113.0/24" not in text  # the host's

    topology.click_node(link_id("alpha", links["eth0"]))
    assert page.locator("#details-title").inner_text() == "eth0"
    text = details.inner_text()
    assert "Routes via eth0" in text and "203.0.113.0/24" in text
    assert "192.0.2.0/24" not in text  # the host table, but through demo-front

    # Prefixes never wrap: one line per cell, the table scrolls in its own box.
    white_space = page.evaluate(
        "() => [...document.querySelectorAll('#details-body table.compact td')]"
        ".map((td) => getComputedStyle(td).whiteSpace)"
    )
    assert white_space and set(white_space) == {"nowrap"}
    assert (
        page.evaluate(
            "() => getComputedStyle("
            "document.querySelector('#details-body table.compact').parentElement).overflowX"
        )
        == "auto"
    )


def test_selecting_an_element_on_screen_keeps_the_view(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    cy = "window.switchboard.cy"
    view = f"() => {{ {cy}.stop(true, true); return [{cy}.zoom(), {cy}.pan().x, {cy}.pan().y]; }}"
    settle = "() => new Promise((r) => setTimeout(r, 400)).then(() => true)"
    # Open the panel once (the graph narrows), then look at a part of the graph, off-centre.
    topology.click_node(link_id("alpha", links["web1"]))
    topology.js(
        f"() => {{ {cy}.stop(true, true); {cy}.zoom(1.3);"
        f" {cy}.center({cy}.getElementById('alpha|ns|demo-web2')); {cy}.panBy({{x: 90, y: -40}}); }}"
    )
    target = link_id("alpha", links["web2"])
    x, y = topology.js(
        f"(id) => {{ const p = {cy}.getElementById(id).renderedPosition(); return [p.x, p.y]; }}", target
    )
    width, height = topology.js(f"() => [{cy}.width(), {cy}.height()]")
    assert 40 < x < width - 40 and 40 < y < height - 40
    before = topology.js(view)
    topology.click_node(target)
    assert topology.page.locator("#details-title").inner_text() == "eth0"
    topology.js(settle)
    assert topology.js(view) == before

    # An element out of sight (the peer, one click away in the panel) is brought in by panning just
    # enough, at the same zoom.
    peer = link_id("alpha", s.state["links"][f"host|{links['web2']['peer']['index']}"])
    topology.js(
        f"(id) => {{ const n = {cy}.getElementById(id);"
        f" {cy}.panBy({{x: {cy}.width() - n.renderedPosition().x + 300, y: 0}}); }}",
        peer,
    )
    zoom = topology.js(view)[0]
    topology.page.locator("#details").locator("button[data-select]", has_text="demo-web2-front").click()
    assert topology.page.locator("#details-title").inner_text() == "demo-web2-front"
    topology.js(settle)
    x, _ = topology.js(
        f"(id) => {{ const p = {cy}.getElementById(id).renderedPosition(); return [p.x, p.y]; }}", peer
    )
    width = topology.js(f"() => {cy}.width()")
    assert topology.js(view)[0] == zoom
    assert width - 80 < x < width, "panned just enough to show it, not centred"
