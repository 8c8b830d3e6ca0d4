from django.apps import AppConfig


class HostsConfig(AppConfig):
    """Managed hosts, their agent tokens, the agent websocket and commands sent through it."""

    name = "webapp.hosts"
    label = "hosts"
