"""Topology API: the last known network state of every host (or one)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api_errors import ErrorSerializer
from webapp.topology.api.serializers import TopologyOutputSerializer, TopologyQuerySerializer
from webapp.topology.selectors import topology_get, topology_list
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
