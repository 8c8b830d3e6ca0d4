"""A host's underlay address (its VTEP in networks spanning hosts): set by admins through the API or
`manage.py hosttoken --underlay`, checked, audited."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.webapp.conftest import Account, AgentHost
from webapp.audit.models import AuditEntry
from webapp.hosts.models import Host

pytestmark = pytest.mark.django_db


def test_an_admin_sets_and_clears_it(admin: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("lab1")
    response = admin.api().patch("/api/v1/hosts/lab1/", {"underlay": "198.18.254.11"}, format="json")
    assert (response.status_code, response.json()["underlay"]) == (200, "198.18.254.11")
    assert admin.api().get("/api/v1/hosts/lab1/").json()["underlay"] == "198.18.254.11"
    cleared = admin.api().patch("/api/v1/hosts/lab1/", {"underlay": ""}, format="json")
    assert cleared.json()["underlay"] is None
    entries = AuditEntry.objects.filter(action="host.underlay").order_by("id")
    assert [e.details["underlay"] for e in entries] == ["198.18.254.11", None]


@pytest.mark.parametrize("bad", ["nope", "224.0.0.1", "0.0.0.0", "127.0.0.1", "ff02::1"])
def test_what_is_not_a_reachable_unicast_address_is_refused_by_field(
    admin: Account, make_host: Callable[..., AgentHost], bad: str
) -> None:
    make_host("lab1")
    response = admin.api().patch("/api/v1/hosts/lab1/", {"underlay": bad}, format="json")
    assert response.status_code == 400 and "underlay" in response.json()["fields"], response.json()
    assert Host.objects.get(name="lab1").underlay is None


def test_operators_may_not(operator: Account, make_host: Callable[..., AgentHost]) -> None:
    make_host("lab1")
    response = operator.api().patch("/api/v1/hosts/lab1/", {"underlay": "198.18.254.11"}, format="json")
    assert response.status_code == 403
    assert Host.objects.get(name="lab1").underlay is None


def test_the_command_sets_it_with_a_new_host_or_alone() -> None:
    out = StringIO()
    call_command("hosttoken", "lab1", "--underlay", "198.18.254.11", stdout=out)
    assert out.getvalue().splitlines()[-1].startswith("sbh_")  # the token, last, as before
    assert Host.objects.get(name="lab1").underlay == "198.18.254.11"
    call_command("hosttoken", "lab1", "--underlay", "fd00:254::11", stdout=StringIO())
    assert Host.objects.get(name="lab1").underlay == "fd00:254::11"
    with pytest.raises(CommandError, match="is not an IP address"):
        call_command("hosttoken", "lab1", "--underlay", "x", stdout=StringIO())
