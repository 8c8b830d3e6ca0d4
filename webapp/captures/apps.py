from django.apps import AppConfig


class CapturesConfig(AppConfig):
    """Packet captures: run by a host's agent (dumpcap inside an interface's namespace), streamed into
    the web app as a pcapng file kept in the database and rows shown live, decoded with tshark."""

    name = "webapp.captures"
    label = "captures"
