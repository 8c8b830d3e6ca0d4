"""Explicit input and output serializers of the topology API."""

from rest_framework import serializers


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
