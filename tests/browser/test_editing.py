"""Building and editing networks in the browser, against the real daphne and agent (one stack for
the module): the forms of the Networks page, their errors, the YAML editor, the graph's context
menu, and what a viewer is not offered. The stack runs as in test_end_to_end.py: daphne and the
agent in a throwaway namespace, Chromium started on a thread in it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from netcore import names
from tests.browser.test_end_to_end import (
    HOST,
    PASSWORD,
    VIEWER,
    addresses_settled,
    e2e_stack,
    in_agent_mounts,
    log_in,
    page_of,
    run_in_browser,
    tcp_echo,
    wait_for_agent,
)
from tests.conftest import RUN, host_namespace
from tests.stack.harness import Proc, Stack, Web

OPERATOR = "edit-operator"
TOPOLOGIES = "/api/v1/topologies/"


@dataclass
class Running:
    stack: Stack
    web: Web
    agent: Proc
    operator_token: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The REST API as the operator."""
        return self.web.http(method, path, token=self.operator_token, body=body)

    def create(self, document: str) -> dict[str, Any]:
        status, body = self.api("POST", TOPOLOGIES, {"host": HOST, "topology": document})
        assert status == 201, body
        return body

    def detail(self, name: str) -> dict[str, Any]:
        status, body = self.api("GET", f"{TOPOLOGIES}{name}/")
        assert status == 200, body
        return body

    def apply(self, name: str) -> None:
        """Apply a topology through the API and wait until the agent finished it."""
        status, body = self.api("POST", f"{TOPOLOGIES}{name}/apply/", {})
        assert status == 202, body
        deadline = time.monotonic() + 30
        while True:
            _, operation = self.api("GET", f"/api/v1/operations/{body['operation']}/")
            if operation["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"apply of {name} still {operation['status']}"
            time.sleep(0.1)
        assert operation["status"] == "succeeded", operation
        addresses_settled(self.stack.ns)  # else Chromium may drop the page's socket (ERR_NETWORK_CHANGED)

    def namespaces(self) -> set[str]:
        return set(in_agent_mounts(self.agent, "ip netns list | cut -d' ' -f1").split())

    def steps(self, steps: Any) -> None:
        run_in_browser(steps, web=self.web, agent=self.agent)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """One daphne and one agent for every test here, an operator and a viewer with passwords.

    What the tests apply lives in the agent's private /run and the module's namespace: it goes
    with them when the stack stops.
    """
    with host_namespace() as ns, e2e_stack(ns) as stack:
        made = stack.manage("adduser", OPERATOR, "--role", "operator", f"--password={PASSWORD}")
        web = stack.start_web()
        agent = stack.start_agent(web, token=stack.host_token(HOST))
        wait_for_agent(agent)
        yield Running(stack, web, agent, made.strip().splitlines()[-1])


def test_an_operator_builds_a_network_with_the_forms_and_traffic_crosses_it(running: Running) -> None:
    """An empty topology, a network and two nodes added through the forms (a mistake first, shown
    under its field with the focus there), each edit followed by its plan; applied, TCP crosses."""
    name = f"a{RUN}"
    web1, web2 = "198.18.63.10", "198.18.63.11"
    running.create(f"name: {name}\n")

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            log_in(page, OPERATOR, "/networks/")
            page.locator(f'[data-topology="{HOST}/{name}"] td').first.click()  # the row opens it
            expect(page.locator("#detail-title")).to_have_text(f"{name} on {HOST}")
            expect(page.locator("#detail-networks-empty")).to_have_text(
                "No networks yet — add one, then add nodes to it."
            )
            expect(page.locator("#detail-nodes-empty")).to_contain_text("add a network first")
            # hidden means hidden, whatever display a class gives (a .button is inline-flex): the
            # plan's Apply button must not show, nor be clicked, before there is a plan to apply
            display = "(selector) => getComputedStyle(document.querySelector(selector)).display"
            assert page.evaluate(display, "#plan-apply") == "none"

            page.get_by_role("button", name="Add network").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
            dialog.get_by_label("Name", exact=True).fill("front")
            dialog.get_by_label("Subnet").fill("198.18.63.0/33")
            dialog.get_by_label("Subnet").press("Enter")
            subnet = dialog.get_by_label("Subnet")
            expect(subnet).to_be_focused()
            expect(subnet).to_have_attribute("aria-invalid", "true")
            expect(dialog.locator('[data-field="subnet"] .field-error')).to_contain_text("198.18.63.0/33")
            expect(dialog.get_by_label("Name", exact=True)).to_have_value("front")  # nothing lost
            subnet.fill("198.18.63.0/24")
            subnet.press("Enter")
            expect(dialog).to_have_count(0)
            expect(page.locator('#detail-networks [data-network="front"]')).to_contain_text("198.18.63.0/24")
            expect(page.locator("#plan-lines")).to_contain_text(f"+ bridge {name}-front")  # its plan, unasked

            for node, address in (("web1", web1), ("web2", web2)):
                page.get_by_role("button", name="Add node").click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_label("Name", exact=True).fill(node)
                expect(dialog.get_by_label("On network front")).to_be_checked()  # the only network
                dialog.get_by_label("Address on front (optional)").fill(address)
                dialog.get_by_role("button", name="Add node").click()
                expect(dialog).to_have_count(0)
                expect(page.locator(f'#detail-nodes [data-node="{node}"]')).to_contain_text(address)
            expect(page.locator("#plan-lines")).to_contain_text(f"+ namespace {name}-web2")

            # Escape closes a form unsubmitted, the focus back where it was.
            add_node = page.get_by_role("button", name="Add node")
            add_node.click()
            expect(page.get_by_role("dialog").get_by_label("Name", exact=True)).to_be_focused()
            page.keyboard.press("Escape")
            expect(page.get_by_role("dialog")).to_have_count(0)
            expect(add_node).to_be_focused()

            page.get_by_role("button", name="Apply these changes").click()
            expect(page.locator("#operations .op-succeeded", has_text="apply on")).to_be_visible()
            expect(page.locator("#detail-status")).to_have_text("ready")
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(steps)
    assert in_agent_mounts(running.agent, tcp_echo(name, web1)).strip() == "hello web1"


def test_a_stale_version_is_said_and_submitting_again_saves(running: Running) -> None:
    name = f"b{RUN}"
    running.create(f"name: {name}\nnetworks:\n  front: {{subnet: 198.18.64.0/24}}\n")

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            log_in(page, OPERATOR, f"/networks/#{HOST}/{name}")
            expect(page.locator("#detail-title")).to_have_text(f"{name} on {HOST}")
            # Someone else changes it meanwhile (the page still holds the version it read).
            version = running.detail(name)["version"]
            status, body = running.api(
                "PATCH", f"{TOPOLOGIES}{name}/networks/front/", {"version": version, "nat": True}
            )
            assert status == 200, body

            page.get_by_role("button", name="Edit network front").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("MTU").fill("1400")
            dialog.get_by_label("MTU").press("Enter")
            alert = dialog.locator(".form-errors")
            expect(alert).to_be_focused()
            expect(alert).to_contain_text(f"version {version + 1}")
            expect(alert).to_contain_text("submit again")
            expect(dialog.get_by_label("MTU")).to_have_value("1400")
            dialog.get_by_role("button", name="Save").click()
            expect(dialog).to_have_count(0)
            row = page.locator('#detail-networks [data-network="front"]')
            expect(row).to_contain_text("1400")
            expect(row).to_contain_text("yes")  # the other change stays: only the MTU was sent
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(steps)
    network = running.detail(name)["networks"][0]
    assert (network["mtu"], network["nat"]) == (1400, True)


def test_the_whole_file_is_edited_and_an_error_is_shown_on_its_line(running: Running) -> None:
    name = f"c{RUN}"
    running.create(f"name: {name}\nnetworks:\n  front: {{subnet: 198.18.65.0/24}}\nnodes:\n  web1: {{}}\n")

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            log_in(page, OPERATOR, f"/networks/#{HOST}/{name}")
            page.get_by_role("button", name="Edit YAML").click()
            text = page.get_by_label("The whole file, in YAML")
            expect(text).to_be_focused()
            expect(text).to_have_value(re.compile("198.18.65.0/24"))
            broken = text.input_value().replace("198.18.65.0/24", "198.18.65.0/33")
            line = broken.splitlines().index(next(x for x in broken.splitlines() if "/33" in x)) + 1
            text.fill(broken)
            page.get_by_role("button", name="Save file").click()
            errors_list = page.locator("#yaml-errors")
            expect(errors_list).to_contain_text(f"line {line}: networks.front.subnet")
            errors_list.get_by_role("button", name=f"line {line}").click()
            selected = page.evaluate(
                "() => { const t = document.querySelector('#yaml-text');"
                " return t.value.slice(t.selectionStart, t.selectionEnd); }"
            )
            assert "/33" in selected, selected
            text.fill(broken.replace("/33", "/24").replace("web1:", "web9:"))
            page.get_by_role("button", name="Save file").click()
            expect(page.locator("#yaml-form")).to_be_hidden()
            expect(page.locator('#detail-nodes [data-node="web9"]')).to_be_visible()
            expect(page.locator("#plan-lines")).to_contain_text(f"+ namespace {name}-web9")
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(steps)


@pytest.fixture(scope="module")
def applied(running: Running) -> str:
    """A topology applied on the host: a network with two nodes, drawn on the graph."""
    name = f"d{RUN}"
    running.create(
        f"name: {name}\nnetworks:\n  front: {{subnet: 198.18.66.0/24}}\n"
        "nodes:\n  web1: {networks: [front]}\n  web2: {networks: [front]}\n"
    )
    running.apply(name)
    return name


# the page's module may not have run yet when the test starts asking: no window.switchboard then
BRIDGE_ID = """(name) => { if (!window.switchboard) return null;
  for (const h of Object.values(window.switchboard.model.hosts))
  for (const [id, link] of h.links) if (link.name === name) return id; return null; }"""
GRAPH_READY = "(id) => window.switchboard.cy.getElementById(id).nonempty()"


def open_graph(page: Any, bridge: str) -> str:
    """The topology page with `bridge` drawn; answers the bridge's element id."""
    # a function, not an expression: the page's CSP allows no eval, which an expression would need
    page.wait_for_function(f"(name) => ({BRIDGE_ID})(name) !== null", arg=bridge)
    bridge_id = page.evaluate(BRIDGE_ID, bridge)
    page.wait_for_function(GRAPH_READY, arg=bridge_id)
    page.evaluate("() => window.switchboard.whenIdle()")
    return bridge_id


def right_click(page: Any, element_id: str) -> None:
    from tests.browser.conftest import VISIBLE_POSITION

    box = page.locator("#cy").bounding_box()
    x, y = page.evaluate(VISIBLE_POSITION, element_id)
    page.mouse.click(box["x"] + x, box["y"] + y, button="right")


def test_the_graph_menu_adds_a_node_on_a_bridge_and_deletes_one(running: Running, applied: str) -> None:
    name = applied

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            page.on("dialog", lambda dialog: dialog.accept())
            log_in(page, OPERATOR, "/topology/")
            bridge_id = open_graph(page, f"{name}-front")

            right_click(page, bridge_id)
            menu = page.get_by_role("menu")
            # what to look at first (a bridge's capture), then the edits
            expect(menu.get_by_role("menuitem")).to_have_text(
                ["Capture on this interface…", "Add node on front…"]
            )
            expect(menu.get_by_role("menuitem", name="Capture on this interface…")).to_be_focused()
            page.keyboard.press("ArrowDown")
            item = menu.get_by_role("menuitem", name="Add node on front…")
            expect(item).to_be_focused()
            item.press("Enter")
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_role("heading")).to_have_text("Add a node on front")
            expect(dialog.get_by_label("On network front")).to_be_checked()
            dialog.get_by_label("Name", exact=True).fill("web3")
            dialog.get_by_label("Name", exact=True).press("Enter")
            expect(dialog).to_have_count(0)
            expect(page.locator("#edit-notice")).to_contain_text(
                f"node web3 added in {name} — not applied yet"
            )

            # The keyboard: the selected namespace's menu (Shift+F10), down to "Delete node".
            page.evaluate(
                "(id) => window.switchboard.cy.getElementById(id).select()", f"{HOST}|ns|{name}-web1"
            )
            page.keyboard.press("Shift+F10")
            expect(menu.get_by_role("menuitem")).to_have_text(
                [
                    "Explain from here",
                    "Explain to here",
                    "Capture here…",
                    "Attach to network…",
                    "Detach from front",
                    "Delete node",
                ]
            )
            page.keyboard.press("End")
            expect(menu.get_by_role("menuitem", name="Delete node")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("#edit-notice")).to_contain_text(f"node web1 deleted in {name}")

            # Its link leads to the plan of both edits on the Networks page; applied, the kernel follows.
            page.locator("#edit-notice").get_by_role("link", name="Review the plan and apply it").click()
            lines = page.locator("#plan-lines")
            expect(lines).to_contain_text(f"+ namespace {name}-web3")
            expect(lines).to_contain_text(f"- namespace {name}-web1")
            page.get_by_role("button", name="Apply these changes").click()
            expect(page.locator("#operations .op-succeeded", has_text="apply on")).to_be_visible()
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(steps)
    namespaces = running.namespaces()
    assert f"{name}-web3" in namespaces and f"{name}-web1" not in namespaces, namespaces


