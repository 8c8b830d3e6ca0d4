"""The captures pages (operators and admins: packets can carry secrets): the list with a form that
starts one (static/js/captures.js), and one capture live (static/js/captures-live.js: its status,
a packet table fed by /ws/captures/<id>/, a packet's decode on click, Stop and the pcap download)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from webapp.accounts.selectors import user_can_operate
from webapp.captures.api.serializers import CaptureSerializer
from webapp.captures.limits import COUNT_RANGE, DURATION_RANGE, MAX_FILTER, MAX_INTERFACES
from webapp.captures.selectors import capture_get, capture_list, capture_targets
from webapp.errors import NotFound

SHOWN = 100  # captures listed on the page, newest first
DEFAULTS = {"count": 1000, "duration": 60}  # what the form offers


def _operator(request: HttpRequest) -> None:
    if not user_can_operate(request.user):
        raise PermissionDenied("Only operators and admins may capture packets: packets can carry secrets.")


@login_required
@require_safe
def capture_list_view(request: HttpRequest) -> HttpResponse:
    _operator(request)
    page = {
        "targets": capture_targets(),
        "prefill": {key: request.GET.get(key, "") for key in ("host", "namespace", "interface")},
        "captures_url": reverse("api-captures"),
        "limits": {
            "count": COUNT_RANGE,
            "duration": DURATION_RANGE,
            "filter": MAX_FILTER,
            "interfaces": MAX_INTERFACES,
        },
        "defaults": DEFAULTS,
    }
    get_token(request)  # sets the csrftoken cookie that static/js/api.js sends back on writes
    captures = capture_list(limit=SHOWN)
    return render(request, "captures/capture_list.html", {"page": page, "captures": captures})


@login_required
@require_safe
def capture_detail_view(request: HttpRequest, id: str) -> HttpResponse:
    _operator(request)
    try:
        capture = capture_get(capture_id=id)
    except NotFound as err:
        raise Http404(err.message) from None
    key = str(capture.id)
    page = {
        "capture": CaptureSerializer(capture).data,
        "detail_url": reverse("api-capture", args=[key]),
        "stop_url": reverse("api-capture-stop", args=[key]),
        "pcap_url": reverse("api-capture-pcap", args=[key]),
        "packet_url": reverse("api-capture-packet", args=[key, "0"]).removesuffix("0/"),
        "ws_path": f"/ws/captures/{key}/",
        "list_url": reverse("captures:list"),
    }
    get_token(request)
    return render(request, "captures/capture_detail.html", {"page": page, "capture": capture})
