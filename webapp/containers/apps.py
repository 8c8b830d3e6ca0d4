from django.apps import AppConfig


class ContainersConfig(AppConfig):
    """Docker on each host: its networks, containers and images as the host's agent reports them,
    and requests to the engine (network create/remove/connect, container run/stop/remove)."""

    name = "webapp.containers"
    label = "containers"
