from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """The service catalog: services on managed networks, their instances and health, served by each
    host's agent as DNS names and load-balanced service addresses (VIPs)."""

    name = "webapp.catalog"
    label = "catalog"
