"""The catalog page: services with their instances' health, live (static/js/services.js follows the
catalog with blocking queries and the instances' health on the browser socket)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from webapp.accounts.selectors import user_can_operate
from webapp.catalog.models import Source
from webapp.catalog.selectors import DOMAIN
from webapp.networks.models import Network
from webapp.topology.selectors import host_names
from webapp.topology.views import WS_PATH


@login_required
@require_safe
def services_view(request: HttpRequest) -> HttpResponse:
    networks = Network.objects.select_related("topology__host").order_by(
        "topology__host__name", "topology__name", "name"
    )
    page = {
        "hosts": host_names(),
        "networks": [
            {"host": n.topology.host.name, "topology": n.topology.name, "name": n.name, "subnet": n.subnet}
            for n in networks
        ],
        "sources": Source.values,
        "domain": DOMAIN,
        "can_operate": user_can_operate(request.user),
        "services_url": reverse("api-services"),
        "topology_url": reverse("topology:page"),
        "ws_path": WS_PATH,
    }
    get_token(request)  # sets the csrftoken cookie that static/js/api.js sends back on writes
    return render(request, "catalog/services.html", {"page": page})
