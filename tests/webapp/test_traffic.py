"""Traffic history (webapp.traffic): fed by the agent's `traffic` state kind through the real agent
socket, kept after the kernel forgets a conversation, and read at /api/v1/traffic/."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.webapp.conftest import Account, AgentHost, Sockets, eventually, state_with
from webapp.hosts.models import Host
from webapp.traffic.models import TrafficEdge
from webapp.traffic.services import traffic_apply, traffic_prune


def edge(
    client: str,
    server: str,
    *,
    port: int | None = 80,
    protocol: str = "tcp",
    address: str = "198.18.0.2",
    flows: int = 1,
    packets: int = 10,
    bytes: int = 1000,
) -> tuple[str, dict[str, Any]]:
    """One traffic object as the agent sends it, with its key (the contract: client|server|protocol|port)."""
    key = f"{client}|{server}|{protocol}|{'' if port is None else port}"
    seen_in = sorted({client, server} - {""})
    return key, {
        "client": client,
        "server": server,
        "server_address": address,
        "protocol": protocol,
        "port": port,
        "flows": flows,
        "packets": packets,
        "bytes": bytes,
        "seen_in": seen_in,
    }


def _rows() -> dict[str, TrafficEdge]:
    return {e.key: e for e in TrafficEdge.objects.all()}


class Agent:
    """A fake agent on the real /ws/agent/ socket: snapshots and deltas of the `traffic` kind."""

    def __init__(self, ws: WebsocketCommunicator) -> None:
        self.ws = ws
        self.seq = 0

    async def snapshot(self, *edges: tuple[str, dict[str, Any]]) -> None:
        self.seq += 1
        state = state_with(traffic=dict(edges))
        await self.ws.send_json_to({"v": 1, "type": "snapshot", "seq": self.seq, "state": state})

    async def delta(self, *events: tuple[str, str, dict[str, Any] | None]) -> None:
        self.seq += 1
        body = [{"kind": "traffic", "action": a, "key": k, "object": o} for a, k, o in events]
        await self.ws.send_json_to({"v": 1, "type": "delta", "seq": self.seq, "events": body})


async def _agent(sockets: Sockets, make_host: Callable[..., AgentHost]) -> Agent:
    h = await database_sync_to_async(make_host)("h1")
    return Agent(await sockets.agent(h.token))


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_set_makes_a_live_edge_and_a_del_ends_it_keeping_the_history(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    agent = await _agent(sockets, make_host)
    await agent.snapshot()
    key, web = edge("client1", "web1", flows=2, packets=12, bytes=3400)
    await agent.delta(("set", key, web))

    def live() -> TrafficEdge | None:
        return TrafficEdge.objects.filter(key=key, ended__isnull=True).first()

    row = await eventually(live)
    assert (row.client, row.server) == ("client1", "web1")
    assert (row.protocol, row.port, row.server_address) == ("tcp", 80, "198.18.0.2")
    assert (row.flows, row.peak_flows, row.packets, row.bytes) == (2, 2, 12, 3400)
    assert row.seen_in == ["client1", "web1"]

    await agent.delta(("del", key, None))
    ended = await eventually(lambda: TrafficEdge.objects.filter(key=key, ended__isnull=False).first())
    assert ended.first_seen == row.first_seen
    assert (ended.packets, ended.bytes, ended.peak_flows) == (12, 3400, 2)  # its last report, kept


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_snapshot_ends_the_live_edges_it_lacks_and_an_edge_seen_again_is_live_with_its_first_seen(
    sockets: Sockets, make_host: Callable[..., AgentHost]
) -> None:
    agent = await _agent(sockets, make_host)
    web = edge("client1", "web1")
    db = edge("web1", "db1", port=5432, address="198.18.0.3")
    await agent.snapshot(web, db)
    rows = await eventually(lambda: len(_rows()) == 2 and _rows())
    first_seen = rows[web[0]].first_seen

    await agent.snapshot(db)  # the agent reconnected (or resynced) and web's conversation is over
    await eventually(lambda: _rows()[web[0]].ended is not None)
    assert (await database_sync_to_async(_rows)())[db[0]].ended is None

    again = edge("client1", "web1", flows=1, packets=4, bytes=300)
    await agent.delta(("set", *again))
    row = await eventually(lambda: (r := _rows()[web[0]]).ended is None and r)
    assert row.first_seen == first_seen
    assert (row.packets, row.bytes) == (4, 300)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_agent_that_goes_away_leaves_its_edges_as_they_were_and_the_api_says_it_is_offline(
    sockets: Sockets, make_host: Callable[..., AgentHost], viewer: Account
) -> None:
    agent = await _agent(sockets, make_host)
    await agent.snapshot(edge("client1", "web1"))
    await eventually(lambda: TrafficEdge.objects.filter(ended__isnull=True).exists())
    status, body = await sockets.http("GET", "/api/v1/traffic/?host=h1", token=viewer.token)
    assert status == 200 and [(e["live"], e["host_online"]) for e in body["results"]] == [(True, True)]

    await agent.ws.disconnect()
    await eventually(lambda: not Host.objects.get(name="h1").online)
    status, body = await sockets.http("GET", "/api/v1/traffic/?host=h1", token=viewer.token)
    assert status == 200 and [(e["live"], e["host_online"]) for e in body["results"]] == [(True, False)]


@pytest.mark.django_db
def test_sums_that_drop_when_a_flow_expires_leave_the_seen_totals_as_a_lower_bound(
    make_host: Callable[..., AgentHost],
) -> None:
    host = make_host("h1").host
    key, first = edge("a", "b", flows=2, packets=10, bytes=1000)
    traffic_apply(host_id=host.id, reports={key: first})
    traffic_apply(host_id=host.id, reports={key: edge("a", "b", flows=2, packets=30, bytes=5000)[1]})
    traffic_apply(
        host_id=host.id, reports={key: edge("a", "b", flows=1, packets=8, bytes=700)[1]}
    )  # one expired
    traffic_apply(host_id=host.id, reports={key: None})
    traffic_apply(
        host_id=host.id, reports={key: edge("a", "b", flows=3, packets=6, bytes=600)[1]}
    )  # live again
    row = TrafficEdge.objects.get(key=key)
    assert (row.flows, row.peak_flows, row.packets, row.bytes) == (3, 3, 6, 600)
    assert (row.packets_seen, row.bytes_seen) == (10 + 20 + 0 + 6, 1000 + 4000 + 0 + 600)


@pytest.mark.django_db
def test_a_frame_takes_as_many_queries_whatever_its_size_and_unchanged_edges_are_not_written(
    make_host: Callable[..., AgentHost],
) -> None:
    host = make_host("h1").host

    def report(n: int, packets: int) -> dict[str, dict[str, Any]]:
        return dict(edge(f"c{i}", "web1", packets=packets) for i in range(n))

    counts = []
    for n in (3, 60):
        TrafficEdge.objects.all().delete()
        traffic_apply(host_id=host.id, reports=report(n, 10))
        with CaptureQueriesContext(connection) as queries:
            written = traffic_apply(host_id=host.id, reports=report(n, 20), whole=True)
        assert written == n
        counts.append(len(queries))
    assert counts[0] == counts[1], "queries grow with the number of edges"

    before = {e.key: e.last_seen for e in TrafficEdge.objects.all()}
    with CaptureQueriesContext(connection) as queries:
        assert traffic_apply(host_id=host.id, reports=report(60, 20), whole=True) == 0
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert {e.key: e.last_seen for e in TrafficEdge.objects.all()} == before


@pytest.mark.django_db
def test_ended_edges_older_than_the_history_setting_are_pruned(
    make_host: Callable[..., AgentHost], settings: Any
) -> None:
    settings.TRAFFIC_HISTORY_DAYS = 2
    host = make_host("h1").host
    old, recent, live = edge("a", "b"), edge("a", "c"), edge("a", "d")
    traffic_apply(host_id=host.id, reports=dict([old, recent, live]))
    traffic_apply(host_id=host.id, reports={old[0]: None, recent[0]: None})
    TrafficEdge.objects.filter(key=old[0]).update(ended=timezone.now() - datetime.timedelta(days=3))
    TrafficEdge.objects.filter(key=live[0]).update(first_seen=timezone.now() - datetime.timedelta(days=30))

    assert traffic_prune() == 1
    assert set(_rows()) == {recent[0], live[0]}


@pytest.fixture
def history(make_host: Callable[..., AgentHost]) -> dict[str, str]:
    """Two hosts' edges: on h1 a live web and an ended db edge, on h2 a live edge to outside the host."""
    h1, h2 = make_host("h1").host, make_host("h2").host
    web, db = edge("client1", "web1"), edge("web1", "db1", port=5432, address="198.18.0.3")
    out = edge("c9", "", port=None, protocol="icmp", address="198.19.0.9")
    traffic_apply(host_id=h1.id, reports=dict([web, db]))
    traffic_apply(host_id=h1.id, reports={db[0]: None})
    traffic_apply(host_id=h2.id, reports=dict([out]))
    return {"web": web[0], "db": db[0], "out": out[0]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["web", "out", "db"]),
        ("?state=live", ["web", "out"]),
        ("?state=ended", ["db"]),
        ("?host=h1", ["web", "db"]),
        ("?host=h1&state=live", ["web"]),
        ("?namespace=web1", ["web", "db"]),  # as client or as server
        ("?namespace=db1&state=live", []),
        ("?host=h2&namespace=c9", ["out"]),
    ],
)
def test_the_api_filters_and_lists_live_edges_first(
    history: dict[str, str], viewer: Account, query: str, expected: list[str]
) -> None:
    answer = viewer.api().get(f"/api/v1/traffic/{query}")
    assert answer.status_code == 200, answer.json()
    names = {key: name for name, key in history.items()}
    results = answer.json()["results"]
    assert sorted(names[e["key"]] for e in results) == sorted(expected)
    assert [e["live"] for e in results] == sorted((e["live"] for e in results), reverse=True)


