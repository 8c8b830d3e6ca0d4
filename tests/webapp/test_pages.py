"""Pages: login everywhere, the topology page's context, and host management on the hosts page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from tests.webapp.conftest import Account, AgentHost
from webapp.accounts.models import Role
from webapp.accounts.services import user_save
from webapp.hosts.models import Host
from webapp.hosts.services import host_authenticate

pytestmark = pytest.mark.django_db


def _logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


@pytest.mark.parametrize("path", ["/topology/", "/hosts/"])
def test_pages_redirect_to_login(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_root_redirects_to_topology() -> None:
    response = Client().get("/")
    assert (response.status_code, response["Location"]) == (302, "/topology/")


def test_topology_page(viewer: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("h2")
    make_host("h1")
    response = _logged_in(viewer).get("/topology/")
    assert response.status_code == 200
    assert response.context["hosts"] == ["h1", "h2"]
    assert response.context["ws_path"] == "/ws/topology/"


def test_hosts_page_lists_hosts_read_only_for_viewers(
    viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    client = _logged_in(viewer)
    response = client.get("/hosts/")
    assert response.status_code == 200
    assert [h.name for h in response.context["hosts"]] == ["h1"]
    assert response.context["can_manage"] is False
    assert response.context["new_token"] is None
    assert client.post("/hosts/", {"action": "create", "name": "h2"}).status_code == 403


def test_admins_create_rotate_and_revoke_hosts_from_the_page(admin: Account) -> None:
    client = _logged_in(admin)

    created = client.post("/hosts/", {"action": "create", "name": "web-1"})
    assert created.status_code == 200
    assert created.context["can_manage"] is True
    assert created.context["new_token_host"] == "web-1"
    token = created.context["new_token"]
    assert token.startswith("sbh_") and host_authenticate(token=token).name == "web-1"
    assert client.get("/hosts/").context["new_token"] is None  # shown once

    rotated = client.post("/hosts/", {"action": "rotate", "name": "web-1"})
    assert host_authenticate(token=token) is None
    assert host_authenticate(token=rotated.context["new_token"]).name == "web-1"

    client.post("/hosts/", {"action": "revoke", "name": "web-1"})
    assert Host.objects.get(name="web-1").revoked


def test_the_page_shows_the_api_messages_on_errors(
    admin: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    client = _logged_in(admin)

    taken = client.post("/hosts/", {"action": "create", "name": "h1"})
    assert taken.status_code == 409
    assert taken.context["form"].errors == {"name": ["host 'h1' already exists"]}

    bad = client.post("/hosts/", {"action": "create", "name": "-bad name"})
    assert bad.status_code == 400
    assert "a host name is 1-63 letters" in bad.context["form"].errors["name"][0]

    missing = client.post("/hosts/", {"action": "revoke", "name": "nope"})
    assert missing.status_code == 404
    assert missing.context["form"].non_field_errors() == ["no host named 'nope'"]


def test_logging_in_lands_on_the_topology_page() -> None:
    user_save(username="lena", role=Role.VIEWER, password="a-long-passphrase")
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "lena", "password": "a-long-passphrase"})
    assert (response.status_code, response["Location"]) == (302, "/topology/")
