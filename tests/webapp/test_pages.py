"""Pages: login everywhere, the topology page's context, host management and the agent's download."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client

from tests.webapp.conftest import Account, AgentHost
from webapp.accounts.models import Role
from webapp.accounts.services import user_save
from webapp.hosts import selectors as host_selectors
from webapp.hosts.models import Host
from webapp.hosts.services import host_authenticate, host_revoke

AGENT_URL = "/hosts/agent/switchboard-agent.pyz"
UNIT_URL = "/hosts/agent/switchboard-agent.service"

pytestmark = pytest.mark.django_db


def _logged_in(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


@pytest.mark.parametrize("path", ["/topology/", "/networks/", "/hosts/", AGENT_URL, UNIT_URL])
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


def test_networks_page_offers_the_create_form_to_operators_only(
    viewer: Account, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    as_viewer = _logged_in(viewer).get("/networks/")
    assert as_viewer.status_code == 200
    assert as_viewer.context["page"]["can_operate"] is False
    assert 'id="create-form"' not in as_viewer.content.decode()
    as_operator = _logged_in(operator).get("/networks/")
    page = as_operator.context["page"]
    assert page["can_operate"] is True
    assert (page["hosts"], page["topologies_url"], page["operations_url"]) == (
        ["h1"], "/api/v1/topologies/", "/api/v1/operations/"
    )
    assert 'id="create-form"' in as_operator.content.decode()


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


@pytest.fixture
def built_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A stand-in for dist/switchboard-agent.pyz; returns its bytes."""
    data = b"#!/usr/bin/env python3\nPK fake archive " + bytes(range(256))
    pyz = tmp_path / "switchboard-agent.pyz"
    pyz.write_bytes(data)
    monkeypatch.setattr(host_selectors, "AGENT_PYZ", pyz)
    return data


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_logged_in_users_download_the_agent_and_see_its_sha256(viewer: Account, built_agent: bytes) -> None:
    client = _logged_in(viewer)
    response = client.get(AGENT_URL)
    assert response.status_code == 200
    assert _body(response) == built_agent
    assert response["Content-Disposition"] == 'attachment; filename="switchboard-agent.pyz"'

    page = client.get("/hosts/")
    sha256 = hashlib.sha256(built_agent).hexdigest()
    assert page.context["agent"].sha256 == sha256
    html = page.content.decode()
    assert sha256 in html and f'href="{AGENT_URL}"' in html and f'href="{UNIT_URL}"' in html
    assert "python -m netcore.agent" not in html
    assert "--token-file /etc/switchboard/agent.token" in html

    unit = client.get(UNIT_URL)
    assert unit.status_code == 200
    assert b"ExecStart=/usr/bin/python3 -I /usr/local/lib/switchboard/switchboard-agent.pyz" in _body(unit)


def test_a_host_downloads_the_agent_with_its_own_token_only(
    make_host: Callable[..., AgentHost], built_agent: bytes
) -> None:
    host = make_host("h1")
    good = Client(headers={"Authorization": f"Token {host.token}"})
    assert _body(good.get(AGENT_URL)) == built_agent
    assert good.get(UNIT_URL).status_code == 200
    assert Client(headers={"Authorization": f"Bearer {host.token}"}).get(UNIT_URL).status_code == 200
    for header in ("Token sbh_" + "x" * 43, "Token nope", f"Basic {host.token}"):
        assert Client(headers={"Authorization": header}).get(AGENT_URL).status_code == 403
    host_revoke(host=host.host)
    assert good.get(AGENT_URL).status_code == 403


def test_without_a_built_agent_the_page_says_how_to_build_it(
    viewer: Account, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_selectors, "AGENT_PYZ", tmp_path / "missing.pyz")
    client = _logged_in(viewer)
    assert client.get(AGENT_URL).status_code == 404
    page = client.get("/hosts/")
    assert page.context["agent"] is None
    assert "run `make agent`" in page.content.decode()


def test_a_new_token_comes_with_install_commands_that_keep_it_out_of_ps(
    admin: Account, built_agent: bytes
) -> None:
    created = _logged_in(admin).post("/hosts/", {"action": "create", "name": "web-1"})
    token, command = created.context["new_token"], created.context["install_command"]
    lines = command.splitlines()
    # the token's only place is the body of the here-document that writes the 0600 file
    assert [i for i, line in enumerate(lines) if token in line] == [lines.index(token)]
    assert lines[lines.index(token) - 1] == ("install -m 600 /dev/stdin /etc/switchboard/agent.token <<'EOF'")
    assert "--token " not in command
    assert "echo 'SWITCHBOARD_AGENT_URL=ws://testserver/ws/agent/' > /etc/switchboard/agent.env" in lines
    assert f'("http://testserver{AGENT_URL}", "/usr/local/lib/switchboard/switchboard-agent.pyz"),' in command
    sha256 = hashlib.sha256(built_agent).hexdigest()
    assert f"echo '{sha256}  /usr/local/lib/switchboard/switchboard-agent.pyz' | sha256sum -c &&" in lines
    assert "systemctl daemon-reload && systemctl enable --now switchboard-agent" in lines
    assert "&lt;" not in command  # plain text; the page escapes it once
    assert "&lt;&lt;&#x27;EOF&#x27;" in created.content.decode()
