"""The topology page end to end: a person logs in with Chromium and watches the kernel change live.

Nothing is faked. Inside the test's throwaway namespace (`host_ns`) run daphne on 127.0.0.1 and the
real agent (both started by tests/stack/harness.py), and Chromium: Playwright is started on a
thread the test thread creates, and a new thread (and every process it starts) begins in its
creator's network namespace, so the browser reaches daphne at 127.0.0.1 of that namespace and
nothing else.

The agent has a private /run of its own (see tests/stack/harness.py): it reports the test's
namespace only, not the namespaces of whatever else runs on the machine (a benchmark's
thousand endpoints would otherwise fill the graph). The namespace this test makes by hand is
created in the agent's mount namespace, where the agent sees it appear under /run/netns
exactly as on a real host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VISIBLE_POSITION
from tests.conftest import RUN, HostNs
from tests.stack.harness import Cleanups, Proc, Stack, log_count, make_tmpdir, remove_tree, sqlite_url

HOST = "alpha"
VIEWER = "e2e-viewer"
PASSWORD = secrets.token_urlsafe(16)
NETNS = f"sb{RUN}-e2e"  # made by hand during the test, in the agent's /run/netns
VETH_A, VETH_B = f"sb{RUN}ea", f"sb{RUN}eb"  # VETH_A in the host namespace, VETH_B in NETNS
ADDRESS = "198.18.77.1/24"
TIMEOUT_MS = 20_000  # any one wait in the page

_T = TypeVar("_T")


@pytest.fixture
def stack(host_ns: HostNs) -> Iterator[Stack]:
    """A stack in host_ns with a migrated database holding a viewer who has a password."""
    with e2e_stack(host_ns) as made:
        yield made


@contextlib.contextmanager
def e2e_stack(host_ns: HostNs) -> Iterator[Stack]:
    """A stack in host_ns with a migrated database holding a viewer who has a password (VIEWER,
    PASSWORD); its `user_token` is the viewer's."""
    host_ns.run("ip link set lo up")
    workdir = make_tmpdir("e2e")
    cleanups = Cleanups()
    cleanups.add(lambda: remove_tree(workdir))
    cleanups.add(lambda: kill_stragglers(host_ns))  # runs after every process above was stopped
    stack = Stack(
        ns=host_ns,
        workdir=workdir,
        db_url=sqlite_url(workdir / "db.sqlite3"),
        user_token="",
        host_tokens={},
        cleanups=cleanups,
    )
    try:
        stack.manage("migrate", "--noinput")
        # one argument, "--password=…": a generated password may start with "-"
        stack.user_token = stack.manage("adduser", VIEWER, "--role", "viewer", f"--password={PASSWORD}")
        stack.user_token = stack.user_token.strip().splitlines()[-1]
        yield stack
    finally:
        cleanups.close()


