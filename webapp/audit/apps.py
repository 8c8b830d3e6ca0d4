from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit log: every change to desired state, operations and hosts, who made it, from where."""

    name = "webapp.audit"
    label = "audit"
