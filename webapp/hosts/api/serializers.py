"""Explicit input and output serializers of the hosts API."""

from rest_framework import serializers

TOPOLOGY_MAX_CHARS = 4_000_000


class HostOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    online = serializers.BooleanField()
    last_seen = serializers.DateTimeField(allow_null=True)
    agent_version = serializers.CharField()
    hostname = serializers.CharField(help_text="Hostname the agent reported.")
    token_prefix = serializers.CharField(help_text="First characters of the agent token.")
    revoked = serializers.BooleanField()
    underlay = serializers.IPAddressField(
        allow_null=True, help_text="Its address on the network between hosts: its VTEP in spanning networks."
    )


class HostUpdateInputSerializer(serializers.Serializer):
    underlay = serializers.CharField(
        allow_blank=True, allow_null=True, max_length=64, help_text="An IP address, or empty to clear it."
    )


class CommandInputSerializer(serializers.Serializer):
    topology = serializers.CharField(
        trim_whitespace=False, max_length=TOPOLOGY_MAX_CHARS, help_text="Topology file text (YAML)."
    )
