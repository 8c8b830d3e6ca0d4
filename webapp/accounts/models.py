"""Roles (Django groups of these names) and users' API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    """What a user may do: viewers read, operators also plan/apply/destroy, admins also manage hosts."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class ApiToken(models.Model):
    """A user's API token. Only its SHA-256 is stored: the token itself is shown once, when made.

    A user may have several (one per script or machine), each revoked on its own.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'ci' or 'laptop'.")
    prefix = models.CharField(max_length=12, help_text="First characters of the token, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 hex of the token.")
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="None: does not expire.")
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    migrated = models.BooleanField(
        default=False, help_text="Carried over from the clear-text store of old versions: rotate it."
    )

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        """"revoked", "expired" or "active"."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired else "active"
