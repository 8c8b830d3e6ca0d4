"""The Content-Security-Policy (webapp/settings.py) in Chromium: every page of the dashboard, served by
the real daphne with the real agent connected, works under it and breaks none of its rules.

Violations are caught two ways: Chromium's console message for each ("... violates the following
Content Security Policy directive ..."), and the `securitypolicyviolation` events of every document,
handed to the test as they happen by a listener installed before any of the page's own scripts run.
The topology page must also draw the host's graph with its layout in the Web Worker
(static/js/layout-worker.js; blocked, the page would lay out on the main thread instead) and have its
websocket open (connect-src 'self' covers ws: of the same host). A last step injects an inline script
and checks that it is refused and seen, so a quiet run means the policy held, not a deaf listener.
"""

from __future__ import annotations

from typing import Any

from tests.browser.test_end_to_end import (
    HOST,
    PASSWORD,
    TIMEOUT_MS,
    log_in,
    page_of,
    run_in_browser,
    stack,  # noqa: F401 (a fixture)
    wait_for_agent,
)
from tests.stack.harness import Stack

ADMIN = "csp-admin"
# path -> an expression true once the page has done what it does on load
PAGES = {
    "/networks/": "() => document.readyState === 'complete'",
    "/hosts/": "() => document.readyState === 'complete'",
    "/audit/": "() => document.readyState === 'complete'",
    "/accounts/password_change/": "() => document.readyState === 'complete'",
    "/accounts/tokens/": "() => document.readyState === 'complete'",
    # Swagger UI has drawn the schema's operations (its script, the set-up file, the schema all ran)
    "/api/docs/": "() => document.querySelectorAll('#swagger-ui .opblock').length > 0",
    "/admin/": "() => document.readyState === 'complete'",
    "/admin/auth/user/": "() => document.readyState === 'complete'",
}
LISTEN = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolation({
    page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample,
  });
});
"""


def test_every_page_works_under_the_policy_and_breaks_none_of_its_rules(stack: Stack) -> None:  # noqa: F811
    stack.manage("adduser", ADMIN, "--role", "admin", f"--password={PASSWORD}")
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_token(HOST))
    wait_for_agent(agent)
    base = f"http://127.0.0.1:{web.port}"
    status, _ = web.http("GET", "/accounts/login/")
    assert status == 200

    def steps(browser: Any) -> None:
        from playwright.sync_api import expect

        with page_of(browser, base) as (page, errors):
            violations: list[dict[str, Any]] = []
            console: list[str] = []
            page.expose_function("__cspViolation", lambda violation: violations.append(violation))
            page.add_init_script(LISTEN)
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            missing: list[str] = []  # anything a page asked for and did not get (a script, a style sheet)
            page.on("response", lambda r: r.status == 404 and missing.append(r.url))

            # The login page, then in as the admin: the topology page is where the login leads.
            page.goto("/accounts/login/")
            expect(page.locator("#forgot-password")).to_contain_text("Ask an admin")
            log_in(page, ADMIN, "/topology/")
            page.evaluate("() => { window.switchboard.ready.then(() => { window.__cspReady = true; }); }")
            page.wait_for_function("() => window.__cspReady === true", timeout=TIMEOUT_MS)
            page.wait_for_function("() => document.body.dataset.wsStatus === 'open'", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "(id) => window.switchboard.cy.getElementById(id).nonempty()"
                " && window.switchboard.cy.nodes().length > 2",
                arg=HOST,
                timeout=TIMEOUT_MS,
            )
            page.evaluate("() => window.switchboard.whenIdle()")
            workers = [w.url for w in page.workers]
            assert any(url.endswith("/static/js/layout-worker.js") for url in workers), workers
            assert not [m for m in console if "main thread" in m], console

            for path, loaded in PAGES.items():
                page.goto(path)
                assert page.url == f"{base}{path}", f"{path} led to {page.url}"
                page.wait_for_function(loaded, timeout=TIMEOUT_MS)
                page.wait_for_load_state("networkidle")

            assert violations == [], violations
            assert missing == [], missing
            assert not [m for m in console if "Content Security Policy" in m], console
            assert not errors, f"uncaught errors in the pages: {errors}"

            # The listener hears a violation: an inline script is refused and reported.
            page.evaluate(
                "() => { const s = document.createElement('script');"
                " s.textContent = 'window.__inlineRan = true'; document.body.append(s); }"
            )
            for _ in range(50):  # the report comes back through the exposed function, soon after
                if violations:
                    break
                page.wait_for_timeout(100)
            assert page.evaluate("() => window.__inlineRan === undefined")
            assert [v["directive"] for v in violations] == ["script-src-elem"], violations
            assert any("Content Security Policy" in m for m in console), console

    run_in_browser(steps, web=web, agent=agent)
    assert agent.alive and web.proc.alive
