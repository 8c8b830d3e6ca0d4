from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Long work on a host (plan/apply/destroy) as operations: queued, run by the host's agent, streamed."""

    name = "webapp.operations"
    label = "operations"
