"""Packet capture in the browser, end to end: an operator opens "Capture here…" on node b's namespace
in the graph's menu, lands on the Captures page with host and namespace filled in, ticks b's interface,
sets a BPF filter and a count and starts; the real agent runs dumpcap in b's namespace while a sends b
known UDP datagrams; the rows appear live in the table, a row's decode (tshark's) shows a's address,
and the downloaded pcap holds exactly the packets sent (tshark counts them). A wrong filter comes back
as the agent's refusal. Real agent, daphne and Chromium, in the test's namespace (see
test_end_to_end.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from typing import Any

from netcore import netns as ns
from tests.browser.test_csp import LISTEN
from tests.browser.test_end_to_end import (
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
OPERATOR = "capture-op"
PORT = 9999
SENT = 5
MANY = 2000  # packets sent at 500 a second: the agent sends rows for nearly all (up to 1000 a second)
ROWS_DRAWN = 1000  # rows the page keeps in its table (static/js/captures-model.js ROW_LIMIT)


def _send_udp(path: str, destination: str, count: int, *, pace: float = 0.0) -> None:
    """`count` datagrams to destination:PORT from a socket made in the namespace at `path`, in
    batches of 100 `pace` seconds apart."""
    sock = ns.netns_run(path=path, fn=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    with sock:
        for i in range(count):
            sock.sendto(f"switchboard {i}".encode(), (destination, PORT))
            if pace and i % 100 == 99:
                time.sleep(pace)


def _tshark_count(data: bytes) -> int:
    fd, path = tempfile.mkstemp(suffix=".pcapng")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        listed = subprocess.run(
            ["tshark", "-n", "-r", path, "-T", "fields", "-e", "ip.src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    finally:
        os.unlink(path)
    return listed.splitlines().count(NODES["a"])


def test_an_operator_captures_on_a_node_and_sees_packets_live_decodes_one_and_downloads_the_file(
    host_ns: HostNs, topo: str
) -> None:
    with e2e_stack(host_ns) as stack:
        web, agent = operator_with_topology(stack, user=OPERATOR, host=HOST, text=topology(topo))
        base = f"http://127.0.0.1:{web.port}"
        b_ns = f"{HOST}|ns|{topo}-b"

        def steps(browser: Any) -> None:
            from playwright.sync_api import expect

            with page_of(browser, base) as (page, errors):
                violations: list[dict[str, Any]] = []  # of the Content-Security-Policy, by our pages
                page.expose_function("__cspViolation", lambda violation: violations.append(violation))
                page.add_init_script(LISTEN)
                log_in(page, OPERATOR, "/topology/")
                page.wait_for_function(
                    "(id) => window.switchboard?.cy.getElementById(id).nonempty()", arg=b_ns
                )
                page.evaluate("() => window.switchboard.ready.then(() => window.switchboard.whenIdle())")
                # the graph's menu on b's namespace (the keyboard's way: selected, then Shift+F10)
                page.evaluate("(id) => { window.switchboard.cy.getElementById(id).select(); }", b_ns)
                page.keyboard.press("Shift+F10")
                page.get_by_role("menu").get_by_role("menuitem", name="Capture here…").press("Enter")
                page.wait_for_url("**/captures/?*")
                expect(page.get_by_label("Host")).to_have_value(HOST)
                expect(page.get_by_label("Namespace")).to_have_value(f"{topo}-b")
                expect(page.locator("#captures-empty")).to_be_visible()  # the helpful empty state

                # A filter dumpcap cannot compile: the agent's refusal is shown on the capture's page.
                boxes = page.locator("#capture-interface-list input[type=checkbox]:not([value=lo])")
                expect(boxes).to_have_count(1)
                boxes.check()
                interface = boxes.get_attribute("value")
                page.get_by_label("Filter").fill("udp port")
                page.get_by_label("Stop after packets").fill(str(SENT))
                page.get_by_label("or seconds").fill("60")
                page.get_by_label("Filter").press("Enter")
                page.wait_for_url("**/captures/*/")
                expect(page.locator("#capture-status")).to_have_text("Failed")
                expect(page.locator("#capture-error")).to_contain_text("filter")

                # A good one: udp to b's port, SENT packets.
                page.goto(f"/captures/?host={HOST}&namespace={topo}-b")
                page.locator("#capture-interface-list input[type=checkbox]:not([value=lo])").check()
                page.get_by_label("Filter").fill(f"udp port {PORT}")
                page.get_by_label("Stop after packets").fill(str(SENT))
                page.get_by_label("or seconds").fill("60")
                page.get_by_role("button", name="Start capture").click()
                page.wait_for_url("**/captures/*/")
                expect(page.locator("#capture-status")).to_have_text("Running")
                expect(page.get_by_role("button", name="Stop")).to_be_visible()

                _send_udp(stack.netns_path(agent, f"{topo}-a"), NODES["b"], SENT)
                rows = page.locator("#capture-packets-body tr")
                expect(rows).to_have_count(SENT)
                expect(page.locator("#capture-status")).to_have_text("Done: reached its packet count")
                expect(page.get_by_role("button", name="Stop")).to_be_hidden()
                expect(page.locator("#capture-progress-text")).to_contain_text(f"{SENT} packets")
                first = rows.first
                expect(first.locator("td").nth(3)).to_have_text(NODES["a"])
                expect(first.locator("td").nth(4)).to_have_text(NODES["b"])
                expect(first.locator("td").nth(5)).to_have_text("UDP")

                # a row's decode, by tshark, beside the table (the keyboard's way: focus, Enter)
                first.focus()
                page.keyboard.press("Enter")
                tree = page.locator("#decode-tree")
                expect(tree).to_contain_text(f"ip.src: {NODES['a']}")
                expect(tree).to_contain_text(f"udp.dstport: {PORT}")
                expect(page.locator("#decode-bytes")).to_be_visible()

                # the file, as Wireshark would open it
                with page.expect_download() as download:
                    page.get_by_role("link", name="Download pcap").click()
                got = download.value
                assert got.suggested_filename.startswith(f"{HOST}-{topo}-b-")
                assert got.suggested_filename.endswith(".pcapng")
                path = got.path()
                assert path is not None
                with open(path, "rb") as file:
                    assert _tshark_count(file.read()) == SENT

                # both are listed, newest first
                page.goto("/captures/")
                listed = page.locator("#captures tbody tr")
                expect(listed).to_have_count(2)
                expect(listed.first).to_contain_text("done")
                expect(listed.last).to_contain_text("failed")

                # Thousands of packets: the table keeps the last ROWS_DRAWN rows and says so.
                request = {"host": HOST, "namespace": f"{topo}-b", "filter": f"udp port {PORT}"}
                request |= {"interfaces": [interface], "count": MANY, "duration": 60}
                status, started = web.api("POST", "/api/v1/captures/", request)
                assert status == 202, started
                page.goto(f"/captures/{started['id']}/")
                expect(page.locator("#capture-status")).to_have_text("Running")
                _send_udp(stack.netns_path(agent, f"{topo}-a"), NODES["b"], MANY, pace=0.2)
                expect(page.locator("#capture-status")).to_have_text("Done: reached its packet count")
                kept = web.api("GET", f"/api/v1/captures/{started['id']}/?limit=1")[1]["rows_kept"]
                assert kept > ROWS_DRAWN, kept
                expect(rows).to_have_count(ROWS_DRAWN)
                note = f"Showing the last {ROWS_DRAWN} of {kept} rows kept"
                expect(page.locator("#capture-rows-note")).to_contain_text(note)
                expect(rows.last.locator("td").first).to_have_text(str(MANY))  # the newest is drawn
                assert not errors, f"uncaught errors in the page: {errors}"
                assert violations == [], violations

        try:
            run_in_browser(steps, web=web, agent=agent)
        finally:
            remove_namespaces(agent, topo)
        assert web.proc.alive
