"""Who may do what, as one table: every REST endpoint, page and browser socket × every identity.

The tables below are the expected outcome; the tests enumerate the URL resolver and the websocket
routes, so an endpoint, method, page or socket added without a row here fails
`test_every_*_has_a_row`. Outcomes: ALLOWED is anything but 401/403 (400/404/409/503 are answers
about the request, not about who sent it), DENIED is 403, UNAUTHENTICATED is 401 for the API and a
redirect to the login page for pages, REFUSED is a websocket handshake closed with 4003.

Besides the roles, the identities that must get nowhere: an admin deactivated after logging in
(its session and its token), an admin's expired token, an admin's revoked token, and a host's
agent token (which only opens the agent socket and downloads the agent). Each is an admin's, so
any answer but "unauthenticated" would be a leak of the most powerful role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.views import APIView

from tests.webapp.conftest import Sockets, make_account
from webapp.accounts.models import ApiToken, Role
from webapp.accounts.selectors import token_find
from webapp.accounts.services import token_revoke
from webapp.captures.routing import websocket_urlpatterns as capture_socket_routes
from webapp.hosts.routing import websocket_urlpatterns as host_socket_routes
from webapp.hosts.services import host_create
from webapp.networks import services as network_services
from webapp.operations.services import operation_create
from webapp.topology.routing import websocket_urlpatterns as topology_socket_routes

ROLES = ("anonymous", "viewer", "operator", "admin")
REVOKED = ("deactivated", "expired token", "revoked token", "host token")  # see the module docstring
IDENTITIES = ROLES + REVOKED

# The least role an API method needs: every role from it up is ALLOWED, below it DENIED (403), and
# anonymous is always 401. Keys are (route as in the URLconf, HTTP method).
VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
# fmt: off
API: dict[tuple[str, str], str] = {
    ("api/schema/",                              "GET"):    VIEWER,
    ("api/v1/hosts/",                            "GET"):    VIEWER,
    ("api/v1/hosts/<str:name>/",                 "GET"):    VIEWER,
    ("api/v1/hosts/<str:name>/",                 "PATCH"):  ADMIN,    # its underlay address
    ("api/v1/hosts/<str:name>/plan/",            "POST"):   OPERATOR,
    ("api/v1/hosts/<str:name>/apply/",           "POST"):   OPERATOR,
    ("api/v1/hosts/<str:name>/destroy/",         "POST"):   OPERATOR,
    ("api/v1/topology/",                         "GET"):    VIEWER,
    ("api/v1/topology/layouts/<str:view>/",      "GET"):    VIEWER,
    ("api/v1/topology/layouts/<str:view>/",      "PUT"):    VIEWER,   # each user's own layout
    ("api/v1/topology/layouts/<str:view>/",      "PATCH"):  VIEWER,   # each user's own layout
    ("api/v1/topology/shaping/<str:host>/<str:netns>/<str:link>/", "PUT"):    OPERATOR,
    ("api/v1/topology/shaping/<str:host>/<str:netns>/<str:link>/", "DELETE"): OPERATOR,
    ("api/v1/audit/",                            "GET"):    OPERATOR, # the log names people
    ("api/v1/operations/",                       "GET"):    VIEWER,
    ("api/v1/traffic/",                          "GET"):    VIEWER,
    ("api/v1/operations/<str:id>/",              "GET"):    VIEWER,
    ("api/v1/operations/<str:id>/cancel/",       "POST"):   OPERATOR,
    ("api/v1/topologies/",                       "GET"):    VIEWER,
    ("api/v1/topologies/",                       "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/",            "GET"):    VIEWER,
    ("api/v1/topologies/<str:name>/",            "PUT"):    OPERATOR,
    ("api/v1/topologies/<str:name>/",            "DELETE"): OPERATOR,
    ("api/v1/topologies/<str:name>/export/",     "GET"):    VIEWER,
    ("api/v1/topologies/<str:name>/plan/",       "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/preview/",    "GET"):    VIEWER,
    ("api/v1/topologies/<str:name>/apply/",      "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/destroy/",    "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/repair/",     "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/networks/",                "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/networks/<str:network>/",  "PATCH"):  OPERATOR,
    ("api/v1/topologies/<str:name>/networks/<str:network>/",  "DELETE"): OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/",                   "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/",        "PATCH"):  OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/",        "DELETE"): OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/attach/", "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/detach/", "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/routes/", "POST"):   OPERATOR,
    ("api/v1/topologies/<str:name>/nodes/<str:node>/routes/", "DELETE"): OPERATOR,
    ("api/v1/networks/",                         "GET"):    VIEWER,
    ("api/v1/networks/<str:id>/overlay/",        "GET"):    VIEWER,
    ("api/v1/nodes/",                            "GET"):    VIEWER,
    ("api/v1/routes/",                           "GET"):    VIEWER,
    ("api/v1/docker/",                           "GET"):    VIEWER,
    ("api/v1/docker/networks/",                  "POST"):   OPERATOR,
    ("api/v1/docker/networks/<str:host>/<str:network>/",             "DELETE"): OPERATOR,
    ("api/v1/docker/networks/<str:host>/<str:network>/connect/",     "POST"):   OPERATOR,
    ("api/v1/docker/networks/<str:host>/<str:network>/disconnect/",  "POST"):   OPERATOR,
    ("api/v1/docker/containers/",                "POST"):   OPERATOR,
    ("api/v1/docker/containers/<str:host>/<str:container>/",         "DELETE"): OPERATOR,
    ("api/v1/docker/containers/<str:host>/<str:container>/stop/",    "POST"):   OPERATOR,
    ("api/v1/docker/compose/",                   "POST"):   OPERATOR,
    ("api/v1/docker/compose/<str:host>/<str:project>/",              "DELETE"): OPERATOR,
    ("api/v1/services/",                         "GET"):    VIEWER,
    ("api/v1/services/",                         "POST"):   OPERATOR,
    ("api/v1/services/<str:name>/",              "GET"):    VIEWER,
    ("api/v1/services/<str:name>/",              "PATCH"):  OPERATOR,
    ("api/v1/services/<str:name>/",              "DELETE"): OPERATOR,
    ("api/v1/services/<str:name>/resolve/",      "POST"):   OPERATOR, # packets from a node's namespace
    ("api/v1/explain/",                          "POST"):   OPERATOR, # probes from a namespace
    ("api/v1/explain/",                          "GET"):    OPERATOR, # the same, asked in the query
    # captures: packets can carry secrets, so operators only, reads included
    ("api/v1/captures/",                         "GET"):    OPERATOR,
    ("api/v1/captures/",                         "POST"):   OPERATOR,
    ("api/v1/captures/<str:id>/",                "GET"):    OPERATOR,
    ("api/v1/captures/<str:id>/",                "DELETE"): OPERATOR,
    ("api/v1/captures/<str:id>/stop/",           "POST"):   OPERATOR,
    ("api/v1/captures/<str:id>/pcap",            "GET"):    OPERATOR,
    ("api/v1/captures/<str:id>/packets/<str:number>/",        "GET"):    OPERATOR,
    ("api/v1/services/<str:name>/instances/",    "GET"):    VIEWER,
    ("api/v1/services/<str:name>/instances/",    "POST"):   OPERATOR,
    ("api/v1/services/<str:name>/instances/<str:instance>/",         "GET"):    VIEWER,
    ("api/v1/services/<str:name>/instances/<str:instance>/",         "DELETE"): OPERATOR,
    ("api/v1/services/<str:name>/instances/<str:instance>/renew/",   "POST"):   OPERATOR,
}
# fmt: on

# Pages (login_required Django views): anonymous is redirected to the login page; then the least role.
# fmt: off
PAGES: dict[tuple[str, str], str] = {
    ("topology/",                                "GET"):    VIEWER,
    ("networks/",                                "GET"):    VIEWER,
    ("docker/",                                  "GET"):    VIEWER,
    ("services/",                                "GET"):    VIEWER,
    ("hosts/",                                   "GET"):    VIEWER,
    ("hosts/",                                   "POST"):   ADMIN,    # create / rotate / revoke tokens
    ("hosts/agent/switchboard-agent.pyz",        "GET"):    VIEWER,   # (or a host token)
    ("hosts/agent/switchboard-agent.service",    "GET"):    VIEWER,   # (or a host token)
    ("api/docs/",                                "GET"):    VIEWER,
    ("audit/",                                   "GET"):    OPERATOR, # the log names people
    ("captures/",                                "GET"):    OPERATOR, # packets can carry secrets
    ("captures/<str:id>/",                       "GET"):    OPERATOR,
    ("audit/unlock/",                            "POST"):   ADMIN,    # lift a login lockout
    ("accounts/tokens/",                         "GET"):    VIEWER,   # each user's own API tokens
    ("accounts/tokens/",                         "POST"):   VIEWER,   # make or revoke one's own
}
# Pages a host's agent token opens (to download the agent onto that host).
HOST_TOKEN_PAGES = {"hosts/agent/switchboard-agent.pyz", "hosts/agent/switchboard-agent.service"}
# fmt: on

# Routes that are neither API nor pages that need a role: public or Django's own.
NOT_ROLE_CHECKED = ("", "healthz", "favicon.ico", "accounts/", "admin/")

# Websockets: the identities whose handshake is accepted; every other one is refused with 4003.
# /ws/agent/ takes host tokens only.
SOCKETS: dict[str, set[str]] = {
    "ws/topology/": {"viewer", "operator", "admin"},
    "ws/agent/": {"host token"},
    "ws/captures/<str:id>/": {"operator", "admin"},
}

ROLE_ORDER = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def expected(least: str, who: str, *, page: str | None = None) -> str:
    """The outcome for identity `who` of a route whose least role is `least` (`page`: its route)."""
    if page in HOST_TOKEN_PAGES and who in REVOKED:  # a token sent there must be a live host token
        return "allowed" if who == "host token" else "403"
    if who not in ROLE_ORDER:
        return "login" if page else "401"
    return "allowed" if ROLE_ORDER[who] >= ROLE_ORDER[least] else "403"


# --- enumerating what exists -------------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route in ("admin/", "accounts/"):
                yield route, None
                continue
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def _methods(callback: Any) -> list[str]:
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        names = view_class.http_method_names
        return sorted(m.upper() for m in names if hasattr(view_class, m) and m not in ("options", "head"))
    return []


def _is_api(callback: Any) -> bool:
    """A DRF view answering for itself (not a DRF view behind login_required, such as the API docs)."""
    view_class = getattr(callback, "cls", None)
    behind_login = callback.__code__.co_filename.endswith("django/contrib/auth/decorators.py")
    return view_class is not None and issubclass(view_class, APIView) and not behind_login


def api_routes() -> set[tuple[str, str]]:
    """Every (route, method) served by a DRF view."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if callback is not None and _is_api(callback):
            found |= {(route, method) for method in _methods(callback)}
    return found


