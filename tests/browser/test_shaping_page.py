"""Shaping a link from the topology page, end to end: an operator opens node a's interface, asks for a
rate limit in the form (a bad rate is refused under its field), and the real agent's tbf comes back
through the kernel's qdisc event: the link says it, and its veth edge is drawn shaped with the rate
written on it; delay where the kernel has no netem fails with that reason beside the link; removing
the shaping takes it all off again. A viewer is offered none of it. Real agent, daphne and Chromium,
in the test's namespace (see test_end_to_end.py)."""

from __future__ import annotations

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
from tests.stack.test_services import topology

HOST = "alpha"
OPERATOR = "shaping-op"
VETH_OF = """(id) => window.switchboard.cy.getElementById(id).connectedEdges('.veth')"""


def test_an_operator_shapes_a_link_and_sees_it_on_the_graph(host_ns: HostNs, topo: str) -> None:
    with e2e_stack(host_ns) as stack:
        web, agent = operator_with_topology(stack, user=OPERATOR, host=HOST, text=topology(topo))
        base = f"http://127.0.0.1:{web.port}"
        status, body = web.api("GET", f"/api/v1/topology/?host={HOST}")
        assert status == 200, body
        eth = next(
            x
            for x in body["hosts"][0]["snapshot"]["links"]
            if x["netns"] == f"{topo}-a" and x["kind"] == "veth"
        )
        link_id = f"{HOST}|{topo}-a|{eth['index']}"

        def steps(browser: Any) -> None:
            from playwright.sync_api import expect

            with page_of(browser, base) as (page, errors):
                log_in(page, OPERATOR, "/topology/")
                page.wait_for_function(
                    "(id) => window.switchboard?.cy.getElementById(id).nonempty()", arg=link_id
                )
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).emit('tap'); }", link_id)
                details = page.locator("#details")
                expect(details.get_by_text("Not shaped")).to_be_visible()

                details.get_by_role("button", name="Shape this link…").click()
                dialog = page.get_by_role("dialog")
                rate = dialog.get_by_label("Rate limit")
                expect(rate).to_be_focused()
                rate.fill("fast")
                rate.press("Enter")
                expect(dialog.locator("[data-field='rate'] .field-error")).to_contain_text("not a rate")
                rate.fill("10mbit")
                dialog.get_by_label("Burst").fill("32kb")
                rate.press("Enter")
                expect(dialog).to_have_count(0)
                expect(details.locator(".shaping-note")).to_contain_text("Done")
                expect(details).to_contain_text("⏱ tbf 10 Mbit/s")
                page.wait_for_function(
                    f"(id) => ({VETH_OF})(id).some((e) => e.hasClass('shaped'))", arg=link_id
                )
                label = page.evaluate(f"(id) => ({VETH_OF})(id).map((e) => e.data('label'))[0]", link_id)
                assert label == f"{eth['name']} ⏱ tbf 10 Mbit/s", label
                assert page.evaluate(
                    "(id) => window.switchboard.cy.getElementById(id).hasClass('shaped')", link_id
                )

                # Delay needs netem, which this kernel lacks (checked by the kernel tests): said beside
                # the link, the rate limit left as it was.
                details.get_by_role("button", name="Change shaping…").click()
                dialog = page.get_by_role("dialog")
                expect(dialog.get_by_label("Rate limit")).to_have_value("10000000")
                dialog.get_by_label("Rate limit").fill("")
                dialog.get_by_label("Burst").fill("")
                dialog.get_by_label("Delay").fill("20ms")
                dialog.get_by_label("Delay").press("Enter")
                note = details.locator(".shaping-note")
                expect(note).to_contain_text("Failed: ")
                expect(note).to_contain_text("netem")
                expect(details).to_contain_text("⏱ tbf 10 Mbit/s")

                details.get_by_role("button", name="Remove shaping").click()
                expect(details.locator(".shaping-note")).to_contain_text("Done")
                expect(details.get_by_text("Not shaped")).to_be_visible()
                page.wait_for_function(
                    f"(id) => !({VETH_OF})(id).some((e) => e.hasClass('shaped'))", arg=link_id
                )
                assert not errors, errors

            with page_of(browser, base) as (page, errors):
                log_in(page, VIEWER, "/topology/")
                page.wait_for_function(
                    "(id) => window.switchboard?.cy.getElementById(id).nonempty()", arg=link_id
                )
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).emit('tap'); }", link_id)
                details = page.locator("#details")
                expect(details).to_be_visible()
                expect(details.get_by_role("button", name="Shape this link…")).to_have_count(0)
                assert not errors, errors

        try:
            run_in_browser(steps, web=web, agent=agent)
        finally:
            remove_namespaces(agent, topo)
