"""The agent's progress reports: at most one per PROGRESS_INTERVAL per command (a clock injected)."""

from __future__ import annotations

import pytest

from netcore.agent import client


def test_a_command_reports_progress_at_most_once_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(client.time, "monotonic", lambda: now[0])
    command, other = client._Command(), client._Command()
    due = []
    for at in (0.0, 0.05, 0.19, 0.2, 0.3, 0.41, 5.0):
        now[0] = 100.0 + at
        due.append(command.report_due())
    assert due == [True, False, False, True, False, True, True]
    assert other.report_due()  # each command has its own pace
