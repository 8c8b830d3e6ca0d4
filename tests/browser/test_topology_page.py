"""The topology page (static/js/topology.js) against frames sent over its websocket.

Each test loads the real page markup and scripts (see conftest.py), has a FakeServer send
`topology.snapshot`, `topology.delta` and `host.status` frames as the web app would, and checks
what a person would see: nodes, edges, positions, highlights, the details panel and exports.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.browser.frames import HostState, demo_host, endpoints_host, link_id

SCHEMA = Path(__file__).resolve().parents[2] / "netcore" / "schema" / "snapshot.schema.json"


def distance(a: dict[str, float], b: dict[str, float]) -> float:
    return math.hypot(a["x"] - b["x"], a["y"] - b["y"])


def edge_between(topology, a: str, b: str) -> list[str]:
    """Classes of the edge joining nodes a and b (either direction), or [] when there is none."""
    return topology.js(
        "([a, b]) => { const cy = window.switchboard.cy;"
        " const e = cy.getElementById(a).edgesWith(cy.getElementById(b));"
        " return e.nonempty() ? e.classes() : []; }",
        [a, b],
    )


def new_endpoint_events(s: HostState, node: str, bridge: str, cidr: str) -> tuple[list[dict], dict, dict]:
    """Add an endpoint namespace on `bridge` to `s`; return the events creating it, its eth0 and port."""
    before = {kind: dict(objects) for kind, objects in s.state.items()}
    eth0 = s.endpoint(node, bridge, cidr, "198.18.1.1")
    port = s.state["links"][f"host|{eth0['peer']['index']}"]
    events = [
        {"kind": kind, "action": "set", "key": key, "object": obj}
        for kind, objects in s.state.items()
        for key, obj in objects.items()
        if key not in before[kind]
    ]
    return events, eth0, port


def test_fixture_objects_follow_the_netcore_schema():
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(demo_host()[0].as_netcore_snapshot(), schema)
    jsonschema.validate(endpoints_host(3, per_bridge=2).as_netcore_snapshot(), schema)


@pytest.mark.known_hosts("alpha", "beta")
def test_empty_state_tells_how_to_connect_an_agent(topology):
    empty = topology.page.locator("#empty-state")
    assert empty.is_visible()
    assert "No agent connected yet" in empty.inner_text()
    assert topology.page.locator("#agent-command").inner_text() == (
        "python3 -I switchboard-agent.pyz --url ws://switchboard.test/ws/agent/"
        " --token-file /etc/switchboard/agent.token"
    )
    # Hosts the web app knows (template context) are listed before any agent reports.
    hosts = topology.page.locator("#host-filters").inner_text().split()
    assert hosts == ["alpha", "offline", "beta", "offline"]


def test_first_snapshot_draws_hosts_namespaces_interfaces_and_their_edges(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))

    nodes = topology.ids("node")
    assert {"alpha", "alpha|ns|host", "alpha|ns|demo-web1", "alpha|ns|demo-db"} <= nodes
    assert {link_id("alpha", link) for link in s.state["links"].values()} <= nodes
    web1, port1, front = (link_id("alpha", links[role]) for role in ("web1", "port1", "front"))
    assert topology.on_node(web1, "e.parent().id()") == "alpha|ns|demo-web1"
    # The veth pair is one edge between its two ends; the host end is a port of its bridge.
    assert "veth" in edge_between(topology, web1, port1)
    assert "port" in edge_between(topology, port1, front)
    assert topology.on_node(f"port:{port1}", "e.source().id()") == port1

    vxlan = link_id("alpha", links["vxlan"])
    assert "k-vxlan" in topology.on_node(vxlan, "e.classes()")
    assert topology.on_node(vxlan, "e.data('label')") == "demo-back.vx\nVNI 4242 → 198.18.0.2"
    assert "down" in topology.on_node(link_id("alpha", links["spare"]), "e.classes()")
    assert "ns-docker" in topology.on_node("alpha|ns|demo-db", "e.classes()")
    assert "k-lo" in topology.on_node("alpha|demo-web1|1", "e.classes()")
    assert topology.page.locator("#empty-state").is_hidden()
    assert topology.page.locator("#conn-status").inner_text() == "Connected"


def test_delta_adds_nodes_next_to_their_neighbours_and_moves_nothing_else(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=7))
    before = topology.positions()

    events, eth0, port = new_endpoint_events(s, "demo-web3", "demo-front", "198.18.1.4/24")
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 8, "events": events})

    after = topology.positions()
    assert {k: after[k] for k in before} == before, "existing nodes moved"
    eth0_id, port_id = link_id("alpha", eth0), link_id("alpha", port)
    front_id = link_id("alpha", links["front"])
    assert {eth0_id, port_id, "alpha|demo-web3|1"} <= set(after)
    assert "port" in edge_between(topology, port_id, front_id)
    assert "veth" in edge_between(topology, eth0_id, port_id)
    assert distance(after[port_id], after[front_id]) < 200
    assert distance(after[eth0_id], after[port_id]) < 600
    # A delta already contained in the snapshot is dropped.
    stale = {"kind": "links", "action": "del", "key": HostState.link_key(links["web2"]), "object": None}
    topology.server.send({"type": "topology.delta", "host": "alpha", "seq": 8, "events": [stale]})
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 9, "events": []})
    assert link_id("alpha", links["web2"]) in topology.ids("node")


def test_del_events_remove_the_nodes_and_their_edges(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    before = topology.positions()
    web2, port2 = links["web2"], s.state["links"][f"host|{links['web2']['peer']['index']}"]
    gone = [
        {"kind": "links", "action": "del", "key": HostState.link_key(web2), "object": None},
        {"kind": "links", "action": "del", "key": HostState.link_key(port2), "object": None},
        {"kind": "links", "action": "del", "key": "demo-web2|1", "object": None},
        {"kind": "namespaces", "action": "del", "key": "demo-web2", "object": None},
    ]
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 2, "events": gone})

    nodes = topology.ids("node")
    removed = {link_id("alpha", web2), link_id("alpha", port2), "alpha|demo-web2|1", "alpha|ns|demo-web2"}
    assert not removed & nodes
    assert not [e for e in topology.ids("edge") if link_id("alpha", port2) in e]
    remaining = topology.positions()
    assert remaining == {k: v for k, v in before.items() if k not in removed}
    assert "demo-web2" not in topology.js("() => window.switchboard.state.alpha.state.namespaces")


def test_search_by_ip_address_highlights_the_interface_and_dims_the_rest(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page

    page.locator("#cy").click(position={"x": 5, "y": 5})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.type("198.18.1.2")
    web1 = link_id("alpha", links["web1"])
    assert topology.ids(".match") == {web1}  # 198.18.1.2 only: not 198.18.1.20 and the like
    assert link_id("alpha", links["web2"]) in topology.ids(".dimmed")
    assert "alpha|ns|demo-web1" not in topology.ids(".dimmed")
    assert page.locator("#search-count").inner_text() == "1 match"

    page.locator("#search").fill(links["web2"]["mac"])
    assert topology.ids(".match") == {link_id("alpha", links["web2"])}
    page.keyboard.press("Escape")
    assert page.locator("#search").input_value() == ""
    assert topology.ids(".match") == set() and topology.ids(".dimmed") == set()


def test_clicking_an_interface_shows_its_details_and_the_peer_is_one_click_away(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    web1 = link_id("alpha", links["web1"])

    topology.click_node(web1)
    panel = page.locator("#details")
    assert panel.is_visible()
    assert page.locator("#details-title").inner_text() == "eth0"
    text = panel.inner_text()
    for expected in (
        "veth",
        "1500",
        links["web1"]["mac"],
        "198.18.1.2/24",
        "198.18.1.0/24",
        "default",
        "via 198.18.1.1",
        "02:aa:00:00:00:01",
        "demo-web1-front in host",
    ):
        assert expected in text, expected
    assert topology.ids(":selected") == {web1}

    panel.get_by_role("button", name="demo-web1-front in host").click()
    assert page.locator("#details-title").inner_text() == "demo-web1-front"
    assert "demo-front" in panel.inner_text()  # its master, and its FDB entry for web1's MAC
    assert links["web1"]["mac"] in panel.inner_text()
    assert topology.ids(":selected") == {link_id("alpha", links["port1"])}

    topology.click_node(link_id("alpha", links["vxlan"]))
    vx_text = panel.inner_text()
    assert "VXLAN" in vx_text and "4242" in vx_text and "198.18.0.2" in vx_text and "4789" in vx_text

    page.keyboard.press("Escape")
    assert panel.is_hidden()


def test_namespace_details_list_interfaces_addresses_and_routes(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    topology.click_node("alpha|demo-db|1")  # lo
    topology.page.locator("#details").get_by_role("button", name="demo-db").click()
    text = topology.page.locator("#details").inner_text()
    assert topology.page.locator("#details-title").inner_text() == "demo-db"
    for expected in ("docker", "eth0", "lo", "198.18.2.2/24", "via 198.18.2.1"):
        assert expected in text, expected


def test_filters_hide_kinds_hosts_and_everything_outside_a_network(topology):
    s, links = topology.send_demo("alpha", "beta")
    page = topology.page
    lo_nodes = topology.ids("node.k-lo")
    assert len(lo_nodes) == 8

    page.get_by_label("Loopback").uncheck()
    assert topology.ids(".filtered") == lo_nodes
    assert topology.on_node("alpha|host|1", "e.style('display')") == "none"
    page.get_by_label("Loopback").check()
    assert topology.ids(".filtered") == set()

    page.locator("#network-filter").select_option("demo-back")
    shown = topology.shown()
    assert link_id("alpha", links["vxlan"]) in shown and link_id("alpha", links["db"]) in shown
    assert link_id("beta", links["db"]) in shown  # the same network on every host
    assert link_id("alpha", links["front"]) not in shown and "alpha|ns|demo-web1" not in shown
    page.locator("#network-filter").select_option("")

    page.locator("#host-filters").get_by_label("beta").uncheck()
    assert not [n for n in topology.shown() if n.startswith("beta")]
    assert "alpha|ns|host" in topology.shown()


def test_exports_png_svg_and_the_state_as_json(topology):
    s, _ = demo_host()
    frame = s.snapshot_frame("alpha", seq=3)
    topology.send_snapshot(frame)
    page = topology.page

    def export(kind: str) -> bytes:
        with page.expect_download() as download:
            page.locator(f"[data-export='{kind}']").click()
        return Path(download.value.path()).read_bytes()

    exported = json.loads(export("json"))
    assert exported["hosts"]["alpha"]["state"] == frame["state"]
    assert exported["hosts"]["alpha"]["seq"] == 3 and exported["hosts"]["alpha"]["online"] is True
    assert export("png").startswith(b"\x89PNG\r\n\x1a\n")
    svg = export("svg").decode()
    assert "<svg" in svg and "demo-front" in svg


def test_host_status_and_reconnect_keep_the_graph_where_it_was(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=5))
    page = topology.page
    topology.server.send(
        {
            "type": "host.status",
            "host": "alpha",
            "online": False,
            "last_seen": "2025-01-02T03:04:05Z",
            "agent_version": "0.1.0",
        }
    )
    page.wait_for_function("window.switchboard.cy.getElementById('alpha').hasClass('offline')")
    assert page.locator("[data-host-status='alpha']").inner_text() == "offline"
    before = topology.positions()

    topology.server.close()
    page.wait_for_function("document.body.dataset.wsStatus === 'closed'")
    assert "Reconnecting" in page.locator("#conn-status").inner_text()
    page.wait_for_function("document.body.dataset.wsStatus === 'open'", timeout=5000)
    assert len(topology.server.sockets) == 2

    # On reconnect the server sends every snapshot again: only what changed moves or appears.
    _, eth0, _ = new_endpoint_events(s, "demo-web3", "demo-front", "198.18.1.4/24")
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    assert topology.on_node(link_id("alpha", eth0), "e.nonempty()")
    after = topology.positions()
    assert {k: after[k] for k in before} == before
    assert not page.evaluate("window.switchboard.cy.getElementById('alpha').hasClass('offline')")


def test_a_gap_in_the_delta_sequence_asks_for_a_resync(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 3, "events": []})
    assert topology.server.received == [{"type": "resync"}]


@pytest.mark.known_hosts("alpha", "beta")
def test_the_first_layout_waits_for_every_known_host(topology):
    """The server sends one snapshot per host on connect; one layout places them all, side by side."""
    s, _ = demo_host()
    # What the web app sends for a host whose agent never reported: no state at all.
    empty = {"type": "topology.snapshot", "host": "beta", "online": False, "seq": 0, "state": {}}
    topology.server.send(empty)
    topology.send_snapshot(s.snapshot_frame("alpha"))
    # the demo host's 20 nodes and its catalog service, and beta's empty box
    assert topology.js("() => window.switchboard.cy.nodes().length") == 20 + 1 + 1
    boxes = topology.js(
        "() => ['alpha', 'beta'].map((id) => window.switchboard.cy.getElementById(id).boundingBox())"
    )
    alpha, beta = boxes
    side_by_side = alpha["x2"] < beta["x1"] or beta["x2"] < alpha["x1"]
    assert side_by_side or alpha["y2"] < beta["y1"] or beta["y2"] < alpha["y1"], boxes
    assert beta["w"] < 300  # an empty host is a small box, not a node the first fit zooms onto
    extent = topology.js("() => window.switchboard.cy.extent()")
    assert extent["x1"] <= alpha["x1"] and alpha["x2"] <= extent["x2"]  # the first fit shows everything


def test_two_thousand_namespaces_fold_per_network_and_unfolded_switch_to_large_graph_mode(topology):
    big = endpoints_host(2000)
    page = topology.page
    page.evaluate("(frame) => window.switchboard.feed(frame)", big.snapshot_frame("alpha"))
    topology.js("() => window.switchboard.ready.then(() => true)")

    # Folded, a few dozen nodes are drawn: in full style (what is drawn decides, not the model).
    assert not topology.js("() => window.switchboard.largeMode")
    assert "16 networks folded" in page.locator("#graph-summary").inner_text()
    groups = topology.ids("node.group")
    assert len(groups) == 16
    labels = topology.js("() => window.switchboard.cy.$('node.group').map((n) => n.data('label'))")
    assert labels.count("125 endpoints") == 16
    assert len(topology.ids("node")) < 100  # 16 bridges, 16 groups, host lo, namespaces folded away
    assert page.locator("#group-endpoints").is_checked()

    # A folded endpoint's address lights the group it is in.
    page.locator("#search").fill("198.18.16.2")
    assert topology.ids(".match") == {"alpha|host|2|endpoints"}  # big-net.0: host link 2, after lo
    page.locator("#search").fill("")

    before = topology.positions()
    topology.click_node("alpha|host|2|endpoints")
    page.wait_for_function("window.switchboard.cy.getElementById('alpha|ns|big-n0').nonempty()")
    after = topology.positions()
    assert {k: after[k] for k in before if k != "alpha|host|2|endpoints"} == {
        k: v for k, v in before.items() if k != "alpha|host|2|endpoints"
    }
    assert len(topology.ids("node.namespace")) == 1 + 125
    assert len(topology.ids("node.group")) == 15

    # Without grouping every namespace is drawn (8000 nodes; the style stays simplified).
    page.locator("#group-endpoints").uncheck()
    topology.idle()
    assert len(topology.ids("node.namespace")) == 1 + 2000 and not topology.ids("node.group")
    page.evaluate("() => new Promise((resolve) => requestAnimationFrame(resolve))")  # and rendered
    assert topology.js("() => window.switchboard.largeMode")
    assert "large-graph mode" in page.locator("#graph-summary").inner_text()


def edge_style(topology, a: str, b: str, prop: str) -> str:
    """One computed style property of the edge joining nodes a and b."""
    return topology.js(
        "([a, b, prop]) => { const cy = window.switchboard.cy;"
        " return cy.getElementById(a).edgesWith(cy.getElementById(b)).style(prop); }",
        [a, b, prop],
    )


def link_event(link: dict, **changes) -> dict:
    return {"kind": "links", "action": "set", "key": HostState.link_key(link), "object": {**link, **changes}}


def test_a_downed_port_is_drawn_dashed_in_another_colour(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", seq=1))
    web1, port1, front = (link_id("alpha", links[role]) for role in ("web1", "port1", "front"))
    up_veth = edge_style(topology, web1, port1, "line-color")
    up_port = edge_style(topology, port1, front, "line-color")
    assert edge_style(topology, web1, port1, "line-style") == "solid"
    assert edge_style(topology, port1, front, "line-style") == "solid"

    # `ip link set <port> down`: the port is admin down, the container end loses its carrier.
    downed = [
        link_event(links["port1"], up=False, state="down"),
        link_event(links["web1"], state="lowerlayerdown"),
    ]
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 2, "events": downed})
    for a, b, up_colour in ((web1, port1, up_veth), (port1, front, up_port)):
        assert edge_style(topology, a, b, "line-style") == "dashed"
        assert edge_style(topology, a, b, "line-color") not in (up_veth, up_port, up_colour)
    assert "down" in topology.on_node(port1, "e.classes()")
    assert topology.on_node(port1, "e.style('border-style')") == "dashed"
    down_colour = edge_style(topology, web1, port1, "line-color")
    assert topology.on_node(port1, "e.style('border-color')") == down_colour
    # The other endpoint's links stay as they were.
    web2, port2 = link_id("alpha", links["web2"]), f"alpha|host|{links['web2']['peer']['index']}"
    assert edge_style(topology, web2, port2, "line-style") == "solid"
    assert edge_style(topology, web2, port2, "line-color") == up_veth

    # And back up: solid and in its own colour again.
    upped = [link_event(links["port1"]), link_event(links["web1"])]
    topology.send_delta({"type": "topology.delta", "host": "alpha", "seq": 3, "events": upped})
    assert edge_style(topology, web1, port1, "line-style") == "solid"
    assert edge_style(topology, web1, port1, "line-color") == up_veth
    assert edge_style(topology, port1, front, "line-color") == up_port


def test_the_legend_shows_every_look_the_graph_uses_down_included(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    legend = page.locator("#legend")
    assert legend.is_visible() and not legend.evaluate("(d) => d.open")  # a "Legend" line in a corner
    page.locator("#legend summary").click()
    assert page.locator("#legend-body").is_visible()
    entries = page.locator("#legend [data-legend]").all_inner_texts()
    for expected in (
        "Host",
        "Host offline",
        "Namespace",
        "Docker namespace",
        "Bridge",
        "veth",
        "VXLAN",
        "Loopback",
        "Grouped endpoints",
        "Down",
        "veth pair",
        "Bridge port",
        "Link down",
    ):
        assert expected in [entry.strip() for entry in entries], expected

    # The down line of the legend is the colour and dash of a down link on the graph.
    swatch = page.locator("#legend [data-legend='Link down'] line")
    assert swatch.get_attribute("stroke-dasharray")
    web1, port1 = link_id("alpha", links["web1"]), link_id("alpha", links["port1"])
    topology.send_delta(
        {
            "type": "topology.delta",
            "host": "alpha",
            "seq": 2,
            "events": [link_event(links["port1"], up=False, state="down")],
        }
    )
    drawn = edge_style(topology, web1, port1, "line-color").replace(" ", "")
    assert swatch.evaluate("(line) => getComputedStyle(line).stroke").replace(" ", "") == drawn
    veth = page.locator("#legend [data-legend='veth pair'] line")
    assert not veth.get_attribute("stroke-dasharray")

    # Kept open across a reload, and collapsible.
    page.reload()
    page.wait_for_function("document.body.dataset.wsStatus === 'open'")
    assert legend.evaluate("(d) => d.open")
    page.locator("#legend summary").click()
    assert page.locator("#legend-body").is_hidden()


@pytest.mark.known_hosts("alpha", "beta")
def test_filters_that_hide_everything_say_so_with_what_they_hide(topology):
    s, _ = topology.send_demo("alpha", "beta")
    page = topology.page
    summary, message = page.locator("#graph-summary"), page.locator("#filter-empty")
    assert summary.inner_text() == "2 hosts · 8 namespaces · 30 interfaces"
    assert message.is_hidden()

    page.locator("#host-filters").get_by_label("beta").uncheck()
    assert summary.inner_text() == (
        "1 of 2 hosts · 4 of 8 namespaces · 15 of 30 interfaces · the rest hidden by filters"
    )
    assert message.is_hidden()
    page.locator("#host-filters").get_by_label("alpha").uncheck()
    assert message.is_visible()
    assert "No element matches the filter" in message.inner_text()
    assert page.locator("#filter-empty-counts").inner_text() == (
        "The filters hide 2 hosts, 8 namespaces, 30 interfaces."
    )
    assert summary.inner_text().startswith("0 of 2 hosts · 0 of 8 namespaces · 0 of 30 interfaces")

    page.get_by_role("button", name="Show everything").click()
    assert message.is_hidden()
    assert summary.inner_text() == "2 hosts · 8 namespaces · 30 interfaces"
    assert topology.ids(".filtered") == set()
    assert page.locator("#host-filters").get_by_label("alpha").is_checked()

    # Every interface kind unchecked: the namespace boxes alone are no picture either.
    for kind in ("Bridges", "veth", "VXLAN", "Loopback", "Other"):
        page.locator("#kind-filters").get_by_label(kind).uncheck()
    assert message.is_visible()
    counts = page.locator("#filter-empty-counts").inner_text()
    assert counts == "The filters hide 30 interfaces."


@pytest.mark.known_hosts("alpha", "beta")
def test_an_offline_host_shows_in_the_status_and_on_the_graph_with_since_when(topology):
    s, _ = topology.send_demo("alpha", "beta")
    page = topology.page
    pill = page.locator("#conn-status")
    assert pill.inner_text() == "Connected" and "status-open" in pill.get_attribute("class")
    beta_opacity = topology.on_node("beta", "e.style('opacity')")

    topology.server.send(
        {
            "type": "host.status",
            "host": "beta",
            "online": False,
            "last_seen": "2025-01-02T03:04:05Z",
            "agent_version": "0.1.0",
        }
    )
    page.wait_for_function("window.switchboard.cy.getElementById('beta').hasClass('offline')")
    topology.idle()
    assert pill.inner_text() == "Connected · 1 of 2 hosts offline"
    assert "status-open" not in pill.get_attribute("class")
    title = pill.get_attribute("title")
    assert "beta: offline since" in title and "alpha: online" in title
    label = topology.on_node("beta", "e.data('label')")
    assert label.startswith("beta (offline since ") and "2025" in label
    assert topology.on_node("beta", "e.style('border-style')") == "dashed"
    assert float(topology.on_node("beta", "e.style('opacity')")) < float(beta_opacity)
    assert topology.on_node("alpha", "e.style('border-style')") == "solid"

    topology.server.send(
        {
            "type": "host.status",
            "host": "beta",
            "online": True,
            "last_seen": "2025-01-02T03:09:05Z",
            "agent_version": "0.1.0",
        }
    )
    page.wait_for_function("!window.switchboard.cy.getElementById('beta').hasClass('offline')")
    topology.idle()
    assert pill.inner_text() == "Connected" and "status-open" in pill.get_attribute("class")
    assert topology.on_node("beta", "e.data('label')") == "beta"


def test_a_single_offline_host_is_named_in_the_status(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha", online=False))
    assert topology.page.locator("#conn-status").inner_text() == "Connected · alpha offline"


@pytest.mark.full_page
@pytest.mark.viewport(390, 844)
def test_the_page_fits_a_390px_phone_without_sideways_scrolling(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    width = "() => document.documentElement.scrollWidth"
    assert page.locator(".site-header").is_visible()  # the real page: header, navigation, log out
    assert topology.js(width) <= 390
    page.locator("#legend summary").click()  # the legend, opened, is a key under the graph
    assert page.locator("#legend-body").is_visible()
    assert topology.js(width) <= 390

    # The details panel (facts, routes table) of an interface fits too.
    page.locator("#cy").scroll_into_view_if_needed()
    topology.click_node(link_id("alpha", links["web1"]))
    assert page.locator("#details").is_visible()
    assert topology.js(width) <= 390


def test_operations_on_hosts_are_listed_as_they_progress(topology):
    """`operation.status` frames (docs/agent-protocol.md): queued, running, then done or failed with why."""
    topology.send_demo("alpha")
    ops = topology.page.locator("#operations")
    assert ops.is_hidden()

    def status(op_id: str, state: str, **extra: str) -> None:
        topology.server.send(
            {
                "type": "operation.status",
                "operation": {"id": op_id, "host": "alpha", "kind": "apply", "status": state, **extra},
            }
        )

    status("op-1", "pending")
    item = topology.page.locator('[data-operation="op-1"]')
    item.wait_for()
    assert item.inner_text().split()[:4] == ["apply", "on", "alpha", "queued"]
    status("op-1", "running")
    topology.page.wait_for_function(
        "() => document.querySelector('[data-operation=\"op-1\"] .op-status').textContent === 'running…'"
    )
    status("op-1", "failed", error="InvalidSpec: networks.front.subnet: not a network")
    topology.page.wait_for_function("() => document.querySelector('[data-operation=\"op-1\"].op-failed')")
    assert "networks.front.subnet: not a network" in item.inner_text()
    assert item.locator("a").get_attribute("href") == "/api/v1/operations/op-1/"
    # A failed one stays until dismissed.
    item.get_by_role("button", name="Dismiss").click()
    assert ops.is_hidden()


def test_a_desired_topology_that_drifted_is_marked_on_its_elements(topology):
    """A desired topology (Networks page) that failed or drifted: haloed on the graph, named in the panel."""
    s, links = demo_host()
    links["port1"]["alias"] = "switchboard:demo:veth:node=web1:network=front"
    topology.send_snapshot(s.snapshot_frame("alpha"))
    front, port1 = link_id("alpha", links["front"]), link_id("alpha", links["port1"])
    marked = "() => window.switchboard.cy.$('.desired-problem').map((n) => n.id()).sort()"
    assert topology.js(marked) == []

    def status(state: str, message: str) -> None:
        desired = {"host": "alpha", "name": "demo", "status": state, "status_message": message}
        topology.layouts.desired = [desired]
        topology.server.send(
            {
                "type": "operation.status",
                "operation": {
                    "id": f"op-{state}",
                    "host": "alpha",
                    "kind": "plan",
                    "status": "succeeded",
                    "topology": "demo",
                },
            }
        )

    status("drifted", "- veth demo-web1-front")
    topology.page.wait_for_function(f"() => ({marked})().length === 2")
    assert topology.js(marked) == sorted([front, port1])  # the bridge and the port carry its alias
    topology.click_node(front)
    panel = topology.page.locator("#details-body")
    assert "demo: drifted — - veth demo-web1-front" in panel.inner_text()

    status("ready", "")
    topology.page.wait_for_function(f"() => ({marked})().length === 0")
