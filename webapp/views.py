"""Project-level views that belong to no domain app."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from webapp.hosts.selectors import hosts_online_count


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for load balancers and `make run` checks; needs no login."""
    return JsonResponse({"status": "ok", "agents": hosts_online_count()})
