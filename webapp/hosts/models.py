"""A host is a machine whose agent dials in with a token; only the token's SHA-256 is stored.

Presence is a lease: the agent's connection sets `online_until` when the agent says hello and
renews it while connected (webapp.hosts.consumers). A host is online only while that lease runs,
so a host whose web worker died without closing the connection goes offline when the lease ends.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Host(models.Model):
    name = models.CharField(max_length=63, unique=True, help_text="Name the web app knows the host by.")
    token_prefix = models.CharField(max_length=8, help_text="First characters of the token, for display.")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 hex of the agent token.")
    created = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    online_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the presence lease of the agent's connection, if any."
    )
    lease_holder = models.CharField(
        max_length=200, blank=True, help_text="Channel name of the agent connection that holds the lease."
    )
    agent_version = models.CharField(max_length=64, blank=True)
    hostname = models.CharField(max_length=255, blank=True, help_text="Hostname the agent reported.")
    underlay = models.GenericIPAddressField(
        null=True,
        blank=True,
        help_text="Its address on the network between hosts: its VTEP in networks spanning hosts.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def online(self) -> bool:
        """Whether an agent connection holds a presence lease that has not run out, on a live token."""
        return (
            self.revoked_at is None and self.online_until is not None and self.online_until > timezone.now()
        )
