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


class CommandInputSerializer(serializers.Serializer):
    topology = serializers.CharField(
        trim_whitespace=False, max_length=TOPOLOGY_MAX_CHARS, help_text="Topology file text (YAML)."
    )
