"""User API tokens: stored as hashes, shown once, Bearer or Token, expiry, last use, revocation
(page, command), and the migration of the clear-text tokens of older versions."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.webapp.conftest import Account, Sockets
from webapp.accounts.models import ApiToken
from webapp.accounts.selectors import token_find
from webapp.accounts.services import token_create
from webapp.audit.models import AuditEntry

URL = "/api/v1/hosts/"


def _client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def _browser(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


@pytest.mark.django_db
def test_only_a_hash_and_a_prefix_are_stored(viewer: Account) -> None:
    row = token_find(key=viewer.token)
    assert row.key_hash == hashlib.sha256(viewer.token.encode()).hexdigest()
    assert viewer.token.startswith(row.prefix) and len(row.prefix) == 12 and row.prefix.startswith("sbu_")
    stored = [str(value) for value in ApiToken.objects.values_list(flat=False).get(pk=row.pk)]
    assert not [value for value in stored if viewer.token in value]


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["Token", "Bearer", "bearer"])
def test_bearer_and_token_schemes_sign_in(viewer: Account, scheme: str) -> None:
    assert _client(f"{scheme} {viewer.token}").get(URL).status_code == 200


@pytest.mark.django_db
def test_last_use_is_recorded(viewer: Account) -> None:
    assert token_find(key=viewer.token).last_used is None
    _client(f"Bearer {viewer.token}").get(URL)
    assert timezone.now() - token_find(key=viewer.token).last_used < timedelta(seconds=30)


@pytest.mark.django_db
def test_refusals_say_why(viewer: Account) -> None:
    expired, expired_key = token_create(owner=viewer.user, name="old", expires_in=timedelta(days=1))
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _client(f"Bearer {expired_key}").get(URL)
    assert response.status_code == 401 and "expired" in response.json()["message"]

    revoked, revoked_key = token_create(owner=viewer.user, name="gone")
    call_command("apitoken", "revoke", revoked.prefix, stdout=StringIO())
    response = _client(f"Bearer {revoked_key}").get(URL)
    assert response.status_code == 401 and "revoked" in response.json()["message"]

    assert _client("Bearer sbu_not-a-token").get(URL).status_code == 401
    viewer.user.is_active = False
    viewer.user.save()
    response = _client(f"Bearer {viewer.token}").get(URL)
    assert response.status_code == 401 and "deactivated" in response.json()["message"]


@pytest.mark.django_db
def test_page_shows_a_new_token_once_and_revokes(viewer: Account) -> None:
    browser = _browser(viewer)
    made = browser.post("/accounts/tokens/", {"action": "create", "name": "ci", "expires": "30"})
    assert made.status_code == 200
    key = re.search(r'value="(sbu_[^"]+)"', made.content.decode()).group(1)
    row = token_find(key=key)
    assert (row.user, row.name) == (viewer.user, "ci")
    assert timedelta(days=29) < row.expires_at - timezone.now() <= timedelta(days=30)
    assert _client(f"Bearer {key}").get(URL).status_code == 200

    listing = browser.get("/accounts/tokens/").content.decode()
    assert key not in listing and f"{row.prefix}…" in listing

    assert browser.post("/accounts/tokens/", {"action": "revoke", "token": row.pk}).status_code == 200
    assert _client(f"Bearer {key}").get(URL).status_code == 401
    actions = AuditEntry.objects.filter(object_kind="token", username="vera").values_list("action", flat=True)
    assert list(actions) == ["token.revoke", "token.create"]


@pytest.mark.django_db
def test_page_refuses_a_nameless_token_by_field(viewer: Account) -> None:
    response = _browser(viewer).post("/accounts/tokens/", {"action": "create", "name": " ", "expires": "30"})
    assert response.status_code == 400 and 'aria-invalid="true"' in response.content.decode()
    assert ApiToken.objects.filter(user=viewer.user).count() == 1  # only the fixture's


@pytest.mark.django_db
def test_only_admins_see_and_revoke_other_users_tokens(
    viewer: Account, operator: Account, admin: Account
) -> None:
    theirs = token_find(key=operator.token)
    assert theirs.prefix not in _browser(viewer).get("/accounts/tokens/").content.decode()
    assert (
        _browser(viewer).post("/accounts/tokens/", {"action": "revoke", "token": theirs.pk}).status_code
        == 404
    )
    assert token_find(key=operator.token).status == "active"
    page = _browser(admin).get("/accounts/tokens/").content.decode()
    assert theirs.prefix in page and "otto" in page
    _browser(admin).post("/accounts/tokens/", {"action": "revoke", "token": theirs.pk})
    assert token_find(key=operator.token).status == "revoked"


@pytest.mark.django_db
def test_command_creates_lists_and_revokes(viewer: Account) -> None:
    out = StringIO()
    call_command("apitoken", "create", "vera", "--name", "deploy", "--expires-days", "7", stdout=out)
    key = out.getvalue().splitlines()[-1]
    row = token_find(key=key)
    assert row.name == "deploy" and row.expires_at is not None
    listed = StringIO()
    call_command("apitoken", "list", "vera", stdout=listed)
    assert f"{row.prefix}…" in listed.getvalue() and key not in listed.getvalue()
    call_command("apitoken", "revoke", str(row.pk), stdout=StringIO())
    assert token_find(key=key).status == "revoked"
    with pytest.raises(CommandError, match="already revoked"):
        call_command("apitoken", "revoke", key, stdout=StringIO())
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("apitoken", "create", "nobody", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_clear_text_tokens_of_older_versions_are_rehashed_and_dropped(viewer: Account) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0001_groups")])
    legacy = "0123456789abcdef0123456789abcdef01234567"  # DRF authtoken's form: 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created datetime NOT NULL, "
            "user_id integer NOT NULL UNIQUE)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [legacy, timezone.now(), viewer.user.pk]
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert "authtoken_token" not in connection.introspection.table_names()
    row = token_find(key=legacy)
    assert (row.user_id, row.migrated, row.prefix) == (viewer.user.pk, True, legacy[:8])
    assert _client(f"Token {legacy}").get(URL).status_code == 200  # scripts keep working...
    page = _browser(viewer).get("/accounts/tokens/").content.decode()
    assert "kept tokens in clear text" in page  # ...and their user is told to rotate


@pytest.mark.django_db
def test_unknown_tokens_lock_their_address_out(viewer: Account, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    revoked, revoked_key = token_create(owner=viewer.user, name="stale")
    call_command("apitoken", "revoke", str(revoked.pk), stdout=StringIO())
    for _ in range(5):  # a stale script's revoked token is no guess: it locks nobody out
        assert _client(f"Bearer {revoked_key}").get(URL).status_code == 401
    for _ in range(2):
        assert _client("Bearer sbu_guess").get(URL, REMOTE_ADDR="198.18.0.9").status_code == 401
    assert _client("Bearer sbu_guess").get(URL, REMOTE_ADDR="198.18.0.9").status_code == 429  # the 3rd locks
    locked = _client(f"Bearer {viewer.token}").get(URL, REMOTE_ADDR="198.18.0.9")
    assert (locked.status_code, locked.json()["error"]) == (429, "TooManyRequests")
    assert int(locked["Retry-After"]) > 0
    assert _client(f"Bearer {viewer.token}").get(URL, REMOTE_ADDR="198.18.0.10").status_code == 200
    assert AuditEntry.objects.filter(action="login.locked_out", details__ip="198.18.0.9").count() == 1


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_locked_out_address_opens_no_socket(viewer: Account, sockets: Sockets, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        ws = sockets.open("/ws/topology/", [(b"authorization", b"Bearer sbu_guess")])
        ws.scope["client"] = ("198.18.0.9", 50000)
        assert await ws.connect() == (False, 4003)
    ws = sockets.open("/ws/topology/", [(b"authorization", f"Bearer {viewer.token}".encode())])
    ws.scope["client"] = ("198.18.0.9", 50000)
    assert await ws.connect() == (False, 4003)
    elsewhere = sockets.open("/ws/topology/", [(b"authorization", f"Bearer {viewer.token}".encode())])
    elsewhere.scope["client"] = ("198.18.0.10", 50000)
    assert (await elsewhere.connect())[0]
