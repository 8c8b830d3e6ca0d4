"""The last known network state of each host, as its agent reported it."""

from __future__ import annotations

from django.db import models

from webapp.hosts.models import Host


class HostState(models.Model):
    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="state")
    seq = models.BigIntegerField(default=0, help_text="seq of the agent frame this state is at.")
    state = models.JSONField(default=dict, help_text="Kind → {key: netcore object} (docs/agent-protocol.md).")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.host.name}@{self.seq}"
