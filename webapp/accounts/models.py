"""Roles. They are Django groups of these names; the app has no tables of its own."""

from django.db import models


class Role(models.TextChoices):
    """What a user may do: viewers read, operators also plan/apply/destroy, admins also manage hosts."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
