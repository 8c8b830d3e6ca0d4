"""Desired-state API: topologies by name (CRUD, export, preview, plan/apply/destroy), networks and nodes.

Viewers read; operators and admins write. A topology is named within its host: ?host=NAME says which
when the name exists on several hosts.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.selectors import user_can_operate
from webapp.api_errors import error_schema
from webapp.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from webapp.hosts.selectors import host_get
from webapp.networks import selectors, services
from webapp.networks.api.serializers import (
    DesiredTopologyListOutputSerializer,
    DesiredTopologyOutputSerializer,
    NetworkOutputSerializer,
    NodeOutputSerializer,
    OverlayOutputSerializer,
    RouteListOutputSerializer,
    TopologyCreateInputSerializer,
    TopologyOperationsCreatedSerializer,
    TopologyPreviewOutputSerializer,
    TopologyUpdateInputSerializer,
)
from webapp.networks.models import Network, Node, Route, Topology
from webapp.networks.overlay import network_overlay
from webapp.networks.preview import topology_preview
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


def error_responses(**extra: str) -> dict:
    texts = {
        400: "Invalid input; `fields` names each field (paths in the topology file).",
        403: "Not an operator or admin.",
        404: "No such topology or host.",
        **{int(code.removeprefix("e")): text for code, text in extra.items()},
    }
    return error_schema(texts)


# ASCII digits ("²".isdigit() is true, and int() refuses it), few enough for int() (4300)
_IF_MATCH = re.compile(r'(?:W/)?"?([0-9]{1,1000})"?')

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description='The topology\'s version read, as "<version>" (instead of `version`); stale: 412.',
)
VERSION = OpenApiParameter(
    "version", OpenApiTypes.INT, description="The topology's version read (or If-Match); stale: 409."
)


def if_match_version(request: Request) -> int | None:
    """The version an If-Match header names, None without one; InvalidInput when it names none."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = _IF_MATCH.fullmatch(header.strip())
    if match is None:
        raise InvalidInput(f'If-Match {header[:40]!r} is not a topology version such as "3"', field="version")
    return int(match.group(1))


def query_version(request: Request) -> int | None:
    """The ?version= of a delete, None without one."""
    raw = request.query_params.get("version")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 1000):
        raise InvalidInput(f"version {raw[:40]!r} is not a positive integer", field="version")
    return int(raw)


def version_read(request: Request, body_version: int | None) -> tuple[int, bool]:
    """The topology version the client read (If-Match, else the body's) and whether If-Match said it."""
    header = if_match_version(request)
    if header is not None:
        return header, True
    if body_version is None:
        raise InvalidInput(
            "the topology's version you read is required (`version`, or If-Match), so that a change"
            " never overwrites someone else's",
            field="version",
        )
    return body_version, False


@contextlib.contextmanager
def stale_as_412(if_match: bool) -> Iterator[None]:
    """A stale version is 412 Precondition Failed when the client sent If-Match (409 otherwise)."""
    try:
        yield
    except Conflict as exc:
        if if_match and exc.field == "version":
            raise PreconditionFailed(exc.message, field="version") from None
        raise


def _host_param(request: Request) -> str | None:
    return request.query_params.get("host") or None


def topology_response(topology: Topology, *, fresh: bool = False) -> Response:
    """The topology as stored, with its version as the ETag (for If-Match); read again after a
    write, unless `fresh` (it comes from topology_get)."""
    stored = topology if fresh else selectors.topology_get(name=topology.name, host=topology.host.name)
    return Response(DesiredTopologyOutputSerializer(stored).data, headers={"ETag": f'"{stored.version}"'})


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
            **error_responses(e409="Name taken, or a subnet or address clash."),
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
        response = topology_response(topology)
        response.status_code = status.HTTP_201_CREATED
        return response


