"""Saved graph layouts: each user's node positions per view, through the REST API and the topology page."""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import Client
from rest_framework.test import APIClient

from tests.webapp.conftest import Account, make_account, run_on_database
from webapp.accounts.models import Role
from webapp.topology import services
from webapp.topology.models import SavedLayout
from webapp.topology.selectors import saved_layout
from webapp.topology.services import LAYOUT_MAX_POSITIONS, layout_replace

pytestmark = pytest.mark.django_db

URL = "/api/v1/topology/layouts/topology/"
STORED = {"alpha|ns|web1": [12.5, -40.0], "alpha|ns|web2": [0.0, 7.25]}
BAD_POSITION = "a position is [x, y]: two finite numbers within ±10,000,000"


def _send(client: APIClient, method: str, body: Any, url: str = URL) -> Any:
    """PUT or PATCH `body`, JSON-encoded, or sent as is when it is already text."""
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, data, content_type="application/json")


def _iso(text: str) -> bool:
    return re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", text) is not None


class _AnyIso:
    """Equal to any ISO 8601 date-time text."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and _iso(other)


class _AnyStr:
    """Equal to any non-empty text."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other != ""


ANY_ISO, ANY_STR = _AnyIso(), _AnyStr()


def test_put_get_patch_round_trip(viewer: Account) -> None:
    client = viewer.api()
    never = client.get(URL)
    assert never.status_code == 200
    assert never.json() == {"view": "topology", "positions": {}, "updated": None}

    put = _send(client, "put", {"positions": {**STORED, "alpha|ns|web3": [1, -2]}})
    assert put.status_code == 200, put.json()
    body = put.json()
    assert body["view"] == "topology" and _iso(body["updated"])
    assert body["positions"] == {**STORED, "alpha|ns|web3": [1.0, -2.0]}
    assert client.get(URL).json() == body

    patched = _send(
        client,
        "patch",
        {"positions": {"alpha|ns|web1": [3, 4], "beta|host|br0": [-1e7, 1e7]}, "remove": ["alpha|ns|web3"]},
    )
    assert patched.status_code == 200, patched.json()
    expected = {"alpha|ns|web1": [3.0, 4.0], "alpha|ns|web2": [0.0, 7.25], "beta|host|br0": [-1e7, 1e7]}
    assert patched.json()["positions"] == expected
    assert patched.json()["updated"] >= body["updated"]
    assert client.get(URL).json() == patched.json()

    # both parts optional; removing an unknown id is no error; an id also in positions is removed
    assert _send(client, "patch", {}).json()["positions"] == expected
    assert _send(client, "patch", {"remove": ["nope"]}).json()["positions"] == expected
    both = _send(client, "patch", {"positions": {"alpha|ns|web1": [9, 9]}, "remove": ["alpha|ns|web1"]})
    assert set(both.json()["positions"]) == {"alpha|ns|web2", "beta|host|br0"}

    emptied = _send(client, "put", {"positions": {}})
    assert (emptied.status_code, emptied.json()["positions"]) == (200, {})


def test_ids_and_coordinates_at_the_limits_are_fine(viewer: Account) -> None:
    positions = {"n" * 512: [1e7, -1e7], "n": [10_000_000, -10_000_000], "é|ns|веб": [0.5, 1e-300]}
    response = _send(viewer.api(), "put", {"positions": positions})
    assert response.status_code == 200, response.json()
    assert response.json()["positions"] == positions


def test_views_are_separate(viewer: Account) -> None:
    client = viewer.api()
    _send(client, "put", {"positions": STORED})
    other = "/api/v1/topology/layouts/routes-2/"
    _send(client, "put", {"positions": {"x": [1, 1]}}, url=other)
    assert client.get(URL).json()["positions"] == STORED
    assert client.get(other).json() == {
        "view": "routes-2",
        "positions": {"x": [1.0, 1.0]},
        "updated": ANY_ISO,
    }