def kill_stragglers(ns: HostNs) -> None:
    """SIGKILL any process still living in the test's namespace (a Chromium whose driver died, say).

    Everything in that namespace was started by this test; pytest itself (whose main thread is in
    it for the test) is left alone.
    """
    inode = os.stat(ns.path).st_ino
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                os.kill(int(pid), signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def wait_for_agent(agent: Proc, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while log_count(agent, "the web app knows this host as") < 1:
        assert agent.alive, f"the agent exited:\n{agent.tail()}"
        assert time.monotonic() < deadline, f"the agent was not welcomed in {timeout:g} s:\n{agent.tail()}"
        time.sleep(0.05)


def operator_with_topology(stack: Stack, *, user: str, host: str, text: str) -> tuple[Any, Proc]:
    """Daphne and the host's agent running, `user` an operator (the stack's API token is theirs),
    and the topology `text` applied on `host` with its addresses settled: (web, agent)."""
    token = stack.manage("adduser", user, "--role", "operator", f"--password={PASSWORD}")
    stack.user_token = token.strip().splitlines()[-1]
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(host))
    wait_for_agent(agent)
    status, body = web.api("POST", "/api/v1/topologies/", {"host": host, "topology": text})
    assert status == 201, body
    status, body = web.api("POST", f"/api/v1/topologies/{body['name']}/apply/?host={host}")
    assert status == 202, body
    operation = f"/api/v1/operations/{body['operation']}/"
    deadline = time.monotonic() + 30
    while (status := web.api("GET", operation)[1]["status"]) in ("pending", "running"):
        assert time.monotonic() < deadline, "the apply did not end in 30 s"
        time.sleep(0.1)
    assert status == "succeeded"
    addresses_settled(stack.ns)
    return web, agent


def addresses_settled(ns: HostNs, timeout: float = 10.0) -> None:
    """Wait until the links an apply made in the browser's namespace have their IPv6 addresses
    (duplicate address detection ends a second or so after a link comes up): Chromium aborts the
    requests in flight when the namespace's addresses change (net::ERR_NETWORK_CHANGED), which
    would leave the page half loaded."""
    deadline = time.monotonic() + timeout
    while ns.run("ip -6 address show tentative").stdout.strip():
        assert time.monotonic() < deadline, "IPv6 addresses still tentative"
        time.sleep(0.1)


def log_in(page: Any, user: str, then: str) -> None:
    """Log in and open `then` (a fragment does not survive the login's redirect: opened after)."""
    path, _, fragment = then.partition("#")
    page.goto(f"/accounts/login/?next={path}")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(re.compile(re.escape(path)))
    if fragment:
        page.goto(then)


def remove_namespaces(agent: Proc, topology: str) -> None:
    """Delete the topology's namespaces from the agent's /run, even after a failed step (nothing
    of a test's topology may stay)."""
    if agent.alive:
        with contextlib.suppress(AssertionError):
            names = f"$(ip netns list | grep -o '^{topology}-[a-z0-9]*')"
            in_agent_mounts(agent, f"for n in {names}; do ip netns del $n; done")


def in_agent_mounts(agent: Proc, script: str) -> str:
    """Run a shell script in the agent's namespaces (network and mount: its private /run/netns)."""
    done = subprocess.run(
        ["nsenter", "-t", str(agent.pid), "--net", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, f"{script!r} failed: {done.stderr}"
    return done.stdout


def on_browser_thread(fn: Callable[[Any], _T], *, timeout: float = 300.0) -> _T:
    """fn(browser) on a new thread that starts Playwright and Chromium (in this thread's namespace).

    Playwright's sync API runs on the thread that started it and refuses to start where another
    instance is active (the session `browser` fixture of this directory): a thread of its own has
    neither problem.
    """
    from playwright.sync_api import sync_playwright

    outcome: dict[str, Any] = {}

    def main() -> None:
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    outcome["value"] = fn(browser)
                finally:
                    browser.close()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=main, name="e2e-chromium", daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the browser steps did not finish in {timeout:g} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextlib.contextmanager
def page_of(browser: Any, base: str) -> Iterator[tuple[Any, list[str]]]:
    """A page of the dashboard at `base` and the uncaught errors it raised; when the steps in it
    fail, a screenshot is kept (its path printed) with those errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=base)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pending: dict[Any, str] = {}  # requests sent and not answered yet, with when they were sent
    page.on("request", lambda r: pending.__setitem__(r, f"{time.strftime('%H:%M:%S')} {r.method} {r.url}"))
    page.on("requestfinished", lambda r: pending.pop(r, None))
    page.on("requestfailed", lambda r: pending.pop(r, None))
    try:
        yield page, errors
    except BaseException:
        fd, shot = tempfile.mkstemp(prefix=f"sb-e2e-{RUN}-", suffix=".png")
        os.close(fd)
        with contextlib.suppress(Exception):
            page.screenshot(path=shot, full_page=True)
            print(f"screenshot of the failure: {shot}")
        print(f"page errors: {errors}")
        print("requests unanswered:", *sorted(pending.values()) or ["none"], sep="\n  ")
        raise
    finally:
        context.close()


def run_in_browser(steps: Callable[[Any], None], *, web: Any, agent: Proc) -> None:
    """on_browser_thread(steps), with the server's and the agent's last lines when they fail, and
    what each of the server's threads was doing then (webapp.asgi dumps them on SIGUSR2)."""
    try:
        on_browser_thread(steps)
    except BaseException:
        if web.proc.alive:
            web.proc.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
        print(f"--- daphne:\n{web.proc.tail(120)}\n--- agent:\n{agent.tail()}")
        raise


class Screen:
    """The page, with waits on what the graph and the side panel show."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def until(self, expression: str, arg: Any = None, *, what: str) -> None:
        try:
            self.page.wait_for_function(expression, arg=arg, timeout=TIMEOUT_MS)
        except Exception as exc:
            raise AssertionError(f"the page never showed {what}: {exc}") from None

    def has_node(self, node_id: str) -> bool:
        return self.page.evaluate("(id) => window.switchboard.cy.getElementById(id).nonempty()", node_id)

    def node(self, node_id: str) -> dict[str, Any]:
        return self.page.evaluate(
            "(id) => { const n = window.switchboard.cy.getElementById(id);"
            " return {...n.data(), classes: n.classes(), parent: n.parent().id()}; }",
            node_id,
        )

    def edge_classes(self, a: str, b: str) -> list[str]:
        return self.page.evaluate(
            "([a, b]) => { const cy = window.switchboard.cy;"
            " const e = cy.getElementById(a).edgesWith(cy.getElementById(b));"
            " return e.nonempty() ? e.classes() : []; }",
            [a, b],
        )

    def click_node(self, node_id: str) -> None:
        """A real mouse click where the node is drawn: its rendered position in the canvas box."""
        box = self.page.locator("#cy").bounding_box()
        x, y = self.page.evaluate(VISIBLE_POSITION, node_id)
        self.page.mouse.click(box["x"] + x, box["y"] + y)

    def facts(self) -> dict[str, str]:
        """The side panel's first list of facts (term -> text)."""
        return self.page.evaluate(
            "() => { const dl = document.querySelector('#details-body dl.facts');"
            " if (!dl) return {};"
            " return Object.fromEntries([...dl.querySelectorAll('dt')].map("
            "(dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()])); }"
        )


def kernel_link(ns: HostNs, name: str) -> dict[str, Any]:
    return json.loads(ns.run(["ip", "-j", "-d", "link", "show", "dev", name]).stdout)[0]


def test_a_viewer_logs_in_and_watches_a_veth_come_and_go(stack: Stack) -> None:
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(HOST))
    wait_for_agent(agent)

    # Without a session the page is not served: the login page is, with the way back.
    status, _ = web.http("GET", "/topology/")
    assert status == 302

    base = f"http://127.0.0.1:{web.port}"
    host_ns_node, host_lo = f"{HOST}|ns|host", f"{HOST}|host|1"
    ns_node = f"{HOST}|ns|{NETNS}"
    made: list[str] = []

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, base) as (page, errors):
            screen = Screen(page)
            page.goto("/topology/")
            assert page.url == f"{base}/accounts/login/?next=/topology/", page.url

            # Log in with the keyboard: a wrong password first, then the right one.
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill(VIEWER)
            page.get_by_label("Password").fill(PASSWORD + "x")
            page.get_by_label("Password").press("Enter")
            expect(page.locator("#login-errors")).to_be_visible()
            assert page.url.startswith(f"{base}/accounts/login/"), page.url
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_label("Password").press("Enter")
            page.wait_for_url(f"{base}/topology/")
            expect(page.locator("header .user")).to_have_text(VIEWER)

            # The live graph of the host: its box, its own namespace and that namespace's lo.
            page.evaluate("() => { window.switchboard.ready.then(() => { window.__e2eReady = true; }); }")
            screen.until("() => window.__e2eReady === true", what="the first layout (switchboard.ready)")
            screen.until("() => document.body.dataset.wsStatus === 'open'", what="its socket open")
            screen.until(
                "(ids) => ids.every((id) => window.switchboard.cy.getElementById(id).nonempty())",
                [HOST, host_ns_node, host_lo],
                what=f"{HOST}, its host namespace and lo",
            )
            assert screen.node(host_lo)["label"] == "lo"
            assert screen.node(host_lo)["parent"] == host_ns_node
            assert screen.node(HOST)["classes"] == ["host"]  # online: no `offline` class
            expect(page.locator("#empty-state")).to_be_hidden()

            # By hand, as an operator would: a namespace, a veth pair into it, one end up, an address.
            in_agent_mounts(agent, f"ip netns add {NETNS}")
            made.append(NETNS)
            in_agent_mounts(agent, f"ip link add {VETH_A} type veth peer name {VETH_B} netns {NETNS}")
            stack.ns.run(f"ip link set {VETH_A} up && ip address add {ADDRESS} dev {VETH_A}")
            link = kernel_link(stack.ns, VETH_A)
            a_id = f"{HOST}|host|{link['ifindex']}"
            b_id = f"{HOST}|{NETNS}|{link['link_index']}"

            # It appears without a reload: both ends, each in its namespace, one veth edge between them.
            screen.until(
                "(ids) => ids.every((id) => window.switchboard.cy.getElementById(id).nonempty())",
                [a_id, b_id, ns_node],
                what=f"{VETH_A}, {VETH_B} and {NETNS}",
            )
            screen.until(
                "([a, b]) => { const cy = window.switchboard.cy;"
                " return cy.getElementById(a).edgesWith(cy.getElementById(b)).filter('.veth').nonempty(); }",
                [a_id, b_id],
                what=f"the veth edge {VETH_A} - {VETH_B}",
            )
            a, b = screen.node(a_id), screen.node(b_id)
            # (The label's first line is the name; its address, once reported, follows on the next.)
            assert (a["brief"], a["kind"], a["parent"]) == (VETH_A, "veth", host_ns_node), a
            assert (b["brief"], b["kind"], b["parent"]) == (VETH_B, "veth", ns_node), b
            # Only one end is up, so neither has a carrier: the pair is drawn as a down link.
            assert screen.edge_classes(a_id, b_id) == ["veth", "down"]
            assert page.evaluate("() => window.__e2eReady") is True  # the same document: no reload

            # Positions are kept by the web app: after a reload every node is exactly where it was.
            page.evaluate("() => window.switchboard.layoutSaved()")
            leaves = (
                "() => Object.fromEntries(window.switchboard.cy.nodes().filter((n) => n.isChildless())"
                ".map((n) => [n.id(), n.position()]))"
            )
            before = page.evaluate(leaves)
            page.reload()
            page.evaluate("() => { window.switchboard.ready.then(() => { window.__e2eReady = true; }); }")
            screen.until("() => window.__e2eReady === true", what="the first layout after the reload")
            screen.until(
                "(ids) => ids.every((id) => window.switchboard.cy.getElementById(id).nonempty())",
                list(before),
                what="every node again",
            )
            after = page.evaluate(leaves)
            assert {k: after[k] for k in before} == before

            # Click it where it is drawn: the side panel tells what it is.
            screen.click_node(a_id)
            panel = page.locator("#details")
            expect(panel).to_be_visible()
            expect(page.locator("#details-title")).to_have_text(VETH_A)
            expect(page.locator("#details-body")).to_contain_text(ADDRESS)  # may come in a later delta
            facts = screen.facts()
            assert facts["Kind"] == "veth", facts
            assert facts["MAC"] == link["address"], facts
            assert facts["Peer"] == f"{VETH_B} in {NETNS}", facts
            assert page.evaluate("(id) => window.switchboard.cy.getElementById(id).selected()", a_id)

            # Deleted by hand: both ends go from the graph, the panel says so.
            stack.ns.run(f"ip link del {VETH_A}")
            screen.until(
                "(ids) => ids.every((id) => window.switchboard.cy.getElementById(id).empty())",
                [a_id, b_id],
                what=f"{VETH_A} and {VETH_B} gone",
            )
            expect(panel).to_contain_text("This object no longer exists.")
            in_agent_mounts(agent, f"ip netns del {NETNS}")
            made.remove(NETNS)
            screen.until(
                "(id) => window.switchboard.cy.getElementById(id).empty()", ns_node, what=f"{NETNS} gone"
            )
            assert screen.has_node(host_lo)
            assert not errors, f"uncaught errors in the page: {errors}"

    try:
        run_in_browser(steps, web=web, agent=agent)
    finally:
        if made and agent.alive:  # else its private /run went with it, and the namespace too
            with contextlib.suppress(AssertionError):
                in_agent_mounts(agent, f"ip netns del {NETNS}")
    assert agent.alive and web.proc.alive


OPERATOR = "e2e-operator"
TOPOLOGY = f"e{RUN}"  # a topology name is 1-8 of [a-z0-9-]
WEB1, WEB2 = "198.18.61.10", "198.18.61.11"
TOPOLOGY_FILE = f"""name: {TOPOLOGY}
networks:
  front: {{subnet: 198.18.61.0/24}}
nodes:
  web1: {{networks: {{front: {{address: {WEB1}}}}}}}
  web2: {{networks: {{front: {{address: {WEB2}}}}}}}
"""


def tcp_echo(topology: str, web1: str) -> str:
    """A script sending "hello web1" from node web2 to an echo server on node web1 (at `web1`)."""
    return f"""
ip netns exec {topology}-web1 python3 -c "
import socket
s = socket.create_server(('{web1}', 7000)); c, _ = s.accept(); c.sendall(c.recv(64)); c.close()" &
sleep 0.5
ip netns exec {topology}-web2 python3 -c "
import socket
s = socket.create_connection(('{web1}', 7000), timeout=5)
s.sendall(b'hello web1'); print(s.recv(64).decode())"
wait
"""


TCP_ECHO = tcp_echo(TOPOLOGY, WEB1)


def test_an_operator_builds_a_network_in_the_browser_and_traffic_crosses_it(stack: Stack) -> None:
    """Create from a topology file (a mistake first, shown on its line), plan, apply, TCP between the
    two nodes, destroy: all from the networks page, against the real agent and kernel."""
    stack.manage("adduser", OPERATOR, "--role", "operator", f"--password={PASSWORD}")
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(HOST))
    wait_for_agent(agent)
    base = f"http://127.0.0.1:{web.port}"

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, base) as (page, errors):
            page.on("dialog", lambda dialog: dialog.accept())
            log_in(page, OPERATOR, "/networks/")
            expect(page.locator("#topologies-empty")).to_be_visible()

            # A mistake is named with its line; the fixed file is stored.
            mistake = TOPOLOGY_FILE.replace("198.18.61.0/24", "198.18.61.0/33")
            page.get_by_label("Topology file (YAML)").fill(mistake)
            page.get_by_role("button", name="Create").click()
            expect(page.locator("#create-errors")).to_contain_text("line 3")
            expect(page.locator("#create-errors")).to_contain_text("networks.front.subnet")
            page.get_by_label("Topology file (YAML)").fill(TOPOLOGY_FILE)
            page.get_by_role("button", name="Create").click()
            row = page.locator(f'[data-topology="{HOST}/{TOPOLOGY}"]')
            expect(row).to_be_visible()

            # Plan shows what would be made; applying it makes it.
            row.get_by_role("button", name="Plan").click()
            expect(page.locator("#plan-lines")).to_contain_text(f"+ namespace {TOPOLOGY}-web1")
            page.get_by_role("button", name="Apply these changes").click()
            done = page.locator("#operations .op-succeeded", has_text="apply on")
            expect(done).to_be_visible()
            assert in_agent_mounts(agent, TCP_ECHO).strip() == "hello web1"

            # Planned again: nothing to change.
            row.get_by_role("button", name="Plan").click()
            expect(page.locator("#plan-status")).to_have_text("Nothing to change: the host already matches.")

            row.get_by_role("button", name="Destroy").click()
            expect(page.locator("#operations .op-succeeded", has_text="destroy on")).to_be_visible()
            assert TOPOLOGY not in in_agent_mounts(agent, "ip netns list")
            assert not errors, f"uncaught errors in the page: {errors}"

    try:
        run_in_browser(steps, web=web, agent=agent)
    finally:
        remove_namespaces(agent, TOPOLOGY)
    assert agent.alive and web.proc.alive
