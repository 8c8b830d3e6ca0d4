"""Topology API: the last known network state of every host (or one); each user's saved graph layouts."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.api_parsers import JSONParser
from webapp.operations.api.serializers import OperationCreatedSerializer
from webapp.topology.api.serializers import (
    LayoutOutputSerializer,
    LayoutPatchInputSerializer,
    LayoutPutInputSerializer,
    ShapingInputSerializer,
    TopologyOutputSerializer,
    TopologyQuerySerializer,
)
from webapp.topology.selectors import saved_layout, topology_get, topology_list
from webapp.topology.services import layout_merge, layout_replace
from webapp.topology.shaping import link_shape_queue, link_unshape_queue
from webapp.topology.state import snapshot_lists


class TopologyApi(APIView):
    @extend_schema(
        summary="Network state of every host, as last reported by its agent",
        parameters=[TopologyQuerySerializer],
        responses={
            200: TopologyOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="Unknown host."),
        },
    )
    def get(self, request: Request) -> Response:
        query = TopologyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        name = query.validated_data.get("host")
        records = [topology_get(host=name)] if name is not None else topology_list()
        hosts = [
            {"host": r.host, "online": r.online, "seq": r.seq, "snapshot": snapshot_lists(r.state)}
            for r in records
        ]
        return Response(TopologyOutputSerializer({"hosts": hosts}).data)


class _NonFiniteJSONParser(JSONParser):
    """JSON that may hold NaN and Infinity, so that the layout services refuse them naming their field."""

    strict = False


_LAYOUT_RESPONSES = {
    200: LayoutOutputSerializer,
    400: OpenApiResponse(ErrorSerializer, description="Invalid view name or positions; nothing was changed."),
}


class LayoutApi(APIView):
    """The signed-in user's own node positions in one graph view (e.g. "topology")."""

    parser_classes = [_NonFiniteJSONParser]

    @extend_schema(
        summary="Your saved node positions in a view (empty if never saved)", responses=_LAYOUT_RESPONSES
    )
    def get(self, request: Request, view: str) -> Response:
        return Response(LayoutOutputSerializer(saved_layout(user=request.user, view=view)).data)

    @extend_schema(
        summary="Replace all your node positions in a view",
        request=LayoutPutInputSerializer,
        responses=_LAYOUT_RESPONSES,
    )
    def put(self, request: Request, view: str) -> Response:
        data = LayoutPutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        layout = layout_replace(user=request.user, view=view, positions=data.validated_data["positions"])
        return Response(LayoutOutputSerializer(layout).data)

    @extend_schema(
        summary="Set some node positions and forget others in a view",
        request=LayoutPatchInputSerializer,
        responses=_LAYOUT_RESPONSES,
    )
    def patch(self, request: Request, view: str) -> Response:
        data = LayoutPatchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        layout = layout_merge(
            user=request.user,
            view=view,
            positions=data.validated_data.get("positions", {}),
            remove=data.validated_data.get("remove", []),
        )
        return Response(LayoutOutputSerializer(layout).data)


_SHAPING_ERRORS = error_schema(
    {
        400: "A field is wrong (named in `fields`).",
        403: "Not an operator or admin.",
        404: "Unknown host, or no such namespace or link in what its agent last reported.",
    }
)


class LinkShapingApi(APIView):
    """A link's shaping: a rate limit (tbf), or delay, jitter and loss where the host's kernel has netem.
    Queued as an operation (202); the link's `shaping` in the topology shows the kernel's result."""

    permission_classes = [IsAuthenticated, CanOperate]

    @extend_schema(
        summary="Shape a link: rate limit, delay, loss",
        description="Answers 202 at once with the queued operation; see /api/v1/operations/{id}/. A host "
        "whose kernel has no netem fails the operation with that reason when delay, jitter or loss is asked.",
        request=ShapingInputSerializer,
        responses={202: OperationCreatedSerializer, **_SHAPING_ERRORS},
    )
    def put(self, request: Request, host: str, netns: str, link: str) -> Response:
        if not isinstance(request.data, dict):
            return Response({"detail": "expected an object of shaping fields"}, status=400)
        operation = link_shape_queue(
            host=host, netns=netns, link=link, shaping=dict(request.data), user=request.user
        )
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Take a link's shaping off",
        request=None,
        responses={202: OperationCreatedSerializer, **_SHAPING_ERRORS},
    )
    def delete(self, request: Request, host: str, netns: str, link: str) -> Response:
        operation = link_unshape_queue(host=host, netns=netns, link=link, user=request.user)
        return Response(OperationCreatedSerializer(operation).data, status=status.HTTP_202_ACCEPTED)