def test_each_user_reads_and_writes_only_their_own_layout(
    viewer: Account, operator: Account, admin: Account
) -> None:
    for n, account in enumerate((viewer, operator, admin)):
        response = _send(account.api(), "put", {"positions": {"n": [n, n]}})
        assert response.status_code == 200, (account.user.username, response.json())
    assert viewer.api().get(URL).json()["positions"] == {"n": [0.0, 0.0]}
    assert operator.api().get(URL).json()["positions"] == {"n": [1.0, 1.0]}
    _send(operator.api(), "patch", {"remove": ["n"]})
    assert admin.api().get(URL).json()["positions"] == {"n": [2.0, 2.0]}
    assert viewer.api().get(URL).json()["positions"] == {"n": [0.0, 0.0]}
    fresh = make_account("bea", Role.VIEWER)
    assert fresh.api().get(URL).json() == {"view": "topology", "positions": {}, "updated": None}


NAN_BODY = '{"positions": {"alpha|ns|web1": [1, NaN]}}'
LONG_ID = "n" * 513

BAD_BODIES = [
    pytest.param(
        {"positions": [[1, 2]]}, "positions", "positions is an object of node id → [x, y]", id="list"
    ),
    pytest.param({"positions": None}, "positions", "This field may not be null.", id="null"),
    pytest.param({"positions": {"": [1, 2]}}, "positions.", "a node id is 1-512 characters", id="empty-id"),
    pytest.param(
        {"positions": {LONG_ID: [1, 2]}},
        f"positions.{LONG_ID}",
        "a node id is 1-512 characters",
        id="long-id",
    ),
    pytest.param({"positions": {"a": "1,2"}}, "positions.a", BAD_POSITION, id="string"),
    pytest.param({"positions": {"a": {"x": 1, "y": 2}}}, "positions.a", BAD_POSITION, id="object"),
    pytest.param({"positions": {"a": [1]}}, "positions.a", BAD_POSITION, id="one-number"),
    pytest.param({"positions": {"a": [1, 2, 3]}}, "positions.a", BAD_POSITION, id="three-numbers"),
    pytest.param({"positions": {"a": ["1", 2]}}, "positions.a", BAD_POSITION, id="numeric-string"),
    pytest.param({"positions": {"a": [True, 2]}}, "positions.a", BAD_POSITION, id="bool"),
    pytest.param({"positions": {"a": [None, 2]}}, "positions.a", BAD_POSITION, id="null-number"),
    pytest.param({"positions": {"a": [1e7 + 1, 0]}}, "positions.a", BAD_POSITION, id="too-far"),
    pytest.param({"positions": {"a": [0, -10_000_001]}}, "positions.a", BAD_POSITION, id="too-far-int"),
    pytest.param(NAN_BODY, "positions.alpha|ns|web1", BAD_POSITION, id="NaN"),
    pytest.param('{"positions": {"a": [Infinity, 0]}}', "positions.a", BAD_POSITION, id="Infinity"),
    pytest.param('{"positions": {"a": [0, -Infinity]}}', "positions.a", BAD_POSITION, id="-Infinity"),
    pytest.param('{"positions": {"a": [1e400, 0]}}', "positions.a", BAD_POSITION, id="overflow-to-inf"),
    # the good entries before a bad one are not stored either
    pytest.param({"positions": {"ok": [1, 2], "bad": [1, "2"]}}, "positions.bad", BAD_POSITION, id="later"),
    pytest.param([1, 2], "non_field_errors", "Invalid data. Expected a dictionary, but got list.", id="body"),
]
BAD_REMOVES = [
    pytest.param({"remove": "alpha|ns|web1"}, "remove", "remove is a list of node ids", id="remove-string"),
    pytest.param({"remove": ["x", 7]}, "remove.1", "a node id is a string", id="remove-number"),
    pytest.param({"remove": None}, "remove", "This field may not be null.", id="remove-null"),
    pytest.param(
        {"positions": {"ok": [1, 2]}, "remove": [None]},
        "remove.0",
        "a node id is a string",
        id="remove-after-set",
    ),
]


