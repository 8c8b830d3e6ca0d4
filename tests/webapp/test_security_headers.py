"""Security settings (issue 9, items 6 and 7): the Content-Security-Policy and the other headers on
every page, the TLS switch (SWITCHBOARD_BEHIND_TLS), password reset only with a mail server, and
what the API answers to bodies it cannot take: over the size limit (413), integers of more digits than
Python reads, nesting deeper than its JSON decoder goes (400s that say where)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from django.test.utils import override_settings
from django.urls import clear_url_caches

from tests.webapp.conftest import Account, Sockets, run_on_database
from webapp import views
from webapp.accounts.models import Role
from webapp.accounts.services import user_save

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "docs/examples/demo.yaml").read_text()
PASSWORD = "correct horse battery staple 9"
TOPOLOGIES = "/api/v1/topologies/"
LAYOUT = "/api/v1/topology/layouts/topology/"
PAGES = [
    "/accounts/login/",
    "/accounts/password_change/",
    "/accounts/tokens/",
    "/topology/",
    "/networks/",
    "/hosts/",
    "/audit/",
    "/api/docs/",
    "/api/docs/?script=",  # Swagger UI's set-up script
    "/admin/",
    "/admin/auth/user/",
]


def policy(response: Any) -> dict[str, list[str]]:
    """The response's Content-Security-Policy, directive -> sources."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


