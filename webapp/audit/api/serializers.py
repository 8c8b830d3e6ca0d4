"""Explicit input and output serializers of the audit API."""

from rest_framework import serializers

from webapp.audit.models import AuditEntry


class AuditQuerySerializer(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="Only this user's changes (user name).")
    action = serializers.CharField(
        required=False, help_text="e.g. topology.create, or topology.* for all of a kind."
    )
    host = serializers.CharField(required=False, help_text="Only changes on this host.")
    object = serializers.CharField(
        required=False, help_text="A topology's name (its operations too) or an operation's id."
    )
    since = serializers.DateTimeField(required=False, help_text="From this time on (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Before this time (ISO 8601).")
    export = serializers.BooleanField(
        required=False, default=False, help_text="Every matching entry as one JSON attachment, not a page."
    )


class AuditEntrySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username", help_text="Empty when no person acted (agent, system).")
    object = serializers.CharField(source="object_name")

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "user", "source", "action", "object_kind", "host", "object", "topology",
                  "details", "result", "error"]  # fmt: skip
