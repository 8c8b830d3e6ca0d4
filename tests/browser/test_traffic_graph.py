"""The Traffic layer of the topology page: "talks to" edges between namespaces from the `traffic`
state kind (docs/agent-protocol.md), toggled in the graph bar (off by default, remembered), updated
live from deltas without moving anything, gone when a conversation ends or the layer is off; the
Traffic table lists the live conversations and selects their edge.

The first tests drive the page from frames shaped per the protocol's `traffic` contract (the fake
server of tests/browser/conftest.py); the last one runs a real TCP conversation between two nodes
through a real agent, daphne and Chromium (see test_end_to_end.py).
"""

from __future__ import annotations

import socket
from typing import Any

from netcore import netns as ns
from tests.browser.conftest import TopologyPage
from tests.browser.test_end_to_end import (
    VIEWER,
    e2e_stack,
    log_in,
    operator_with_topology,
    page_of,
    remove_namespaces,
    run_in_browser,
)
from tests.conftest import HostNs
from tests.stack.test_services import NODES, topology

HOST = "alpha"
WEB1, WEB2, DB = (f"{HOST}|ns|{n}" for n in ("demo-web1", "demo-web2", "demo-db"))


def talk(client: str, server: str, *, port: int | None = 80, protocol: str = "tcp", **numbers: Any) -> tuple:
    """A traffic object as the agent sends it, with its key (client|server|protocol|port)."""
    address = {"demo-web2": "198.18.1.3", "demo-db": "198.18.2.2"}.get(server, "198.19.0.9")
    obj = {
        "client": client,
        "server": server,
        "server_address": address,
        "protocol": protocol,
        "port": port,
        "flows": numbers.get("flows", 1),
        "packets": numbers.get("packets", 10),
        "bytes": numbers.get("bytes", 1200),
        "seen_in": sorted({client, server} - {""}),
    }
    return f"{client}|{server}|{protocol}|{'' if port is None else port}", obj


def edge_id(key: str) -> str:
    return f"traffic:{HOST}|{key}"


def _page(topology: TopologyPage, *talks: tuple) -> int:
    """The demo host with those conversations; returns the seq of its snapshot."""
    s, _ = topology.send_demo()
    frame = s.snapshot_frame(HOST)
    frame["state"]["traffic"] = dict(talks)
    topology.server.send({**frame, "seq": 2})
    topology.page.wait_for_function("() => window.switchboard.state.alpha?.seq === 2")
    topology.idle()
    return 2


def _delta(topology: TopologyPage, seq: int, *events: tuple[str, str, dict | None]) -> None:
    body = [{"kind": "traffic", "action": action, "key": key, "object": obj} for action, key, obj in events]
    topology.send_delta({"type": "topology.delta", "host": HOST, "seq": seq, "events": body})
    topology.idle()


def _toggle(topology: TopologyPage) -> Any:
    return topology.page.get_by_role("checkbox", name="Traffic")


def test_the_toggle_draws_an_edge_per_conversation_between_the_namespaces_and_takes_them_away(
    topology: TopologyPage,
) -> None:
    web_key, web = talk("demo-web1", "demo-web2", bytes=48_000)
    seq = _page(topology, (web_key, web))
    toggle = _toggle(topology)
    assert not toggle.is_checked(), "off by default"
    assert topology.ids(".traffic") == set()
    before = topology.positions()

    toggle.check()
    topology.idle()
    assert topology.ids("edge.traffic") == {edge_id(web_key)}
    edge = topology.js(
        "(id) => { const e = window.switchboard.cy.getElementById(id);"
        " return [e.source().id(), e.target().id(), e.data('label'), e.style('line-style'),"
        " e.style('target-arrow-shape')]; }",
        edge_id(web_key),
    )
    assert edge == [WEB1, WEB2, "tcp/80", "dashed", "triangle"]

    # live: more bytes make it wider; a new conversation adds an edge; nothing moves
    width = topology.on_node(edge_id(web_key), "e.numericStyle('width')")
    db_key, db = talk("demo-web2", "demo-db", port=5432)
    _delta(topology, seq + 1, ("set", web_key, {**web, "bytes": 48_000_000, "flows": 2}), ("set", db_key, db))
    assert topology.on_node(edge_id(web_key), "e.numericStyle('width')") > width
    assert topology.ids("edge.traffic") == {edge_id(web_key), edge_id(db_key)}
    assert topology.on_node(edge_id(db_key), "[e.source().id(), e.target().id()]") == [WEB2, DB]
    assert {k: v for k, v in topology.positions().items() if k in before} == before

    # the conversation ends: its edge goes, the other stays
    _delta(topology, seq + 2, ("del", web_key, None))
    assert topology.ids("edge.traffic") == {edge_id(db_key)}

    toggle.uncheck()
    topology.idle()
    assert topology.ids(".traffic, .outside") == set()

    # the choice is remembered
    toggle.check()
    topology.reload()
    _page(topology, (db_key, db))
    assert _toggle(topology).is_checked()
    assert topology.ids("edge.traffic") == {edge_id(db_key)}


def test_a_server_outside_the_host_is_an_outside_node_and_an_edge_shows_its_numbers(
    topology: TopologyPage,
) -> None:
    out_key, out = talk("demo-web1", "", port=None, protocol="icmp", packets=4, bytes=336)
    _page(topology, (out_key, out))
    _toggle(topology).check()
    topology.idle()
    outside = f"{HOST}|outside"
    assert topology.on_node(edge_id(out_key), "[e.source().id(), e.target().id(), e.data('label')]") == [
        WEB1,
        outside,
        "icmp",
    ]
    assert topology.on_node(outside, "e.data('label')") == "outside the host"

    topology.js("(id) => { window.switchboard.cy.getElementById(id).emit('tap'); }", edge_id(out_key))
    details = topology.page.locator("#details")
    details.wait_for()
    assert topology.page.locator("#details-title").text_content() == "demo-web1 → 198.19.0.9 icmp"
    text = details.text_content()
    assert "outside the host: 198.19.0.9" in text and "336 B" in text and "Packets4" in text.replace(" ", "")


