"""Desired-state API: topologies by name (CRUD, export, plan/apply/destroy), networks and nodes (read).

Viewers read; operators and admins write. A topology is named within its host: ?host=NAME says which
when the name exists on several hosts.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.selectors import user_can_operate
from webapp.api_errors import ErrorSerializer
from webapp.errors import InvalidInput, NotFound
from webapp.hosts.selectors import host_get
from webapp.networks import selectors, services
from webapp.networks.api.serializers import (
    DesiredTopologyListOutputSerializer,
    DesiredTopologyOutputSerializer,
    NetworkOutputSerializer,
    NodeOutputSerializer,
    TopologyCreateInputSerializer,
    TopologyUpdateInputSerializer,
)
from webapp.networks.models import Network, Node, Topology
from webapp.operations.api.serializers import OperationCreatedSerializer


class ReadOrOperate(BasePermission):
    """Everyone logged in reads; operators and admins write (viewers get 403)."""

    message = "Only operators and admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.method in SAFE_METHODS or user_can_operate(request.user)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 2000


HOST = OpenApiParameter("host", OpenApiTypes.STR, description="Only this host's.")
TOPOLOGY = OpenApiParameter("topology", OpenApiTypes.STR, description="Only this topology's.")
HOST_OF_NAME = OpenApiParameter(
    "host", OpenApiTypes.STR, description="The topology's host; needed when several hosts have the name."
)


def _errors(**extra: str) -> dict:
    texts = {
        400: "Invalid input; `fields` names each field (paths in the topology file).",
        403: "Not an operator or admin.",
        404: "No such topology or host.",
        **{int(code.removeprefix("e")): text for code, text in extra.items()},
    }
    return {code: OpenApiResponse(ErrorSerializer, description=text) for code, text in texts.items()}


def _host_param(request: Request) -> str | None:
    return request.query_params.get("host") or None


def _detail(topology: Topology) -> Response:
    stored = selectors.topology_get(name=topology.name, host=topology.host.name)
    return Response(DesiredTopologyOutputSerializer(stored).data)


class TopologyListApi(ListAPIView):
    permission_classes = [IsAuthenticated, ReadOrOperate]
    serializer_class = DesiredTopologyListOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Topology]:
        return selectors.topology_list(host=_host_param(self.request))

    @extend_schema(summary="List the topologies wanted on hosts", parameters=[HOST])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Record a topology wanted on a host",
        description="Validated by netcore (addresses resolved); refused with 409 when its name is taken on"
        " the host or a subnet overlaps another topology's there. Nothing runs on the host: see apply.",
        request=TopologyCreateInputSerializer,
        responses={
            201: DesiredTopologyOutputSerializer,
            **_errors(e409="Name taken, or a subnet or address clash."),
        },
    )
    def post(self, request: Request) -> Response:
        data = TopologyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            host = host_get(name=data.validated_data["host"])
        except NotFound as exc:
            raise InvalidInput(exc.message, field="host") from None
        topology = services.topology_create(
            host=host,
            document=data.validated_data["topology"],
            user=request.user,
            auto_repair=data.validated_data["auto_repair"],
        )
        response = _detail(topology)
        response.status_code = status.HTTP_201_CREATED
        return response


class TopologyDetailApi(APIView):
    permission_classes = [IsAuthenticated, ReadOrOperate]

    @extend_schema(
        summary="A topology, with its networks and nodes (resolved addresses)",
        parameters=[HOST_OF_NAME],
        responses={200: DesiredTopologyOutputSerializer, **_errors()},
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(
            DesiredTopologyOutputSerializer(selectors.topology_get(name=name, host=_host_param(request))).data
        )

    @extend_schema(
        summary="Replace a topology with a new version of its file",
        parameters=[HOST_OF_NAME],
        request=TopologyUpdateInputSerializer,
        responses={
            200: DesiredTopologyOutputSerializer,
            **_errors(e409="Stale version, or a subnet or address clash."),
        },
    )
    def put(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        data = TopologyUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        updated = services.topology_update(
            topology=topology,
            document=data.validated_data["topology"],
            version=data.validated_data["version"],
            user=request.user,
            auto_repair=data.validated_data.get("auto_repair"),
        )
        return _detail(updated)

    @extend_schema(
        summary="Forget a topology (what apply created stays on the host: destroy it first)",
        parameters=[
            HOST_OF_NAME,
            OpenApiParameter("version", OpenApiTypes.INT, description="Refuse (409) if it changed since."),
        ],
        responses={204: None, **_errors(e409="Stale version.")},
    )
    def delete(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        raw = request.query_params.get("version")
        version = None
        if raw is not None:
            # ASCII digits ("²".isdigit() is true, and int() refuses it), few enough for int() (4300)
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 1000):
                raise InvalidInput(f"version {raw[:40]!r} is not a positive integer", field="version")
            version = int(raw)
        services.topology_delete(topology=topology, version=version)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TopologyExportApi(APIView):
    @extend_schema(
        summary="The topology file (YAML) compiled from what is stored",
        parameters=[
            HOST_OF_NAME,
            OpenApiParameter(
                "pinned",
                OpenApiTypes.BOOL,
                description="Write allocated addresses too, as the agent gets it.",
            ),
        ],
        responses={(200, "application/yaml"): OpenApiTypes.STR, **_errors()},
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        pinned = request.query_params.get("pinned", "").lower() in ("1", "true", "yes")
        text = services.topology_yaml(topology=topology, pinned=pinned)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{topology.name}.yaml"'
        return response


class _TopologyCommandApi(APIView):
    """Queue one operation on the topology's host with its compiled document, and answer 202 at once."""

    permission_classes = [IsAuthenticated, ReadOrOperate]
    action: str

    def run(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        operation = services.topology_operation(topology=topology, kind=self.action, user=request.user)
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


def _command_schema(summary: str) -> dict:
    return {
        "summary": summary,
        "description": "Sends the stored topology (every address pinned) to the host's agent as an"
        " operation; answers 202 at once, see /api/v1/operations/{id}/.",
        "parameters": [HOST_OF_NAME],
        "request": None,
        "responses": {202: OperationCreatedSerializer, **_errors(e409="The host is revoked.")},
    }


class TopologyPlanApi(_TopologyCommandApi):
    action = "plan"

    @extend_schema(**_command_schema("Show what applying the topology on its host would change"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)


class TopologyApplyApi(_TopologyCommandApi):
    action = "apply"

    @extend_schema(**_command_schema("Make the host's network match the topology"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)


class TopologyDestroyApi(_TopologyCommandApi):
    action = "destroy"

    @extend_schema(**_command_schema("Remove what the topology created on its host"))
    def post(self, request: Request, name: str) -> Response:
        return self.run(request, name)


class NetworkListApi(ListAPIView):
    serializer_class = NetworkOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Network]:
        params = self.request.query_params
        return selectors.network_list(host=params.get("host"), topology=params.get("topology"))

    @extend_schema(summary="List the networks of the topologies wanted on hosts", parameters=[HOST, TOPOLOGY])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class NodeListApi(ListAPIView):
    serializer_class = NodeOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Node]:
        params = self.request.query_params
        return selectors.node_list(host=params.get("host"), topology=params.get("topology"))

    @extend_schema(
        summary="List the nodes of the topologies wanted on hosts, with their addresses",
        parameters=[HOST, TOPOLOGY],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)
