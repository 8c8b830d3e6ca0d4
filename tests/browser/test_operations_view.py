"""The live operations list (static/js/operations.js): progress bars and Cancel buttons, in Chromium."""

from __future__ import annotations

from typing import Any

# A second list on the topology page, driven directly: `cancel` answers as the test says and keeps
# the ids it was asked about.
MOUNT = """async (answer) => {
  const { createOperationsView } = await import('/static/js/operations.js');
  const list = document.createElement('ol');
  list.id = 'ops-under-test';
  document.body.prepend(list);
  window.asked = [];
  window.answer = answer;
  window.view = createOperationsView(list, {
    cancel: async (id) => { window.asked.push(id); return window.answer; },
  });
}"""


def update(topology: Any, **op: Any) -> None:
    topology.js("(op) => window.view.update(op)", {"host": "alpha", "kind": "apply", **op})


def test_a_running_operation_shows_its_progress_and_can_be_cancelled(topology):
    page = topology.page
    topology.js(MOUNT, {"status": 202, "data": {}})
    ops = page.locator("#ops-under-test")
    update(topology, id="op-1", status="pending")
    assert ops.get_by_role("progressbar").count() == 0
    cancel = ops.get_by_role("button", name="Cancel apply on alpha")
    assert cancel.is_enabled()

    update(topology, id="op-1", status="running", progress="building nodes 128/500", done=128, total=500)
    bar = ops.get_by_role("progressbar", name="Progress of apply on alpha")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("128", "500")
    assert "building nodes 128/500" in ops.inner_text()
    topology.js("() => { window.button = document.querySelector('#ops-under-test [data-cancel]'); }")
    update(topology, id="op-1", status="running", progress="building nodes 256/500", done=256, total=500)
    assert bar.get_attribute("value") == "256" and "building nodes 256/500" in ops.inner_text()
    # progress updates the item in place: the button a person may be pressing is not replaced
    assert topology.js("() => document.querySelector('#ops-under-test [data-cancel]') === window.button")

    cancel.click()
    page.wait_for_function("() => window.asked.length === 1")
    assert topology.js("() => window.asked") == ["op-1"]
    assert cancel.is_disabled() and cancel.inner_text() == "Cancelling…"

    message = "apply of topology demo was cancelled; what it had created was removed"
    update(topology, id="op-1", status="cancelled", error=message)
    assert ops.get_by_role("progressbar").count() == 0 and cancel.count() == 0
    assert "cancelled" in ops.inner_text() and message in ops.inner_text()


def test_a_refused_cancel_says_why_and_can_be_asked_again(topology):
    topology.js(MOUNT, {"status": 403, "data": {"error": "PermissionDenied", "message": "operators only"}})
    ops = topology.page.locator("#ops-under-test")
    update(topology, id="op-2", status="running")
    ops.get_by_role("button", name="Cancel apply on alpha").click()
    ops.get_by_role("alert").wait_for()
    assert ops.get_by_role("alert").inner_text() == "Could not cancel: operators only"
    assert ops.get_by_role("button", name="Cancel apply on alpha").is_enabled()


def test_the_topology_page_shows_progress_from_the_socket_without_a_cancel_button(topology):
    """The graph page's list, fed by `operation.status` frames; it offers no Cancel (read-only there)."""
    topology.send_demo("alpha")
    frame = {"id": "op-3", "host": "alpha", "kind": "apply", "status": "running"}
    topology.server.send({"type": "operation.status", "operation": frame})
    progress = {"progress": "building nodes 384/500", "done": 384, "total": 500}
    topology.server.send({"type": "operation.status", "operation": {**frame, **progress}})
    bar = topology.page.locator("#operations").get_by_role("progressbar", name="Progress of apply on alpha")
    bar.wait_for()
    assert bar.get_attribute("value") == "384"
    assert topology.page.locator("#operations [data-cancel]").count() == 0
