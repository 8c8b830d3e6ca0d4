"""The last known network state of each host, as its agent reported it; each user's saved graph layouts."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from webapp.hosts.models import Host

LAYOUT_VIEW_PATTERN = r"[a-z0-9][a-z0-9-]{0,39}"


class HostState(models.Model):
    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="state")
    seq = models.BigIntegerField(default=0, help_text="seq of the agent frame this state is at.")
    state = models.JSONField(default=dict, help_text="Kind → {key: netcore object} (docs/agent-protocol.md).")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.host.name}@{self.seq}"


class SavedLayout(models.Model):
    """Where one user put the nodes of one graph view (e.g. "topology")."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="layouts")
    view = models.CharField(max_length=40, validators=[RegexValidator(f"^{LAYOUT_VIEW_PATTERN}$")])
    positions = models.JSONField(default=dict, help_text="Node id → [x, y].")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "view"], name="topology_layout_user_view")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.view}"