def _assert_refused(response: Any, field: str, message: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json() == {"error": "InvalidInput", "message": ANY_STR, "fields": {field: [message]}}


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(("body", "field", "message"), BAD_BODIES)
def test_bad_positions_are_refused_naming_the_field_and_change_nothing(
    viewer: Account, operator: Account, method: str, body: Any, field: str, message: str
) -> None:
    before = _send(viewer.api(), "put", {"positions": STORED}).json()
    _assert_refused(_send(viewer.api(), method, body), field, message)
    assert viewer.api().get(URL).json() == before
    # a user without a layout does not get an empty one
    _assert_refused(_send(operator.api(), method, body), field, message)
    assert not SavedLayout.objects.filter(user=operator.user).exists()


@pytest.mark.parametrize(("body", "field", "message"), BAD_REMOVES)
def test_a_bad_remove_is_refused_naming_the_field_and_changes_nothing(
    viewer: Account, operator: Account, body: Any, field: str, message: str
) -> None:
    before = _send(viewer.api(), "put", {"positions": STORED}).json()
    _assert_refused(_send(viewer.api(), "patch", body), field, message)
    assert viewer.api().get(URL).json() == before
    _assert_refused(_send(operator.api(), "patch", body), field, message)
    assert not SavedLayout.objects.filter(user=operator.user).exists()


def test_put_needs_positions(viewer: Account) -> None:
    _assert_refused(_send(viewer.api(), "put", {"remove": []}), "positions", "This field is required.")


def test_the_error_body(viewer: Account) -> None:
    response = _send(viewer.api(), "put", NAN_BODY)
    assert response.json() == {
        "error": "InvalidInput",
        "message": BAD_POSITION,
        "fields": {"positions.alpha|ns|web1": [BAD_POSITION]},
    }


VIEW_MESSAGE = "a view name is 1-40 lowercase letters, digits or '-', starting with a letter or digit"


@pytest.mark.parametrize("view", ["Topology", "-topology", "topo_logy", "topo.logy", "t" * 41, "tôpology"])
def test_a_bad_view_name_is_refused(viewer: Account, view: str) -> None:
    url = f"/api/v1/topology/layouts/{view}/"
    client = viewer.api()
    _assert_refused(client.get(url), "view", VIEW_MESSAGE)
    _assert_refused(_send(client, "put", {"positions": STORED}, url=url), "view", VIEW_MESSAGE)
    _assert_refused(_send(client, "patch", {"positions": STORED}, url=url), "view", VIEW_MESSAGE)
    assert not SavedLayout.objects.exists()


def test_view_names_at_the_limits_are_fine(viewer: Account) -> None:
    for view in ("t", "0", "t" * 40, "a-b-"):
        response = _send(
            viewer.api(), "put", {"positions": {"n": [0, 0]}}, url=f"/api/v1/topology/layouts/{view}/"
        )
        assert response.status_code == 200, (view, response.json())


def _many(count: int, prefix: str = "alpha|ns|n") -> dict[str, list[float]]:
    return {f"{prefix}{i}": [float(i), -float(i)] for i in range(count)}


def test_a_layout_holds_at_most_30000_positions(viewer: Account) -> None:
    assert LAYOUT_MAX_POSITIONS == 30_000
    client = viewer.api()
    full = _many(LAYOUT_MAX_POSITIONS)
    message = "a layout holds at most 30,000 positions (this one would have 30,001): re-layout to reset it"

    _assert_refused(_send(client, "put", {"positions": {**full, "one-more": [0, 0]}}), "positions", message)
    assert not SavedLayout.objects.exists()

    assert _send(client, "put", {"positions": full}).status_code == 200
    _assert_refused(_send(client, "patch", {"positions": {"one-more": [0, 0]}}), "positions", message)
    assert len(client.get(URL).json()["positions"]) == LAYOUT_MAX_POSITIONS
    # moving existing nodes, or adding as many as are removed, stays within the limit
    assert _send(client, "patch", {"positions": {"alpha|ns|n0": [5, 5]}}).status_code == 200
    swapped = _send(client, "patch", {"positions": {"one-more": [0, 0]}, "remove": ["alpha|ns|n1"]})
    assert swapped.status_code == 200
    assert len(swapped.json()["positions"]) == LAYOUT_MAX_POSITIONS
    assert swapped.json()["positions"]["alpha|ns|n0"] == [5.0, 5.0]


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_anonymous_requests_are_refused(viewer: Account, method: str) -> None:
    layout_replace(user=viewer.user, view="topology", positions=STORED)
    response = _send(APIClient(), method, {"positions": {}}) if method != "get" else APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"] == "NotAuthenticated"
    assert saved_layout(user=viewer.user, view="topology")["positions"] == STORED


def _page_layout(client: Client) -> Any:
    html = client.get("/topology/").content.decode()
    found = re.search(r'<script id="topology-layout" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page has no topology-layout script"
    return json.loads(found.group(1))


def test_session_writes_need_the_csrf_token_the_page_gives(viewer: Account) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer.user)
    layout = _page_layout(client)

    for method in ("put", "patch"):
        refused = getattr(client, method)(URL, {"positions": STORED}, content_type="application/json")
        assert refused.status_code == 403
        assert refused.json()["error"] == "PermissionDenied"
        assert "CSRF" in refused.json()["message"]
    assert not SavedLayout.objects.exists()

    headers = {"X-CSRFToken": layout["csrf_token"]}
    put = client.put(layout["url"], {"positions": STORED}, content_type="application/json", headers=headers)
    assert put.status_code == 200, put.content
    patch = client.patch(
        layout["url"], {"remove": ["alpha|ns|web2"]}, content_type="application/json", headers=headers
    )
    assert patch.status_code == 200
    assert client.get(URL).json()["positions"] == {"alpha|ns|web1": [12.5, -40.0]}


def test_token_writes_need_no_csrf_token(viewer: Account) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {viewer.token}")
    assert _send(client, "put", {"positions": STORED}).status_code == 200


def test_the_page_embeds_the_users_saved_positions(viewer: Account, operator: Account) -> None:
    layout_replace(user=viewer.user, view="topology", positions=STORED)
    layout_replace(user=operator.user, view="topology", positions={"other": [1, 1]})
    client = Client()
    client.force_login(viewer.user)
    response = client.get("/topology/")
    embedded = _page_layout(client)
    assert embedded == {"url": URL, "view": "topology", "positions": STORED, "csrf_token": ANY_STR}
    assert response.context["layout"]["positions"] == STORED

    newcomer = Client()
    newcomer.force_login(make_account("bea", Role.VIEWER).user)
    assert _page_layout(newcomer)["positions"] == {}


def test_without_a_layout_in_the_context_the_page_embeds_null() -> None:
    """As in the browser tests' harness, which includes the page body without a layout."""
    html = render_to_string("topology/_workspace.html", {"hosts": []})
    assert '<script id="topology-layout" type="application/json">null</script>' in html


def test_deleting_a_user_deletes_their_layouts(viewer: Account, operator: Account) -> None:
    layout_replace(user=viewer.user, view="topology", positions=STORED)
    layout_replace(user=viewer.user, view="other", positions=STORED)
    layout_replace(user=operator.user, view="topology", positions=STORED)
    viewer.user.delete()
    assert list(SavedLayout.objects.values_list("user__username", "view")) == [("otto", "topology")]


def test_the_schema_documents_the_layout_api(viewer: Account) -> None:
    schema = viewer.api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/api/v1/topology/layouts/{view}/"]
    assert {"get", "put", "patch"} <= set(operations)
    assert set(operations["put"]["responses"]) == {"200", "400"}


# Concurrency, in a child process on SQLite and on PostgreSQL (run_on_database says why): two threads
# send their PATCHes at the same moment. Each merge pauses 0.3 s between reading the stored layout and
# writing it back: without the lock, the second would read the layout before the first wrote it.


def _concurrent_patches() -> dict[str, Any]:
    """In the child process: two PATCHes at once, first with no layout stored, then with one."""
    account = make_account("rita", Role.VIEWER)
    check = services._count_check

    def slow_check(positions: Any) -> None:
        time.sleep(0.3)
        check(positions)

    services._count_check = slow_check
    barrier = threading.Barrier(2)

    def patch(node: str) -> int:
        barrier.wait()
        return _send(account.api(), "patch", {"positions": {node: [1, 2]}}).status_code

    statuses = []
    for nodes in (["a", "b"], ["c", "d"]):
        with ThreadPoolExecutor(2) as pool:
            statuses += pool.map(patch, nodes)
    return {"statuses": statuses, "positions": saved_layout(user=account.user, view="topology")["positions"]}


@pytest.mark.django_db(False)
def test_concurrent_patches_of_different_ids_all_land(database_url: str) -> None:
    result = run_on_database(_concurrent_patches, database_url)
    assert result["statuses"] == [200, 200, 200, 200]
    assert sorted(result["positions"]) == ["a", "b", "c", "d"]