# -- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_runs_only_the_sites_own_script_files(path: str, admin: Account) -> None:
    response = logged_in(admin).get(path)
    assert response.status_code == 200, path
    csp = policy(response)
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval', no other host
    assert csp["style-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["worker-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["form-action"] == ["'self'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # not behind TLS by default


def test_the_api_and_errors_carry_the_policy_too(admin: Account) -> None:
    assert policy(admin.api().get(TOPOLOGIES))["default-src"] == ["'self'"]
    assert policy(Client().get("/no/such/page/"))["script-src"] == ["'self'"]


class _Elements(HTMLParser):
    """<script> and <style> elements of a page, and style="" attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0
        self.style_attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        elif tag == "style":
            self.styles += 1
        if any(name == "style" for name, _ in attrs):
            self.style_attributes.append(tag)


@pytest.mark.parametrize("path", [p for p in PAGES if "?" not in p and not p.startswith("/admin/")])
def test_our_pages_have_no_inline_script_or_style(path: str, admin: Account) -> None:
    """What the policy would block (the browser test, tests/browser/test_csp.py, watches it happen)."""
    page = _Elements()
    page.feed(logged_in(admin).get(path).content.decode())
    # JSON data islands (json_script) are not run, so the policy does not apply to them
    inline = [s for s in page.scripts if not s.get("src") and s.get("type") != "application/json"]
    assert inline == []
    assert page.styles == 0 and page.style_attributes == []


def test_swagger_ui_gets_its_set_up_script_as_a_file(admin: Account) -> None:
    client = logged_in(admin)
    page = _Elements()
    page.feed(client.get("/api/docs/").content.decode())
    sources = [s["src"] for s in page.scripts]
    assert sources[-1] == "/api/docs/?script="
    script = client.get(sources[-1])
    assert script["Content-Type"].startswith("application/javascript")
    assert b'url: "/api/schema/"' in script.content and b"SwaggerUIBundle(" in script.content
    assert Client().get("/api/docs/?script=").status_code == 302  # still behind the login


# -- behind a TLS proxy -----------------------------------------------------------------------------

SETTINGS_SHOWN = (
    "BEHIND_TLS",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "DATA_UPLOAD_MAX_MEMORY_SIZE",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "DEFAULT_FROM_EMAIL",
    "PASSWORD_RESET_ENABLED",
)


def settings_with(**env: str) -> subprocess.CompletedProcess[str]:
    """webapp.settings imported afresh in a child process with these SWITCHBOARD_ variables (and no
    others); its stdout is SETTINGS_SHOWN as JSON."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    clean.pop("DATABASE_URL", None)
    clean.update(DJANGO_SETTINGS_MODULE="webapp.settings", **env)
    script = (
        "import json, django\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        f"print(json.dumps({{name: getattr(settings, name) for name in {SETTINGS_SHOWN!r}}}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60
    )


def settings_of(**env: str) -> dict[str, Any]:
    child = settings_with(**env)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])


def test_by_default_cookies_are_not_https_only_and_no_proxy_header_is_believed() -> None:
    shown = settings_of()
    assert shown["BEHIND_TLS"] is False
    assert (shown["SESSION_COOKIE_SECURE"], shown["CSRF_COOKIE_SECURE"]) == (False, False)
    assert (shown["SECURE_HSTS_SECONDS"], shown["SECURE_PROXY_SSL_HEADER"]) == (0, None)
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert (shown["SESSION_COOKIE_HTTPONLY"], shown["SESSION_COOKIE_SAMESITE"]) == (True, "Lax")


def test_behind_tls_cookies_are_https_only_and_hsts_is_a_year() -> None:
    shown = settings_of(SWITCHBOARD_BEHIND_TLS="1")
    assert shown["BEHIND_TLS"] is True
    assert (shown["SESSION_COOKIE_SECURE"], shown["CSRF_COOKIE_SECURE"]) == (True, True)
    assert shown["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["SECURE_SSL_REDIRECT"] is False  # the proxy redirects to https
    assert (shown["SESSION_COOKIE_HTTPONLY"], shown["SESSION_COOKIE_SAMESITE"]) == (True, "Lax")
    assert settings_of(SWITCHBOARD_BEHIND_TLS="0")["BEHIND_TLS"] is False


def log_in_through_the_proxy() -> dict[str, Any]:
    """(In a child process: run_on_database.) A real login, as a TLS proxy forwards it, and what its
    response says about the cookies and HSTS; then the same request without X-Forwarded-Proto."""
    user_save(username="tls-user", role=Role.VIEWER, password=PASSWORD)
    seen = {}
    for name, headers in (("https", {"HTTP_X_FORWARDED_PROTO": "https"}), ("plain", {})):
        response = Client().post(
            "/accounts/login/", {"username": "tls-user", "password": PASSWORD}, **headers
        )
        seen[name] = {
            "status": response.status_code,
            "location": response.headers.get("Location"),
            "hsts": response.headers.get("Strict-Transport-Security"),
            "cookies": {
                cookie: {flag: response.cookies[cookie][flag] for flag in ("secure", "httponly", "samesite")}
                for cookie in ("sessionid", "csrftoken")
            },
        }
    return seen


@pytest.mark.parametrize("behind_tls", [True, False])
def test_a_real_login_sets_https_only_cookies_behind_tls(
    behind_tls: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SWITCHBOARD_BEHIND_TLS", "1" if behind_tls else "0")
    seen = run_on_database(log_in_through_the_proxy, f"sqlite:///{tmp_path}/db")
    for request in ("https", "plain"):
        response = seen[request]
        # logged in (and not sent to https: the proxy does that)
        assert (response["status"], response["location"]) == (302, "/topology/"), response
        session, csrf = response["cookies"]["sessionid"], response["cookies"]["csrftoken"]
        assert bool(session["secure"]) is behind_tls and bool(csrf["secure"]) is behind_tls
        assert session["httponly"] is True and session["samesite"] == "Lax"
    # HSTS only on what the proxy says came over https, and only behind TLS
    expected_hsts = "max-age=31536000" if behind_tls else None
    assert (seen["https"]["hsts"], seen["plain"]["hsts"]) == (expected_hsts, None)


def test_the_body_limit_and_the_mail_server_come_from_the_environment() -> None:
    default = settings_of()
    assert default["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 16 * 1024 * 1024
    assert (default["EMAIL_HOST"], default["PASSWORD_RESET_ENABLED"]) == ("", False)
    shown = settings_of(
        SWITCHBOARD_MAX_BODY="1000000",
        SWITCHBOARD_EMAIL_HOST="mail.example",
        SWITCHBOARD_EMAIL_PORT="587",
        SWITCHBOARD_EMAIL_FROM="switchboard@example.org",
    )
    assert shown["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 1_000_000
    assert (shown["EMAIL_HOST"], shown["EMAIL_PORT"], shown["DEFAULT_FROM_EMAIL"]) == (
        "mail.example",
        587,
        "switchboard@example.org",
    )
    assert shown["PASSWORD_RESET_ENABLED"] is True
    for name, value in [("SWITCHBOARD_MAX_BODY", "16M"), ("SWITCHBOARD_MAX_BODY", "0")] + [
        ("SWITCHBOARD_EMAIL_PORT", "70000")
    ]:
        child = settings_with(**{name: value})
        assert child.returncode != 0
        assert f"ImproperlyConfigured: {name}: {value!r} is not" in child.stderr


# -- password reset ---------------------------------------------------------------------------------


@contextlib.contextmanager
def password_reset_urls() -> Iterator[None]:
    """The URLconf as it is with a mail server: webapp.accounts.urls (which reads
    PASSWORD_RESET_ENABLED when imported) and webapp.urls (which holds it) imported again under the
    setting, and once more after it, so that what follows has the URLconf of the real settings."""
    import webapp.accounts.urls
    import webapp.urls

    def reload() -> None:
        importlib.reload(webapp.accounts.urls)
        importlib.reload(webapp.urls)
        clear_url_caches()

    try:
        with override_settings(PASSWORD_RESET_ENABLED=True, EMAIL_HOST="mail.example"):
            reload()
            yield
    finally:
        reload()


@pytest.fixture
def password_reset_on() -> Iterator[None]:
    with password_reset_urls():
        yield


def test_without_a_mail_server_there_is_no_password_reset_and_login_says_whom_to_ask() -> None:
    client = Client()
    for path in ("/accounts/password_reset/", "/accounts/password_reset/done/", "/accounts/reset/done/"):
        assert client.get(path).status_code == 404, path
    login = client.get("/accounts/login/").content.decode()
    assert "Forgot your password?" in login and "Ask an admin" in login
    assert "manage.py ensureadmin --reset-password" in login
    assert "manage.py adduser NAME --role R --password P" in login
    assert "password_reset" not in login
    # password change is there for a signed-in user
    user, _ = user_save(username="pat", role=Role.VIEWER, password=PASSWORD)
    client.force_login(user)
    assert client.get("/accounts/password_change/").status_code == 200


def test_with_a_mail_server_password_reset_mails_a_link(password_reset_on: None) -> None:
    user, _ = user_save(username="pat", role=Role.VIEWER, password=PASSWORD)
    user.email = "pat@example.org"
    user.save()
    client = Client()
    login = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in login and "Ask an admin" not in login
    assert client.get("/accounts/password_reset/").status_code == 200
    sent = client.post("/accounts/password_reset/", {"email": "pat@example.org"})
    assert (sent.status_code, sent["Location"]) == (302, "/accounts/password_reset/done/")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["pat@example.org"]
    assert "/accounts/reset/" in mail.outbox[0].body


def test_the_urlconf_of_the_real_settings_comes_back() -> None:
    with password_reset_urls():
        assert Client().get("/accounts/password_reset/").status_code == 200
    assert Client().get("/accounts/password_reset/").status_code == 404


# -- bodies the API cannot take ---------------------------------------------------------------------


def oversized(settings: Any, size: int = 2000) -> bytes:
    """A JSON body of `size` bytes, over a limit set to 1000 bytes."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"host": "h1", "topology": ""}).encode()
    padding = size - len(body)
    return body.replace(b'""', b'"' + b"x" * padding + b'"')


def assert_too_large(response: Any, size: int = 2000) -> None:
    assert response.status_code == 413, response.content
    assert response.json() == {
        "error": "PayloadTooLarge",
        "message": f"the request body is {size} bytes; the limit is 1000 bytes"
        " (set by the server's SWITCHBOARD_MAX_BODY)",
    }


def test_a_body_over_the_limit_is_413_on_post_and_put(
    settings: Any, operator: Account, make_host: Any
) -> None:
    make_host("h1")
    api = operator.api()
    assert api.post(TOPOLOGIES, {"host": "h1", "topology": DEMO}, format="json").status_code == 201
    body = oversized(settings)
    assert len(body) == 2000
    assert_too_large(api.generic("POST", TOPOLOGIES, body, content_type="application/json"))
    assert_too_large(api.generic("PUT", f"{TOPOLOGIES}demo/", body, content_type="application/json"))
    assert_too_large(api.generic("PUT", LAYOUT, body, content_type="application/json"))
    # a signed-in browser (session, CSRF) is answered the same
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator.user)
    csrf = browser.get("/accounts/login/").cookies["csrftoken"].value
    answer = browser.generic("POST", TOPOLOGIES, body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert_too_large(answer)
    # just under the limit is read (and refused for what it says)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    assert api.generic("POST", TOPOLOGIES, body, content_type="application/json").status_code == 400


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_daphne_s_path_answers_413_too(settings: Any, sockets: Sockets, operator: Account) -> None:
    """Through the ASGI application, as daphne runs it (the body is spooled, then read by DRF)."""
    body = oversized(settings, 5000)
    status, answer = await sockets.http("POST", TOPOLOGIES, token=operator.token, body=json.loads(body))
    assert status == 413
    assert answer["error"] == "PayloadTooLarge"
    assert "is 5000 bytes; the limit is 1000 bytes" in answer["message"]


def test_the_default_limit_takes_a_body_django_alone_would_refuse(operator: Account, make_host: Any) -> None:
    """16 MiB, not Django's 2.5 MB: a 3 MB body reaches the serializer, which names its own limit."""
    make_host("h1")
    body = {"host": "h1", "topology": "x" * (3 * 1024 * 1024)}
    response = operator.api().post(TOPOLOGIES, body, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"topology": ["a topology file is at most 1048576 bytes"]}


def test_handler400_answers_413_on_the_api_for_a_body_read_outside_drf(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    request = RequestFactory().post(TOPOLOGIES, data=b"x" * 1500, content_type="application/json")
    response = views.bad_request(request, RequestDataTooBig("Request body exceeded"))
    assert response.status_code == 413
    assert json.loads(response.content)["message"].startswith("the request body is 1500 bytes")
    page = RequestFactory().post("/networks/", data=b"x" * 1500, content_type="text/plain")
    assert views.bad_request(page, RequestDataTooBig("Request body exceeded")).status_code == 400


def long_integer(digits: int = 5000, sign: str = "") -> str:
    return sign + "1" * digits


def send(api: Any, method: str, path: str, text: str) -> Any:
    """A request with this JSON text as its body, as is."""
    return api.generic(method, path, text, content_type="application/json")


def test_an_integer_of_5000_digits_is_a_400_naming_its_field(operator: Account, make_host: Any) -> None:
    make_host("h1")
    api = operator.api()

    def document(mtu: str) -> str:
        network = f'{{"subnet": "198.18.5.0/24", "mtu": {mtu}}}'
        nodes = '{"web1": {"networks": ["front"]}}'
        return f'{{"name": "t1", "networks": {{"front": {network}}}, "nodes": {nodes}}}'

    response = send(api, "POST", TOPOLOGIES, f'{{"host": "h1", "topology": {document(long_integer())}}}')
    assert response.status_code == 400
    assert response.json() == {
        "error": "InvalidInput",
        "message": "Invalid input.",
        "fields": {"topology": ["networks.front.mtu: an integer of 5000 digits: at most 4300 are accepted"]},
    }
    # the same document with a number Python reads goes on to netcore's own checks
    response = send(api, "POST", TOPOLOGIES, f'{{"host": "h1", "topology": {document(long_integer(20))}}}')
    assert response.status_code == 400 and "networks.front.mtu" in response.json()["fields"]
    # at the top of the body, negative, in a list, and as the whole body
    assert api.post(TOPOLOGIES, {"host": "h1", "topology": DEMO}, format="json").status_code == 201
    body = f'{{"topology": "x", "version": {long_integer(4301, "-")}, "extra": [1, {long_integer(6000)}]}}'
    response = send(api, "PUT", f"{TOPOLOGIES}demo/", body)
    assert (response.status_code, response.json()["fields"]) == (
        400,
        {
            "version": ["an integer of 4301 digits: at most 4300 are accepted"],
            "extra": ["[1]: an integer of 6000 digits: at most 4300 are accepted"],
        },
    )
    assert send(api, "POST", TOPOLOGIES, long_integer()).json()["fields"] == {
        "non_field_errors": ["an integer of 5000 digits: at most 4300 are accepted"]
    }


def test_json_nested_deeper_than_the_decoder_goes_is_a_400(operator: Account) -> None:
    body = '{"host": "h1", "topology": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = send(operator.api(), "POST", TOPOLOGIES, body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "ParseError",
        "message": "JSON parse error - arrays and objects nested too deeply",
    }
    # and what JSON the decoder reads is as before
    bad = send(operator.api(), "POST", TOPOLOGIES, '{"host": ')
    assert bad.status_code == 400 and bad.json()["message"].startswith("JSON parse error - Expecting value")
