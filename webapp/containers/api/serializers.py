"""Explicit input and output serializers of the Docker API.

Inputs check shapes and types; netcore.docker.spec (through webapp.containers.services) checks the
rest — addresses inside subnets, modes and the fields each takes — with the agent's own code."""

from __future__ import annotations

from rest_framework import serializers

from netcore.docker import spec


class HostField(serializers.CharField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_length=255, help_text="The host whose engine is asked.", **kwargs)


class SubnetInputSerializer(serializers.Serializer):
    subnet = serializers.CharField(max_length=64, help_text="CIDR, e.g. 198.18.10.0/24.")
    gateway = serializers.CharField(max_length=64, required=False, allow_blank=True)
    ip_range = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Containers' addresses come from here."
    )
    aux_addresses = serializers.DictField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text="Addresses kept out of the pool, by name.",
    )


class NetworkCreateInputSerializer(serializers.Serializer):
    host = HostField()
    name = serializers.RegexField(spec.NAME.pattern, max_length=128)
    driver = serializers.ChoiceField(choices=spec.NETWORK_DRIVERS, default="bridge")
    subnets = SubnetInputSerializer(many=True, required=False)
    ipv6 = serializers.BooleanField(default=False)
    internal = serializers.BooleanField(default=False)
    attachable = serializers.BooleanField(default=False)
    labels = serializers.DictField(
        child=serializers.CharField(max_length=1024, allow_blank=True), required=False
    )
    options = serializers.DictField(
        child=serializers.CharField(max_length=1024, allow_blank=True),
        required=False,
        help_text="Driver options.",
    )


class ConnectInputSerializer(serializers.Serializer):
    container = serializers.RegexField(spec.REFERENCE.pattern, max_length=255)
    ipv4 = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="A static address."
    )
    ipv6 = serializers.CharField(max_length=64, required=False, allow_blank=True)
    aliases = serializers.ListField(
        child=serializers.RegexField(spec.NAME.pattern, max_length=128), required=False
    )


class DisconnectInputSerializer(serializers.Serializer):
    container = serializers.RegexField(spec.REFERENCE.pattern, max_length=255)
    force = serializers.BooleanField(default=False)


class PortInputSerializer(serializers.Serializer):
    container_port = serializers.IntegerField(min_value=1, max_value=65535)
    protocol = serializers.ChoiceField(choices=spec.PROTOCOLS, default="tcp")
    host_port = serializers.IntegerField(min_value=1, max_value=65535, required=False, allow_null=True)
    host_ip = serializers.CharField(max_length=64, required=False, allow_blank=True, allow_null=True)


class ContainerRunInputSerializer(serializers.Serializer):
    host = HostField()
    image = serializers.RegexField(spec.REFERENCE.pattern, max_length=255, help_text="A local image.")
    name = serializers.RegexField(spec.NAME.pattern, max_length=128, required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=spec.RUN_MODES, default="bridge")
    network = serializers.RegexField(
        spec.REFERENCE.pattern, max_length=255, required=False, allow_blank=True,
        help_text="bridge or overlay mode: the network to join (bridge: Docker's default when empty).",
    )  # fmt: skip
    container = serializers.RegexField(
        spec.REFERENCE.pattern, max_length=255, required=False, allow_blank=True,
        help_text="container mode: whose namespace to join.",
    )  # fmt: skip
    ipv4 = serializers.CharField(max_length=64, required=False, allow_blank=True)
    aliases = serializers.ListField(
        child=serializers.RegexField(spec.NAME.pattern, max_length=128), required=False
    )
    ports = PortInputSerializer(many=True, required=False)
    command = serializers.CharField(max_length=4096, required=False, allow_blank=True)
    labels = serializers.DictField(
        child=serializers.CharField(max_length=1024, allow_blank=True), required=False
    )


class ComposeUpInputSerializer(serializers.Serializer):
    host = HostField()
    project = serializers.RegexField(
        r"^[a-z0-9][a-z0-9_-]{0,62}$", help_text="The project name, unless the file names one (`name:`)."
    )
    file = serializers.CharField(max_length=256 * 1024, help_text="The compose file (YAML or JSON).")


class HostDockerSerializer(serializers.Serializer):
    """One host's engine and objects (each as netcore/schema/docker.schema.json documents it; a
    container's endpoints also name their interface, host veth and bridge)."""

    host = serializers.CharField()
    online = serializers.BooleanField()
    engine = serializers.JSONField(allow_null=True)
    networks = serializers.ListField(child=serializers.JSONField())
    containers = serializers.ListField(child=serializers.JSONField())
    images = serializers.ListField(child=serializers.JSONField())
