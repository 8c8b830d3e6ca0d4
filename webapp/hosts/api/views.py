"""Hosts API: list, read one, set its underlay address (admins), and queue plan/apply/destroy of a
topology file as an operation on a host."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanManage, CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.hosts.api.serializers import (
    CommandInputSerializer,
    HostOutputSerializer,
    HostUpdateInputSerializer,
)
from webapp.hosts.selectors import host_get, host_list
from webapp.hosts.services import host_underlay_set
from webapp.operations.api.serializers import OperationCreatedSerializer
from webapp.operations.services import operation_create


class HostListApi(APIView):
    @extend_schema(summary="List hosts", responses=HostOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(HostOutputSerializer(host_list(), many=True).data)


class HostDetailApi(APIView):
    """One host; admins set its underlay address (its VTEP in networks that span hosts)."""

    def get_permissions(self) -> list:
        if self.request.method == "PATCH":
            return [IsAuthenticated(), CanManage()]
        return super().get_permissions()

    @extend_schema(summary="Read a host", responses=HostOutputSerializer)
    def get(self, request: Request, name: str) -> Response:
        return Response(HostOutputSerializer(host_get(name=name)).data)

    @extend_schema(
        summary="Set a host's underlay address (admins)",
        request=HostUpdateInputSerializer,
        responses={
            200: HostOutputSerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        data = HostUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        host = host_underlay_set(
            host=host_get(name=name), address=data.validated_data["underlay"], user=request.user
        )
        return Response(HostOutputSerializer(host).data)


_COMMAND_ERRORS = error_schema(
    {
        400: "Invalid input.",
        403: "Not an operator or admin.",
        404: "Unknown host.",
        409: "The host is revoked.",
    }
)


class _HostCommandApi(APIView):
    """Queue one operation on the host and answer at once (202); the host's agent runs it when it is
    connected, after the host's earlier operations. Follow it at the returned url or on /ws/topology/."""

    permission_classes = [IsAuthenticated, CanOperate]
    action: str

    def run(self, request: Request, name: str) -> Response:
        data = CommandInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = operation_create(
            host=host_get(name=name),
            kind=self.action,
            topology_text=data.validated_data["topology"],
            user=request.user,
        )
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


def _command_schema(summary: str) -> dict:
    return {
        "summary": summary,
        "description": "Answers 202 at once with the queued operation; see /api/v1/operations/{id}/.",
        "request": CommandInputSerializer,
        "responses": {202: OperationCreatedSerializer, **_COMMAND_ERRORS},
    }


class HostPlanApi(_HostCommandApi):
    action = "plan"

    @extend_schema(**_command_schema("Show what applying a topology file on the host would change"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)


class HostApplyApi(_HostCommandApi):
    action = "apply"

    @extend_schema(**_command_schema("Make the host's network match a topology file"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)


class HostDestroyApi(_HostCommandApi):
    action = "destroy"

    @extend_schema(**_command_schema("Remove what a topology file created on the host"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)
