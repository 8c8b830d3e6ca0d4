"""Explicit input and output serializers of the desired-state API (topologies, networks, nodes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from netcore.topology.overlay_check import FINDING_KINDS
from netcore.topology.spec import MAX_DOCUMENT_BYTES
from webapp.networks.models import Network, Node, Topology
from webapp.networks.selectors import TOPOLOGY_STATUSES, topology_nodes, topology_span, topology_status
from webapp.operations.api.serializers import OperationCreatedSerializer
from webapp.operations.models import Operation


@extend_schema_field(
    {
        "oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}],
        "description": "A netcore topology file: YAML text, or the same document as a JSON object.",
    }
)
class TopologyDocumentField(serializers.Field):
    """YAML text or a JSON object; netcore validates the rest (in the service)."""

    default_error_messages = {
        "invalid": "a topology is YAML text or a JSON object, not {kind}",
        "too_long": f"a topology file is at most {MAX_DOCUMENT_BYTES} bytes",
    }

    def to_internal_value(self, data: object) -> str | Mapping[str, Any]:
        if isinstance(data, str):
            if len(data) > MAX_DOCUMENT_BYTES:
                self.fail("too_long")
            return data
        if isinstance(data, Mapping):
            return data
        self.fail("invalid", kind=type(data).__name__)
        raise AssertionError("unreachable")

    def to_representation(self, value: object) -> object:
        return value


class TopologyCreateInputSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Name of the host the topology is for.")
    topology = TopologyDocumentField()
    auto_repair = serializers.BooleanField(default=False)


class TopologyUpdateInputSerializer(serializers.Serializer):
    topology = TopologyDocumentField()
    version = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text="The version read (or If-Match); a newer one stored means someone changed it"
        " meanwhile (409, or 412 with If-Match).",
    )
    auto_repair = serializers.BooleanField(required=False, help_text="Unchanged if left out.")


def topology_url(topology: Topology, suffix: str = "") -> str:
    url = reverse("api-topology-detail", args=[topology.name])
    return f"{url}{suffix}?{urlencode({'host': topology.host.name})}"


class AttachmentOutputSerializer(serializers.Serializer):
    network = serializers.CharField(source="network.name")
    ifname = serializers.CharField()
    address = serializers.CharField(help_text="As netcore's IPAM resolved it.")
    static = serializers.BooleanField(help_text="Given in the file (else allocated).")


class PublishedPortOutputSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="As written: [host_ip:]host_port:container_port[/tcp|udp].")
    protocol = serializers.CharField()
    host_ip = serializers.CharField(help_text="Empty: every address of the host.")
    host_ports = serializers.SerializerMethodField()
    container_ports = serializers.SerializerMethodField()

    def get_host_ports(self, port: Any) -> list[int]:
        return [port.host_port_first, port.host_port_last]

    def get_container_ports(self, port: Any) -> list[int]:
        return [port.container_port_first, port.container_port_last]


class RouteOutputSerializer(serializers.Serializer):
    to = serializers.CharField()
    via = serializers.CharField()
    dev = serializers.CharField()


class _NodeFields(serializers.Serializer):
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=Node.Mode.choices)
    container = serializers.CharField(
        source="container_of", help_text="In container mode: the node whose namespace it shares."
    )
    attachments = AttachmentOutputSerializer(many=True)
    ports = PublishedPortOutputSerializer(many=True)
    routes = RouteOutputSerializer(many=True)


class _NetworkFields(serializers.Serializer):
    name = serializers.CharField()
    driver = serializers.ChoiceField(choices=Network.Driver.choices)
    subnet = serializers.CharField()
    gateway = serializers.CharField()
    mtu = serializers.IntegerField(allow_null=True)
    nat = serializers.BooleanField()
    options = serializers.JSONField(help_text="vxlan: vni, local, remote, group, dstport, learning.")


class _SpanField(serializers.Serializer):
    home = serializers.CharField()
    hosts = serializers.ListField(child=serializers.CharField())


class _TopologyFields(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField(source="host.name")
    version = serializers.IntegerField()
    auto_repair = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    status = serializers.SerializerMethodField(
        help_text="Derived from its latest operation and its host's presence: "
        + ", ".join(TOPOLOGY_STATUSES)
        + "."
    )
    status_message = serializers.SerializerMethodField(
        help_text="Why, for people: the error, the host waited for, the plan lines of a drift."
    )
    url = serializers.SerializerMethodField()
    span = serializers.SerializerMethodField(
        help_text="For a topology spanning hosts: {home: its home host, hosts: every host with a share"
        " of it}; each host's share is a topology of the same name on that host (?host=NAME). Null"
        " for a topology on one host."
    )

    def get_url(self, topology: Topology) -> str:
        return topology_url(topology)

    @extend_schema_field(_SpanField(allow_null=True))
    def get_span(self, topology: Topology) -> dict[str, Any] | None:
        return topology_span(topology)

    @extend_schema_field(serializers.ChoiceField(choices=TOPOLOGY_STATUSES))
    def get_status(self, topology: Topology) -> str:
        return topology_status(topology).status

    def get_status_message(self, topology: Topology) -> str:
        return topology_status(topology).message


class DesiredTopologyListOutputSerializer(_TopologyFields):
    network_count = serializers.IntegerField()
    node_count = serializers.IntegerField()


class DesiredTopologyOutputSerializer(_TopologyFields):
    networks = _NetworkFields(many=True, source="networks.all")
    nodes = serializers.SerializerMethodField()

    @extend_schema_field(_NodeFields(many=True))
    def get_nodes(self, topology: Topology) -> list[dict[str, Any]]:
        # rows, not instances: a 500-node topology's instances and fields took a tenth of a second
        return topology_nodes(topology)


class NetworkOutputSerializer(_NetworkFields):
    host = serializers.CharField(source="topology.host.name")
    topology = serializers.CharField(source="topology.name")


class NodeOutputSerializer(_NodeFields):
    host = serializers.CharField(source="topology.host.name")
    topology = serializers.CharField(source="topology.name")


# Object edits (webapp.networks.edits): the file's keys of one object; netcore validates the values.


class _StrictInput(serializers.Serializer):
    """Refuses keys it does not know (as the topology file does) instead of ignoring them."""

    version = serializers.IntegerField(
        min_value=1,
        required=False,
        help_text='The topology\'s version read (or the header If-Match: "<version>"); a newer one'
        " stored means someone changed it meanwhile (409, or 412 with If-Match).",
    )

    def to_internal_value(self, data: object) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: [f"unknown key; expected one of {', '.join(self.fields)}"] for key in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": "string", "nullable": True}},
        ],
        "description": "vxlan: the hosts the network spans, by name (each host's underlay address is its"
        " VTEP), or a mapping of host name to VTEP address.",
    }
)
class NetworkHostsField(serializers.JSONField):
    """The hosts a vxlan network spans, as the topology file has them; netcore validates them."""


class _NetworkKeys(_StrictInput):
    subnet = serializers.CharField(required=False, help_text="e.g. 198.18.1.0/24 or fd00:1::/64.")
    gateway = serializers.CharField(required=False, allow_null=True, help_text="Default: the first address.")
    mtu = serializers.IntegerField(required=False, allow_null=True)
    nat = serializers.BooleanField(required=False, help_text="Masquerade traffic leaving the network.")
    vni = serializers.IntegerField(required=False, allow_null=True)
    local = serializers.CharField(required=False, allow_null=True)
    remote = serializers.CharField(required=False, allow_null=True)
    group = serializers.CharField(required=False, allow_null=True)
    dstport = serializers.IntegerField(required=False, allow_null=True)
    learning = serializers.BooleanField(required=False, allow_null=True)
    hosts = NetworkHostsField(required=False, allow_null=True)


class NetworkCreateInputSerializer(_NetworkKeys):
    name = serializers.CharField()
    driver = serializers.ChoiceField(choices=Network.Driver.choices, required=False)
    subnet = serializers.CharField(help_text="e.g. 198.18.1.0/24 or fd00:1::/64.")


class NetworkChangeInputSerializer(_NetworkKeys):
    """Keys left out stay; a key given as null goes back to its default."""


@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"address": {"type": "string"}}},
            },
        ],
        "description": "Networks by name, or a mapping of network to {address}.",
    }
)
class NodeNetworksField(serializers.JSONField):
    """A node's networks as the topology file has them; netcore validates them."""


