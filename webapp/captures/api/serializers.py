"""The captures API's request and answers (the browser socket /ws/captures/<id>/ sends the same)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webapp.captures.limits import (
    COUNT_RANGE,
    DEFAULT_SNAPLEN,
    DURATION_RANGE,
    MAX_FILTER,
    MAX_INTERFACES,
    MAX_NAMESPACE,
    SNAPLEN_RANGE,
)
from webapp.captures.models import Capture, CapturePacket


class CaptureInputSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=63, help_text="The host whose agent captures.")
    namespace = serializers.CharField(
        max_length=MAX_NAMESPACE, help_text="As the host names it: 'host' (its own), a named netns, docker:…"
    )
    interfaces = serializers.ListField(
        child=serializers.CharField(max_length=15, trim_whitespace=False),
        min_length=1,
        max_length=MAX_INTERFACES,
        help_text="Interface names in that namespace (1 to 8), captured together into one file.",
    )
    filter = serializers.CharField(
        max_length=MAX_FILTER,
        allow_blank=True,
        default="",
        help_text="A BPF capture filter (as for tcpdump), e.g. 'icmp or port 53'; empty: every packet.",
    )
    count = serializers.IntegerField(
        min_value=COUNT_RANGE[0], max_value=COUNT_RANGE[1], help_text="Stop after this many packets."
    )
    duration = serializers.FloatField(
        min_value=DURATION_RANGE[0], max_value=DURATION_RANGE[1], help_text="Stop after this many seconds."
    )
    snaplen = serializers.IntegerField(
        min_value=SNAPLEN_RANGE[0],
        max_value=SNAPLEN_RANGE[1],
        default=DEFAULT_SNAPLEN,
        help_text="Bytes kept of each packet.",
    )


class CaptureSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name")
    requested_by = serializers.SerializerMethodField()
    status = serializers.ChoiceField(
        choices=Capture.Status.choices,
        help_text="pending, running, then done (its count or duration), stopped (early: what arrived is "
        "kept) or failed (`error` says why).",
    )
    reason = serializers.CharField(
        help_text="How it ended, as the agent said: count, duration, stopped, error."
    )
    packets = serializers.IntegerField(help_text="Packets written so far; once ended, packets in the file.")
    bytes = serializers.IntegerField(help_text="Bytes of the pcapng file kept so far.")
    rows_kept = serializers.IntegerField(
        help_text="Rows kept for the table: every packet, or a sample when fast."
    )

    class Meta:
        model = Capture
        fields = [
            "id",
            "host",
            "namespace",
            "interfaces",
            "filter",
            "count",
            "duration",
            "snaplen",
            "status",
            "reason",
            "packets",
            "dropped",
            "bytes",
            "rows_kept",
            "error",
            "requested_by",
            "created",
            "started",
            "finished",
        ]

    def get_requested_by(self, capture: Capture) -> str:
        return capture.requested_by.get_username() if capture.requested_by else ""


class CapturePacketSerializer(serializers.ModelSerializer):
    class Meta:
        model = CapturePacket
        fields = ["number", "time", "interface", "source", "destination", "protocol", "length", "info"]


class CaptureDetailSerializer(CaptureSerializer):
    packet_rows = serializers.SerializerMethodField(
        help_text="Rows of the table, in frame order (see `after`)."
    )

    class Meta(CaptureSerializer.Meta):
        fields = [*CaptureSerializer.Meta.fields, "packet_rows"]

    @extend_schema_field(CapturePacketSerializer(many=True))
    def get_packet_rows(self, capture: Capture) -> list[dict[str, Any]]:
        return CapturePacketSerializer(self.context["rows"], many=True).data


@extend_schema_field(OpenApiTypes.OBJECT)
class _TreeField(serializers.ListField):
    """Nodes {name, value?, children?}: tshark's layers and fields, nested as it nests them."""


class DecodeSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="The frame's number in the file.")
    tree = _TreeField(
        help_text="tshark's dissection: each layer (frame, eth, ip, tcp…) a node {name, children}, each "
        "field "
        "{name, value} or a subtree {name, value?, children}."
    )
    hex = serializers.CharField(
        help_text="The frame's bytes in hexadecimal (as captured, up to the snaplen)."
    )
