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
        choices=PROTOCOLS,
        required=False,
        help_text="tcp (the default with a port), udp (with a port) or icmp (the default without).",
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
    interface = serializers.CharField(
        allow_blank=True, help_text="The link in netns the packet crosses here, watched while the probe runs."
    )
    probe_seen = serializers.DictField(
        child=serializers.IntegerField(),
        allow_null=True,
        help_text="{out, back}: the probe's packets seen on `interface` each way; null: not watched.",
    )


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
    translated = serializers.ListField(
        child=serializers.ListField(), help_text="[address, port] targets of DNAT on the way."
    )


class SeenAtSerializer(serializers.Serializer):
    hop = serializers.IntegerField(help_text="The hop's index in walk.hops.")
    netns = serializers.CharField()
    interface = serializers.CharField()


class DroppedBySerializer(serializers.Serializer):
    netns = serializers.CharField()
    family = serializers.CharField()
    table = serializers.CharField()
    chain = serializers.CharField()
    handle = serializers.IntegerField(allow_null=True)
    rule = serializers.CharField()
    policy = serializers.BooleanField(help_text="The chain's policy dropped it, not a rule.")
    where = serializers.CharField(help_text="`family table chain[ handle N]`, as the walk names rules.")


class ProbeSerializer(serializers.Serializer):
    protocol = serializers.CharField()
    sent = serializers.IntegerField()
    answered = serializers.IntegerField()
    outcomes = serializers.ListField(child=serializers.CharField())
    rtt_ms = serializers.ListField(child=serializers.FloatField())
    errors = serializers.ListField(child=serializers.CharField())
    outcome = serializers.CharField(help_text="answered, refused, unreachable or timeout.")
    last_seen = SeenAtSerializer(allow_null=True, help_text="The last watched hop that saw it going out.")
    not_seen = SeenAtSerializer(allow_null=True, help_text="The first watched hop after that which did not.")
    seen = serializers.CharField(help_text="Where it was seen, in words.")
    dropped_by = DroppedBySerializer(allow_null=True, help_text="The rule nftables tracing saw drop it.")
    traced = serializers.ListField(child=serializers.CharField(), help_text="Namespaces traced: they filter.")
    watch_errors = serializers.ListField(child=serializers.CharField())


class ExplanationSerializer(serializers.Serializer):
    result = serializers.CharField(help_text="REACHABLE, UNREACHABLE or INCONSISTENT.")
    summary = serializers.CharField()
    walk = WalkSerializer()
    probe = ProbeSerializer(allow_null=True)
