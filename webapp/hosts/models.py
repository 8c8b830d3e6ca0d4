"""A host is a machine whose agent dials in with a token; only the token's SHA-256 is stored."""

from __future__ import annotations

from django.db import models


class Host(models.Model):
    name = models.CharField(max_length=63, unique=True, help_text="Name the web app knows the host by.")
    token_prefix = models.CharField(max_length=8, help_text="First characters of the token, for display.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 hex of the agent token.")
    created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False)
    agent_version = models.CharField(max_length=64, blank=True)
    hostname = models.CharField(max_length=255, blank=True, help_text="Hostname the agent reported.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
