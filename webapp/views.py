"""Project-level views that belong to no domain app."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.http import require_safe

from webapp.api_errors import payload_too_large
from webapp.hosts.selectors import hosts_online_count


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for load balancers and `make run` checks; needs no login."""
    return JsonResponse({"status": "ok", "agents": hosts_online_count()})


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON on the API (a client parsing errors gets one shape), Django's page elsewhere."""
    if _is_api(request):
        message = "the server failed on this request; it is logged: try again, and report it if it stays"
        return JsonResponse({"error": "ServerError", "message": message}, status=500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (a body too large, a host not allowed): JSON on the API, where a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 (DRF's views say so themselves: this is for the rest)."""
    if _is_api(request) and isinstance(exception, RequestDataTooBig):
        return JsonResponse(payload_too_large(request), status=413)
    if _is_api(request):
        return JsonResponse({"error": "BadRequest", "message": str(exception) or "bad request"}, status=400)
    return defaults.bad_request(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404 for URLs no view answers: JSON on the API."""
    if _is_api(request):
        return JsonResponse(
            {"error": "NotFound", "message": f"no API endpoint at {request.path}"}, status=404
        )
    return defaults.page_not_found(request, exception)
