"""The Services page end to end: an operator creates a service and registers a node from the browser,
a refusal lands under its field, the instance's health comes live from the agent's real checks (a
listener stopped by the test turns it critical without a reload), the topology graph draws the
service beside its network in its health's colour, the filters narrow the list, and the instance is
deregistered; a service a topology file declares is shown as the file's, to be changed there. Real
agent, daphne and Chromium, in the test's namespace."""

from __future__ import annotations

from typing import Any

from tests.browser.test_end_to_end import e2e_stack, log_in, operator_with_topology, page_of, run_in_browser
from tests.conftest import HostNs
from tests.stack.test_services import NODES, Server, topology

HOST = "alpha"
OPERATOR = "svc-op"


def test_an_operator_builds_a_service_and_watches_its_health_live(host_ns: HostNs, topo: str) -> None:
    with e2e_stack(host_ns) as stack:
        web, agent = operator_with_topology(stack, user=OPERATOR, host=HOST, text=topology(topo))
        server = Server.start("a", stack.netns_path(agent, f"{topo}-a"), NODES["a"], 8080)
        base = f"http://127.0.0.1:{web.port}"

        def steps(browser: Any) -> None:
            from playwright.sync_api import expect

            with page_of(browser, base) as (page, errors):
                page.on("dialog", lambda dialog: dialog.accept())
                log_in(page, OPERATOR, "/services/")
                expect(page.locator("#services-empty")).to_contain_text("No services yet")

                page.get_by_role("button", name="New service").click()
                form = page.get_by_role("dialog", name="New service")
                form.get_by_label("Name", exact=True).fill("web")
                form.get_by_label("Network").select_option(f"{HOST}|{topo}/lan")
                form.get_by_label("Service address (VIP)").fill("198.18.44.1")
                form.get_by_label("Health check").select_option("tcp")
                form.get_by_label("Every (s)").fill("0.5")
                form.get_by_label("Timeout (s)").fill("0.3")
                form.get_by_role("button", name="Create service").click()
                vip_error = page.locator('.form-dialog [data-field="vip"] .field-error')
                expect(vip_error).to_contain_text("gateway")  # the gateway's address: refused by name
                form.get_by_label("Service address (VIP)").fill("198.18.44.100")
                form.get_by_role("button", name="Create service").click()
                row = page.locator('[data-service="web"]')
                expect(row).to_contain_text("web.lan.sb.internal")
                expect(row).to_contain_text("198.18.44.100:80/tcp")
                expect(page.locator("#instances-empty")).to_be_visible()

                page.get_by_role("button", name="Register instance").click()
                form = page.get_by_role("dialog", name="Register an instance of web")
                form.get_by_label("Node").fill("a")
                form.get_by_label("Port").fill("8080")
                form.get_by_role("button", name="Register", exact=True).click()
                instance = page.locator('[data-instance="a"]')
                expect(instance).to_contain_text(f"{NODES['a']}:8080")
                expect(instance.locator(".health")).to_have_text("passing")
                expect(instance).to_contain_text("TCP connect to")
                expect(row.locator(".health-passing")).to_have_text("1")

                # the check: node c asks the names of the network's DNS, as its resolver does
                page.get_by_role("button", name="Check DNS from a node").click()
                form = page.get_by_role("dialog", name="Check web’s names from a node")
                form.get_by_label("From node").fill("c")
                form.get_by_role("button", name="Check", exact=True).click()
                expect(page.locator("#check-title")).to_contain_text("From node c")
                a_row = page.locator('[data-question="web.lan.sb.internal A"]')
                expect(a_row).to_contain_text(f"NOERROR: {NODES['a']}")
                expect(a_row.locator(".health")).to_have_text("yes")

                server.stop()  # the agent's check fails: critical on the page, no reload
                expect(instance.locator(".health")).to_have_text("critical")
                expect(row.locator(".health-critical")).to_have_text("1")
                expect(instance.locator("svg.history rect.history-critical").first).to_be_attached()

                # the graph's service layer: the service beside its network, critical, its edge to a's box
                page.goto("/topology/")
                drawn = (
                    "([id, ns]) => { const cy = window.switchboard?.cy; const n = cy?.getElementById(id);"
                    " return n?.nonempty() && n.hasClass('svc-critical')"
                    " && n.data('label').includes('VIP 198.18.44.100')"
                    " && n.connectedEdges('.service-edge').some((e) => e.target().id() === ns); }"
                )
                page.wait_for_function(drawn, arg=[f"{HOST}|svc|lan/web", f"{HOST}|ns|{topo}-a"])
                page.goto("/services/#web")
                page.get_by_label("Health", exact=True).select_option("passing")
                expect(page.locator("#services-empty")).to_contain_text("No service matches")
                page.get_by_label("Health", exact=True).select_option("critical")
                expect(row).to_be_visible()

                instance.get_by_role("button", name="Deregister").click()
                expect(page.locator('[data-instance="a"]')).to_have_count(0)

                # a service the topology's file declares: the page sends its changes to the file
                status, body = web.api("GET", f"/api/v1/topologies/{topo}/?host={HOST}")
                assert status == 200, body
                declared = topology(topo) + "services:\n  api: {network: lan, port: 81, instances: [b]}\n"
                update = {"topology": declared, "version": body["version"]}
                status, body = web.api("PUT", f"/api/v1/topologies/{topo}/?host={HOST}", update)
                assert status == 200, body
                page.get_by_label("Health", exact=True).select_option("")
                api_row = page.locator('[data-service="api"]')
                expect(api_row.locator("td").last).to_have_text("topology")  # live: no reload
                api_row.get_by_role("link", name="api").click()
                expect(page.locator("#service-file")).to_contain_text(f"topology {topo}’s file")
                expect(page.locator("#service-delete")).to_be_hidden()
                expect(page.locator('[data-instance="b"]')).to_contain_text("in the file")
                expect(
                    page.locator('[data-instance="b"]').get_by_role("button", name="Deregister")
                ).to_have_count(0)
                assert not errors, f"uncaught errors in the page: {errors}"

        try:
            run_in_browser(steps, web=web, agent=agent)
        finally:
            server.stop()
        assert agent.alive and web.proc.alive
