from django.apps import AppConfig


class TopologyConfig(AppConfig):
    """Each host's live network state: kept from its agent, persisted, streamed to browsers."""

    name = "webapp.topology"
    label = "topology"
