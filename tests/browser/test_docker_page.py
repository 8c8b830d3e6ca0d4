"""The Docker page end to end: an operator builds a Docker network and runs a container on it from
the browser, watches a container started at the docker CLI appear live, and finds the containers
on the topology graph, named on their namespaces. The real engine, the real agent and daphne run
in the machine's namespace (where dockerd puts its bridges), daphne only on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.test_end_to_end import PASSWORD, log_in, page_of, run_in_browser, wait_for_agent
from tests.conftest import MACHINE, RUN
from tests.stack.harness import Cleanups, Stack, make_tmpdir, remove_tree, sqlite_url

HOST = "alpha"
OPERATOR = "docker-op"
IMAGE = "switchboard/busybox:latest"
NETWORK, WEB, HAND, PROJECT = f"sb{RUN}pg", f"sb{RUN}pgweb", f"sb{RUN}pghand", f"sb{RUN}pgc"
COMPOSE = f"""\
services:
  api:
    image: {IMAGE}
    command: sleep 600
    networks:
      front: {{ipv4_address: 198.19.236.30}}
networks:
  front: {{external: true, name: {NETWORK}}}
"""


@pytest.fixture
def stack(docker_engine: Any) -> Iterator[Stack]:
    """A stack in the machine's namespace with an operator who has a password."""
    workdir = make_tmpdir("docker-page")
    cleanups = Cleanups()
    cleanups.add(lambda: remove_tree(workdir))
    made = Stack(
        ns=MACHINE,
        workdir=workdir,
        db_url=sqlite_url(workdir / "db.sqlite3"),
        user_token="",
        host_tokens={},
        cleanups=cleanups,
    )
    try:
        made.manage("migrate", "--noinput")
        made.manage("adduser", OPERATOR, "--role", "operator", f"--password={PASSWORD}")
        yield made
    finally:
        cleanups.close()


def test_an_operator_runs_containers_from_the_docker_page_and_sees_them_live(stack: Stack) -> None:
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(HOST))
    wait_for_agent(agent)
    base = f"http://127.0.0.1:{web.port}"

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, base) as (page, errors):
            page.on("dialog", lambda dialog: dialog.accept())
            log_in(page, OPERATOR, "/docker/")
            expect(page.locator("#docker-engine")).to_contain_text("Docker 20.10")
            expect(page.locator("#docker-firewall")).to_contain_text("FORWARD policy is DROP")
            expect(page.locator('[data-network="bridge"]')).to_contain_text("docker0")

            # A network whose subnet clashes with Docker's default bridge: refused under the field.
            page.get_by_role("button", name="New network").click()
            page.get_by_label("Name").fill(NETWORK)
            page.get_by_label("Subnet").fill("198.19.240.0/25")
            page.get_by_label("Driver options").fill("com.docker.network.bridge.enable_ip_masquerade=false")
            page.get_by_role("button", name="Create network").click()
            subnet_error = page.locator('.form-dialog [data-field="subnets[0].subnet"] .field-error')
            expect(subnet_error).to_contain_text("overlaps network bridge")
            page.get_by_label("Subnet").fill("198.19.236.0/24")
            page.get_by_label("Gateway").fill("198.19.236.1")
            page.get_by_role("button", name="Create network").click()
            expect(page.locator(f'[data-network="{NETWORK}"]')).to_contain_text(
                "198.19.236.0/24 via 198.19.236.1"
            )

            # A container on it with a static address: its row names the kernel objects under it.
            page.get_by_role("button", name="Run container").click()
            page.get_by_label("Name", exact=True).fill(WEB)
            page.get_by_label("Network", exact=True).select_option(NETWORK)
            page.get_by_label("Static IPv4 address").fill("198.19.236.10")
            page.get_by_label("Published ports").fill("127.0.0.1:18090:80")
            page.get_by_label("Command").fill("httpd -f -p 80")
            page.get_by_role("button", name="Run", exact=True).click()
            row = page.locator(f'[data-container="{WEB}"]')
            expect(row).to_contain_text("running")
            expect(row).to_contain_text("198.19.236.10/24 · eth0 ⇄ veth")
            expect(row).to_contain_text("127.0.0.1:18090 → 80/tcp")

            # Started at the docker CLI: on the page without a reload, and gone again when removed.
            hand_run = ["docker", "run", "-d", "--name", HAND, "--network", "none", IMAGE, "sleep", "600"]
            subprocess.run(hand_run, check=True, capture_output=True)
            hand = page.locator(f'[data-container="{HAND}"]')
            expect(hand).to_contain_text("only lo")

            # The topology graph names the container's namespace.
            page.goto("/topology/")
            labelled = (
                "(name) => window.switchboard?.cy.nodes('.namespace')"
                ".some((n) => n.data('label').startsWith(name))"
            )
            page.wait_for_function(labelled, arg=WEB)

            page.goto("/docker/")
            # A compose project joining the network made above: grouped under its project, taken
            # down as one unit; a key Switchboard does not support is refused by name.
            page.get_by_role("button", name="Deploy compose file").click()
            page.get_by_label("Project", exact=True).fill(PROJECT)
            page.get_by_label("Compose file").fill(COMPOSE.replace("image:", "volumes: [x]\n    image:", 1))
            page.get_by_role("button", name="Deploy", exact=True).click()
            expect(page.locator(".form-dialog .form-errors")).to_contain_text("services.api.volumes")
            page.get_by_label("Compose file").fill(COMPOSE)
            page.get_by_role("button", name="Deploy", exact=True).click()
            group = page.locator(f'#docker-containers-body [data-project="{PROJECT}"]')
            expect(group).to_contain_text(f"Compose project {PROJECT}")
            expect(page.locator(f'[data-container="{PROJECT}-api-1"]')).to_contain_text("198.19.236.30/24")
            group.get_by_role("button", name="Take down").click()
            expect(page.locator(f'[data-container="{PROJECT}-api-1"]')).to_have_count(0)

            hand.get_by_role("button", name="Remove").click()
            expect(hand).to_have_count(0)
            page.locator(f'[data-container="{WEB}"]').get_by_role("button", name="Remove").click()
            expect(page.locator(f'[data-container="{WEB}"]')).to_have_count(0)
            page.locator(f'[data-network="{NETWORK}"]').get_by_role("button", name="Remove").click()
            expect(page.locator(f'[data-network="{NETWORK}"]')).to_have_count(0)
            assert not errors, f"uncaught errors in the page: {errors}"

    run_in_browser(steps, web=web, agent=agent)
    assert agent.alive and web.proc.alive
