"""Login throttling (django-axes): per account and per address, the lockout window, the 429 answers,
the audit of lockouts and unlocks, the admins' view of them, and the calls token authentication makes."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from axes.middleware import AxesMiddleware
from axes.models import AccessAttempt
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from tests.webapp.conftest import Account
from webapp.accounts.lockout import client_ip, lockout_response, token_failed, token_locked_out
from webapp.accounts.models import Role
from webapp.accounts.services import user_save
from webapp.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

LIMIT = 3
A, B, C = "198.18.0.10", "198.18.0.20", "198.18.0.30"
PASSWORD = "a-long-passphrase"
MESSAGE = "Too many failed logins for this account or from this address."


@pytest.fixture(autouse=True)
def _small_limit(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = LIMIT  # the window stays the default, 900 s
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins


@pytest.fixture(autouse=True)
def _users(_small_limit: None) -> None:
    user_save(username="lena", role=Role.VIEWER, password=PASSWORD)
    user_save(username="mallory", role=Role.VIEWER, password=PASSWORD)


def login(username: str, password: str, ip: str) -> HttpResponse:
    return Client(REMOTE_ADDR=ip).post("/accounts/login/", {"username": username, "password": password})


def fail(username: str, ip: str, times: int) -> list[int]:
    return [login(username, "wrong", ip).status_code for _ in range(times)]


def lockouts_audited() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="login.locked_out"))


def test_the_limit_of_wrong_passwords_locks_the_account_even_for_the_right_one() -> None:
    assert fail("lena", A, LIMIT) == [200] * (LIMIT - 1) + [429]  # the failure that locks answers 429
    refused = login("lena", PASSWORD, A)
    assert refused.status_code == 429
    page = refused.content.decode()
    assert MESSAGE in page and "Try again in 15 minutes" in page
    assert "axes_reset_username lena" in page and f"axes_reset_ip {A}" in page
    assert 890 <= int(refused["Retry-After"]) <= 900
    assert refused.context["form"]["username"].value() == "lena"  # the login form, to try again later
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_a_lockout_is_per_account_and_per_address() -> None:
    fail("lena", A, LIMIT)
    assert login("lena", PASSWORD, B).status_code == 429  # the account, from another address
    assert login("mallory", PASSWORD, A).status_code == 429  # the address, for another account
    assert login("mallory", PASSWORD, C).status_code == 302  # neither: not locked


def test_the_lockout_ends_when_its_window_has_passed() -> None:
    fail("lena", A, LIMIT)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(seconds=890))
    assert login("lena", PASSWORD, A).status_code == 429  # 10 s of the 900 left
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(seconds=11))
    assert login("lena", PASSWORD, A).status_code == 302


def test_refused_attempts_during_a_lockout_do_not_extend_it() -> None:
    fail("lena", A, LIMIT)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(seconds=600))
    fail("lena", A, 5)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(seconds=301))
    assert login("lena", PASSWORD, A).status_code == 302


def test_a_success_before_the_limit_resets_the_count() -> None:
    fail("lena", A, LIMIT - 1)
    assert login("lena", PASSWORD, A).status_code == 302
    assert fail("lena", A, LIMIT - 1) == [200] * (LIMIT - 1)
    assert login("lena", PASSWORD, A).status_code == 302


def test_logging_in_to_ones_own_account_does_not_reset_the_count_for_another() -> None:
    fail("lena", A, LIMIT - 1)
    assert login("mallory", PASSWORD, A).status_code == 302
    assert fail("lena", A, 1) == [429]


def test_a_lockout_is_audited_once() -> None:
    fail("lena", A, LIMIT + 2)
    login("lena", PASSWORD, B)
    [entry] = lockouts_audited()
    assert (entry.object_kind, entry.object_name, entry.source, entry.result) == (
        "user",
        "lena",
        "ui",
        "failed",
    )
    assert entry.details == {
        "username": "lena",
        "ip": A,
        "locked": ["account", "address"],
        "failures": LIMIT,
        "via": "login",
    }
    assert "locked out for 15 min after 3 failed logins" in entry.error


def test_an_admin_sees_the_lockout_and_unlocks_it(admin: Account) -> None:
    fail("lena", A, LIMIT)
    client = Client()
    client.force_login(admin.user)
    page = client.get("/audit/").content.decode()
    assert "Locked out now" in page and "Unlock lena" in page and f"Unlock {A}" in page

    response = client.post("/audit/unlock/", {"username": "lena"})
    assert (response.status_code, response["Location"]) == (302, "/audit/")
    assert "Unlock lena" not in client.get("/audit/").content.decode()
    [entry] = AuditEntry.objects.filter(action="login.unlock")
    assert (entry.username, entry.object_kind, entry.object_name) == ("ada", "user", "lena")
    assert login("lena", PASSWORD, A).status_code == 302


def test_an_admin_unlocks_an_address(admin: Account) -> None:
    fail("nobody", A, LIMIT)
    client = Client()
    client.force_login(admin.user)
    assert client.post("/audit/unlock/", {"ip": A}).status_code == 302
    assert login("lena", PASSWORD, A).status_code == 302
    [entry] = AuditEntry.objects.filter(action="login.unlock")
    assert (entry.object_kind, entry.object_name, entry.details["ip"]) == ("address", A, A)


def test_an_unlock_needs_exactly_one_account_or_address(admin: Account) -> None:
    fail("lena", A, LIMIT)
    client = Client()
    client.force_login(admin.user)
    for data in ({}, {"username": "lena", "ip": A}, {"ip": "not-an-address"}):
        assert client.post("/audit/unlock/", data).status_code == 302
    assert AccessAttempt.objects.exists()  # nothing removed, in particular not everything
    assert not AuditEntry.objects.filter(action="login.unlock").exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_see_lockouts_and_unlock(role: str, request: pytest.FixtureRequest) -> None:
    account: Account = request.getfixturevalue(role)
    fail("lena", A, LIMIT)
    client = Client()
    client.force_login(account.user)
    assert client.post("/audit/unlock/", {"username": "lena"}).status_code == 403
    if role == "operator":  # operators read the audit log, without the lockouts
        assert "Locked out now" not in client.get("/audit/").content.decode()
    assert login("lena", PASSWORD, A).status_code == 429


def get(ip: str, path: str = "/api/v1/hosts/") -> HttpRequest:
    return RequestFactory().get(path, REMOTE_ADDR=ip)


def test_failed_tokens_lock_their_address_and_not_another() -> None:
    for _ in range(LIMIT - 1):
        token_failed(get(A))
    assert not token_locked_out(get(A))
    token_failed(get(A))
    assert token_locked_out(get(A))
    assert not token_locked_out(get(B))
    [entry] = lockouts_audited()
    assert (entry.object_kind, entry.object_name, entry.source) == ("address", A, "api")
    token_failed(get(A))  # refused while locked out: not counted, not audited again
    assert len(lockouts_audited()) == 1


def test_failed_tokens_of_no_user_from_different_addresses_do_not_add_up() -> None:
    for ip in (A, B, C):
        for _ in range(LIMIT - 1):
            token_failed(get(ip))
    assert not any(token_locked_out(get(ip)) for ip in (A, B, C, "198.18.0.40"))


def test_failed_tokens_and_failed_logins_count_together() -> None:
    token_failed(get(A))
    token_failed(get(A))
    assert fail("mallory", A, 1) == [429]  # the address's third failure
    assert login("mallory", PASSWORD, B).status_code == 302  # mallory's account: one failure, not locked
    [entry] = lockouts_audited()
    assert (entry.object_kind, entry.object_name, entry.details["locked"]) == ("address", A, ["address"])


def test_a_locked_out_api_request_is_answered_429_in_json() -> None:
    for _ in range(LIMIT):
        token_failed(get(A))

    def view(request: HttpRequest) -> HttpResponse:  # an authentication refusing the token unchecked
        assert token_locked_out(request)
        return HttpResponse(status=401)

    response = AxesMiddleware(view)(get(A))
    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    body = json.loads(response.content)
    assert body["error"] == "TooManyRequests" and body["message"].startswith(MESSAGE)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_lockout_answer_under_asgi() -> None:
    """axes' async middleware calls the lockout callable with the credentials second."""
    from asgiref.sync import sync_to_async

    await sync_to_async(fail)("lena", A, LIMIT)
    request = RequestFactory().post(
        "/accounts/login/", {"username": "lena", "password": PASSWORD}, REMOTE_ADDR=A
    )

    async def view(request: HttpRequest) -> HttpResponse:
        request.axes_locked_out = True  # as the backend's refusal leaves it
        request.axes_credentials = {"username": "lena", "password": "********************"}
        return HttpResponse(status=200)

    response = await AxesMiddleware(view)(request)
    assert response.status_code == 429
    assert MESSAGE in response.content.decode() and "axes_reset_username lena" in response.content.decode()


