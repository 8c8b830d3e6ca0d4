"""Explicit input and output serializers of the service catalog API.

Inputs check shapes and types; webapp.catalog.services checks the rest against the host's topologies
and, through netcore.services.catalog, with the code the agent runs."""

from __future__ import annotations

from rest_framework import serializers

from netcore.services.catalog import CHECK_KINDS, LABEL
from webapp.catalog.models import Health, Service, Source
from webapp.catalog.selectors import dns_name

_LABEL_HELP = "A DNS label: a-z, 0-9 and '-', at most 63."


class CheckSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CHECK_KINDS, help_text="tcp connect, http GET, or a dns query.")
    interval = serializers.FloatField(required=False, min_value=0.1, max_value=3600, help_text="Seconds.")
    timeout = serializers.FloatField(required=False, min_value=0.05, max_value=60, help_text="Seconds.")
    rise = serializers.IntegerField(required=False, min_value=1, max_value=10)
    fall = serializers.IntegerField(required=False, min_value=1, max_value=10)
    path = serializers.CharField(required=False, max_length=256, help_text="http: the path to GET.")
    status = serializers.ListField(
        child=serializers.IntegerField(min_value=100, max_value=599),
        required=False,
        min_length=2,
        max_length=2,
        help_text="http: the passing range [low, high]; another status below 500 is a warning.",
    )
    query = serializers.CharField(required=False, max_length=253, help_text="dns: the name to ask for.")
    source = serializers.CharField(
        required=False, max_length=255, help_text="The namespace to check from (default: the host's)."
    )


class ServiceCreateSerializer(serializers.Serializer):
    # 62: `_<name>` is a label of the RFC 2782 SRV name
    name = serializers.RegexField(
        LABEL.pattern, max_length=62, help_text="A DNS label of at most 62 characters."
    )
    host = serializers.CharField(max_length=255)
    network = serializers.CharField(
        max_length=24, help_text="A network of the host: `topology/network`, or `network` when unambiguous."
    )
    port = serializers.IntegerField(min_value=1, max_value=65535)
    protocol = serializers.ChoiceField(choices=Service.Protocol.choices, default="tcp")
    vip = serializers.CharField(
        max_length=39, required=False, allow_blank=True, help_text="A free IPv4 address of the network."
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=63), required=False, max_length=32)
    meta = serializers.DictField(child=serializers.CharField(max_length=512), required=False)
    check = CheckSerializer(required=False, allow_null=True)


class ServiceUpdateSerializer(serializers.Serializer):
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    protocol = serializers.ChoiceField(choices=Service.Protocol.choices, required=False)
    vip = serializers.CharField(max_length=39, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=63), required=False, max_length=32)
    meta = serializers.DictField(child=serializers.CharField(max_length=512), required=False)
    check = CheckSerializer(required=False, allow_null=True)


class InstanceRegisterSerializer(serializers.Serializer):
    name = serializers.RegexField(LABEL.pattern, max_length=63, required=False, help_text=_LABEL_HELP)
    node = serializers.CharField(max_length=15, required=False, help_text="A node of the service's topology.")
    address = serializers.CharField(max_length=39, required=False, help_text="Or an address on its network.")
    port = serializers.IntegerField(
        min_value=1, max_value=65535, required=False, help_text="Default: the service's port."
    )
    weight = serializers.IntegerField(min_value=1, max_value=100, default=1)
    meta = serializers.DictField(child=serializers.CharField(max_length=512), required=False)
    ttl = serializers.IntegerField(
        min_value=1, required=False, help_text="A lease in seconds: renew it, or the instance is removed."
    )


class InstanceSerializer(serializers.Serializer):
    name = serializers.CharField()
    node = serializers.CharField()
    address = serializers.CharField(help_text="Given, or the node's address on the network.")
    port = serializers.IntegerField()
    weight = serializers.IntegerField()
    meta = serializers.DictField()
    source = serializers.ChoiceField(choices=Source.choices)
    ttl = serializers.IntegerField(allow_null=True)
    expires = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=Health.choices)
    output = serializers.CharField()
    checked = serializers.DateTimeField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    rtt_us = serializers.IntegerField(allow_null=True)
    dns_name = serializers.CharField(help_text="<instance>.<service>.<network>.<domain>")


class HealthPointSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Health.choices)
    rtt_us = serializers.IntegerField(allow_null=True)
    output = serializers.CharField()


class InstanceDetailSerializer(InstanceSerializer):
    history = HealthPointSerializer(many=True)


class ServiceSerializer(serializers.Serializer):
    name = serializers.CharField()
    host = serializers.CharField(source="host.name")
    topology = serializers.CharField()
    network = serializers.CharField()
    protocol = serializers.CharField()
    port = serializers.IntegerField()
    vip = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    meta = serializers.DictField()
    check = serializers.JSONField(source="health_check", allow_null=True)
    source = serializers.ChoiceField(choices=Source.choices)
    dns_name = serializers.SerializerMethodField()

    def get_dns_name(self, service: Service) -> str:
        return dns_name(service)


class ServiceRowSerializer(serializers.Serializer):
    """A service in the list, with its instances counted by health."""

    service = ServiceSerializer()
    counts = serializers.DictField(child=serializers.IntegerField())
    network_present = serializers.BooleanField(help_text="False once its topology lost the network.")
    problems = serializers.ListField(
        child=serializers.CharField(),
        help_text="What the host's agent could not serve of it yet (its DNS, its VIP), and why.",
    )


class ResolveInputSerializer(serializers.Serializer):
    client = serializers.CharField(
        max_length=15,
        required=False,
        allow_blank=True,
        help_text="The node to ask from (default: the first node on the network that is not an instance).",
    )


class ResolveAnswerSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["A", "AAAA", "SRV"])
    rcode = serializers.CharField(help_text="NOERROR, NXDOMAIN, REFUSED, ...; empty when nothing answered.")
    records = serializers.ListField(child=serializers.CharField(), help_text="What the client got.")
    rtt = serializers.FloatField(allow_null=True, help_text="Milliseconds.")
    error = serializers.CharField(help_text="Why there is no answer (no DNS answered, say).")
    expected = serializers.ListField(child=serializers.CharField(), help_text="What the catalog says.")
    agrees = serializers.BooleanField()


class ResolveSerializer(serializers.Serializer):
    client = serializers.CharField(help_text="The node asked from.")
    netns = serializers.CharField(allow_null=True)
    server = serializers.CharField(help_text="The DNS asked: the network's gateway.")
    answers = ResolveAnswerSerializer(many=True)
