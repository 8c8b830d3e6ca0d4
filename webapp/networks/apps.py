from django.apps import AppConfig


class NetworksConfig(AppConfig):
    """Desired state: the topologies users asked for on each host, as rows netcore's parser checked."""

    name = "webapp.networks"
    label = "networks"
