"""Traffic API: the "talks to" edges of hosts, live and ended, a page at a time."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from webapp.api_errors import ErrorSerializer
from webapp.traffic.api.serializers import TrafficEdgeSerializer, TrafficQuerySerializer
from webapp.traffic.selectors import traffic_list


class TrafficPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


class TrafficListApi(ListAPIView):
    """Every signed-in user (viewers and up) reads it."""

    serializer_class = TrafficEdgeSerializer
    pagination_class = TrafficPagination

    def get_queryset(self) -> Any:
        query = TrafficQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return traffic_list(host=data.get("host"), state=data["state"], namespace=data.get("namespace"))

    @extend_schema(
        summary="Traffic edges: who talks to whom, live ones first, then the latest ended",
        description=(
            "One edge per client namespace, server (namespace, or an address outside the host), protocol"
            " and port, from the conntrack tables the host's agent reads every 2 s. `flows`, `packets` and"
            " `bytes` are sums over the edge's live conntrack entries at the agent's last report (an"
            " ended edge: its last live ones); `packets_seen` and `bytes_seen` are what the web app saw"
            " those sums grow by, a lower bound of all the edge carried. With `host_online` false the"
            " host's agent is away: its live edges are as it last reported them."
        ),
        parameters=[TrafficQuerySerializer],
        responses={
            200: TrafficEdgeSerializer(many=True),
            400: OpenApiResponse(
                ErrorSerializer, description="A filter that is not valid (named in `fields`)."
            ),
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)
