"""A link's shaping through the API: checked against the host's last reported state and by field, then
queued as a shape operation whose command the host's agent runs (link.shape / link.unshape)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

from tests.webapp.conftest import Account, AgentHost, Sockets, link, receive_type, state_with
from tests.webapp.test_commands_api import answer, command, get
from webapp.audit.models import AuditEntry
from webapp.operations.models import Operation
from webapp.topology.services import host_state_save

URL = "/api/v1/topology/shaping/{host}/{netns}/{link}/"
WEB1_ETH0 = URL.format(host="h1", netns="web1", link="eth0")


def _stored(make_host: Callable[..., AgentHost], *, mtu: int = 1500) -> AgentHost:
    h = make_host("h1")
    eth0 = {**link("eth0", 2, "web1", kind="veth"), "mtu": mtu}
    links = {"web1|2": eth0, "host|3": link("br0", 3)}
    host_state_save(host_id=h.host.id, seq=1, state=state_with(links=links))
    return h


@pytest.mark.django_db
def test_a_rate_limit_is_queued_as_a_shape_operation(operator: Account, make_host) -> None:
    _stored(make_host)
    queued = operator.api().put(WEB1_ETH0, {"rate": "10mbit", "burst": "32kb"}, format="json")
    assert queued.status_code == 202, queued.content
    operation = Operation.objects.get(id=queued.json()["operation"])
    assert (operation.kind, operation.status, operation.requested_by.username) == ("shape", "pending", "otto")
    assert json.loads(operation.document) == {
        "action": "shape",
        "request": {"netns": "web1", "link": "eth0", "shaping": {"rate": "10mbit", "burst": "32kb"}},
    }
    assert AuditEntry.objects.filter(action="operation.create", object_name=str(operation.id)).exists()

    removed = operator.api().delete(WEB1_ETH0)
    assert removed.status_code == 202, removed.content
    undo = Operation.objects.get(id=removed.json()["operation"])
    assert json.loads(undo.document) == {"action": "unshape", "request": {"netns": "web1", "link": "eth0"}}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"rate": "10mbit", "queue_ms": 0}, "queue_ms"),
        ({"delay": "10ms", "jitter": "20ms"}, "jitter"),
        ({"loss": "150%"}, "loss"),
        ({"delay": "5ms", "burst": "32kb"}, "burst"),
        ({"rate": "10mbit", "burst": 1200}, "burst"),  # smaller than one 1514-byte frame of eth0
        ({"rate": "10mbit", "colour": "red"}, "colour"),
    ],
)
def test_bad_shaping_is_refused_by_field_and_nothing_is_queued(
    operator: Account, make_host, body, field
) -> None:
    _stored(make_host)
    refused = operator.api().put(WEB1_ETH0, body, format="json")
    assert refused.status_code == 400, refused.content
    assert field in refused.json()["fields"], refused.json()
    assert not Operation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "field"),
    [
        (URL.format(host="h1", netns="nowhere", link="eth0"), "netns"),
        (URL.format(host="h1", netns="web1", link="eth9"), "link"),
    ],
)
def test_an_unknown_namespace_or_link_is_404_by_field(operator: Account, make_host, url, field) -> None:
    _stored(make_host)
    for refused in (operator.api().put(url, {"rate": "1mbit"}, format="json"), operator.api().delete(url)):
        assert refused.status_code == 404, refused.content
        assert set(refused.json()["fields"]) == {field}, refused.json()
    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_an_unknown_host_is_404_and_viewers_may_not_shape(
    operator: Account, viewer: Account, make_host
) -> None:
    _stored(make_host)
    missing = operator.api().put(
        URL.format(host="nope", netns="web1", link="eth0"), {"rate": "1mbit"}, format="json"
    )
    assert missing.status_code == 404
    assert viewer.api().put(WEB1_ETH0, {"rate": "1mbit"}, format="json").status_code == 403
    assert viewer.api().delete(WEB1_ETH0).status_code == 403
    assert not Operation.objects.exists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_agent_is_sent_link_shape_and_its_refusal_fails_the_operation(
    sockets: Sockets, operator: Account, make_host: Callable[..., AgentHost]
) -> None:
    h = await database_sync_to_async(_stored)(make_host)
    agent = await sockets.agent(h.token)
    browser = await sockets.browser(operator.token)
    status, body = await sockets.http("PUT", WEB1_ETH0, token=operator.token, body={"delay": "20ms"})
    assert status == 202, body
    sent = await command(agent)
    assert sent == {
        "v": 1,
        "type": "command",
        "id": body["operation"],
        "action": "link.shape",
        "request": {"netns": "web1", "link": "eth0", "shaping": {"delay": "20ms"}},
    }
    error: dict[str, Any] = {
        "error": "Unsupported",
        "message": "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so delay, jitter and loss cannot "
        "be set on this host; a rate limit alone (tbf) can",
        "object": "delay",
        "errno": None,
    }
    await answer(agent, sent["id"], ok=False, error=error)
    for _ in range(3):
        frame = await receive_type(browser, "operation.status", skip=("topology.snapshot", "host.status"))
    assert frame["operation"]["subject"] == "shape web1:eth0"
    assert frame["operation"]["status"] == "failed" and "no netem qdisc" in frame["operation"]["error"]
    done = await get(sockets, operator, body["operation"])
    assert (done["kind"], done["status"]) == ("shape", "failed")
