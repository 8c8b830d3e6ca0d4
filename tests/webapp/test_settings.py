"""Settings read from the environment."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from webapp.settings import _env_seconds


@pytest.mark.parametrize(("value", "expected"), [(None, 15.0), ("", 15.0), ("2.5", 2.5), (" 40 ", 40.0)])
def test_the_lease_setting(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: float) -> None:
    if value is None:
        monkeypatch.delenv("SWITCHBOARD_AGENT_LEASE", raising=False)
    else:
        monkeypatch.setenv("SWITCHBOARD_AGENT_LEASE", value)
    assert _env_seconds("SWITCHBOARD_AGENT_LEASE", 15.0) == expected


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "inf", "1e9"])
def test_a_lease_setting_that_is_not_a_sensible_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_AGENT_LEASE", value)
    with pytest.raises(ImproperlyConfigured, match="SWITCHBOARD_AGENT_LEASE"):
        _env_seconds("SWITCHBOARD_AGENT_LEASE", 15.0)
