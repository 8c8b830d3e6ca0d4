"""The site's icon: named by every page of ours, and /favicon.ico (what browsers ask for on pages that
name none, such as Django's admin) leads to it instead of a 404."""

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client


def test_favicon_ico_leads_to_the_icon_that_exists(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/img/favicon.svg"
    found = finders.find("img/favicon.svg")
    assert found and Path(found).read_text().startswith("<svg")


@pytest.mark.django_db
def test_pages_name_the_icon(client: Client) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
