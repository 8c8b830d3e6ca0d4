"""Audit API: the log of every change, filtered, a page at a time or exported as one JSON file."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer
from webapp.audit.api.serializers import AuditEntrySerializer, AuditQuerySerializer
from webapp.audit.models import AuditEntry
from webapp.audit.selectors import audit_list

#: An export holds at most this many entries (narrow the filters for more).
EXPORT_MAX = 50_000


class AuditPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def audit_filtered(query_params: Any) -> tuple[Any, bool]:
    """The entries the query asks for, and whether it asks for an export; bad filters are a 400."""
    query = AuditQuerySerializer(data=query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    entries = audit_list(
        user=data.get("user"),
        action=data.get("action"),
        host=data.get("host"),
        name=data.get("object"),
        since=data.get("since"),
        until=data.get("until"),
    )
    return entries, data["export"]


class AuditListApi(ListAPIView):
    """Operators and admins read the log (it names people); viewers get 403."""

    permission_classes = [CanOperate]
    serializer_class = AuditEntrySerializer
    pagination_class = AuditPagination

    @extend_schema(
        summary="The audit log, newest first: who changed what, when, from where, and how it ended",
        parameters=[AuditQuerySerializer],
        responses={
            200: AuditEntrySerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="A filter that is not valid."),
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response | JsonResponse:
        entries, export = audit_filtered(request.query_params)
        if not export:
            page = self.paginate_queryset(entries)
            return self.get_paginated_response(AuditEntrySerializer(page, many=True).data)
        body = {
            "exported_at": timezone.now().isoformat(),
            "entries": AuditEntrySerializer(entries[:EXPORT_MAX], many=True).data,
        }
        response = JsonResponse(body)
        name = f"switchboard-audit-{timezone.now():%Y%m%dT%H%M%S}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def get_queryset(self) -> Any:  # the schema generator asks for it
        return AuditEntry.objects.none()