def page_routes() -> set[str]:
    """Every route that is not DRF and not in NOT_ROLE_CHECKED."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if route in NOT_ROLE_CHECKED or _is_api(callback):
            continue
        found.add(route)
    return found


def socket_routes() -> set[str]:
    routes = host_socket_routes + topology_socket_routes + capture_socket_routes
    return {str(route.pattern) for route in routes}


def test_every_api_endpoint_and_method_has_a_row() -> None:
    assert api_routes() == set(API), "add the new endpoint (or remove the old one) in API above"


def test_every_page_has_a_row() -> None:
    assert page_routes() == {route for route, _ in PAGES} - _missing_pages()


def test_every_socket_has_a_row() -> None:
    assert socket_routes() == set(SOCKETS)


def _missing_pages() -> set[str]:
    """Rows for pages of apps that other work is still adding (audit): not served yet, not checked."""
    served = {route for route, _ in _walk(get_resolver().url_patterns)}
    return {route for route, _ in PAGES if route not in served}


# --- the world each request runs in ------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "docs/examples/demo.yaml").read_text()


@pytest.fixture
def world() -> dict[str, str]:
    """A host h1 with the demo topology and one pending operation: values for every path parameter."""
    owner = make_account("owner", Role.ADMIN)
    host, _ = host_create(name="h1")
    topology = network_services.topology_create(host=host, document=DEMO, user=owner.user)
    operation = operation_create(host=host, kind="plan", topology_text=DEMO, user=owner.user)
    return {"name": "h1", "topology": topology.name, "id": str(operation.id), "view": "topology"}


def _url(route: str, world: dict[str, str]) -> str:
    name = world["topology"] if route.startswith("api/v1/topologies/") else world["name"]
    path = route.replace("<str:name>", name).replace("<str:id>", world["id"])
    path = (
        path.replace("<str:network>", "front")
        .replace("<str:node>", "web1")
        .replace("<str:host>", world["name"])
    )
    path = (
        path.replace("<str:container>", "web")
        .replace("<str:project>", "shop")
        .replace("<str:instance>", "web1")
    )
    return "/" + path.replace("<str:view>", world["view"])


@dataclass
class Caller:
    """One identity: the Authorization header it sends, and the user whose session it has."""

    authorization: str | None = None
    user: Any = None

    def api(self) -> Client:
        return Client(headers={"Authorization": self.authorization} if self.authorization else {})

    def browser(self) -> Client:
        client = self.api()
        if self.user is not None:
            client.force_login(self.user)
        return client


def _caller(who: str) -> Caller:
    """Make the identity `who` (see the module docstring) in the database."""
    if who == "anonymous":
        return Caller()
    if who == "host token":
        return Caller(f"Bearer {host_create(name='agent-host')[1]}")
    if who in ROLE_ORDER:
        account = make_account(f"who-{who}", Role(who))
        return Caller(f"Bearer {account.token}", account.user)
    account = make_account("who-revoked", Role.ADMIN)
    token = token_find(key=account.token)
    if who == "expired token":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
        return Caller(f"Bearer {account.token}")
    if who == "revoked token":
        token_revoke(token=token)
        return Caller(f"Bearer {account.token}")
    caller = Caller(f"Bearer {account.token}", account.user)
    browser = caller.browser()  # logged in while active: the session outlives the deactivation
    account.user.is_active = False
    account.user.save()
    caller.browser = lambda: browser  # type: ignore[method-assign]
    return caller


def _outcome(status: int, location: str = "") -> str:
    if status == 401:
        return "401"
    if status == 403:
        return "403"
    if status == 302 and location.startswith("/accounts/login/"):
        return "login"
    return "allowed"


@pytest.mark.django_db
@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize(("route", "method"), sorted(API))
def test_api(route: str, method: str, who: str, world: dict[str, str]) -> None:
    client = _caller(who).api()
    response = client.generic(method, _url(route, world), data="{}", content_type="application/json")
    assert _outcome(response.status_code) == expected(API[route, method], who), response.content[:300]
    if response.status_code in (401, 403):
        body = response.json()
        assert body["error"] in ("NotAuthenticated", "AuthenticationFailed", "PermissionDenied"), body


@pytest.mark.django_db
@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize(("route", "method"), sorted(PAGES))
def test_page(route: str, method: str, who: str, world: dict[str, str]) -> None:
    if route in _missing_pages():
        pytest.skip(f"/{route} is not served yet")
    client = _caller(who).browser()
    # a POST that passes the role check is an invalid form (400), which changes nothing
    response = client.generic(method, _url(route, world))
    assert _outcome(response.status_code, response.get("Location", "")) == expected(
        PAGES[route, method], who, page=route
    )


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("route", sorted(SOCKETS))
async def test_socket(route: str, who: str, sockets: Sockets) -> None:
    caller = await database_sync_to_async(_caller)(who)
    headers = [(b"authorization", caller.authorization.encode())] if caller.authorization else []
    ws = sockets.open("/" + route, headers)
    connected, code = await ws.connect()
    if who in SOCKETS[route]:
        assert connected, code
    else:
        assert (connected, code) == (False, 4003)
