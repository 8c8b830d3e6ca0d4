"""Explicit input and output serializers of the desired-state API (topologies, networks, nodes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from netcore.topology.spec import MAX_DOCUMENT_BYTES
from webapp.networks.models import Network, Node, Topology
from webapp.networks.selectors import TOPOLOGY_STATUSES, topology_status


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
        help_text="The version read; a newer one stored means someone changed it meanwhile (409).",
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

    def get_url(self, topology: Topology) -> str:
        return topology_url(topology)

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
    nodes = _NodeFields(many=True, source="nodes.all")


class NetworkOutputSerializer(_NetworkFields):
    host = serializers.CharField(source="topology.host.name")
    topology = serializers.CharField(source="topology.name")


class NodeOutputSerializer(_NodeFields):
    host = serializers.CharField(source="topology.host.name")
    topology = serializers.CharField(source="topology.name")
