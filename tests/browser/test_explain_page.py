"""Why can't A reach B, on the topology page, end to end: an operator asks from the graph's context menu
why node a cannot reach b:8080 and the real agent answers by walking its live kernel state and probing
(UNREACHABLE: nothing listens there; the cause, its advice and the hops are shown, b's namespace lit as
where the walk stopped); with a listener started on b the same question is REACHABLE and the whole path
is lit, hop by hop, edges included, each hop marked as seen by the probe; a hop clicked selects its
element; Clear takes the light off; a destination naming no node is refused under its field; with the
agent gone the answer says so and where to look; a viewer is offered none of it. Real agent, daphne and
Chromium, in the test's namespace (see test_end_to_end.py)."""

from __future__ import annotations

import re
from typing import Any

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
from tests.stack.test_services import NODES, Server, topology

HOST = "alpha"
OPERATOR = "explain-op"

LIT = "(id) => window.switchboard.cy.getElementById(id).hasClass('explain-hop')"
DROPPED = "(id) => window.switchboard.cy.getElementById(id).hasClass('explain-drop')"


def test_an_operator_asks_why_a_cannot_reach_b_and_sees_the_path_lit(host_ns: HostNs, topo: str) -> None:
    with e2e_stack(host_ns) as stack:
        web, agent = operator_with_topology(stack, user=OPERATOR, host=HOST, text=topology(topo))
        base = f"http://127.0.0.1:{web.port}"
        a_ns, b_ns = f"{HOST}|ns|{topo}-a", f"{HOST}|ns|{topo}-b"
        servers: list[Server] = []

        def steps(browser: Any) -> None:
            from playwright.sync_api import expect

            with page_of(browser, base) as (page, errors):
                log_in(page, OPERATOR, "/topology/")
                page.wait_for_function(
                    "(ids) => ids.every((id) => window.switchboard?.cy.getElementById(id).nonempty())",
                    arg=[a_ns, b_ns],
                )
                # laid out and fitted (a view that moves closes the graph's menu)
                page.evaluate("() => window.switchboard.ready.then(() => window.switchboard.whenIdle())")
                panel = page.locator("#explain")
                expect(panel).to_be_hidden()

                # The graph's menu on a's namespace (the keyboard's way: selected, then Shift+F10).
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).select(); }", a_ns)
                page.keyboard.press("Shift+F10")
                menu = page.get_by_role("menu")
                expect(menu.get_by_role("menuitem").first).to_have_text("Explain from here")
                menu.get_by_role("menuitem", name="Explain from here").press("Enter")
                expect(panel).to_be_visible()
                expect(panel.get_by_label("Host")).to_have_value(HOST)  # the only host: chosen
                expect(panel.get_by_label("Source")).to_have_value(f"{topo}-a")
                destination = panel.get_by_label("Destination")
                expect(destination).to_be_focused()  # what comes next
                options = panel.get_by_label("Protocol").locator("option")
                assert options.evaluate_all("(os) => os.map((o) => o.value)") == ["", "tcp", "udp", "icmp"]

                # Nothing listens on b:8080: UNREACHABLE, why, and what to do; b is where it stops.
                destination.fill(f"{topo}/b:8080")
                destination.press("Enter")
                verdict = page.locator("#explain-verdict")
                expect(verdict).to_have_text("UNREACHABLE")
                expect(verdict).to_have_class("explain-badge result-UNREACHABLE")
                cause = panel.locator(".explain-cause")
                expect(cause).to_contain_text("NOTHING_LISTENING")
                expect(cause.locator(".explain-advice")).to_contain_text("start the service")
                last = panel.locator(".explain-hops .hop").last
                expect(last).to_contain_text("drop · NOTHING_LISTENING")
                expect(panel.locator("[data-probe='refused']")).to_contain_text("refused")
                page.wait_for_function(DROPPED, arg=b_ns)
                page.wait_for_function(LIT, arg=a_ns)

                # A listener on b: the same question is REACHABLE, every hop listed and lit.
                servers.append(Server.start("b", stack.netns_path(agent, f"{topo}-b"), NODES["b"], 8080))
                panel.get_by_role("button", name="Explain", exact=True).click()
                expect(verdict).to_have_text("REACHABLE")
                expect(verdict).to_have_class("explain-badge result-REACHABLE")
                hops = panel.locator(".explain-hops .hop")
                expect(hops.first).to_contain_text(f"{topo}-a")
                expect(hops.last).to_contain_text(f"a socket listens on tcp/8080 on {NODES['b']}")
                expect(hops.last.locator(".verdict")).to_have_text("deliver")
                expect(panel.locator("[data-probe='answered']")).to_contain_text("3")
                # watched at each hop: a's veth, both bridge ports and b's eth0 saw it, and nothing missed it
                facts = panel.locator("[data-probe='answered']")
                expect(facts).to_contain_text("seen at every watched interface")
                expect(hops.locator("[data-seen='missing']")).to_have_count(0)
                seen = hops.locator("[data-seen='seen']")
                expect(seen).to_have_count(4)
                expect(seen.first).to_have_text("✓")
                title = re.compile(r"Seen by the probe on eth0: \d+ packets out")
                expect(seen.first).to_have_attribute("title", title)
                kinds = hops.evaluate_all("(items) => items.map((li) => li.dataset.kind)")
                assert kinds[0] == "route" and kinds[-1] == "deliver" and "veth" in kinds, kinds
                page.wait_for_function(f"(id) => ({LIT})(id) && !({DROPPED})(id)", arg=b_ns)
                lit = page.evaluate(
                    "() => window.switchboard.cy.$('.explain-hop').map((e) => [e.id(), e.isEdge()])"
                )
                edges = [element for element, is_edge in lit if is_edge]
                nodes = [element for element, is_edge in lit if not is_edge]
                assert a_ns in nodes and b_ns in nodes, lit
                # veth pairs and bridge ports on the way: a's pair, its port, b's port, b's pair
                assert len(edges) == 4, lit
                bridge = page.evaluate(
                    "() => window.switchboard.cy.$('.explain-hop.k-bridge').map((e) => e.id())"
                )
                assert len(bridge) == 1, bridge
                assert page.evaluate("() => window.switchboard.cy.$('.explain-drop').length") == 0

                # A hop clicked shows its element: the bridge's FDB decision selects the bridge.
                panel.locator(".explain-hops .hop[data-kind='fdb'] button").click()
                page.wait_for_function(
                    "(id) => window.switchboard.cy.getElementById(id).selected()", arg=bridge[0]
                )
                expect(page.locator("#details")).to_be_visible()

                # Clear: nothing lit any more.
                panel.get_by_role("button", name="Clear").click()
                page.wait_for_function("() => window.switchboard.cy.$('.explain-hop, .explain-drop').empty()")
                expect(verdict).to_have_count(0)

                # The details panel of b's namespace fills the destination (the port asked about kept);
                # a node that does not exist is refused under the destination field.
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).emit('tap'); }", b_ns)
                page.locator("#details").get_by_role("button", name="Explain to here").click()
                expect(destination).to_have_value(f"{topo}-b:8080")
                destination.fill(f"{topo}/nope:8080")
                destination.press("Enter")
                error = panel.locator("#explain-destination-error")
                expect(error).to_contain_text("nope")
                expect(destination).to_have_attribute("aria-invalid", "true")
                expect(destination).to_be_focused()
                expect(verdict).to_have_count(0)

                # Esc closes the panel, and its toolbar button opens it again.
                destination.press("Escape")
                expect(panel).to_be_hidden()
                page.get_by_role("button", name="Explain path…").click()
                expect(panel).to_be_visible()

                # The host's agent gone: the answer says so, and where to see how to start it.
                destination.fill(f"{topo}/b:8080")
                for server in servers:
                    server.stop()  # a listening socket would keep b's namespace alive
                agent.stop()
                expect(page.locator("#conn-status")).to_contain_text("offline")
                destination.press("Enter")
                callout = panel.locator("#explain-errors")
                expect(callout).to_contain_text("no agent connected")
                expect(callout.get_by_role("link", name="Hosts page")).to_be_visible()
                expect(callout).to_be_focused()
                assert not errors, f"uncaught errors in the page: {errors}"

            # A viewer is offered none of it: no button, no panel, no menu, no details action.
            with page_of(browser, base) as (page, errors):
                log_in(page, VIEWER, "/topology/")
                page.wait_for_function(
                    "(id) => window.switchboard?.cy.getElementById(id).nonempty()", arg=b_ns
                )
                expect(page.locator("#btn-explain, #explain")).to_have_count(0)
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).emit('tap'); }", b_ns)
                expect(page.locator("#details-title")).to_have_text(f"{topo}-b")
                expect(page.locator("#details").get_by_role("button", name="Explain to here")).to_have_count(
                    0
                )
                page.keyboard.press("Shift+F10")
                expect(page.locator("#graph-menu")).to_be_hidden()
                assert not errors, f"uncaught errors in the page: {errors}"

        try:
            run_in_browser(steps, web=web, agent=agent)
        finally:
            for server in servers:
                server.stop()
            remove_namespaces(agent, topo)  # when the agent still runs (else they went with it)
        assert web.proc.alive
