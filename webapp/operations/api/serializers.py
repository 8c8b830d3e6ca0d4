"""Explicit output serializers of the operations API."""

from django.urls import reverse
from rest_framework import serializers

from webapp.operations.models import Operation


class OperationCreatedSerializer(serializers.Serializer):
    """The 202 answer to plan/apply/destroy: the queued operation and where to follow it."""

    operation = serializers.UUIDField(source="id")
    status = serializers.ChoiceField(choices=Operation.Status.choices)
    url = serializers.SerializerMethodField()

    def get_url(self, operation: Operation) -> str:
        return reverse("api-operation-detail", args=[operation.id])


class OperationOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    host = serializers.CharField(source="host.name")
    kind = serializers.ChoiceField(choices=Operation.Kind.choices)
    status = serializers.ChoiceField(choices=Operation.Status.choices)
    topology = serializers.CharField(
        source="topology.name",
        allow_null=True,
        default=None,
        help_text="The desired topology (name) it was queued for; null for a file sent as is.",
    )
    reason = serializers.CharField(help_text="Why the web app queued it itself; empty when a person asked.")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    created = serializers.DateTimeField()
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)
    result = serializers.JSONField(
        allow_null=True,
        help_text="The agent's answer: netcore's result (succeeded) or its error object"
        " {error, message, object, errno} (failed), else null.",
    )
    error = serializers.CharField(help_text="Why it failed, for people; empty unless failed.")
    progress = serializers.CharField(
        help_text='What it is doing now, when its agent reports it ("building nodes 128/500"); empty once'
        " it has ended."
    )
    done = serializers.IntegerField(
        source="progress_done",
        allow_null=True,
        help_text="How many of `total` are done; null unless its agent reported progress.",
    )
    total = serializers.IntegerField(
        source="progress_total",
        allow_null=True,
        help_text="How many steps the progress counts (nodes to build); null unless reported.",
    )
    cancel_requested = serializers.DateTimeField(
        allow_null=True, help_text="When its agent was asked to stop it while it ran; null if never."
    )

    def get_url(self, operation: Operation) -> str:
        return reverse("api-operation-detail", args=[operation.id])


class OperationDetailSerializer(OperationOutputSerializer):
    document = serializers.CharField(help_text="The topology file text it runs.")
    nodes = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="An apply that reads and converges only these nodes' namespaces (besides the host's"
        " own objects), because the rest matched the last apply and has not drifted; null: every node.",
    )
