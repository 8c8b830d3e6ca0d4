"""The Docker page: every host's engine, networks, containers and images, live, with forms that
queue requests to the engine (static/js/docker.js drives it through the REST API)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from webapp.accounts.selectors import user_can_operate
from webapp.topology.selectors import host_names
from webapp.topology.views import WS_PATH


@login_required
@require_safe
def docker_view(request: HttpRequest) -> HttpResponse:
    page = {
        "hosts": host_names(),
        "can_operate": user_can_operate(request.user),
        "networks_url": reverse("api-docker-networks"),
        "containers_url": reverse("api-docker-containers"),
        "compose_url": reverse("api-docker-compose"),
        "operations_url": reverse("api-operation-list"),
        "ws_path": WS_PATH,
    }
    get_token(request)  # sets the csrftoken cookie that static/js/api.js sends back on writes
    return render(request, "containers/docker.html", {"page": page})
