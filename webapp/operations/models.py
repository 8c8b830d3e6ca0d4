"""An operation is one piece of long work on a host (plan, apply or destroy of a topology file, a
request to the host's Docker engine, or a change to one link's shaping).

An operation queued for a desired topology (webapp.networks) points at it: the topology's status is
derived from its latest operation. The web app queues some itself (reconcile on connect), saying why
in `reason`.

It is kept from the request that asks for it until it ends: pending (queued until the host's agent
is connected), running (sent to the agent), then succeeded, failed or cancelled. The host's agent
connection (webapp.hosts.consumers) runs a host's operations one at a time, oldest first, and
records the progress the agent reports (at most once a second). A running operation is cancelled
by asking its agent to stop (`cancel_requested`); it is cancelled once the agent answers so.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from webapp.hosts.models import Host


class Operation(models.Model):
    class Kind(models.TextChoices):
        PLAN = "plan"
        APPLY = "apply"
        DESTROY = "destroy"
        DOCKER = "docker"  # a request to the host's Docker engine (webapp.containers)
        SHAPE = "shape"  # a change to one link's shaping (webapp.topology.shaping)

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    document = models.TextField(
        help_text="The topology file text the operation runs; for a docker or shape operation, its request "
        "as JSON."
    )
    nodes = models.JSONField(
        null=True,
        blank=True,
        help_text="An apply limited to these nodes' namespaces (the rest matched the last apply).",
    )
    topology = models.ForeignKey(
        "networks.Topology",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operations",
        help_text="The desired topology it runs, if queued for one (else a file sent as is).",
    )
    topology_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version of the desired topology its document was compiled from."
    )
    reason = models.TextField(blank=True, help_text="Why it was queued, when not asked by a person.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(
        null=True, blank=True, help_text="The agent's answer: netcore's result, or its error object."
    )
    error = models.TextField(blank=True, help_text="Why it failed, for people.")
    progress = models.CharField(max_length=200, blank=True, help_text="What it is doing now, if known.")
    progress_done = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many of progress_total steps are done, when reported."
    )
    progress_total = models.PositiveIntegerField(
        null=True, blank=True, help_text="Steps of the work the progress is about, when reported."
    )
    cancel_requested = models.DateTimeField(
        null=True, blank=True, help_text="When someone asked its agent to stop it while it ran."
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["host", "status", "created"], name="operation_queue")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.host_id} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in FINISHED


FINISHED = frozenset({Operation.Status.SUCCEEDED, Operation.Status.FAILED, Operation.Status.CANCELLED})
