"""Explicit input and output serializers of the traffic API."""

from rest_framework import serializers

from webapp.traffic.models import TrafficEdge
from webapp.traffic.selectors import STATES


class TrafficQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, max_length=63, help_text="Only this host's edges.")
    state = serializers.ChoiceField(
        choices=STATES, required=False, default="all", help_text="live, ended or all (the default)."
    )
    namespace = serializers.CharField(
        required=False, max_length=300, help_text="Only edges with this namespace as client or server."
    )


class TrafficEdgeSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name")
    host_online = serializers.BooleanField(
        source="host.online",
        help_text="Whether the host's agent is connected: when not, live edges are as it last reported them.",
    )
    live = serializers.BooleanField(help_text="Not ended: its agent last reported live flows on it.")

    class Meta:
        model = TrafficEdge
        fields = ["id", "host", "host_online", "key", "client", "server", "server_address", "protocol",
                  "port", "live", "first_seen", "last_seen", "ended", "flows", "peak_flows", "packets",
                  "bytes", "packets_seen", "bytes_seen", "seen_in"]  # fmt: skip