def test_the_traffic_table_lists_live_conversations_and_a_row_selects_its_edge(
    topology: TopologyPage,
) -> None:
    page = topology.page
    seq = _page(topology)
    page.get_by_role("tab", name="Traffic").click()
    empty = page.locator("#traffic-empty")
    empty.wait_for()
    assert "once namespaces talk" in empty.text_content() and "every 2 s" in empty.text_content()

    web_key, web = talk("demo-web1", "demo-web2", flows=3, packets=70, bytes=9100)
    _delta(topology, seq + 1, ("set", web_key, web))
    page.wait_for_function("() => document.querySelectorAll('#table-body tr').length === 1")
    assert empty.is_hidden()
    cells = page.locator("#table-body tr td").all_text_contents()
    assert cells == [HOST, "demo-web1", "demo-web2", "198.18.1.3", "tcp/80", "3", "70", "9100"]

    assert not _toggle(topology).is_checked()
    page.locator("#table-body tr").first.click()  # shows it on the graph: the layer comes on
    page.wait_for_function(
        "(id) => window.switchboard.cy.getElementById(id).selected()", arg=edge_id(web_key)
    )
    assert _toggle(topology).is_checked()
    assert page.locator("#details-title").text_content() == "demo-web1 → demo-web2 tcp/80"

    page.get_by_role("tab", name="Traffic").click()
    _delta(topology, seq + 2, ("del", web_key, None))
    page.wait_for_function("() => document.querySelectorAll('#table-body tr').length === 0")
    empty.wait_for()


class Conversation:
    """One TCP connection from node a to node b:port, held open until close(): a listener in b's
    namespace and a client socket in a's (sockets made in a namespace stay in it)."""

    def __init__(self, a_path: str, b_path: str, port: int) -> None:
        def listener() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((NODES["b"], port))
            s.listen(1)
            return s

        self.listener = ns.netns_run(path=b_path, fn=listener)
        self.client = ns.netns_run(path=a_path, fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self.client.settimeout(5)
        self.client.connect((NODES["b"], port))
        self.listener.settimeout(5)
        self.server, _ = self.listener.accept()
        self.client.sendall(b"hello b" * 100)
        self.server.recv(4096)

    def close(self) -> None:
        for s in (self.client, self.server, self.listener):
            s.close()


def test_a_real_tcp_conversation_shows_as_an_edge_while_it_lasts_and_stays_in_the_history(
    host_ns: HostNs, topo: str
) -> None:
    with e2e_stack(host_ns) as stack:
        web, agent = operator_with_topology(stack, user="traffic-op", host=HOST, text=topology(topo))
        base = f"http://127.0.0.1:{web.port}"
        a_ns, b_ns = f"{HOST}|ns|{topo}-a", f"{HOST}|ns|{topo}-b"
        conversations: list[Conversation] = []
        between = (
            "([a, b]) => window.switchboard.cy.edges('.traffic')"
            ".some((e) => e.source().id() === a && e.target().id() === b && e.data('label') === 'tcp/8080')"
        )

        def steps(browser: Any) -> None:
            from playwright.sync_api import expect

            with page_of(browser, base) as (page, errors):
                log_in(page, VIEWER, "/topology/")
                page.wait_for_function(
                    "(ids) => ids.every((id) => window.switchboard?.cy.getElementById(id).nonempty())",
                    arg=[a_ns, b_ns],
                )
                page.evaluate("() => window.switchboard.ready.then(() => window.switchboard.whenIdle())")
                toggle = page.get_by_role("checkbox", name="Traffic")
                expect(toggle).not_to_be_checked()
                toggle.check()

                conversations.append(
                    Conversation(
                        stack.netns_path(agent, f"{topo}-a"), stack.netns_path(agent, f"{topo}-b"), 8080
                    )
                )
                page.wait_for_function(between, arg=[a_ns, b_ns])  # read by the agent, live through deltas

                page.get_by_role("tab", name="Traffic").click()
                row = page.locator("#table-body tr", has_text=f"{topo}-a")
                expect(row).to_have_count(1)
                cells = row.locator("td").all_text_contents()
                assert cells[:5] == [HOST, f"{topo}-a", f"{topo}-b", NODES["b"], "tcp/8080"], cells
                assert int(cells[5]) >= 1 and int(cells[7]) > 700, (
                    cells
                )  # a flow; the 700 bytes sent and more

                conversations.pop().close()  # the conversation ends: its edge goes (TIME_WAIT is over)
                page.wait_for_function(f"(ab) => !({between})(ab)", arg=[a_ns, b_ns])
                expect(row).to_have_count(0)
                assert not errors, f"uncaught errors in the page: {errors}"

        try:
            run_in_browser(steps, web=web, agent=agent)
        finally:
            for conversation in conversations:
                conversation.close()
            remove_namespaces(agent, topo)

        # the web app kept it after the kernel let it go
        status, body = web.api("GET", f"/api/v1/traffic/?host={HOST}&namespace={topo}-b&state=ended")
        assert status == 200, body
        (ended,) = [e for e in body["results"] if e["client"] == f"{topo}-a" and e["port"] == 8080]
        assert (ended["server"], ended["protocol"], ended["live"]) == (f"{topo}-b", "tcp", False)
        assert ended["bytes_seen"] > 700 and ended["peak_flows"] >= 1
        assert web.proc.alive
