"""Hosts API: list, and plan/apply/destroy a topology file through a host's agent."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer
from webapp.hosts.api.serializers import CommandInputSerializer, CommandOutputSerializer, HostOutputSerializer
from webapp.hosts.selectors import host_get, host_list
from webapp.hosts.services import host_command


class HostListApi(APIView):
    @extend_schema(summary="List hosts", responses=HostOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(HostOutputSerializer(host_list(), many=True).data)


_COMMAND_ERRORS = {
    code: OpenApiResponse(ErrorSerializer, description=text)
    for code, text in {
        400: "Invalid input, or netcore's InvalidSpec.",
        403: "Not an operator or admin.",
        404: "Unknown host, or netcore's NotFound.",
        409: "netcore's AlreadyExists or Busy.",
        502: "Any other netcore error, or no result in time.",
        503: "No agent connected for the host.",
    }.items()
}


class _HostCommandApi(APIView):
    """Send one command to the host's agent and wait for its result."""

    permission_classes = [IsAuthenticated, CanOperate]
    action: str

    def run(self, request: Request, name: str) -> Response:
        data = CommandInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        host = host_get(name=name)
        result = async_to_sync(host_command)(
            host=host, action=self.action, topology_text=data.validated_data["topology"]
        )
        return Response(result)


def _command_schema(summary: str) -> dict:
    return {
        "summary": summary,
        "request": CommandInputSerializer,
        "responses": {200: CommandOutputSerializer, **_COMMAND_ERRORS},
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
