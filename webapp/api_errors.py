"""The one place domain and DRF errors become HTTP responses: {"error", "message", ["fields"]}."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from webapp import errors

_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: status.HTTP_400_BAD_REQUEST,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.PreconditionFailed: status.HTTP_412_PRECONDITION_FAILED,
    errors.HostOffline: status.HTTP_503_SERVICE_UNAVAILABLE,
}


class ErrorSerializer(serializers.Serializer):
    """The body of every API error response."""

    error = serializers.CharField(help_text="Error class, e.g. InvalidInput, NotFound, Conflict.")
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages for invalid input.",
    )


def error_schema(texts: Mapping[int, str]) -> dict[int, OpenApiResponse]:
    """OpenAPI responses of an operation's errors, by status: each the error body, with its meaning."""
    return {code: OpenApiResponse(ErrorSerializer, description=text) for code, text in texts.items()}


def status_for(exc: errors.DomainError) -> int:
    """HTTP status of a domain error."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return status.HTTP_400_BAD_REQUEST


def payload_too_large(request: HttpRequest) -> dict[str, str]:
    """The error body of a request whose body is over DATA_UPLOAD_MAX_MEMORY_SIZE (answered 413)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        size = f"is {length} bytes; the limit is {limit} bytes"
    else:  # no Content-Length (a chunked body) or one below what came
        size = f"is over the limit of {limit} bytes"
    message = f"the request body {size} (set by the server's SWITCHBOARD_MAX_BODY)"
    return {"error": "PayloadTooLarge", "message": message}


def _render_as_json(context: dict) -> None:
    """Errors are JSON whatever the view renders otherwise (the schema view negotiates YAML)."""
    request = context.get("request")
    if request is not None:
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF EXCEPTION_HANDLER: domain errors and DRF's own exceptions, all in one body shape, in JSON."""
    _render_as_json(context)
    if isinstance(exc, errors.DomainError):
        set_rollback()
        return Response(exc.to_dict(), status=status_for(exc))
    if isinstance(exc, RequestDataTooBig):  # Django's, raised where DRF reads the body (request.data)
        body = payload_too_large(context["request"])
        return Response(body, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)  # also Http404 / PermissionDenied, auth headers
    if response is None:
        return None  # a bug: Django reports it as a 500
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"error": "InvalidInput", "message": "Invalid input.", "fields": fields}
    else:
        name = {Http404: "NotFound", DjangoPermissionDenied: "PermissionDenied"}.get(type(exc))
        message = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"error": name or type(exc).__name__, "message": str(message)}
    return response
