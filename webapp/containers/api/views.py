"""Docker API: each host's engine, networks, containers and images as its agent reports them, and
requests to the engine queued as operations (202, followed at /api/v1/operations/<id>/)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.containers.api.serializers import (
    ComposeUpInputSerializer,
    ConnectInputSerializer,
    ContainerRunInputSerializer,
    DisconnectInputSerializer,
    HostDockerSerializer,
    NetworkCreateInputSerializer,
)
from webapp.containers.selectors import docker_list
from webapp.containers.services import docker_request_queue
from webapp.operations.api.serializers import OperationCreatedSerializer

_ERRORS = error_schema(
    {
        400: "A field is wrong (named in `fields`).",
        403: "Not an operator or admin.",
        404: "Unknown host, network, container or image.",
        409: "Clashes with what the engine has: a name taken, an overlapping subnet, an address in use.",
        503: "The host has no Docker engine (the message says how to start one).",
    }
)
_HOST = OpenApiParameter("host", OpenApiTypes.STR, description="Only this host.")


class DockerStateApi(APIView):
    @extend_schema(
        summary="Every host's Docker engine, networks, containers and images",
        parameters=[_HOST],
        responses={200: HostDockerSerializer(many=True), 404: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        found = docker_list(host=request.query_params.get("host") or None)
        return Response(HostDockerSerializer(found, many=True).data)


class _DockerRequestApi(APIView):
    """Check a request against the host's engine and queue it; answers 202 with the operation."""

    permission_classes = [IsAuthenticated, CanOperate]
    action: str
    input_serializer: type[serializers.Serializer]

    def queue(self, request: Request, host: str, body: dict[str, Any]) -> Response:
        operation = docker_request_queue(host=host, action=self.action, body=body, user=request.user)
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)

    def checked(self, request: Request) -> dict[str, Any]:
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        return {k: v for k, v in data.validated_data.items() if v not in (None, "")}


def _schema(summary: str, body: type[serializers.Serializer] | None) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": "Answers 202 at once with the queued operation; see /api/v1/operations/{id}/.",
        "request": body,
        "responses": {202: OperationCreatedSerializer, **_ERRORS},
    }


class NetworkCreateApi(_DockerRequestApi):
    action = "network.create"
    input_serializer = NetworkCreateInputSerializer

    @extend_schema(**_schema("Create a Docker network", NetworkCreateInputSerializer))
    def post(self, request: Request) -> Response:
        body = self.checked(request)
        body["subnets"] = [
            {k: v for k, v in s.items() if v not in (None, "")} for s in body.get("subnets", [])
        ]
        return self.queue(request, body.pop("host"), body)


class NetworkRemoveApi(_DockerRequestApi):
    action = "network.remove"

    @extend_schema(**_schema("Remove a Docker network", None))
    def delete(self, request: Request, host: str, network: str) -> Response:
        return self.queue(request, host, {"network": network})


class NetworkConnectApi(_DockerRequestApi):
    action = "network.connect"
    input_serializer = ConnectInputSerializer

    @extend_schema(**_schema("Connect a container to a network", ConnectInputSerializer))
    def post(self, request: Request, host: str, network: str) -> Response:
        return self.queue(request, host, {"network": network, **self.checked(request)})


class NetworkDisconnectApi(_DockerRequestApi):
    action = "network.disconnect"
    input_serializer = DisconnectInputSerializer

    @extend_schema(**_schema("Disconnect a container from a network", DisconnectInputSerializer))
    def post(self, request: Request, host: str, network: str) -> Response:
        return self.queue(request, host, {"network": network, **self.checked(request)})


class ContainerRunApi(_DockerRequestApi):
    action = "container.run"
    input_serializer = ContainerRunInputSerializer

    @extend_schema(**_schema("Run a container from a local image", ContainerRunInputSerializer))
    def post(self, request: Request) -> Response:
        body = self.checked(request)
        body["ports"] = [{k: v for k, v in p.items() if v not in (None, "")} for p in body.get("ports", [])]
        return self.queue(request, body.pop("host"), body)


class ContainerStopApi(_DockerRequestApi):
    action = "container.stop"

    @extend_schema(**_schema("Stop a container", None))
    def post(self, request: Request, host: str, container: str) -> Response:
        return self.queue(request, host, {"container": container})


class ContainerRemoveApi(_DockerRequestApi):
    action = "container.remove"

    @extend_schema(
        **_schema("Remove a container", None), parameters=[OpenApiParameter("force", OpenApiTypes.BOOL)]
    )
    def delete(self, request: Request, host: str, container: str) -> Response:
        force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
        return self.queue(request, host, {"container": container, "force": force})


class ComposeUpApi(_DockerRequestApi):
    action = "compose.up"
    input_serializer = ComposeUpInputSerializer

    @extend_schema(
        **_schema(
            "Bring a compose project up: its networks, then its services' containers",
            ComposeUpInputSerializer,
        )
    )
    def post(self, request: Request) -> Response:
        body = self.checked(request)
        return self.queue(request, body.pop("host"), body)


class ComposeDownApi(_DockerRequestApi):
    action = "compose.down"

    @extend_schema(**_schema("Take a compose project down: every container and network it labels", None))
    def delete(self, request: Request, host: str, project: str) -> Response:
        return self.queue(request, host, {"project": project})
