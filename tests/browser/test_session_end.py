"""The topology page when the server ends its session (a `session.ended` frame, then close 4003):
it says why, shows it is signed out, and does not reconnect; any other close reconnects."""

from __future__ import annotations

from playwright.sync_api import expect


def test_a_session_ended_by_the_server_says_why_and_is_not_retried(topology):
    topology.server.send({"v": 1, "type": "session.ended", "reason": "the API token was revoked"})
    topology.server.sockets[-1].close(code=4003, reason="")
    expect(topology.page.locator(".session-ended")).to_contain_text("the API token was revoked")
    expect(topology.page.locator("#conn-status")).to_have_text("Signed out")
    topology.page.wait_for_timeout(2000)  # longer than the first reconnection delay (at most 0.5 s)
    assert len(topology.server.sockets) == 1


def test_any_other_close_reconnects(topology):
    topology.server.sockets[-1].close(code=1011, reason="")
    topology.page.wait_for_function("document.body.dataset.wsStatus === 'closed'")
    topology.page.wait_for_function("document.body.dataset.wsStatus === 'open'")
    assert len(topology.server.sockets) == 2
    assert topology.page.locator(".session-ended").count() == 0