class _NodeKeys(_StrictInput):
    mode = serializers.CharField(
        required=False, allow_null=True, help_text="bridge (default), none, host or container:<node>."
    )
    networks = NodeNetworksField(required=False, allow_null=True)
    host = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The host it runs on, for a topology spanning hosts (default: the topology's host).",
    )
    ports = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Published ports: [host_ip:]host_port:container_port[/tcp|udp].",
    )


class NodeCreateInputSerializer(_NodeKeys):
    name = serializers.CharField()


class NodeChangeInputSerializer(_NodeKeys):
    """Keys left out stay; networks replaces the node's attachments; null removes a key."""


class AttachInputSerializer(_StrictInput):
    network = serializers.CharField()
    address = serializers.CharField(required=False, help_text="Default: allocated from the subnet.")


class DetachInputSerializer(_StrictInput):
    network = serializers.CharField()


class RouteInputSerializer(_StrictInput):
    to = serializers.CharField(help_text="Destination, e.g. 198.18.2.0/24 or default.")
    via = serializers.CharField(required=False)
    dev = serializers.CharField(required=False)


class RouteListOutputSerializer(serializers.Serializer):
    host = serializers.CharField(source="node.topology.host.name")
    topology = serializers.CharField(source="node.topology.name")
    node = serializers.CharField(source="node.name")
    to = serializers.CharField()
    via = serializers.CharField()
    dev = serializers.CharField()


class PreviewPairSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="The node sending.")
    target = serializers.CharField(help_text="The node whose address it sends to.")
    network = serializers.CharField(help_text="The target's network that address is on.")
    address = serializers.CharField()
    how = serializers.ChoiceField(
        choices=["local", "L2", "L3"], allow_null=True, help_text="Null: not reachable (see reason)."
    )
    path = serializers.ListField(
        child=serializers.CharField(), help_text="Namespaces crossed there and back; (host) is the host's."
    )
    reason = serializers.CharField(required=False, help_text="Why not, when not reachable.")


class PreviewInterruptedSerializer(serializers.Serializer):
    node = serializers.CharField()
    why = serializers.CharField()


class PreviewRecreatedSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="veth (a node's interface) or vxlan (a network's VXLAN device).")
    node = serializers.CharField(required=False)
    network = serializers.CharField()
    why = serializers.CharField()


class PreviewCountsSerializer(serializers.Serializer):
    gained = serializers.IntegerField()
    lost = serializers.IntegerField()
    interrupted = serializers.IntegerField()
    recreated = serializers.IntegerField()


class TopologyPreviewOutputSerializer(serializers.Serializer):
    gained = PreviewPairSerializer(many=True, help_text="Pairs that reach each other after, not before.")
    lost = PreviewPairSerializer(
        many=True, help_text="Pairs that reached each other before, as they are after."
    )
    interrupted = PreviewInterruptedSerializer(
        many=True, help_text="Nodes that stay but whose live connections break."
    )
    recreated = PreviewRecreatedSerializer(
        many=True, help_text="Kernel objects apply deletes and makes again."
    )
    counts = PreviewCountsSerializer(help_text="How many of each there are (each list shows at most 200).")
    pairs_before = serializers.IntegerField(help_text="Reachable pairs with the document last applied.")
    pairs_after = serializers.IntegerField(help_text="Reachable pairs once the stored topology is applied.")
    applied = serializers.BooleanField(
        help_text="False: never applied (or destroyed since); before is nothing."
    )
    host_forwards = serializers.BooleanField(
        help_text="Whether the host was taken to route between networks."
    )


class _HostOperationSerializer(OperationCreatedSerializer):
    host = serializers.CharField(source="host.name")


class TopologyOperationsCreatedSerializer(_HostOperationSerializer):
    """The 202 answer to a topology's plan/apply/destroy: its host's operation and, for a topology
    spanning hosts, `span`: the operation queued on each host with a share (home first)."""

    span = serializers.SerializerMethodField()

    @extend_schema_field(_HostOperationSerializer(many=True, allow_null=True))
    def get_span(self, operation: Operation) -> list[dict[str, Any]] | None:
        others = self.context.get("span")
        return _HostOperationSerializer([operation, *others], many=True).data if others else None


class _OverlayHostSerializer(serializers.Serializer):
    name = serializers.CharField()
    vtep = serializers.CharField()
    state_known = serializers.BooleanField(help_text="False: its agent never reported a state.")


class _FindingSerializer(serializers.Serializer):
    host = serializers.CharField()
    kind = serializers.ChoiceField(choices=sorted(FINDING_KINDS))
    object = serializers.CharField()
    expected = serializers.CharField()
    found = serializers.CharField()
    repairable = serializers.BooleanField(help_text="Re-applying the host's share repairs it.")
    why = serializers.CharField()


class OverlayOutputSerializer(serializers.Serializer):
    topology = serializers.CharField()
    network = serializers.CharField()
    hosts = _OverlayHostSerializer(many=True)
    consistent = serializers.BooleanField()
    findings = _FindingSerializer(many=True)