class TopologyDetailApi(APIView):
    permission_classes = [IsAuthenticated, ReadOrOperate]

    @extend_schema(
        summary="A topology, with its networks and nodes (resolved addresses)",
        parameters=[HOST_OF_NAME],
        responses={200: DesiredTopologyOutputSerializer, **error_responses()},
    )
    def get(self, request: Request, name: str) -> Response:
        return topology_response(selectors.topology_get(name=name, host=_host_param(request)), fresh=True)

    @extend_schema(
        summary="Replace a topology with a new version of its file",
        parameters=[HOST_OF_NAME, IF_MATCH],
        request=TopologyUpdateInputSerializer,
        responses={
            200: DesiredTopologyOutputSerializer,
            **error_responses(e409="Stale version, or a subnet or address clash.", e412="If-Match stale."),
        },
    )
    def put(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        data = TopologyUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version, if_match = version_read(request, data.validated_data.get("version"))
        with stale_as_412(if_match):
            updated = services.topology_update(
                topology=topology,
                document=data.validated_data["topology"],
                version=version,
                user=request.user,
                auto_repair=data.validated_data.get("auto_repair"),
            )
        return topology_response(updated)

    @extend_schema(
        summary="Forget a topology (what apply created stays on the host: destroy it first)",
        parameters=[
            HOST_OF_NAME,
            IF_MATCH,
            OpenApiParameter("version", OpenApiTypes.INT, description="Refuse (409) if it changed since."),
        ],
        responses={204: None, **error_responses(e409="Stale version.", e412="If-Match stale.")},
    )
    def delete(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        header = if_match_version(request)
        with stale_as_412(header is not None):
            services.topology_delete(
                topology=topology, version=header if header is not None else query_version(request)
            )
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
        responses={(200, "application/yaml"): OpenApiTypes.STR, **error_responses()},
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        pinned = request.query_params.get("pinned", "").lower() in ("1", "true", "yes")
        text = services.topology_yaml(topology=topology, pinned=pinned)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{topology.name}.yaml"'
        return response


class TopologyPreviewApi(APIView):
    @extend_schema(
        summary="Who will reach whom once the topology is applied, and what the change interrupts",
        description="Compares the document last applied on the host (nothing, if never applied or"
        " destroyed since) with the stored topology: node pairs gained and lost (each with how: L2,"
        " L3, or why not), nodes whose live connections break (new address, recreated interface, new"
        " mode) and what apply recreates. Worked out from the files; nothing is sent to the host.",
        parameters=[
            HOST_OF_NAME,
            OpenApiParameter(
                "host_forwards",
                OpenApiTypes.BOOL,
                description="Take the host to route between networks (net.ipv4.ip_forward=1, as on a"
                " Docker host); netcore never turns it on. Default false.",
            ),
        ],
        responses={
            200: TopologyPreviewOutputSerializer,
            **error_responses(e409="Too large to work out (more node pairs than netcore's limit)."),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        host_forwards = request.query_params.get("host_forwards", "").lower() in ("1", "true", "yes")
        return Response(topology_preview(topology=topology, host_forwards=host_forwards))


class _TopologyCommandApi(APIView):
    """Queue one operation on the topology's host with its compiled document, and answer 202 at once."""

    permission_classes = [IsAuthenticated, ReadOrOperate]
    action: str

    def run(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        first, *others = services.topology_operations(topology=topology, kind=self.action, user=request.user)
        answer = TopologyOperationsCreatedSerializer(first, context={"span": others})
        return Response(answer.data, status=status.HTTP_202_ACCEPTED)


def _command_schema(summary: str) -> dict:
    return {
        "summary": summary,
        "description": "Sends the stored topology (every address pinned) to the host's agent as an"
        " operation; answers 202 at once, see /api/v1/operations/{id}/.",
        "parameters": [HOST_OF_NAME],
        "request": None,
        "responses": {
            202: TopologyOperationsCreatedSerializer,
            **error_responses(e409="The host is revoked."),
        },
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


class TopologyRepairApi(APIView):
    permission_classes = [IsAuthenticated, ReadOrOperate]

    @extend_schema(
        summary="Put back what the host lost or someone changed of the applied topology (drift)",
        description="Queues an apply of the document last applied (edits made since are not applied:"
        " apply does that); answers 202 at once, see /api/v1/operations/{id}/.",
        parameters=[HOST_OF_NAME],
        request=None,
        responses={
            202: OperationCreatedSerializer,
            **error_responses(e409="Not applied, or the host is revoked."),
        },
    )
    def post(self, request: Request, name: str) -> Response:
        topology = selectors.topology_get(name=name, host=_host_param(request))
        operation = services.topology_repair(topology=topology, user=request.user)
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


class NetworkListApi(ListAPIView):
    serializer_class = NetworkOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Network]:
        params = self.request.query_params
        return selectors.network_list(host=params.get("host"), topology=params.get("topology"))

    @extend_schema(summary="List the networks of the topologies wanted on hosts", parameters=[HOST, TOPOLOGY])
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class NetworkOverlayApi(APIView):
    @extend_schema(
        summary="The overlay consistency check of a network spanning hosts",
        description="`id` is TOPOLOGY.NETWORK (e.g. ov.mesh; ?host= names the home host when several"
        " hosts have a topology of that name). From every host's latest known state: is each host's"
        " VXLAN device right (VNI, port, VTEP, MTU, underlay route) and does each host forward every"
        " remote endpoint's MAC to the VTEP of the host where it really lives? Each finding names"
        " the host, the object, what is expected and what is found, and whether re-applying that"
        " host (POST /api/v1/topologies/TOPOLOGY/apply/?host=HOST) repairs it.",
        parameters=[HOST_OF_NAME],
        responses={200: OverlayOutputSerializer, **error_responses()},
    )
    def get(self, request: Request, id: str) -> Response:
        name, dot, network = id.partition(".")
        if not dot or not network:
            raise InvalidInput(f"{id!r} is not TOPOLOGY.NETWORK (e.g. ov.mesh)", field="id")
        topology = selectors.topology_get(name=name, host=_host_param(request))
        return Response(OverlayOutputSerializer(network_overlay(topology=topology, network=network)).data)


class NodeListApi(ListAPIView):
    serializer_class = NodeOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Node]:
        params = self.request.query_params
        return selectors.node_list(host=params.get("host"), topology=params.get("topology"))

    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        """One page of node ids, then their rows built without model instances (selectors.node_rows)."""
        ids = self.paginate_queryset(self.get_queryset().values_list("id", flat=True))
        return self.get_paginated_response(selectors.node_rows(list(ids or ())))

    @extend_schema(
        summary="List the nodes of the topologies wanted on hosts, with their addresses",
        parameters=[HOST, TOPOLOGY],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class RouteListApi(ListAPIView):
    serializer_class = RouteListOutputSerializer
    pagination_class = Pagination

    def get_queryset(self) -> QuerySet[Route]:
        params = self.request.query_params
        return selectors.route_list(
            host=params.get("host"), topology=params.get("topology"), node=params.get("node")
        )

    @extend_schema(
        summary="List the routes of the nodes of the topologies wanted on hosts",
        parameters=[
            HOST,
            TOPOLOGY,
            OpenApiParameter("node", OpenApiTypes.STR, description="Only this node's."),
        ],
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)
