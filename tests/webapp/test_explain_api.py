"""/api/v1/explain/: the question checked and put as the agent names things (a topology's node becomes
its namespace), relayed to the host's agent connection and its answer relayed back; refusals by field,
by role, and for a host whose agent is not there. (The answer itself: tests/netcore/test_explain.py
and tests/stack/test_explain.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.webapp.conftest import RECEIVE_TIMEOUT, Account, AgentHost, Sockets, lease_held, receive_type
from webapp.explain.selectors import explain_destination, explain_source
from webapp.networks.services import topology_create

SHOP = """\
name: shop
networks:
  front: {subnet: 198.18.40.0/24}
nodes:
  web1: {networks: {front: {address: 198.18.40.11}}}
  side: {mode: "container:web1"}
  tool: {mode: host}
"""
ANSWER = {
    "result": "UNREACHABLE",
    "summary": "nothing listens",
    "walk": {
        "source": "shop-web1",
        "destination": "198.18.40.12",
        "protocol": "tcp",
        "port": 80,
        "hops": [],
        "verdict": "drop",
        "cause": "NOTHING_LISTENING",
        "message": "nothing listens",
        "advice": "start it",
    },
    "probe": None,
}


@pytest.fixture
def shop(make_host: Callable[..., AgentHost], operator: Account) -> AgentHost:
    h = make_host("h1")
    topology_create(host=h.host, document=SHOP, user=operator.user)
    return h


async def _asked(
    sockets: Sockets,
    shop: AgentHost,
    operator: Account,
    body: dict[str, Any],
    reply: dict[str, Any],
    *,
    method: str = "POST",
):
    """POST body (or GET it as the query) while a connected agent answers the `explain` frame it gets
    with `reply`: (status, answer, the request the agent got)."""
    agent = await sockets.agent(shop.token)
    if method == "GET":
        ask = sockets.http("GET", f"/api/v1/explain/?{urlencode(body)}", token=operator.token)
    else:
        ask = sockets.http("POST", "/api/v1/explain/", token=operator.token, body=body)
    posted = asyncio.create_task(ask)
    frame = await receive_type(agent, "explain", skip=("catalog", "command"))
    await agent.send_json_to({"v": 1, "type": "explained", "id": frame["id"], **reply})
    status, answer = await asyncio.wait_for(posted, RECEIVE_TIMEOUT)
    return status, answer, frame["request"]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_node_is_asked_by_its_namespace_and_the_agent_s_answer_comes_back(
    shop: AgentHost, operator: Account, sockets: Sockets, method: str
) -> None:
    body = {"host": "h1", "source": "shop/side", "destination": "shop/web1:80", "count": 2}
    reply = {"ok": True, "answer": ANSWER}
    status, answer, request = await _asked(sockets, shop, operator, body, reply, method=method)
    assert status == 200, answer
    assert answer == ANSWER
    assert request == {
        "source": "shop-web1",  # side shares web1's namespace
        "destination": "shop-web1:80",
        "probe": True,
        "count": 2,
        "timeout": 1.0,
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_what_the_agent_cannot_find_is_a_404_with_its_words(
    shop: AgentHost, operator: Account, sockets: Sockets
) -> None:
    refused = {"ok": False, "error": {"error": "NotFound", "message": "source namespace x does not exist"}}
    body = {"host": "h1", "source": "x", "destination": "198.18.40.11"}
    status, answer, _ = await _asked(sockets, shop, operator, body, refused)
    assert (status, answer["message"]) == (404, "source namespace x does not exist")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"host": "h1", "source": "shop/nobody", "destination": "198.18.40.11"}, 404, "source"),
        ({"host": "h1", "source": "shop/web1", "destination": "shop/nobody:80"}, 404, "destination"),
        ({"host": "h1", "source": "shop/web1", "destination": "198.18.40.11", "count": 11}, 400, "count"),
        (
            {"host": "h1", "source": "shop/web1", "destination": "198.18.40.11", "protocol": "sctp"},
            400,
            "protocol",
        ),
        ({"host": "h1", "source": "shop/web1"}, 400, "destination"),
    ],
)
def test_bad_questions_are_refused_by_field(
    shop: AgentHost, operator: Account, body: dict[str, Any], code: int, field: str
) -> None:
    lease_held(shop.host)
    response = operator.api().post("/api/v1/explain/", body, format="json")
    assert response.status_code == code, response.json()
    assert field in response.json()["fields"], response.json()


@pytest.mark.django_db
def test_a_host_without_its_agent_and_a_viewer_are_refused(
    shop: AgentHost, operator: Account, viewer: Account
) -> None:
    body = {"host": "h1", "source": "shop/web1", "destination": "198.18.40.11"}
    offline = operator.api().post("/api/v1/explain/", body, format="json")
    assert offline.status_code == 503 and "no agent connected" in offline.json()["message"]
    assert viewer.api().post("/api/v1/explain/", body, format="json").status_code == 403
    assert (
        operator.api().post("/api/v1/explain/", {**body, "host": "nohost"}, format="json").status_code == 404
    )


@pytest.mark.django_db
def test_a_host_mode_node_is_the_host_s_own_namespace(shop: AgentHost) -> None:
    assert explain_source(shop.host, "shop/tool") == "host"
    assert explain_destination(shop.host, "shop/tool:22") == "host:22"
    assert explain_destination(shop.host, "198.18.40.11:80") == "198.18.40.11:80"
