"""Management commands: adduser, ensureadmin, hosttoken."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

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
    assert lines[-1] == Token.objects.get(user=user).key
    assert _groups("alice") == ["operator"]
    assert user.check_password("s3cret-pass")
    assert not user.is_superuser


def test_adduser_updates_to_exactly_one_role_and_keeps_the_token() -> None:
    token = run("adduser", "bob", "--role", "viewer")[-1]
    lines = run("adduser", "bob", "--role", "admin")
    assert lines[-1] == token
    user = get_user_model().objects.get(username="bob")
    assert _groups("bob") == ["admin"]
    assert user.is_staff and user.is_superuser
    run("adduser", "bob", "--role", "viewer")
    user.refresh_from_db()
    assert _groups("bob") == ["viewer"]
    assert not (user.is_staff or user.is_superuser)


def test_adduser_generates_a_password_for_a_new_user() -> None:
    lines = run("adduser", "carol", "--role", "viewer")
    password = next(line.split(": ", 1)[1] for line in lines if line.startswith("password: "))
    assert get_user_model().objects.get(username="carol").check_password(password)


def test_ensureadmin_creates_the_admin_once() -> None:
    lines = run("ensureadmin", "--url", "http://127.0.0.1:9000")
    assert "http://127.0.0.1:9000/accounts/login/" in lines[0]
    password = lines[-1].split(": ", 1)[1]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert _groups("admin") == ["admin"]
    assert run("ensureadmin") == []


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
