from django.apps import AppConfig


class TrafficConfig(AppConfig):
    """Traffic edges: who talks to whom between a host's namespaces, from the conntrack tables its
    agent reads, kept as history after the kernel has forgotten the conversation."""

    name = "webapp.traffic"
    label = "traffic"
