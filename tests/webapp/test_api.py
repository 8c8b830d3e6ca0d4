"""REST API: topology and hosts for logged-in users, the OpenAPI schema, and the one error shape."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from tests.webapp.conftest import Account, AgentHost, link, state_with
from webapp.topology.services import host_state_save

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/topology/", "/api/v1/hosts/"])
def test_the_api_needs_credentials(path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {
        "error": "NotAuthenticated",
        "message": "Authentication credentials were not provided.",
    }


def test_the_schema_needs_credentials() -> None:
    assert APIClient().get("/api/schema/").status_code == 401


def test_topology_lists_each_active_host_as_a_netcore_snapshot(
    viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    h1 = make_host("h1")
    host_state_save(host_id=h1.host.id, seq=7, state=state_with(links={"host|1": link("lo", 1)}))
    make_host("h2")
    h3 = make_host("h3")
    h3.host.revoked_at = h3.host.created
    h3.host.save()

    body = viewer.api().get("/api/v1/topology/").json()

    assert [(h["host"], h["online"], h["seq"]) for h in body["hosts"]] == [("h1", False, 7), ("h2", False, 0)]
    assert body["hosts"][0]["snapshot"] == {
        "version": 1,
        "namespaces": [],
        "links": [link("lo", 1)],
        "addresses": [],
        "routes": [],
        "neighbours": [],
        "fdb": [],
    }


def test_topology_filters_by_host_and_404s_an_unknown_one(
    viewer: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    make_host("h2")
    client = viewer.api()
    assert [h["host"] for h in client.get("/api/v1/topology/?host=h2").json()["hosts"]] == ["h2"]
    response = client.get("/api/v1/topology/?host=nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "NotFound",
        "message": "no host named 'nope'",
        "fields": {"host": ["no host named 'nope'"]},
    }


def test_hosts_list(viewer: Account, make_host: Callable[..., AgentHost]) -> None:
    h = make_host("h1")
    (entry,) = viewer.api().get("/api/v1/hosts/").json()
    assert entry == {
        "name": "h1",
        "online": False,
        "last_seen": None,
        "agent_version": "",
        "hostname": "",
        "token_prefix": h.token[:8],
        "revoked": False,
        "underlay": None,
    }
    assert entry["token_prefix"].startswith("sbh_")


def test_session_login_works_for_the_api(viewer: Account) -> None:
    client = Client()
    client.force_login(viewer.user)
    assert client.get("/api/v1/hosts/").status_code == 200


def test_the_schema_renders_and_lists_the_operations(viewer: Account) -> None:
    response = viewer.api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Switchboard API"
    assert {"/api/v1/topology/", "/api/v1/hosts/", "/api/v1/hosts/{name}/apply/"} <= set(schema["paths"])


def test_the_docs_page_needs_login(viewer: Account) -> None:
    assert Client().get("/api/docs/").status_code == 302
    client = Client()
    client.force_login(viewer.user)
    assert client.get("/api/docs/").status_code == 200


def test_api_errors_outside_views_are_json_too(operator: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(operator.user)
    missing = client.get("/api/v1/no-such-thing/")
    assert (missing.status_code, missing.json()["error"]) == (404, "NotFound")
    assert client.get("/topology/no-such-page/")["Content-Type"].startswith("text/html")

    from webapp.networks.api import views

    def crash(**kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.selectors, "topology_list", crash)
    broken = client.get("/api/v1/topologies/")
    assert broken.status_code == 500
    assert broken.json()["error"] == "ServerError" and "a bug" not in broken.json()["message"]

    too_big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    big = operator.api().generic("POST", "/api/v1/topologies/", data=too_big, content_type="application/json")
    assert (big.status_code, big.json()["error"]) == (413, "PayloadTooLarge"), big.content[:200]


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("web<1>", "(not '<' at character 4)"),
        ("ab\u202ecd", "(not U+202E RIGHT-TO-LEFT OVERRIDE at character 3)"),
    ],
)
def test_a_bad_host_name_says_which_character_and_where(name: str, said: str) -> None:
    from webapp.errors import InvalidInput
    from webapp.hosts.services import host_create

    with pytest.raises(InvalidInput) as caught:
        host_create(name=name)
    assert caught.value.field == "name" and caught.value.message.endswith(said)
