"""P6: how fast the topology page draws and updates a large graph, in headless Chromium.

Rendering speed only, so not the real server: the page is tests/browser/harness.html (the real
templates/topology/ partials and static/js/topology.js) rendered with Django's template engine into a
scratch directory whose static/ links to the repo's static/ and node_modules/ (in the order of
STATICFILES_DIRS), served by `python -m http.server` on 127.0.0.1. The server and Debian's Chromium
(headless, launched as the browser tests launch it) run in a throwaway namespace that has nothing but
loopback, started there by this module's client (`python -m bench.browser < job.json`, under
nsenter). Playwright answers the page's websocket and never sends on it: frames go through the
page's test hook, `switchboard.feed(JSON.parse(text))`, which is what the socket's message handler
does. Times are the page's own `performance.now()`.

- first frame: a snapshot of 1 host with 1000 endpoint namespaces (lo + eth0, a veth whose peer is a
  port of one of 8 bridges: about 4000 graph nodes, every one drawn: endpoint grouping, which the
  page turns on by itself for large graphs, is switched off by the user first), from feed to
  `switchboard.ready` plus one animation frame. Goal 3 s. The default (grouped) view is in the note.
- delta: one new endpoint on that graph (its namespace, lo, the veth pair, an address and two routes,
  as an agent reports it), fed at a random point of a frame, until `lastDeltaAppliedAt` changes plus
  one animation frame (so at least one frame of waiting is included). Goal 50 ms, median of 10.
- pan fps: about 1000 nodes (250 endpoints, below the large-graph simplifications), `cy.panBy` every
  animation frame for 2 s, frames Cytoscape drew (its `render` events) per second. Goal 15 fps,
  reported as seconds per frame.

No side-by-side baseline: the rows compare against the goals (ratio = goal / measured, goal ratio
1.0). Anchors: Weave Scope takes ~20 s to lay out 500 nodes; Kiali's graph fails near 1000 nodes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.figures import Context, Result, figure
from bench.hostns import NETNS_DIR, REPO_ROOT, run_in

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [  # as tests/browser/conftest.py launches it
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOST = "bench"
ENDPOINTS = 1000
PER_BRIDGE = 125  # 8 bridges
DELTAS = 10
PAN_ENDPOINTS = 250  # about 1000 graph nodes
PAN_MS = 2000
GOAL_FIRST_S = 3.0
GOAL_DELTA_S = 0.050
GOAL_FPS = 15.0
ANCHORS = "anchors: Weave Scope ~20 s to lay out 500 nodes; Kiali fails near 1000 nodes"
PAGE_TIMEOUT_MS = 120_000

# --- in the page -----------------------------------------------------------------------------------

FRAME_JS = "const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));"
TIMEOUT_JS = (
    "const timeout = (p, ms, what) => Promise.race([p, new Promise((_, reject) =>"
    " setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms))]);"
)

FIRST_FRAME = f"""async ([text, ms]) => {{
  {FRAME_JS} {TIMEOUT_JS}
  const sb = window.switchboard;
  await frame();
  const t0 = performance.now();
  const parsed = JSON.parse(text);
  const t1 = performance.now();
  sb.feed(parsed);
  await timeout(sb.ready, ms, 'switchboard.ready');
  const t2 = performance.now();
  await frame();
  const t3 = performance.now();
  return {{
    seconds: (t3 - t0) / 1000, parse_s: (t1 - t0) / 1000, ready_s: (t2 - t0) / 1000,
    nodes: sb.cy.nodes().length, edges: sb.cy.edges().length, large: sb.largeMode,
  }};
}}"""

DELTAS_JS = f"""async ([texts, ms]) => {{
  {FRAME_JS} {TIMEOUT_JS}
  const sb = window.switchboard;
  const total = [], applied = [];
  for (const text of texts) {{
    await frame(); await frame();
    // A socket message arrives at any point of a frame.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 16));
    const before = sb.lastDeltaAppliedAt;
    const t0 = performance.now();
    await timeout(sb.feed(JSON.parse(text)), ms, 'delta');
    if (sb.lastDeltaAppliedAt === before) throw new Error('lastDeltaAppliedAt did not change');
    const t1 = performance.now();
    await frame();
    total.push((performance.now() - t0) / 1000);
    applied.push((t1 - t0) / 1000);
  }}
  return {{ total, applied, nodes: sb.cy.nodes().length }};
}}"""

PAN = """async (ms) => {
  const cy = window.switchboard.cy;
  let renders = 0;
  let rafs = 0;
  const counted = () => { renders += 1; };
  cy.on('render', counted);
  const t0 = performance.now();
  let end = t0;
  await new Promise((resolve) => {
    const step = (now) => {
      rafs += 1;
      end = now;
      if (now - t0 >= ms) { resolve(); return; }
      const a = rafs / 20; // a slow circle: the graph stays in view
      cy.panBy({ x: 6 * Math.cos(a), y: 6 * Math.sin(a) });
      requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  cy.off('render', counted);
  const seconds = (end - t0) / 1000;
  return { renders, rafs, seconds, fps: renders / seconds, nodes: cy.nodes().length, zoom: cy.zoom() };
}"""

# Endpoint grouping as a user switches it off: the change event marks the choice as the user's.
UNGROUP = """() => {
  const box = document.querySelector('#group-endpoints');
  for (const checked of [true, false]) {
    box.checked = checked;
    box.dispatchEvent(new Event('change', { bubbles: true }));
  }
}"""

# --- the client, inside the namespace --------------------------------------------------------------


def _render_page(site: Path) -> None:
    """tests/browser/harness.html through Django's template engine, as site/topology/index.html."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("SWITCHBOARD_SECRET_KEY", secrets.token_urlsafe(50))  # no var/secret_key
    import django

    django.setup()
    from django.template import engines

    harness = (REPO_ROOT / "tests" / "browser" / "harness.html").read_text()
    html = (
        engines["django"]
        .from_string(harness)
        .render({"hosts": [HOST], "ws_path": "/ws/topology/", "hosts_url": "/hosts/"})
    )
    (site / "topology").mkdir(parents=True)
    (site / "topology" / "index.html").write_text(html)
    static = site / "static"
    static.mkdir()
    for base in (REPO_ROOT / "static", REPO_ROOT / "node_modules"):  # first one wins, as in Django
        for entry in sorted(base.iterdir()) if base.is_dir() else []:
            if not entry.name.startswith(".") and not (static / entry.name).exists():
                (static / entry.name).symlink_to(entry)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(site: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(site), str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return server, port
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"http.server did not start: {log.read_text(errors='replace')[-300:]}")
        time.sleep(0.05)


def _snapshot_and_deltas(endpoints: int, deltas: int) -> tuple[str, list[str], int]:
    """The snapshot frame and `deltas` delta frames (one new endpoint each) as JSON text."""
    from tests.browser.frames import endpoints_host

    s = endpoints_host(endpoints, per_bridge=PER_BRIDGE)
    snapshot = json.dumps(s.snapshot_frame(HOST, seq=1))
    frames, per_delta = [], 0
    bridges = -(-endpoints // PER_BRIDGE)
    for k in range(deltas):
        before = {kind: set(objects) for kind, objects in s.state.items()}
        i = endpoints + k
        cidr = f"198.18.{16 + i // 250}.{i % 250 + 2}/20"
        s.endpoint(f"big-x{k}", f"big-net.{k % bridges}", cidr, "198.18.16.1")
        events = [
            {"kind": kind, "action": "set", "key": key, "object": copy.deepcopy(obj)}
            for kind, objects in s.state.items()
            for key, obj in objects.items()
            if key not in before[kind]
        ]
        frames.append(json.dumps({"type": "topology.delta", "host": HOST, "seq": 2 + k, "events": events}))
        per_delta = len(events)
    return snapshot, frames, per_delta


def client(job: dict[str, Any]) -> dict[str, Any]:
    """Serve the page, drive Chromium, measure; everything started here is stopped here."""
    workdir = Path(tempfile.mkdtemp(prefix="sbbench-p6-"))
    try:
        site = workdir / "site"
        _render_page(site)
        server, port = _serve(site, workdir / "http.log")
        try:
            return _measure(job, port)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(job: dict[str, Any], port: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    snapshot, deltas, per_delta = _snapshot_and_deltas(job["endpoints"], job["deltas"])
    small, _, _ = _snapshot_and_deltas(job["pan_endpoints"], 0)
    out: dict[str, Any] = {"snapshot_bytes": len(snapshot), "delta_events": per_delta}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            out["chromium"] = browser.version

            def open_page(*, grouped: bool) -> Any:
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                # The page's socket is answered here and stays silent: frames come through feed().
                context.route_web_socket(f"ws://127.0.0.1:{port}/ws/topology/", lambda ws: None)
                page = context.new_page()
                page.set_default_timeout(PAGE_TIMEOUT_MS)
                page.goto(f"http://127.0.0.1:{port}/topology/")
                page.wait_for_function("document.body.dataset.wsStatus === 'open' && window.switchboard")
                if not grouped:
                    page.evaluate(UNGROUP)
                return page

            page = open_page(grouped=False)
            out["first"] = page.evaluate(FIRST_FRAME, [snapshot, PAGE_TIMEOUT_MS])
            out["deltas"] = page.evaluate(DELTAS_JS, [deltas, PAGE_TIMEOUT_MS])
            page.context.close()

            page = open_page(grouped=True)
            out["first_grouped"] = page.evaluate(FIRST_FRAME, [snapshot, PAGE_TIMEOUT_MS])
            out["deltas_grouped"] = page.evaluate(DELTAS_JS, [deltas, PAGE_TIMEOUT_MS])
            page.context.close()

            page = open_page(grouped=False)
            out["pan_first"] = page.evaluate(FIRST_FRAME, [small, PAGE_TIMEOUT_MS])
            page.wait_for_timeout(500)  # let the first draw settle
            out["pan"] = page.evaluate(PAN, job["pan_ms"])
            page.context.close()
        finally:
            browser.close()
    return out


# --- the figure ------------------------------------------------------------------------------------


def _kill_in(ns: str) -> int:
    """SIGKILL every process left in our throwaway namespace (a Chromium or a server whose parent died)."""
    inode = os.stat(NETNS_DIR / ns).st_ino
    killed = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if int(pid) != os.getpid() and os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
    return killed


@figure("P6", order=96)
def p6_browser(ctx: Context) -> list[Result]:
    """P6: the topology page in headless Chromium: first frame at ~4000 nodes, one delta, pan fps."""
    ns = ctx.run.add_host(ctx.tag("p6"))
    job = {"endpoints": ENDPOINTS, "deltas": DELTAS, "pan_endpoints": PAN_ENDPOINTS, "pan_ms": PAN_MS}
    env_note = ""
    try:
        done = run_in(
            ns,
            [sys.executable, "-m", "bench.browser"],
            stdout=subprocess.PIPE,
            stdin=json.dumps(job),
            timeout=600,
        )
    finally:
        if killed := _kill_in(ns):
            env_note = f"{killed} processes were left in the namespace and killed"
        ctx.run.delete([ns])
    if not done.ok:
        raise RuntimeError(f"the browser client failed: {done.tail(600)}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    first, grouped, deltas, pan = out["first"], out["first_grouped"], out["deltas"], out["pan"]
    total, applied = deltas["total"], deltas["applied"]
    fps = pan["fps"]
    first_note = [
        f"{ENDPOINTS} endpoints on {-(-ENDPOINTS // PER_BRIDGE)} bridges, grouping off: "
        f"{first['nodes']} nodes and {first['edges']} edges drawn; "
        f"snapshot {out['snapshot_bytes'] / 1e6:.1f} MB, JSON.parse {first['parse_s'] * 1000:.0f} ms, "
        f"ready (layout done) after {first['ready_s']:.2f} s",
        f"default view (endpoints grouped per bridge): {grouped['nodes']} nodes, "
        f"first frame {grouped['seconds']:.2f} s",
        f"Chromium {out['chromium']} headless, software rendering",
        ANCHORS,
        env_note,
    ]
    delta_note = [
        f"one endpoint ({out['delta_events']} events) on the {first['nodes']}-node graph, median of "
        f"{len(total)} (max {max(total) * 1000:.0f} ms); of which applied (feed -> lastDeltaAppliedAt) "
        f"median {statistics.median(applied) * 1000:.1f} ms, the rest is drawing the next frame",
        f"default view (grouped): median {statistics.median(out['deltas_grouped']['total']) * 1000:.1f} ms",
    ]
    pan_note = [
        f"{fps:.1f} fps: {pan['renders']} frames drawn ({pan['rafs']} animation frames) in "
        f"{pan['seconds']:.2f} s of cy.panBy every frame, {pan['nodes']} nodes at zoom {pan['zoom']:.2f} "
        f"(first frame {out['pan_first']['seconds']:.2f} s)",
    ]

    def note(parts: list[str]) -> str:
        return "; ".join(filter(None, parts))

    grouped_delta = statistics.median(out["deltas_grouped"]["total"])
    return [
        Result(
            "P6 first frame",
            "goal 3 s (default view: grouped)",
            GOAL_FIRST_S,
            grouped["seconds"],
            1.0,
            f"{grouped['nodes']} nodes drawn; the page groups endpoints per bridge above 1500 nodes",
        ),
        Result("P6 delta", "goal 50 ms (default view: grouped)", GOAL_DELTA_S, grouped_delta, 1.0, ""),
        Result(
            "P6 first frame", "goal 3 s (grouping off)", GOAL_FIRST_S, first["seconds"], 1.0, note(first_note)
        ),
        Result(
            "P6 delta",
            "goal 50 ms (grouping off)",
            GOAL_DELTA_S,
            statistics.median(total),
            1.0,
            note(delta_note),
        ),
        Result(
            "P6 pan fps",
            f"goal {GOAL_FPS:g} fps (s/frame)",
            1 / GOAL_FPS,
            1 / fps if fps > 0 else None,
            1.0,
            note(pan_note),
            valid=fps > 0,
        ),
    ]


def main() -> int:
    job = json.loads(sys.stdin.read())
    print(json.dumps(client(job)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
