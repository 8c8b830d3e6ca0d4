"""Settings read from the environment, and the modes of the files the web app keeps in var/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from webapp.settings import _env_seconds, _owner_only, _private_file

NOBODY = 65534


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


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


def test_var_is_made_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "a" / "var"
    _owner_only(var)
    assert mode(var) == 0o700
    _private_file(var / "db.sqlite3")
    assert mode(var / "db.sqlite3") == 0o600 and (var / "db.sqlite3").read_bytes() == b""


def test_a_var_made_before_is_tightened(tmp_path: Path) -> None:
    """A checkout set up before files were kept private: var/ 0755, db.sqlite3 and its journals 0644."""
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o755)
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "db.sqlite3-journal", "secret_key"):
        (var / name).write_text("x")
        (var / name).chmod(0o644)
    (var / "static").mkdir()
    (var / "static").chmod(0o755)
    (var / "static" / "app.css").write_text("x")
    (var / "static" / "app.css").chmod(0o644)
    (var / "run.sh").write_text("x")
    (var / "run.sh").chmod(0o775)

    _owner_only(var)
    assert mode(var) == 0o700 and mode(var / "static") == 0o700 and mode(var / "run.sh") == 0o700
    for name in ("db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "db.sqlite3-journal", "secret_key"):
        assert mode(var / name) == 0o600, name
    assert mode(var / "static" / "app.css") == 0o644  # not recursive: out of others' reach in var/ anyway


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_only_what_is_ours_is_changed_and_links_are_not_followed(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir()
    var.chmod(0o755)
    theirs = var / "theirs.sqlite3"
    theirs.write_text("x")
    theirs.chmod(0o644)
    os.chown(theirs, NOBODY, NOBODY)
    outside = tmp_path / "outside"
    outside.write_text("x")
    outside.chmod(0o644)
    (var / "link").symlink_to(outside)
    other = tmp_path / "other-var"  # a var/ of another user (the stack tests' daphne runs as nobody)
    other.mkdir()
    other.chmod(0o755)
    os.chown(other, NOBODY, NOBODY)

    _owner_only(var)
    _owner_only(other)
    assert mode(var) == 0o700
    assert mode(theirs) == 0o644 and mode(outside) == 0o644
    assert mode(other) == 0o755


def test_an_existing_file_is_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    db.write_bytes(b"SQLite format 3\0")
    db.chmod(0o640)
    _private_file(db)
    assert db.read_bytes() == b"SQLite format 3\0" and mode(db) == 0o640  # _owner_only's job, not this
