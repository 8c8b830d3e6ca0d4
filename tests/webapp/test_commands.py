"""Management commands: adduser, ensureadmin, hosttoken."""

from __future__ import annotations

import os
import pwd
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from webapp.accounts.selectors import token_find
from webapp.hosts.models import Host
from webapp.hosts.services import host_authenticate

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def _groups(username: str) -> list[str]:
    return list(get_user_model().objects.get(username=username).groups.values_list("name", flat=True))


def test_adduser_creates_with_a_role_and_prints_the_token_last() -> None:
    lines = run("adduser", "alice", "--role", "operator", "--password", "s3cret-pass")
    user = get_user_model().objects.get(username="alice")
    assert token_find(key=lines[-1]).user == user
    assert lines[-2].startswith("API token for alice, shown only now ")  # every value printed says what it is
    assert not [line for line in lines if "s3cret-pass" in line]
    assert _groups("alice") == ["operator"]
    assert user.check_password("s3cret-pass")
    assert not user.is_superuser


def test_adduser_updates_to_exactly_one_role_and_keeps_the_token() -> None:
    token = run("adduser", "bob", "--role", "viewer")[-1]
    lines = run("adduser", "bob", "--role", "admin")
    assert lines == ["updated user bob (admin)"]  # the token is shown only when made
    assert token_find(key=token).status == "active"
    new = run("adduser", "bob", "--role", "admin", "--new-token")[-1]
    assert new != token and token_find(key=new).user.username == "bob"
    user = get_user_model().objects.get(username="bob")
    assert _groups("bob") == ["admin"]
    assert user.is_staff and user.is_superuser
    run("adduser", "bob", "--role", "viewer")
    user.refresh_from_db()
    assert _groups("bob") == ["viewer"]
    assert not (user.is_staff or user.is_superuser)


def test_adduser_generates_a_password_for_a_new_user() -> None:
    lines = run("adduser", "carol", "--role", "viewer")
    password = next(line.split(": ", 1)[1] for line in lines if line.startswith("password for carol: "))
    assert get_user_model().objects.get(username="carol").check_password(password)


def test_ensureadmin_creates_the_admin_once() -> None:
    lines = run("ensureadmin", "--url", "http://127.0.0.1:9000")
    assert lines[:2] == ["Created the first admin.", "Log in at http://127.0.0.1:9000/accounts/login/"]
    password = lines[-1].split(": ", 1)[1]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert _groups("admin") == ["admin"]
    assert run("ensureadmin") == []


def test_ensureadmin_keeps_the_password_in_a_0600_file_while_it_works(tmp_path: Path) -> None:
    path = tmp_path / "var" / "admin-password"
    lines = run("ensureadmin", "--password-file", str(path))
    assert lines[0] == f"Created the first admin (saved in {path}, mode 0600)."
    password = lines[-1].split(": ", 1)[1]
    assert path.read_text() == password + "\n"
    assert path.stat().st_mode & 0o777 == 0o600

    again = run("ensureadmin", "--password-file", str(path))  # shown again on the next `make run`
    assert again[-1] == f"  password: {password}" and "still works" in again[0]

    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-the-admin")
    admin.save()
    assert run("ensureadmin", "--password-file", str(path)) == [
        f"The password in {path} no longer logs in as admin."
    ]
    assert run("ensureadmin", "--password-file", str(tmp_path / "none")) == []


def test_ensureadmin_reset_password(tmp_path: Path) -> None:
    first = run("ensureadmin")[-1].split(": ", 1)[1]
    path = tmp_path / "admin-password"
    path.write_text("old\n")
    path.chmod(0o644)
    lines = run("ensureadmin", "--reset-password", "--password-file", str(path))
    assert lines[0] == f"New password for admin (saved in {path}, mode 0600)."
    password = lines[-1].split(": ", 1)[1]
    admin = get_user_model().objects.get(username="admin")
    assert password != first and admin.check_password(password) and admin.is_superuser
    assert path.read_text() == password + "\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_ensureadmin_hide_password_names_the_file_instead(tmp_path: Path) -> None:
    """What `make run` does when its output is not a terminal: the password goes to the file alone."""
    path = tmp_path / "admin-password"
    where = f"  password: in {path} (mode 0600, readable by {pwd.getpwuid(os.geteuid()).pw_name} only)"
    lines = run("ensureadmin", "--password-file", str(path), "--hide-password")
    password = path.read_text().strip()
    assert lines == [
        f"Created the first admin (saved in {path}, mode 0600).",
        "Log in at http://127.0.0.1:8000/accounts/login/",
        "  user:     admin",
        where,
    ]
    assert path.stat().st_mode & 0o777 == 0o600
    assert get_user_model().objects.get(username="admin").check_password(password)

    again = run("ensureadmin", "--password-file", str(path), "--hide-password")
    assert "still works" in again[0] and again[-1] == where
    assert run("ensureadmin", "--password-file", str(path))[-1] == f"  password: {password}"  # on a terminal

    reset = run("ensureadmin", "--reset-password", "--password-file", str(path), "--hide-password")
    new = path.read_text().strip()
    assert new != password and reset[-1] == where
    assert not [line for line in reset if new in line]
    assert get_user_model().objects.get(username="admin").check_password(new)


def test_ensureadmin_hide_password_without_a_file_is_refused() -> None:
    for args in (["--hide-password"], ["--hide-password", "--reset-password"]):
        with pytest.raises(CommandError, match="--hide-password needs --password-file"):
            run("ensureadmin", *args)
    assert not get_user_model().objects.exists()  # refused before making or changing anyone


def test_hosttoken_create_rotate_revoke() -> None:
    token = run("hosttoken", "h1")[-1]
    assert host_authenticate(token=token).name == "h1"
    assert Host.objects.get(name="h1").token_prefix == token[:8]

    with pytest.raises(CommandError, match="already exists.*--rotate"):
        run("hosttoken", "h1")

    new = run("hosttoken", "h1", "--rotate")[-1]
    assert new != token
    assert host_authenticate(token=token) is None
    assert host_authenticate(token=new).name == "h1"

    run("hosttoken", "h1", "--revoke")
    assert host_authenticate(token=new) is None
    assert run("hosttoken", "h1", "--rotate")[-1].startswith("sbh_")  # a new token re-enables the host

    with pytest.raises(CommandError, match="no host named 'nope'"):
        run("hosttoken", "nope", "--revoke")


def test_only_the_hash_of_a_token_is_stored() -> None:
    token = run("hosttoken", "h1")[-1]
    host = Host.objects.get(name="h1")
    assert token not in (host.token_hash, host.token_prefix)
    assert len(host.token_hash) == 64