def test_lockout_response_takes_the_credentials_in_either_place() -> None:
    request = get(A, "/api/v1/topology/")
    request.axes_credentials = None
    assert lockout_response(request, {"username": "x"}).status_code == 429


def test_the_client_address(settings: Any) -> None:
    forged = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": f"{B}, {A}"}
    assert client_ip(RequestFactory().get("/", **forged)) == "127.0.0.1"  # no proxy: the header is ignored
    settings.LOGIN_TRUSTED_PROXIES = 1
    assert client_ip(RequestFactory().get("/", **forged)) == A  # what the proxy appended, not B
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")) == "127.0.0.1"
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR="unix:/run/daphne.sock")) is None


def test_a_forged_forwarded_for_does_not_escape_the_address_lockout() -> None:
    client = Client(REMOTE_ADDR=A)
    statuses = [
        client.post(
            "/accounts/login/",
            {"username": f"guess{n}", "password": "wrong"},  # a new account each time: only the address locks
            HTTP_X_FORWARDED_FOR=f"198.18.1.{n}",
        ).status_code
        for n in range(LIMIT)
    ]
    assert statuses == [200] * (LIMIT - 1) + [429]


REPO = Path(__file__).resolve().parents[2]


def _settings_in_child(env: dict[str, str]) -> dict[str, Any]:
    script = (
        "import json, webapp.settings as s\n"
        "print(json.dumps([s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(),"
        " s.LOGIN_TRUSTED_PROXIES, s.AXES_RESET_ON_SUCCESS, s.AXES_HANDLER]))\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_LOGIN_")}
    base.pop("SWITCHBOARD_BEHIND_TLS", None)
    child = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])


def test_the_settings_from_the_environment() -> None:
    assert _settings_in_child({}) == [10, 900.0, 0, False, "axes.handlers.database.AxesDatabaseHandler"]
    changed = {
        "SWITCHBOARD_LOGIN_FAILURES": "5",
        "SWITCHBOARD_LOGIN_LOCKOUT": "60",
        "SWITCHBOARD_BEHIND_TLS": "1",
    }
    assert _settings_in_child(changed)[:3] == [5, 60.0, 1]
