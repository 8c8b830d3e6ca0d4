"""Object edits of a topology through the API: its networks, nodes, attachments and routes.

Each write names the topology's version it read, in the body (`version`) or as `If-Match: "<version>"`;
a stale one answers 409 (412 with If-Match). Each answers the topology as it now is (with its new
version), like GET /api/v1/topologies/<name>/. Nothing runs on the host: plan and apply do.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.errors import InvalidInput
from webapp.networks import edits, selectors
from webapp.networks.api.serializers import (
    AttachInputSerializer,
    DesiredTopologyOutputSerializer,
    DetachInputSerializer,
    NetworkChangeInputSerializer,
    NetworkCreateInputSerializer,
    NodeChangeInputSerializer,
    NodeCreateInputSerializer,
    RouteInputSerializer,
)
from webapp.networks.api.views import (
    HOST_OF_NAME,
    IF_MATCH,
    VERSION,
    ReadOrOperate,
    error_responses,
    query_version,
    stale_as_412,
    topology_response,
    version_read,
)
from webapp.networks.models import Topology


class _EditApi(APIView):
    """Parses the input, finds the topology, runs one edit with the version read, answers the topology."""

    permission_classes = [IsAuthenticated, ReadOrOperate]

    def input(self, request: Request, serializer: type[serializers.Serializer]) -> dict[str, Any]:
        data = serializer(data=request.data)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def edit(
        self, request: Request, name: str, body_version: int | None, run: Any, created: bool = False
    ) -> Response:
        version, if_match = version_read(request, body_version)
        topology: Topology = selectors.topology_get(name=name, host=request.query_params.get("host") or None)
        with stale_as_412(if_match):
            updated = run(topology=topology, version=version, user=request.user)
        response = topology_response(updated)
        if created:
            response.status_code = status.HTTP_201_CREATED
        return response


def _schema(summary: str, request: object, *, created: bool = False, params: tuple = ()) -> dict:
    return {
        "summary": summary,
        "parameters": [HOST_OF_NAME, IF_MATCH, *params],
        "request": request,
        "responses": {
            (201 if created else 200): DesiredTopologyOutputSerializer,
            **error_responses(
                e409="Stale version, a name taken, or a subnet or address clash.", e412="If-Match stale."
            ),
        },
    }


class NetworkAddApi(_EditApi):
    @extend_schema(**_schema("Add a network to a topology", NetworkCreateInputSerializer, created=True))
    def post(self, request: Request, name: str) -> Response:
        data = self.input(request, NetworkCreateInputSerializer)
        version, network = data.pop("version", None), data.pop("name")

        def run(**common: Any) -> Topology:
            return edits.network_add(**common, name=network, body=data)

        return self.edit(request, name, version, run, created=True)


class NetworkEditApi(_EditApi):
    @extend_schema(**_schema("Change a network of a topology", NetworkChangeInputSerializer))
    def patch(self, request: Request, name: str, network: str) -> Response:
        data = self.input(request, NetworkChangeInputSerializer)
        version = data.pop("version", None)

        def run(**common: Any) -> Topology:
            return edits.network_change(**common, name=network, body=data)

        return self.edit(request, name, version, run)

    @extend_schema(**_schema("Remove a network (no node may be on it)", None, params=(VERSION,)))
    def delete(self, request: Request, name: str, network: str) -> Response:
        def run(**common: Any) -> Topology:
            return edits.network_delete(**common, name=network)

        return self.edit(request, name, query_version(request), run)


class NodeAddApi(_EditApi):
    @extend_schema(**_schema("Add a node to a topology", NodeCreateInputSerializer, created=True))
    def post(self, request: Request, name: str) -> Response:
        data = self.input(request, NodeCreateInputSerializer)
        version, node = data.pop("version", None), data.pop("name")
        body = {key: value for key, value in data.items() if value is not None}

        def run(**common: Any) -> Topology:
            return edits.node_add(**common, name=node, body=body)

        return self.edit(request, name, version, run, created=True)


class NodeEditApi(_EditApi):
    @extend_schema(
        **_schema("Change a node: its mode, networks (all of them) or ports", NodeChangeInputSerializer)
    )
    def patch(self, request: Request, name: str, node: str) -> Response:
        data = self.input(request, NodeChangeInputSerializer)
        version = data.pop("version", None)

        def run(**common: Any) -> Topology:
            return edits.node_change(**common, name=node, body=data)

        return self.edit(request, name, version, run)

    @extend_schema(**_schema("Remove a node and its routes", None, params=(VERSION,)))
    def delete(self, request: Request, name: str, node: str) -> Response:
        def run(**common: Any) -> Topology:
            return edits.node_delete(**common, name=node)

        return self.edit(request, name, query_version(request), run)


class NodeAttachApi(_EditApi):
    @extend_schema(**_schema("Attach a node to a network (a new interface)", AttachInputSerializer))
    def post(self, request: Request, name: str, node: str) -> Response:
        data = self.input(request, AttachInputSerializer)

        def run(**common: Any) -> Topology:
            return edits.node_attach(
                **common, name=node, network=data["network"], address=data.get("address")
            )

        return self.edit(request, name, data.get("version"), run)


class NodeDetachApi(_EditApi):
    @extend_schema(**_schema("Detach a node from a network", DetachInputSerializer))
    def post(self, request: Request, name: str, node: str) -> Response:
        data = self.input(request, DetachInputSerializer)

        def run(**common: Any) -> Topology:
            return edits.node_detach(**common, name=node, network=data["network"])

        return self.edit(request, name, data.get("version"), run)


TO = OpenApiParameter("to", OpenApiTypes.STR, required=True, description="The route's destination.")


class NodeRoutesApi(_EditApi):
    @extend_schema(**_schema("Add a route to a node", RouteInputSerializer, created=True))
    def post(self, request: Request, name: str, node: str) -> Response:
        data = self.input(request, RouteInputSerializer)
        version = data.pop("version", None)

        def run(**common: Any) -> Topology:
            return edits.route_add(**common, node=node, body=data)

        return self.edit(request, name, version, run, created=True)

    @extend_schema(**_schema("Remove a node's route", None, params=(VERSION, TO)))
    def delete(self, request: Request, name: str, node: str) -> Response:
        to = request.query_params.get("to")
        if not to:
            raise InvalidInput("the route's destination is required: ?to=<cidr>", field="to")

        def run(**common: Any) -> Topology:
            return edits.route_delete(**common, node=node, to=to)

        return self.edit(request, name, query_version(request), run)
