"""The audit log: every change with who, when, from where, what and how it ended, through the REST
API (`/api/v1/audit/`, paged or exported) and the audit page, for operators and admins."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.test import Client

from tests.webapp.conftest import Account, AgentHost
from webapp.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/"
DOC = "name: au\nnetworks:\n  lan: {subnet: 198.18.47.0/24}\nnodes:\n  a: {networks: [lan]}\n"
CLASH = DOC.replace("name: au", "name: au2")  # the same subnet: refused with a 409


def _entries(account: Account, **query: str) -> list[dict]:
    response = account.api().get(URL, query)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_changes_through_the_api_are_recorded_with_who_from_where_and_how_they_ended(
    operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    api = operator.api()
    create = "/api/v1/topologies/"
    assert api.post(create, {"host": "h1", "topology": DOC}, format="json").status_code == 201
    assert api.post(create, {"host": "h1", "topology": CLASH}, format="json").status_code == 409
    assert api.post("/api/v1/topologies/au/plan/", {}, format="json").status_code == 202

    entries = [e for e in _entries(operator, host="h1") if e["action"] != "host.create"]  # the fixture's
    made = [(e["action"], e["user"], e["source"], e["object"], e["result"]) for e in reversed(entries)]
    assert made[0] == ("topology.create", operator.user.username, "api", "au", "ok")
    assert made[1][:3] == ("topology.create", operator.user.username, "api") and made[1][4] == "failed"
    assert "overlaps" in entries[-2]["error"]
    assert made[2][:3] == ("operation.create", operator.user.username, "api") and made[2][4] == "ok"
    assert [e["action"] for e in entries].count("topology.create") == 2  # each change once


def test_filters_and_the_export(operator: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("h1")
    make_host("h2")
    api = operator.api()
    api.post("/api/v1/topologies/", {"host": "h1", "topology": DOC}, format="json")
    api.post("/api/v1/topologies/", {"host": "h2", "topology": DOC}, format="json")
    api.post("/api/v1/topologies/au/plan/?host=h2", {}, format="json")
    assert {e["host"] for e in _entries(operator, host="h2", action="topology.*")} == {"h2"}
    on_au = [e["action"] for e in _entries(operator, host="h2", object="au")]
    assert on_au == ["operation.create", "topology.create"]
    assert _entries(operator, user="nobody") == []
    assert _entries(operator, since="2999-01-01T00:00:00Z") == []
    bad = api.get(URL, {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["fields"]

    export = api.get(URL, {"host": "h1", "export": "true"})
    assert export.status_code == 200
    assert export["Content-Disposition"].startswith('attachment; filename="switchboard-audit-')
    body = json.loads(export.content)
    exported = [(e["host"], e["action"]) for e in body["entries"]]
    assert exported == [("h1", "topology.create"), ("h1", "host.create")]
    assert body["exported_at"]


def test_viewers_may_not_read_the_log(viewer: Account, operator: Account) -> None:
    assert viewer.api().get(URL).status_code == 403
    client = Client()
    client.force_login(viewer.user)
    assert client.get("/audit/").status_code == 403


def test_the_page_shows_the_filtered_log_and_says_what_is_wrong_with_a_filter(
    operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    operator.api().post("/api/v1/topologies/", {"host": "h1", "topology": DOC}, format="json")
    client = Client()
    client.force_login(operator.user)
    page = client.get("/audit/", {"action": "topology.create"}).content.decode()
    assert "<code>topology.create</code>" in page and "1 entry." in page
    assert 'href="/api/v1/audit/?action=topology.create&amp;export=true"' in page
    assert "No change matches these filters." in client.get("/audit/", {"user": "nobody"}).content.decode()
    assert "Some filters are not valid" in client.get("/audit/", {"until": "soon"}).content.decode()


def test_listing_takes_a_constant_number_of_queries(
    operator: Account, make_host: Callable[..., AgentHost], django_assert_num_queries: Callable
) -> None:
    host = make_host("h1").host
    AuditEntry.objects.bulk_create(
        AuditEntry(username="someone", source="api", action="topology.update", object_kind="topology",
                   host=host.name, object_name=f"t{i}") for i in range(300)  # fmt: skip
    )
    api = operator.api()
    api.get(URL, {"page_size": 1})  # the token's first use notes its last_used: at most once a minute
    with django_assert_num_queries(5):  # lockout of the address, token, role, count, page
        assert len(api.get(URL, {"page_size": 300}).json()["results"]) == 300
