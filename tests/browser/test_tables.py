"""The tables beside the graph (static/js/tables.js) on the topology page, fed frames as the web app sends.

Each test reads the table a person sees (rows, cells, headers) and checks that it follows the graph's
filters and live updates, sorts, exports CSV and selects on the graph.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest

from tests.browser.frames import demo_host, link_id

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_COLUMNS = ["host", "namespace", "nodes", "interface", "address", "mac", "state", "peer", "bridge"]


def table_rows(page) -> list[dict[str, str]]:
    """The rows drawn in the table, as {column key: text}."""
    return page.evaluate(
        "() => [...document.querySelectorAll('#table-body tr')].map((tr) =>"
        " Object.fromEntries([...tr.cells].map((td) => [td.dataset.key, td.textContent])))"
    )


def column(page, key: str) -> list[str]:
    return [row[key] for row in table_rows(page)]


def show_table(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_selector("#tables:not([hidden])")


SELECTED_IS = "(id) => window.switchboard.cy.$(':selected').map((e) => e.id()).join() === id"


def wait_rows(page, count: int) -> None:
    page.wait_for_function("(n) => document.querySelectorAll('#table-body tr').length === n", arg=count)


def test_the_endpoints_table_lists_every_address_with_its_interface_and_namespace(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Endpoints")
    assert page.get_by_role("tab", name="Endpoints").get_attribute("aria-selected") == "true"

    rows = table_rows(page)
    expected = {
        (a["netns"], a["ifname"], f"{a['address']}/{a['prefixlen']}") for a in s.state["addresses"].values()
    }
    assert {(r["namespace"], r["interface"], r["address"]) for r in rows} == expected
    assert len(rows) == len(s.state["addresses"]) == 5
    web1 = next(r for r in rows if r["address"] == "198.18.1.2/24")
    assert web1 == {
        "host": "alpha",
        "namespace": "demo-web1",
        "nodes": "—",  # no owner alias on its lo: not made by a topology file
        "interface": "eth0",
        "address": "198.18.1.2/24",
        "mac": links["web1"]["mac"],
        "state": "up",
        "peer": links["port1"]["name"],
        "bridge": "demo-front",
    }


def test_the_networks_and_routes_tables(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Networks")
    rows = {r["bridge"]: r for r in table_rows(page)}
    assert set(rows) == {"demo-front", "demo-back"}
    assert rows["demo-front"]["subnet"] == "198.18.1.0/24" and rows["demo-front"]["gateway"] == "198.18.1.1"
    assert rows["demo-front"]["endpoints"] == "2" and rows["demo-front"]["ports"] == "2"
    assert rows["demo-back"]["ports"] == "2"  # the db port and the VXLAN device
    assert rows["demo-back"]["state"] == "up"

    show_table(page, "Routes")
    routes = table_rows(page)
    assert len(routes) == len(s.state["routes"])
    default = next(r for r in routes if r["namespace"] == "demo-db" and r["destination"] == "default")
    assert (default["gateway"], default["device"]) == ("198.18.2.1", "eth0")


def test_the_tab_strip_works_from_the_keyboard(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    page.get_by_role("tab", name="Graph").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-endpoints"
    assert page.locator("#tables").is_visible() and len(table_rows(page)) == 5
    page.keyboard.press("ArrowRight")
    assert page.locator("#table-caption").inner_text() == "Networks"
    page.keyboard.press("Home")
    assert page.locator("#tables").is_hidden()
    assert page.get_by_role("tab", name="Graph").get_attribute("aria-selected") == "true"


def test_clicking_a_column_header_sorts_by_it_both_ways(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Endpoints")
    header = page.locator("#table-head th[data-key='address']")
    assert header.get_attribute("aria-sort") == "none"

    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert column(page, "address") == [
        "198.18.1.1/24",
        "198.18.1.2/24",
        "198.18.1.3/24",
        "198.18.2.1/24",
        "198.18.2.2/24",
    ]
    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert column(page, "address")[0] == "198.18.2.2/24"
    assert page.locator("#table-head th[data-key='host']").get_attribute("aria-sort") == "none"

    page.locator("#table-head th[data-key='namespace']").get_by_role("button").click()
    assert column(page, "namespace") == sorted(column(page, "namespace"))


def test_a_delta_adding_an_address_shows_in_the_table_without_reload(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Endpoints")
    wait_rows(page, 5)

    address = s.address(links["web2"], "198.18.1.99/24")
    key = next(k for k, v in s.state["addresses"].items() if v is address)
    topology.send_delta(
        {
            "type": "topology.delta",
            "host": "alpha",
            "seq": 2,
            "events": [{"kind": "addresses", "action": "set", "key": key, "object": address}],
        }
    )
    wait_rows(page, 6)
    added = next(r for r in table_rows(page) if r["address"] == "198.18.1.99/24")
    assert (added["namespace"], added["interface"]) == ("demo-web2", "eth0")

    topology.send_delta(
        {
            "type": "topology.delta",
            "host": "alpha",
            "seq": 3,
            "events": [{"kind": "addresses", "action": "del", "key": key}],
        }
    )
    wait_rows(page, 5)


@pytest.mark.known_hosts("alpha", "beta")
def test_the_graphs_filters_and_search_and_the_table_filter_hide_rows(topology):
    s, _ = topology.send_demo("alpha", "beta")
    page = topology.page
    show_table(page, "Endpoints")
    wait_rows(page, 10)

    page.locator("#host-filters").get_by_label("beta").uncheck()
    wait_rows(page, 5)
    assert set(column(page, "host")) == {"alpha"}

    page.get_by_label("Bridges").uncheck()  # the kind filter: the bridges' own addresses go
    wait_rows(page, 3)
    page.get_by_label("Bridges").check()

    page.locator("#network-filter").select_option("demo-back")
    wait_rows(page, 2)
    assert set(column(page, "bridge")) == {"demo-back"}
    page.locator("#network-filter").select_option("")

    page.locator("#search").fill("web1")
    wait_rows(page, 1)
    page.locator("#search").fill("")
    page.locator("#table-filter").fill("198.18.2")
    wait_rows(page, 2)
    assert page.locator("#table-count").inner_text() == "2 rows"


def test_a_row_click_selects_the_element_on_the_graph(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Endpoints")
    page.locator("#table-body tr", has_text="198.18.2.2/24").click()

    db = link_id("alpha", links["db"])
    page.wait_for_function(SELECTED_IS, arg=db)
    assert page.locator("#tables").is_hidden() and page.locator("#cy").is_visible()
    assert page.locator("#details-title").inner_text() == "eth0"

    # And the reverse: the table marks the row of what the graph selected.
    show_table(page, "Endpoints")
    selected = page.locator("#table-body tr[aria-selected='true']")
    assert selected.count() == 1 and "198.18.2.2/24" in selected.inner_text()

    # From the keyboard too: Enter on a focused network row selects its bridge.
    show_table(page, "Networks")
    page.locator("#table-body tr", has_text="demo-front").focus()
    page.keyboard.press("Enter")
    front = link_id("alpha", links["front"])
    page.wait_for_function(SELECTED_IS, arg=front)


@pytest.mark.known_hosts("alpha", "beta")
def test_csv_export_holds_the_visible_rows(topology):
    s, _ = topology.send_demo("alpha", "beta")
    page = topology.page
    show_table(page, "Endpoints")
    page.locator("#host-filters").get_by_label("beta").uncheck()
    page.locator("#table-head th[data-key='address'] button").click()
    wait_rows(page, 5)

    with page.expect_download() as download:
        page.locator("#table-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == [
        "Host",
        "Namespace",
        "Nodes",
        "Interface",
        "Address",
        "MAC",
        "State",
        "Host-side veth",
        "Bridge",
    ]
    drawn = [[row[key] if row[key] != "—" else "" for key in ENDPOINT_COLUMNS] for row in table_rows(page)]
    assert lines[1:] == drawn
    assert {line[0] for line in lines[1:]} == {"alpha"}


def test_search_finds_a_nodes_veths_by_the_node_name_in_their_alias(topology):
    s, links = demo_host()
    port1 = links["port1"]
    port1["alias"] = "switchboard:demo:veth:node=webserver:network=front"
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    page.locator("#search").fill("webserver")
    assert link_id("alpha", port1) in topology.ids(".match")

    show_table(page, "Endpoints")  # the endpoint behind that veth, in the table too
    wait_rows(page, 1)
    assert table_rows(page)[0]["address"] == "198.18.1.2/24"


def test_the_endpoints_table_names_the_container_nodes_living_in_a_namespace(topology):
    """A container: node has no interface of its own: the owner alias on the lo of the namespace it
    shares lists it, and the endpoint rows of that namespace name both nodes (and search finds it)."""
    s, links = demo_host()
    lo = next(x for x in s.state["links"].values() if x["netns"] == "demo-web1" and x["name"] == "lo")
    lo["alias"] = "switchboard:demo:node:node=web1:shared=side"
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Endpoints")
    web1 = next(r for r in table_rows(page) if r["namespace"] == "demo-web1")
    assert web1["nodes"] == "web1, side"
    assert {r["nodes"] for r in table_rows(page) if r["namespace"] != "demo-web1"} == {"—"}

    page.locator("#search").fill("side")
    wait_rows(page, 1)
    assert table_rows(page)[0]["address"] == "198.18.1.2/24"
    assert "alpha|ns|demo-web1" in topology.ids(".match")  # and the graph's search lights its namespace


def interface_row(page, namespace: str, name: str) -> dict[str, str]:
    return next(r for r in table_rows(page) if (r["namespace"], r["name"]) == (namespace, name))


def test_the_interfaces_table_lists_every_interface_and_a_downed_port_as_down(topology):
    s, links = demo_host()
    port1 = links["port1"]
    port1["alias"] = "switchboard:demo:veth:node=web1:network=front"
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Interfaces")
    assert page.locator("#table-caption").inner_text() == "Interfaces"
    rows = table_rows(page)
    assert len(rows) == len(s.state["links"])
    everything = {(x["netns"], x["name"]) for x in s.state["links"].values()}
    assert {(r["namespace"], r["name"]) for r in rows} == everything
    assert interface_row(page, "host", port1["name"]) == {
        "host": "alpha",
        "namespace": "host",
        "name": port1["name"],
        "kind": "veth",
        "state": "up",
        "operstate": "up",
        "mtu": "1500",
        "mac": port1["mac"],
        "addresses": "—",
        "master": "demo-front",
        "peer": "eth0 (demo-web1)",
        "owner": "web1, front",
    }
    eth0 = interface_row(page, "demo-web1", "eth0")
    assert (eth0["kind"], eth0["addresses"]) == ("veth", "198.18.1.2/24")
    assert eth0["peer"] == f"{port1['name']} (host)"
    assert interface_row(page, "host", "demo-back.vx")["kind"] == "vxlan"
    lo = interface_row(page, "demo-db", "lo")
    assert (lo["kind"], lo["state"], lo["operstate"], lo["mtu"]) == ("lo", "up", "unknown", "65536")
    assert interface_row(page, "host", "spare0")["state"] == "down"

    # the port is taken down: the live update shows it down, the kernel's operstate beside it
    downed = {**port1, "up": False, "state": "down"}
    topology.send_delta(
        {
            "type": "topology.delta",
            "host": "alpha",
            "seq": 2,
            "events": [{"kind": "links", "action": "set", "key": f"host|{port1['index']}", "object": downed}],
        }
    )
    page.wait_for_function(
        "(name) => [...document.querySelectorAll('#table-body tr')].some((tr) =>"
        " tr.querySelector('td[data-key=name]').textContent === name"
        " && tr.querySelector('td[data-key=state]').textContent === 'down')",
        arg=port1["name"],
    )
    row = interface_row(page, "host", port1["name"])
    assert (row["state"], row["operstate"]) == ("down", "down")

    # the state column sorts the down ones together; the kind filter and the table filter apply
    page.locator("#table-head th[data-key='state']").get_by_role("button").click()
    assert column(page, "state")[:2] == ["down", "down"]
    assert set(column(page, "name")[:2]) == {"spare0", port1["name"]}
    page.get_by_label("Bridges").uncheck()
    wait_rows(page, len(s.state["links"]) - 2)
    assert "bridge" not in column(page, "kind")
    page.locator("#table-filter").fill("demo-front")  # the bridge is hidden; its two ports remain
    wait_rows(page, 2)
    port2 = s.state["links"][f"host|{links['web2']['peer']['index']}"]
    assert sorted(column(page, "name")) == sorted([port1["name"], port2["name"]])


def test_an_interface_row_click_selects_it_on_the_graph(topology):
    s, links = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    show_table(page, "Interfaces")
    page.locator("#table-body tr", has_text="demo-back.vx").click()
    vxlan = link_id("alpha", links["vxlan"])
    page.wait_for_function(SELECTED_IS, arg=vxlan)
    assert page.locator("#tables").is_hidden() and page.locator("#cy").is_visible()
    assert page.locator("#details-title").inner_text() == "demo-back.vx"

    # Enter on a focused row, from the keyboard: a namespace's lo
    show_table(page, "Interfaces")
    lo = next(x for x in s.state["links"].values() if x["netns"] == "demo-db" and x["name"] == "lo")
    page.locator(f"#table-body tr[data-id='{link_id('alpha', lo)}']").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(SELECTED_IS, arg=link_id("alpha", lo))


IN_VIEW = """(id) => {
  const row = document.querySelector(`#table-body tr[data-id="${id}"]`);
  const box = document.querySelector('#tables').getBoundingClientRect();
  const r = row.getBoundingClientRect();
  return r.top >= box.top - 1 && r.bottom <= box.bottom + 1; // rounding of fractional pixels
}"""


def test_a_node_selected_on_the_graph_is_marked_and_scrolled_to_in_the_table(topology):
    s, links = demo_host()
    for i in range(80):  # namespaces with only lo: rows enough to scroll, each drawn on the graph
        s.namespace(f"demo-n{i:02d}")
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    spare = link_id("alpha", links["spare"])
    topology.click_node(spare)
    page.wait_for_function(SELECTED_IS, arg=spare)

    show_table(page, "Interfaces")  # the host namespace's rows sort last: far below the fold
    selected = page.locator("#table-body tr[aria-selected='true']")
    assert selected.count() == 1 and selected.get_attribute("data-id") == spare
    assert page.locator("#table-body tr").first.get_attribute("data-id") != spare
    page.wait_for_function(IN_VIEW, arg=spare)
    assert page.evaluate("document.querySelector('#tables').scrollTop") > 0

    # once shown, it stays where the user scrolls: live updates do not pull it back
    page.evaluate("document.querySelector('#tables').scrollTop = 0")
    address = s.address(links["web2"], "198.18.1.99/24")
    key = next(k for k, v in s.state["addresses"].items() if v is address)
    topology.send_delta(
        {
            "type": "topology.delta",
            "host": "alpha",
            "seq": 2,
            "events": [{"kind": "addresses", "action": "set", "key": key, "object": address}],
        }
    )
    page.wait_for_function("() => document.body.textContent.includes('198.18.1.99/24')")
    assert page.evaluate("document.querySelector('#tables').scrollTop") == 0

    # another table shows the same element's rows marked and in view too (an endpoint row: web1's eth0)
    page.get_by_role("tab", name="Graph").click()
    web1 = link_id("alpha", links["web1"])
    topology.click_node(web1)
    page.wait_for_function(SELECTED_IS, arg=web1)
    show_table(page, "Routes")
    marked = page.locator("#table-body tr[aria-selected='true']")
    assert marked.count() == 2  # its on-link route and its default route
    assert set(marked.evaluate_all("(trs) => trs.map((tr) => tr.dataset.id)")) == {web1}


def test_the_javascript_unit_tests_pass():
    """static/js/tests/ (`node --test`): the tables' rows, filters, sorting and CSV without a browser."""
    result = subprocess.run(
        ["node", "--test", "static/js/tests/"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


@pytest.mark.full_page
@pytest.mark.viewport(390, 800)
def test_the_tables_fit_a_390px_phone_without_sideways_scrolling(topology):
    s, _ = demo_host()
    topology.send_snapshot(s.snapshot_frame("alpha"))
    page = topology.page
    for name in ("Endpoints", "Networks", "Routes", "Interfaces"):
        show_table(page, name)
        assert page.locator("#table-body tr").first.is_visible()
        assert topology.js("() => document.documentElement.scrollWidth") <= 390
