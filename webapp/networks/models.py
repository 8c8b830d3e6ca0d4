"""Desired state: what users asked for on each host, one topology file per Topology, normalized.

The rows hold a topology exactly as netcore.topology.spec validated and resolved it (addresses as its
IPAM chose them), so objects can be listed and constrained; webapp.networks.services compiles them
back into the netcore document the agent applies. An address is unique per host across all its
topologies, by a database constraint that holds under concurrent writers too.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from webapp.hosts.models import Host

TOPOLOGY_NAME = RegexValidator(r"^[a-z0-9-]{1,8}\Z", "1 to 8 characters of a-z, 0-9 and '-'")


class Topology(models.Model):
    """One topology file wanted on one host."""

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="topologies")
    name = models.CharField(max_length=8, validators=[TOPOLOGY_NAME])
    version = models.PositiveIntegerField(default=1, help_text="Raised by every update (optimistic locking).")
    auto_repair = models.BooleanField(default=False, help_text="Re-apply when the host drifts from it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    drift = models.JSONField(
        default=list,
        blank=True,
        help_text="What the live state lacks of the applied topology (networks.drift).",
    )
    # A topology spanning hosts (netcore.topology.span) is a row per host holding that host's share:
    # the home host's row keeps the whole file in span_document, the others point to it.
    span_document = models.JSONField(
        null=True, blank=True, help_text="The whole file of a topology spanning hosts (on its home row)."
    )
    span_root = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="span_shares",
        help_text="The home row of the spanning topology this row is a host's share of.",
    )
    span_share = models.JSONField(
        null=True,
        blank=True,
        help_text="The share of a spanning topology this row was last written from.",
    )

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="topology_unique_name_per_host")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host_id}"


class Network(models.Model):
    class Driver(models.TextChoices):
        BRIDGE = "bridge"
        VXLAN = "vxlan"

    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="networks")
    position = models.PositiveIntegerField(help_text="Order in the topology file.")
    name = models.CharField(max_length=15)
    driver = models.CharField(max_length=8, choices=Driver.choices)
    subnet = models.CharField(max_length=43)
    gateway = models.CharField(max_length=39)
    mtu = models.PositiveIntegerField(null=True, blank=True)
    nat = models.BooleanField(default=False)
    options = models.JSONField(
        default=dict, blank=True, help_text="vxlan: vni, local, remote, group, dstport, learning."
    )

    class Meta:
        ordering = ["topology_id", "position"]
        constraints = [models.UniqueConstraint(fields=["topology", "name"], name="network_unique_name")]

    def __str__(self) -> str:
        return self.name


class Node(models.Model):
    class Mode(models.TextChoices):
        BRIDGE = "bridge"
        NONE = "none"
        HOST = "host"
        CONTAINER = "container"

    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="nodes")
    position = models.PositiveIntegerField(help_text="Order in the topology file.")
    name = models.CharField(max_length=15)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    container_of = models.CharField(
        max_length=15, blank=True, help_text="In container mode: the node whose namespace it shares."
    )

    class Meta:
        ordering = ["topology_id", "position"]
        constraints = [models.UniqueConstraint(fields=["topology", "name"], name="node_unique_name")]

    def __str__(self) -> str:
        return self.name


class Attachment(models.Model):
    """A node's interface on a network, with its address (static: given in the file, else allocated)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="attachments")
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="attachments")
    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="+", help_text="The host of the topology."
    )
    position = models.PositiveIntegerField(help_text="Index among the node's interfaces: eth<position>.")
    ifname = models.CharField(max_length=15)
    address = models.CharField(max_length=39)
    static = models.BooleanField(default=False)

    class Meta:
        ordering = ["node_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["host", "address"], name="attachment_unique_address_per_host")
        ]

    def __str__(self) -> str:
        return f"{self.ifname} {self.address}"


class Route(models.Model):
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveIntegerField(help_text="Order in the topology file's routes.")
    to = models.CharField(max_length=43)
    via = models.CharField(max_length=39, blank=True)
    dev = models.CharField(max_length=15, blank=True)

    class Meta:
        ordering = ["node_id", "position"]

    def __str__(self) -> str:
        return f"{self.to} via {self.via or self.dev}"


class PublishedPort(models.Model):
    """One item of a node's ports, as written ([host_ip:]host_port:container_port[/tcp|udp]) and parsed."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="ports")
    position = models.PositiveIntegerField(help_text="Order in the node's ports.")
    text = models.CharField(max_length=200)
    protocol = models.CharField(max_length=3)
    host_ip = models.CharField(max_length=39, blank=True, help_text="Empty: every address of the host.")
    host_port_first = models.PositiveIntegerField()
    host_port_last = models.PositiveIntegerField()
    container_port_first = models.PositiveIntegerField()
    container_port_last = models.PositiveIntegerField()

    class Meta:
        ordering = ["node_id", "position"]

    def __str__(self) -> str:
        return self.text
