"""P8 form: one node added through the Networks page's form in headless Chromium, until it is ready.

Run by bench.desired inside the P8 stack's namespace (`python -m bench.form < job.json`, under
nsenter), where daphne listens on 127.0.0.1: Chromium logs in as an operator, opens the topology's
detail (`/networks/#host/name`) and, `count` times: clicks "Add node", types the name, presses Enter
(the form's submit; the page then plans the edit by itself) and waits for the plan's "Apply these
changes"; clicks it and waits for the topology's status to read "ready" with the node listed. Each
step is timed with perf_counter around waits that check the page every animation frame; no
person's time is in it. Prints one JSON line: {"chromium", "steps": [{"plan", "apply"}]}.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.browser import CHROMIUM, CHROMIUM_ARGS

TIMEOUT_MS = 60_000
# Checked every animation frame (Playwright's expect() polls at 100 ms and more: too coarse here).
PLAN_SHOWN = "() => !document.querySelector('#plan-apply').hidden"
READY = """(node) => document.querySelector('#detail-status').textContent === 'ready'
  && document.querySelector(`#detail-nodes [data-node="${node}"]`) !== null"""


def client(job: dict[str, Any]) -> dict[str, Any]:
    from playwright.sync_api import expect, sync_playwright

    steps = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(base_url=job["base"])
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto("/accounts/login/?next=/networks/")
            page.get_by_label("Username").fill(job["user"])
            page.get_by_label("Password").fill(job["password"])
            page.get_by_label("Password").press("Enter")
            page.wait_for_url("**/networks/")
            page.goto(f"/networks/#{job['host']}/{job['topology']}")
            expect(page.locator("#detail-status")).to_have_text("ready")
            for name in job["names"]:
                page.get_by_role("button", name="Add node").click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_label("Name", exact=True).fill(name)
                t = time.perf_counter()
                dialog.get_by_label("Name", exact=True).press("Enter")
                page.wait_for_function(PLAN_SHOWN, polling="raf")
                planned = time.perf_counter()
                page.get_by_role("button", name="Apply these changes").click()
                page.wait_for_function(READY, arg=name, polling="raf")
                steps.append({"plan": planned - t, "apply": time.perf_counter() - planned})
            return {"chromium": browser.version, "steps": steps}
        finally:
            browser.close()


def main() -> int:
    print(json.dumps(client(json.loads(sys.stdin.read()))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
