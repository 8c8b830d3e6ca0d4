"""The topology page: the graph is drawn in the browser from the /ws/topology/ stream."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from webapp.topology.selectors import host_names

WS_PATH = "/ws/topology/"


@login_required
@require_safe
def topology_view(request: HttpRequest) -> HttpResponse:
    return render(request, "topology/topology.html", {"hosts": host_names(), "ws_path": WS_PATH})
