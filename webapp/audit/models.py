"""AuditEntry: one change (or one refused change) to desired state, an operation or a host."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to which object, when, from where, and how it ended.

    The user's name, the host's name and the object's name are kept as text: an entry outlives the
    user, host or topology it names.
    """

    class Source(models.TextChoices):
        UI = "ui"  # a logged-in browser (session)
        API = "api"  # a user API token
        AGENT = "agent"  # a host's agent reported it
        SYSTEM = "system"  # the server on its own (reconcile, management commands)

    class Result(models.TextChoices):
        OK = "ok"
        FAILED = "failed"

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True, help_text="Empty when no person acted.")
    source = models.CharField(max_length=8, choices=Source.choices)
    action = models.CharField(max_length=64, help_text="e.g. topology.create, operation.cancel, host.revoke")
    object_kind = models.CharField(max_length=32)
    host = models.CharField(max_length=63, blank=True)
    object_name = models.CharField(max_length=255, blank=True, help_text="Topology name, operation id, …")
    topology = models.CharField(
        max_length=255, blank=True, help_text="The topology it concerns (a topology's, or an operation's)."
    )
    details = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices, default=Result.OK)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_at"),
            models.Index(fields=["username", "-at"], name="audit_user_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["host", "object_name", "-at"], name="audit_object_at"),
            models.Index(fields=["host", "topology", "-at"], name="audit_topology_at"),
        ]

    def __str__(self) -> str:
        who = self.username or self.source
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.host}/{self.object_name} {self.result}"
