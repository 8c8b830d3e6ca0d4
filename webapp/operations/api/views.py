"""Operations API: list, read and cancel the plan/apply/destroy operations queued on hosts."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.status import HTTP_200_OK, HTTP_202_ACCEPTED
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer
from webapp.operations.api.serializers import OperationDetailSerializer, OperationOutputSerializer
from webapp.operations.models import Operation
from webapp.operations.selectors import operation_get, operation_list
from webapp.operations.services import operation_cancel


class OperationPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class OperationListApi(ListAPIView):
    serializer_class = OperationOutputSerializer
    pagination_class = OperationPagination

    def get_queryset(self) -> QuerySet[Operation]:
        return operation_list(
            host=self.request.query_params.get("host"), status=self.request.query_params.get("status")
        )

    @extend_schema(
        summary="List operations, newest first",
        parameters=[
            OpenApiParameter("host", OpenApiTypes.STR, description="Only this host's operations."),
            OpenApiParameter(
                "status", OpenApiTypes.STR, enum=Operation.Status.values, description="Only these."
            ),
        ],
        responses={200: OperationOutputSerializer(many=True), 400: ErrorSerializer},
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class OperationDetailApi(APIView):
    @extend_schema(
        summary="An operation: its status, and the agent's result or error once it ended",
        responses={200: OperationDetailSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(OperationDetailSerializer(operation_get(id=id)).data)


class OperationCancelApi(APIView):
    permission_classes = [IsAuthenticated, CanOperate]

    @extend_schema(
        summary="Cancel an operation: a pending one never runs; a running one is stopped",
        description=(
            "A pending operation is cancelled at once (200). A running one's agent is asked to stop it"
            " at its next safe point (202): it removes what the run created and the operation ends"
            " cancelled (follow it on the socket or here), unless it finished first. Asking again, or"
            " about an operation that has ended, changes nothing (200 with the operation as it is)."
        ),
        request=None,
        responses={
            200: OperationDetailSerializer,
            202: OpenApiResponse(
                OperationDetailSerializer, description="It is running: its agent was asked to stop it."
            ),
            403: OpenApiResponse(ErrorSerializer, description="Not an operator or admin."),
            404: ErrorSerializer,
        },
    )
    def post(self, request: Request, id: str) -> Response:
        operation = operation_cancel(operation=operation_get(id=id))
        status = HTTP_202_ACCEPTED if operation.status == Operation.Status.RUNNING else HTTP_200_OK
        return Response(OperationDetailSerializer(operation).data, status=status)
