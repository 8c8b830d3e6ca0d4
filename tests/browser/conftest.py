"""Browser fixtures: Debian's Chromium driven by Playwright, against the real page markup and scripts.

No web server runs: Playwright answers the page's requests itself. `/topology/` is
tests/browser/harness.html rendered with Django's template engine (it includes the real
templates/topology/ partials), `/static/...` is read from static/ then node_modules/ (the order of
STATICFILES_DIRS), the saved-layout API (and the desired topologies' list) is answered by a
LayoutStore, and the page's websocket to /ws/topology/ by a FakeServer the test drives frame by frame.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.frames import demo_host

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORIGIN = "http://switchboard.test"  # never resolved: every request is answered by the routes below
STATIC_DIRS = (ROOT / "static", ROOT / "node_modules")


# Where a node is drawn, ready for a click: viewport animations (a selection centres its node) are
# finished or dropped first so nothing moves afterwards, and a node outside the visible part of the
# graph is centred, as a person would pan to it.
VISIBLE_POSITION = """async (id) => {
  const cy = window.switchboard.cy;
  const node = cy.getElementById(id);
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  cy.stop(true, true);
  await frame(); // a stopped animation is wound to its end on the next frame
  const p = node.renderedPosition();
  if (p.x < 20 || p.y < 20 || p.x > cy.width() - 20 || p.y > cy.height() - 20) {
    cy.center(node);
    await frame();
  }
  const q = node.renderedPosition();
  return [q.x, q.y];
}"""


class FakeServer:
    """The server end of the page's /ws/topology/ socket."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []  # playwright WebSocketRoute, one per connection the page opened
        self.received: list[dict[str, Any]] = []

    def accept(self, ws: Any) -> None:
        ws.on_message(lambda message: self.received.append(json.loads(message)))
        self.sockets.append(ws)

    def send(self, frame: dict[str, Any]) -> None:
        self.sockets[-1].send(json.dumps(frame))

    def close(self) -> None:
        self.sockets[-1].close()


class TopologyPage:
    """The page under test plus helpers that wait for the graph to show what was sent."""

    def __init__(self, page: Any, server: FakeServer, layouts: LayoutStore) -> None:
        self.page = page
        self.server = server
        self.layouts = layouts

    def reload(self) -> None:
        """Reload the page (it gets the saved layout) and wait until its new socket is open."""
        self.page.reload()
        self.page.wait_for_function("document.body.dataset.wsStatus === 'open'")

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def send_snapshot(self, frame: dict[str, Any]) -> None:
        """Send a snapshot and wait until the graph shows it."""
        self.server.send(frame)
        self.page.wait_for_function("(f) => window.switchboard.state[f.host]?.seq === f.seq", arg=frame)
        self.idle()

    def send_demo(self, *hosts: str) -> tuple[Any, dict[str, Any]]:
        """The demo host's snapshot sent as each of `hosts`; returns demo_host()'s (state, links)."""
        s, links = demo_host()
        for host in hosts:
            self.send_snapshot(s.snapshot_frame(host))
        return s, links

    def idle(self) -> None:
        """Wait until every frame the page received is drawn."""
        self.js("() => window.switchboard.whenIdle().then(() => true)")

    def send_delta(self, frame: dict[str, Any]) -> None:
        """Send a delta and wait until the graph shows it."""
        before = self.js("() => window.switchboard.lastDeltaAppliedAt")
        self.server.send(frame)
        self.page.wait_for_function("(t) => window.switchboard.lastDeltaAppliedAt !== t", arg=before)

    def on_node(self, element_id: str, body: str) -> Any:
        """Evaluate `body` (an expression of the element `e`) against one graph element."""
        script = f"(id) => {{ const e = window.switchboard.cy.getElementById(id); return {body}; }}"
        return self.js(script, element_id)

    def ids(self, selector: str) -> set[str]:
        return set(self.js("(s) => window.switchboard.cy.$(s).map((e) => e.id())", selector))

    def shown(self) -> set[str]:
        """Ids of nodes the filters leave on screen (the page hides the rest with `.filtered`)."""
        return set(
            self.js(
                "() => window.switchboard.cy.nodes().filter((n) => !n.hasClass('filtered')"
                " && n.ancestors('.filtered').empty()).map((n) => n.id())"
            )
        )

    def positions(self) -> dict[str, dict[str, float]]:
        """Model positions of every node that is not a compound (compounds follow their children)."""
        return self.js(
            "() => Object.fromEntries(window.switchboard.cy.nodes().filter((n) => n.isChildless())"
            ".map((n) => [n.id(), n.position()]))"
        )

    def click_node(self, node_id: str) -> None:
        """Click where the node is drawn, as a person would."""
        box = self.page.locator("#cy").bounding_box()
        x, y = self.js(VISIBLE_POSITION, node_id)
        self.page.mouse.click(box["x"] + x, box["y"] + y)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "known_hosts(*names): hosts the page names (default: alpha)")
    config.addinivalue_line("markers", "viewport(width, height): the window size (default: 1400 × 900)")
    config.addinivalue_line(
        "markers", "full_page: the page as the web app serves it (site header included), not the harness"
    )


