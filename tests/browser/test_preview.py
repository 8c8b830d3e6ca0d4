"""The connectivity preview beside a plan (static/js/preview.js), in Chromium: fetched, rendered as
signed sentences, errors said, and a late answer to an older request never shown over a newer one."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.conftest import ORIGIN

# A preview container like the Networks page's, on the topology page; loadPreview(url) fills it.
MOUNT = """async () => {
  const { loadPreview } = await import('/static/js/preview.js');
  const box = document.createElement('div');
  box.id = 'preview-under-test';
  box.hidden = true;
  box.innerHTML = '<p data-preview="status"></p><pre data-preview="lines"></pre>';
  document.body.prepend(box);
  window.load = (url) => { window.loading = loadPreview(box, url); };
}"""

BODY = {
    "gained": [
        {
            "source": "a",
            "target": "c",
            "network": "blue",
            "address": "198.18.7.2",
            "how": "L3",
            "path": ["a", "(host)", "c", "(host)", "a"],
        }
    ],
    "lost": [
        {
            "source": "a",
            "target": "b",
            "network": "red",
            "address": "198.18.6.3",
            "how": None,
            "path": [],
            "reason": "the node or its network is removed",
        }
    ],
    "interrupted": [{"node": "a", "why": "address 198.18.6.2 → 198.18.6.9 on red"}],
    "recreated": [],
    "counts": {"gained": 1, "lost": 1, "interrupted": 1, "recreated": 0},
    "pairs_before": 2,
    "pairs_after": 2,
    "applied": True,
    "host_forwards": False,
}


def json_answer(route: Any, body: Any, status: int = 200) -> None:
    route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def test_the_preview_is_fetched_and_each_line_says_what_it_is_in_words_and_colour(topology):
    page = topology.page
    asked: list[str] = []
    page.route("**/preview/**", lambda route: (asked.append(route.request.url), json_answer(route, BODY)))
    topology.js(MOUNT)
    topology.js("() => { window.load('/api/v1/topologies/pv/preview/?host=h1'); return window.loading; }")
    box = page.locator("#preview-under-test")
    assert box.is_visible() and asked == [f"{ORIGIN}/api/v1/topologies/pv/preview/?host=h1"]
    lines = box.locator("[data-preview=lines] span")
    assert lines.all_inner_texts() == [
        "+ a → c 198.18.7.2 (blue) becomes reachable (L3, routed: a → (host) → c → (host) → a)\n",
        "− a → b 198.18.6.3 (red) is no longer reachable: the node or its network is removed\n",
        "! a: live connections break (address 198.18.6.2 → 198.18.6.9 on red)\n",
    ]
    assert [lines.nth(i).get_attribute("class") for i in range(3)] == [
        "plan-add",
        "plan-remove",
        "plan-change",
    ]
    colours = [lines.nth(i).evaluate("(e) => getComputedStyle(e).color") for i in range(3)]
    assert len(set(colours)) == 3  # the page's stylesheet tells them apart by colour too
    assert box.locator("[data-preview=status]").inner_text() == (
        "2 pairs of nodes reachable now; 2 pairs after applying"
        " (taking the host not to route between networks: netcore never turns IP forwarding on)."
    )


def test_a_refusal_is_said_and_an_older_answer_arriving_late_is_not_shown(topology):
    page = topology.page
    held: list[Any] = []

    def answer(route: Any) -> None:
        if "slow" in route.request.url:
            held.append(route)  # answered below, after the newer request
        else:
            json_answer(route, {"error": "Conflict", "message": "topology pv has about 9 pairs"}, 409)

    page.route("**/preview/**", answer)
    topology.js(MOUNT)
    topology.js("() => window.load('/api/v1/topologies/slow/preview/')")
    page.wait_for_function(
        "() => document.querySelector('#preview-under-test [data-preview=status]').textContent"
    )
    assert (
        page.locator("#preview-under-test [data-preview=status]").inner_text()
        == "Working out who will reach whom…"
    )
    topology.js("() => { window.load('/api/v1/topologies/pv/preview/'); return window.loading; }")
    status = page.locator("#preview-under-test [data-preview=status]")
    assert status.inner_text() == "No connectivity preview: topology pv has about 9 pairs"
    for _ in range(50):  # the older request reached the network too, and waits for its answer
        if held:
            break
        page.wait_for_timeout(20)
    assert len(held) == 1
    held[0].fulfill(status=200, content_type="application/json", body=json.dumps(BODY))
    page.wait_for_timeout(200)  # give the late answer every chance to be (wrongly) shown
    assert status.inner_text() == "No connectivity preview: topology pv has about 9 pairs"
    assert page.locator("#preview-under-test [data-preview=lines] span").count() == 0
