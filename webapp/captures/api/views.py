"""`/api/v1/captures/`: packet captures run by a host's agent (operators and admins only: packets can
carry secrets). Starting answers 202 at once; the capture's status and rows then stream on
/ws/captures/<id>/ (and are read here), its file downloads as pcapng, and any frame decodes by tshark."""

from __future__ import annotations

from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.accounts.permissions import CanOperate
from webapp.api_errors import ErrorSerializer, error_schema
from webapp.captures.api.serializers import (
    CaptureDetailSerializer,
    CaptureInputSerializer,
    CaptureSerializer,
    DecodeSerializer,
)
from webapp.captures.decode import DecodeUnavailable, packet_decode
from webapp.captures.models import Capture
from webapp.captures.selectors import (
    capture_chunk_data,
    capture_chunk_ids,
    capture_filename,
    capture_get,
    capture_list,
    capture_rows,
)
from webapp.captures.services import capture_delete, capture_start, capture_stop
from webapp.errors import InvalidInput, NotFound

PCAPNG = "application/x-pcapng"
MAX_ROWS_READ = 5000  # rows one read may return
MAX_LIST = 500  # captures one list may return

_ERRORS = error_schema({403: "Not an operator or admin.", 404: "No capture with that id."})


def _int_param(request: Request, name: str, *, default: int | None, low: int, high: int) -> int | None:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(f"{name} must be an integer from {low} to {high}", field=name)
    return int(text)


class CaptureListApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        summary="Captures, newest first",
        parameters=[
            OpenApiParameter("host", OpenApiTypes.STR, description="Only this host's."),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"At most this many (100; up to {MAX_LIST})."
            ),
        ],
        responses={200: CaptureSerializer(many=True), **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        limit = _int_param(request, "limit", default=100, low=1, high=MAX_LIST)
        captures = capture_list(host=request.query_params.get("host") or None, limit=limit or 100)
        return Response(CaptureSerializer(captures, many=True).data)

    @extend_schema(
        summary="Start a capture",
        description=(
            "The host's agent runs dumpcap inside the namespace on the interfaces, with the BPF filter, "
            "until `count` packets or `duration` seconds (or a stop). Answers 202 at once with the capture; "
            "follow it at /api/v1/captures/{id}/ or on the socket /ws/captures/{id}/."
        ),
        request=CaptureInputSerializer,
        responses={
            202: CaptureSerializer,
            **error_schema(
                {
                    400: "A field is wrong (named in `fields`).",
                    403: "Not an operator or admin.",
                    404: "Unknown host, namespace or interface (named in `fields`).",
                    409: "The host is revoked.",
                    503: "The host's agent is not connected.",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = CaptureInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = dict(data.validated_data)
        capture = capture_start(host=body.pop("host"), request=body, user=request.user)
        return Response(CaptureSerializer(capture).data, status=status.HTTP_202_ACCEPTED)


class CaptureDetailApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        summary="A capture: its status, counts and rows",
        description="Rows in frame order: those after frame `after`, else the last `limit`.",
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Rows after this frame number."),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"At most this many rows (1000; up to {MAX_ROWS_READ}).",
            ),
        ],
        responses={200: CaptureDetailSerializer, **_ERRORS},
    )
    def get(self, request: Request, id: str) -> Response:
        capture = capture_get(capture_id=id)
        after = _int_param(request, "after", default=None, low=0, high=2**53)
        limit = _int_param(request, "limit", default=1000, low=1, high=MAX_ROWS_READ)
        rows = capture_rows(capture=capture, after=after, limit=limit or 1000)
        return Response(CaptureDetailSerializer(capture, context={"rows": rows}).data)

    @extend_schema(
        summary="Delete a capture, its file and rows (a live one is stopped)",
        responses={204: None, **_ERRORS},
    )
    def delete(self, request: Request, id: str) -> Response:
        capture_delete(capture=capture_get(capture_id=id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CaptureStopApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        summary="Stop a capture (what it captured is kept)",
        description="202: its agent was asked to stop it; 200: it had ended (or its host is offline: "
        "stopped now).",
        request=None,
        responses={200: CaptureSerializer, 202: CaptureSerializer, **_ERRORS},
    )
    def post(self, request: Request, id: str) -> Response:
        capture = capture_get(capture_id=id)
        stopped = capture_stop(capture=capture, user=request.user)
        code = status.HTTP_200_OK if stopped.ended else status.HTTP_202_ACCEPTED
        return Response(CaptureSerializer(stopped).data, status=code)


class PcapngRenderer(BaseRenderer):
    """The capture file as it is stored (the view streams it; this only lets clients ask for it)."""

    media_type = PCAPNG
    format = "pcapng"
    charset = None
    render_style = "binary"

    def render(
        self, data: object, accepted_media_type: str | None = None, renderer_context: dict | None = None
    ) -> bytes:
        return data if isinstance(data, bytes) else b""


async def _file(capture: Capture) -> AsyncIterator[bytes]:
    """The file, one stored chunk at a time, each read in the database thread when it is sent."""
    for chunk_id in await database_sync_to_async(capture_chunk_ids)(capture=capture):
        yield await database_sync_to_async(capture_chunk_data)(chunk_id=chunk_id)


class CapturePcapApi(APIView):
    permission_classes = [CanOperate]
    renderer_classes = [PcapngRenderer]

    @extend_schema(
        summary="Download the capture's file (pcapng, for Wireshark)",
        description="What has arrived so far while it runs; the whole file once it ended.",
        responses={
            (200, PCAPNG): OpenApiResponse(OpenApiTypes.BINARY, description="The pcapng file."),
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def get(self, request: Request, id: str) -> StreamingHttpResponse:
        capture = capture_get(capture_id=id)
        response = StreamingHttpResponse(_file(capture), content_type=PCAPNG)
        response["Content-Disposition"] = f'attachment; filename="{capture_filename(capture)}"'
        response["Content-Length"] = str(capture.bytes)
        response["Cache-Control"] = "no-store"
        return response


class CapturePacketApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        summary="A packet's full decode, by tshark",
        description="Frame `number` of the capture's file dissected by Wireshark's tshark: layers and fields "
        "as a tree, and its bytes.",
        responses={200: DecodeSerializer, 503: ErrorSerializer, **_ERRORS},
    )
    def get(self, request: Request, id: str, number: str) -> Response:
        capture = capture_get(capture_id=id)
        if not number.isdigit() or int(number) < 1:
            raise NotFound(f"no frame {number!r}: frames are numbered from 1", field="number")
        try:
            decoded = packet_decode(capture=capture, number=int(number))
        except DecodeUnavailable as err:
            return Response(
                {"error": "DecodeUnavailable", "message": str(err)},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(DecodeSerializer(decoded).data)
