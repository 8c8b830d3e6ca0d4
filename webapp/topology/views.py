"""The topology page: the graph is drawn in the browser from the /ws/topology/ stream."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from webapp.accounts.selectors import user_can_operate
from webapp.topology.selectors import host_names, saved_layout

WS_PATH = "/ws/topology/"
LAYOUT_VIEW = "topology"


@login_required
@require_safe
def topology_view(request: HttpRequest) -> HttpResponse:
    layout = {
        "url": reverse("api-topology-layout", kwargs={"view": LAYOUT_VIEW}),
        "view": LAYOUT_VIEW,
        "positions": saved_layout(user=request.user, view=LAYOUT_VIEW)["positions"],
        "csrf_token": get_token(request),
    }
    context = {
        "hosts": host_names(),
        "ws_path": WS_PATH,
        "layout": layout,
        "desired_url": reverse("api-topology-list"),  # the desired topologies' status, drawn on the graph
        # the graph's context menu edits desired topologies (static/js/graph-menu.js); viewers read
        "edit": {
            "can_operate": user_can_operate(request.user),
            "networks_url": reverse("networks:topologies"),
            "operations_url": reverse("api-operation-list"),  # operators cancel from the list
        },
    }
    return render(request, "topology/topology.html", context)
