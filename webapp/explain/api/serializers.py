"""The explain API's question and answer (netcore.explain's, relayed by the host's agent)."""

from __future__ import annotations

from rest_framework import serializers

from netcore.explain.question import MAX_COUNT, MAX_TIMEOUT, MIN_TIMEOUT, PROTOCOLS, SIZE_RANGE


class ExplainInputSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=255, help_text="The host both ends are on.")
    source = serializers.CharField(
        max_length=255,
        help_text="TOPOLOGY/NODE, or a namespace's name as the host names it ('host': its own).",
    )
    destination = serializers.CharField(
        max_length=255,
        help_text="ADDRESS[:PORT], [IPv6]:PORT, TOPOLOGY/NODE[:PORT] or a namespace's name[:PORT].",
    )
    protocol = serializers.ChoiceField(
        choices=PROTOCOLS, required=False, help_text="tcp (the default with a port) or icmp (without)."
    )
    probe = serializers.BooleanField(default=True, help_text="Prove the walk with real packets.")
    count = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, default=3)
    timeout = serializers.FloatField(min_value=MIN_TIMEOUT, max_value=MAX_TIMEOUT, default=1.0)
    size = serializers.IntegerField(
        min_value=SIZE_RANGE[0],
        max_value=SIZE_RANGE[1],
        required=False,
        help_text="ICMP only: IP packets of this many bytes, don't-fragment set (is the path's MTU enough?).",
    )


class HopSerializer(serializers.Serializer):
    netns = serializers.CharField()
    kind = serializers.CharField(help_text="route, link, veth, bridge, fdb, vxlan, firewall or deliver.")
    object = serializers.CharField(help_text="What decided: a link, a bridge, a route's destination, a rule.")
    decision = serializers.CharField()
    verdict = serializers.CharField(help_text="forward, deliver, drop or abort.")
    cause = serializers.CharField(allow_blank=True)


class WalkSerializer(serializers.Serializer):
    source = serializers.CharField()
    destination = serializers.CharField()
    protocol = serializers.CharField()
    port = serializers.IntegerField(allow_null=True)
    hops = HopSerializer(many=True)
    verdict = serializers.CharField()
    cause = serializers.CharField(allow_blank=True)
    message = serializers.CharField()
    advice = serializers.CharField(allow_blank=True)


class ProbeSerializer(serializers.Serializer):
    protocol = serializers.CharField()
    sent = serializers.IntegerField()
    answered = serializers.IntegerField()
    outcomes = serializers.ListField(child=serializers.CharField())
    rtt_ms = serializers.ListField(child=serializers.FloatField())
    errors = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField(help_text="answered, refused, unreachable or timeout.")


class ExplanationSerializer(serializers.Serializer):
    result = serializers.CharField(help_text="REACHABLE, UNREACHABLE or INCONSISTENT.")
    summary = serializers.CharField()
    walk = WalkSerializer()
    probe = ProbeSerializer(allow_null=True)
