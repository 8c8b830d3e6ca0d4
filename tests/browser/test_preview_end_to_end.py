"""The connectivity preview beside a plan on the Networks page, against the real daphne and agent:
before the first apply every pair is gained; after it, an edit that moves a node's address keeps
who reaches whom and names the node it interrupts."""

from __future__ import annotations

from typing import Any

from tests.browser.test_end_to_end import (
    HOST,
    PASSWORD,
    log_in,
    page_of,
    remove_namespaces,
    run_in_browser,
    stack,  # noqa: F401 (a fixture)
    wait_for_agent,
)
from tests.conftest import RUN
from tests.stack.harness import Stack

OPERATOR = "pv-operator"
TOPOLOGY = f"p{RUN}"
TOPOLOGY_FILE = f"""name: {TOPOLOGY}
networks:
  front: {{subnet: 198.18.62.0/24}}
nodes:
  web1: {{networks: {{front: {{address: 198.18.62.10}}}}}}
  web2: {{networks: {{front: {{address: 198.18.62.11}}}}}}
"""


def test_the_plan_shows_who_will_reach_whom_and_what_an_edit_interrupts(stack: Stack) -> None:  # noqa: F811
    made = stack.manage("adduser", OPERATOR, "--role", "operator", f"--password={PASSWORD}")
    token = made.strip().splitlines()[-1]
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(HOST))
    wait_for_agent(agent)
    base = f"http://127.0.0.1:{web.port}"
    status, created = web.http(
        "POST", "/api/v1/topologies/", token=token, body={"host": HOST, "topology": TOPOLOGY_FILE}
    )
    assert status == 201, created

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, base) as (page, errors):
            page.on("dialog", lambda dialog: dialog.accept())
            log_in(page, OPERATOR, "/networks/")
            row = page.locator(f'[data-topology="{HOST}/{TOPOLOGY}"]')
            preview = page.locator("#plan-preview")

            row.get_by_role("button", name="Plan").click()
            expect(page.locator("#plan-lines")).to_contain_text(f"+ namespace {TOPOLOGY}-web1")
            expect(preview.locator("[data-preview=status]")).to_have_text(
                "Nothing applied yet; 2 pairs after applying"
                " (taking the host not to route between networks: netcore never turns IP forwarding on)."
            )
            expect(preview.locator("[data-preview=lines] .plan-add")).to_have_text(
                [
                    "+ web1 → web2 198.18.62.11 (front) becomes reachable (L2, same network)",
                    "+ web2 → web1 198.18.62.10 (front) becomes reachable (L2, same network)",
                ]
            )
            page.get_by_role("button", name="Apply these changes").click()
            expect(page.locator("#operations .op-succeeded", has_text="apply on")).to_be_visible()

            moved = TOPOLOGY_FILE.replace("198.18.62.11", "198.18.62.12")
            status, body = web.http(
                "PUT", f"/api/v1/topologies/{TOPOLOGY}/", token=token, body={"topology": moved, "version": 1}
            )
            assert status == 200, body
            row.get_by_role("button", name="Plan").click()
            expect(page.locator("#plan-lines")).to_contain_text("198.18.62.12")
            expect(preview.locator("[data-preview=status]")).to_have_text(
                "2 pairs of nodes reachable now; 2 pairs after applying"
                " (taking the host not to route between networks: netcore never turns IP forwarding on)."
            )
            expect(preview.locator("[data-preview=lines]")).to_have_text(
                "No change in who reaches whom.\n"
                "! web2: live connections break (address 198.18.62.11 → 198.18.62.12 on front)\n"
            )

            row.get_by_role("button", name="Destroy").click()
            expect(page.locator("#operations .op-succeeded", has_text="destroy on")).to_be_visible()
            assert not errors, f"uncaught errors in the page: {errors}"

    try:
        run_in_browser(steps, web=web, agent=agent)
    finally:
        remove_namespaces(agent, TOPOLOGY)
    assert agent.alive and web.proc.alive