LAYOUT_URL = "/api/v1/topology/layouts/topology/"
DESIRED_URL = "/api/v1/topologies/"


class LayoutStore:
    """The saved-layout API (webapp/topology/api) as the page uses it: one user's positions, in memory."""

    def __init__(self) -> None:
        self.positions: dict[str, list[float]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.desired: list[dict[str, Any]] = []  # what GET /api/v1/topologies/ answers (results)

    def config(self) -> dict[str, Any]:
        """What the web app embeds in the page as `topology-layout`."""
        positions = dict(self.positions)
        return {"url": LAYOUT_URL, "view": "topology", "positions": positions, "csrf_token": "test"}

    def answer(self, route: Any) -> None:
        method = route.request.method
        body = json.loads(route.request.post_data or "{}")
        self.requests.append((method, body))
        if method == "PUT":
            self.positions = dict(body["positions"])
        elif method == "PATCH":
            self.positions.update(body.get("positions", {}))
            for node_id in body.get("remove", []):
                self.positions.pop(node_id, None)
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"view": "topology", "positions": self.positions, "updated": None}),
        )


def _render_harness(
    known_hosts: list[str], layout: dict[str, Any] | None = None, *, edit: dict[str, Any] | None = None
) -> str:
    """tests/browser/harness.html for those hosts, with a saved `layout` and the `edit` config an
    operator's page gets (None: a viewer's)."""
    from django.template import engines

    template = engines["django"].from_string((Path(__file__).parent / "harness.html").read_text())
    context = {
        "hosts": known_hosts,
        "ws_path": "/ws/topology/",
        "hosts_url": "/hosts/",
        "layout": layout,
        "desired_url": DESIRED_URL,
        "edit": edit,
    }
    return template.render(context)


def _render_full_page(known_hosts: list[str]) -> str:
    """templates/topology/topology.html in base.html, as a signed-in viewer sees it."""
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    return render_to_string(
        "topology/topology.html",
        {
            "user": SimpleNamespace(is_authenticated=True, get_username=lambda: "viewer"),
            "request": SimpleNamespace(path="/topology/"),
            "hosts": known_hosts,
            "ws_path": "/ws/topology/",
            "hosts_url": "/hosts/",
        },
    )


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _serve(route: Any, page_html: Callable[[], str], layouts: LayoutStore) -> None:
    path = urlsplit(route.request.url).path
    if path == "/topology/":
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=page_html())
        return
    if path == LAYOUT_URL:
        layouts.answer(route)
        return
    if path == DESIRED_URL:  # the desired topologies (webapp/networks), as the test set them
        body = {"count": len(layouts.desired), "next": None, "previous": None, "results": layouts.desired}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))
        return
    if path.startswith("/static/"):
        relative = path.removeprefix("/static/")
        for base in STATIC_DIRS:
            file = (base / relative).resolve()
            if file.is_relative_to(base) and file.is_file():
                route.fulfill(path=file)
                return
    route.fulfill(status=404, body="not found")


@pytest.fixture
def topology(browser: Any, request: pytest.FixtureRequest) -> Iterator[TopologyPage]:
    """The topology page, loaded and connected to a FakeServer that has sent nothing yet."""
    marker = request.node.get_closest_marker("known_hosts")
    known_hosts = list(marker.args) if marker else ["alpha"]
    full_page = request.node.get_closest_marker("full_page") is not None
    layouts = LayoutStore()
    if full_page:
        html = _render_full_page(known_hosts)
        page_html = lambda: html  # noqa: E731
    else:
        page_html = lambda: _render_harness(known_hosts, layouts.config())  # noqa: E731
    size = request.node.get_closest_marker("viewport")
    width, height = size.args if size else (1400, 900)
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    server = FakeServer()
    context.route(f"{ORIGIN}/**", lambda route: _serve(route, page_html, layouts))
    context.route_web_socket(f"ws://{ORIGIN.removeprefix('http://')}/ws/topology/", server.accept)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{ORIGIN}/topology/")
    page.wait_for_function("document.body.dataset.wsStatus === 'open'")
    yield TopologyPage(page, server, layouts)
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