def test_a_viewer_sees_no_edit_controls(running: Running, applied: str) -> None:
    name = applied

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            log_in(page, VIEWER, "/topology/")
            bridge_id = open_graph(page, f"{name}-front")
            right_click(page, bridge_id)
            page.keyboard.press("Shift+F10")
            expect(page.locator("#graph-menu")).to_be_hidden()

            page.goto(f"/networks/#{HOST}/{name}")
            expect(page.locator('#detail-networks [data-network="front"]')).to_be_visible()
            expect(page.locator("#detail [data-edit]")).to_have_count(0)
            expect(page.locator("#yaml-form, #detail-auto-repair, #create-form")).to_have_count(0)
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(steps)


def test_a_published_port_drift_repaired_and_everything_deleted_leaves_the_host_clean(
    running: Running,
) -> None:
    """The rest of the operator's day, in the browser: a port published through the node form and
    reached on loopback; a veth deleted by hand shows drifted and Repair brings traffic back; destroy
    and delete leave no namespace, link or nftables table."""
    name = f"p{RUN}"
    web1, web2 = "198.18.68.10", "198.18.68.11"
    running.create(
        f"name: {name}\nnetworks:\n  front: {{subnet: 198.18.68.0/24}}\n"
        f"nodes:\n  web1: {{networks: {{front: {{address: {web1}}}}}}}\n"
        f"  web2: {{networks: {{front: {{address: {web2}}}}}}}\n"
    )
    running.apply(name)
    veth = names.host_veth_name(name, "web2", "front")

    def publish(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            log_in(page, OPERATOR, f"/networks/#{HOST}/{name}")
            page.get_by_role("button", name="Edit node web1").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Published ports").fill("127.0.0.1:18081:7000/tcp")
            dialog.get_by_role("button", name="Save").click()
            expect(dialog).to_have_count(0)
            expect(page.locator("#plan-lines")).to_contain_text("127.0.0.1:18081")
            expect(page.locator("#detail-status")).to_have_text("changed")
            page.get_by_role("button", name="Apply these changes").click()
            expect(page.locator("#detail-status")).to_have_text("ready")
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(publish)
    # real TCP from the host's loopback to the port published on it, answered by web1
    reached = in_agent_mounts(
        running.agent,
        f"""
ip link set lo up
ip netns exec {name}-web1 python3 -c "
import socket
s = socket.create_server(('0.0.0.0', 7000)); c, _ = s.accept(); c.sendall(c.recv(64)); c.close()" &
sleep 0.5
python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', 18081), timeout=5)
s.sendall(b'hello loopback'); print(s.recv(64).decode())"
wait
""",
    )
    assert reached.strip() == "hello loopback"

    in_agent_mounts(running.agent, f"ip link del {veth}")

    def repair_and_delete(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, running.base) as (page, errors):
            page.on("dialog", lambda dialog: dialog.accept())
            log_in(page, OPERATOR, "/networks/")
            row = page.locator(f'[data-topology="{HOST}/{name}"]')
            expect(row.locator(".badge")).to_have_text("drifted")
            expect(row.locator(".badge")).to_have_attribute("title", re.compile(f"veth {veth} is gone"))
            row.get_by_role("button", name="Repair").click()
            expect(row.locator(".badge")).to_have_text("ready")
            assert in_agent_mounts(running.agent, tcp_echo(name, web1)).strip() == "hello web1"

            row.get_by_role("button", name="Destroy").click()
            expect(row.locator(".badge")).to_have_text("new")
            row.locator("td").first.click()
            page.get_by_role("button", name="Delete topology").click()
            expect(row).to_have_count(0)
            assert not errors, f"uncaught errors in the page: {errors}"

    running.steps(repair_and_delete)
    assert not {n for n in running.namespaces() if n.startswith(f"{name}-")}
    links = in_agent_mounts(running.agent, "ip -o link show")
    assert f"{name}-" not in links
    assert f"switchboard-{name}" not in in_agent_mounts(running.agent, "nft list tables")
    assert running.api("GET", f"{TOPOLOGIES}{name}/")[0] == 404
