"""Explicit input and output serializers of the topology API."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webapp.topology.services import LAYOUT_MAX_POSITIONS


class TopologyQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, help_text="Only this host.")


def _objects(help_text: str) -> serializers.ListField:
    return serializers.ListField(child=serializers.DictField(), help_text=help_text)


class SnapshotSerializer(serializers.Serializer):
    """A netcore snapshot (netcore/schema/snapshot.schema.json)."""

    version = serializers.IntegerField()
    namespaces = _objects("Network namespaces.")
    links = _objects("Interfaces, in every namespace.")
    addresses = _objects("IP addresses.")
    routes = _objects("Routes.")
    neighbours = _objects("ARP / NDP entries.")
    fdb = _objects("Bridge forwarding entries.")


class HostTopologySerializer(serializers.Serializer):
    host = serializers.CharField()
    online = serializers.BooleanField()
    seq = serializers.IntegerField(help_text="seq of the agent frame the snapshot is at.")
    snapshot = SnapshotSerializer()


class TopologyOutputSerializer(serializers.Serializer):
    hosts = HostTopologySerializer(many=True)


class _Unchecked(serializers.Field):
    """A JSON value passed through as is: the layout services check it, in one place, with one set of
    messages (and without a field object per entry: a layout has up to 30,000 of them)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "maxProperties": LAYOUT_MAX_POSITIONS,
        "example": {"alpha|ns|web1": [12.5, -40.0]},
    }
)
class PositionsField(_Unchecked):
    """Node id (1-512 characters) → [x, y], finite numbers within ±10,000,000."""


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class NodeIdsField(_Unchecked):
    """A list of node ids."""


class LayoutPutInputSerializer(serializers.Serializer):
    positions = PositionsField(help_text="Node id → [x, y]: replaces every stored position.")


class LayoutPatchInputSerializer(serializers.Serializer):
    positions = PositionsField(required=False, help_text="Node id → [x, y] to set.")
    remove = NodeIdsField(required=False, help_text="Node ids to forget (also when in positions).")


class LayoutOutputSerializer(serializers.Serializer):
    view = serializers.CharField()
    positions = PositionsField()
    updated = serializers.DateTimeField(allow_null=True, help_text="When last saved; null if never.")


@extend_schema_field({"oneOf": [{"type": "number"}, {"type": "string"}]})
class MeasureField(serializers.Field):
    """A number or a string with its unit ("10mbit", "20ms"): netcore.shaping_spec reads it."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ShapingInputSerializer(serializers.Serializer):
    """A link's shaping. A rate alone is a rate limit (tbf); delay, jitter or loss need netem."""

    rate = MeasureField(required=False, help_text='Bits per second, or "10mbit", "1gbit", "800kbit".')
    burst = MeasureField(required=False, help_text='Bytes, or "32kb": what passes at line rate (rate only).')
    queue_ms = serializers.IntegerField(
        required=False, help_text="How long a packet may queue (1-10000, 50)."
    )
    delay = MeasureField(required=False, help_text='Milliseconds, or "20ms", "1.5s" (needs netem).')
    jitter = MeasureField(
        required=False, help_text='Milliseconds, or "5ms", at most the delay (needs netem).'
    )
    loss = MeasureField(required=False, help_text='Percent of packets dropped, or "0.5%" (needs netem).')
