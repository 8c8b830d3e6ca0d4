"""The health endpoint answers without login and counts connected agents."""

from collections.abc import Callable

import pytest
from django.test import Client

from tests.webapp.conftest import AgentHost, lease_held


@pytest.mark.django_db
def test_healthz_returns_ok_and_the_number_of_online_agents(
    client: Client, make_host: Callable[..., AgentHost]
) -> None:
    make_host("h1")
    lease_held(make_host("h2").host)
    lease_held(make_host("h3").host, seconds=-1)  # its lease ran out

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "agents": 1}


def test_healthz_rejects_post(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