@pytest.mark.django_db
def test_an_edge_reads_as_the_contract_names_it_with_an_outside_server(
    history: dict[str, str], viewer: Account
) -> None:
    (out,) = viewer.api().get("/api/v1/traffic/?host=h2").json()["results"]
    assert {k: out[k] for k in ("host", "client", "server", "server_address", "protocol", "port")} == {
        "host": "h2",
        "client": "c9",
        "server": "",
        "server_address": "198.19.0.9",
        "protocol": "icmp",
        "port": None,
    }
    assert (out["live"], out["ended"], out["host_online"]) == (True, None, False)
    assert (out["flows"], out["packets"], out["bytes"], out["seen_in"]) == (1, 10, 1000, ["c9"])


@pytest.mark.django_db
def test_the_api_pages_like_the_other_lists(history: dict[str, str], viewer: Account) -> None:
    first = viewer.api().get("/api/v1/traffic/?page_size=2").json()
    assert (first["count"], len(first["results"]), first["next"] is not None) == (3, 2, True)
    second = viewer.api().get("/api/v1/traffic/?page_size=2&page=2").json()
    assert len(second["results"]) == 1 and second["next"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [("?state=open", "state"), ("?host=nowhere", "host"), (f"?namespace={'n' * 301}", "namespace")],
)
def test_bad_filters_are_refused_naming_the_field(
    history: dict[str, str], viewer: Account, query: str, field: str
) -> None:
    answer = viewer.api().get(f"/api/v1/traffic/{query}")
    assert answer.status_code == 400
    assert field in answer.json()["fields"], answer.json()


@pytest.mark.django_db
def test_every_role_reads_it_and_nobody_signed_out_does(
    history: dict[str, str], viewer: Account, operator: Account, admin: Account
) -> None:
    for account in (viewer, operator, admin):
        assert account.api().get("/api/v1/traffic/").status_code == 200
    assert APIClient().get("/api/v1/traffic/").status_code == 401
