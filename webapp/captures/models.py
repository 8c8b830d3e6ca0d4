"""A packet capture on a host: what was asked, how it went, the pcapng file the agent streamed (kept
as ordered chunks, so it stays whole after the agent is gone and with any database), and the rows
the agent sent for the live table.

A capture is pending from the request until the agent says it runs (running), then done (it reached
its packet count or duration), stopped (someone, the web app's storage limit, or the agent's
disconnection stopped it early: what arrived is kept) or failed (the agent refused it or dumpcap
failed; `error` says why).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from webapp.captures.limits import DEFAULT_SNAPLEN, MAX_FILTER, MAX_NAMESPACE, MAX_ROW_TEXT
from webapp.hosts.models import Host


class Capture(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        STOPPED = "stopped"

    class Reason(models.TextChoices):
        """Why it ended, as the agent said (capture.done `reason`)."""

        COUNT = "count"
        DURATION = "duration"
        STOPPED = "stopped"
        ERROR = "error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="captures")
    namespace = models.CharField(max_length=MAX_NAMESPACE, help_text="As the host's live model names it.")
    interfaces = models.JSONField(help_text="Interface names in the namespace (1 to 8).")
    filter = models.CharField(max_length=MAX_FILTER, blank=True, help_text="BPF capture filter; empty: all.")
    count = models.PositiveIntegerField(help_text="Stop after this many packets.")
    duration = models.FloatField(help_text="Stop after this many seconds.")
    snaplen = models.PositiveIntegerField(default=DEFAULT_SNAPLEN, help_text="Bytes kept of each packet.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=16, choices=Reason.choices, blank=True)
    packets = models.PositiveBigIntegerField(
        default=0, help_text="Packets written so far (in the end: in the file)."
    )
    dropped = models.PositiveBigIntegerField(default=0, help_text="Packets the kernel or dumpcap dropped.")
    bytes = models.PositiveBigIntegerField(default=0, help_text="Bytes of the file kept so far.")
    rows_kept = models.PositiveIntegerField(
        default=0, help_text="Rows kept for the table (a sample when fast)."
    )
    error = models.TextField(
        blank=True,
        help_text="Why it failed, or why it ended early (the storage limit, the agent left).",
    )
    stop_requested = models.DateTimeField(
        null=True, blank=True, help_text="When its agent was asked to stop it."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["host", "status"], name="capture_host_status")]

    def __str__(self) -> str:
        return f"capture {self.id} on {self.host_id}/{self.namespace} ({self.status})"

    @property
    def ended(self) -> bool:
        return self.status in ENDED


ENDED = frozenset({Capture.Status.DONE, Capture.Status.FAILED, Capture.Status.STOPPED})
LIVE = (Capture.Status.PENDING, Capture.Status.RUNNING)


class CaptureChunk(models.Model):
    """Bytes of the capture's pcapng file from `offset`, as one capture.data frame brought them."""

    capture = models.ForeignKey(Capture, on_delete=models.CASCADE, related_name="chunks")
    offset = models.PositiveBigIntegerField()
    data = models.BinaryField()

    class Meta:
        ordering = ["offset"]
        constraints = [models.UniqueConstraint(fields=["capture", "offset"], name="capture_chunk_offset")]


class CapturePacket(models.Model):
    """One row of the live table, as the agent's tshark summarised that frame of the file."""

    capture = models.ForeignKey(Capture, on_delete=models.CASCADE, related_name="packet_rows")
    number = models.PositiveBigIntegerField(help_text="The frame's number in the file, from 1.")
    time = models.FloatField(help_text="Epoch seconds.")
    interface = models.CharField(max_length=MAX_ROW_TEXT, blank=True)
    source = models.CharField(max_length=MAX_ROW_TEXT, blank=True)
    destination = models.CharField(max_length=MAX_ROW_TEXT, blank=True)
    protocol = models.CharField(max_length=MAX_ROW_TEXT, blank=True)
    length = models.PositiveIntegerField()
    info = models.CharField(max_length=MAX_ROW_TEXT, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["capture", "number"], name="capture_packet_number")]
