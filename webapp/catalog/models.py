"""Desired state of the service catalog, and the health each host's agent reports of it.

A service lives on one network of one host: a managed network (a topology's, named by topology and
network, so a topology can be edited or re-applied under it) or, with an empty topology, a Docker
network of the host (named as Docker names it; webapp.catalog.docker registers its containers). Its
DNS name is `<service>.<network>.<domain>` (a Docker network's name made a DNS label). An instance is
a node of that topology (its address on the network comes from the topology) or a plain address.
Health is the agent's word, stored here for the pages, the API and the history chart.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from webapp.hosts.models import Host

DNS_LABEL = RegexValidator(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z", "a DNS label: a-z, 0-9 and '-', not at either end, at most 63"
)


class Source(models.TextChoices):
    """Where a service or instance came from."""

    API = "api"  # the REST API (a client registering itself, with or without a lease)
    UI = "ui"  # the catalog page
    TOPOLOGY = "topology"  # a topology file's services: section (static discovery)
    DOCKER = "docker"  # a container's switchboard.service label


class Health(models.TextChoices):
    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"  # not reported yet (no agent, or its first check has not run)


class Service(models.Model):
    class Protocol(models.TextChoices):
        TCP = "tcp"
        UDP = "udp"

    name = models.CharField(max_length=63, unique=True, validators=[DNS_LABEL])
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="services")
    topology = models.CharField(
        max_length=8, blank=True, help_text="The topology holding the network; empty: a Docker network."
    )
    network = models.CharField(max_length=64, help_text="The network, by its name in the topology or Docker.")
    protocol = models.CharField(max_length=3, choices=Protocol.choices, default=Protocol.TCP)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(65535)])
    vip = models.CharField(max_length=39, blank=True, help_text="Service address on the network, if any.")
    tags = models.JSONField(default=list, blank=True)
    meta = models.JSONField(default=dict, blank=True)
    health_check = models.JSONField(null=True, blank=True, help_text="How the agent probes each instance.")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Instance(models.Model):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(max_length=63, validators=[DNS_LABEL])
    node = models.CharField(max_length=15, blank=True, help_text="A node of the service's topology.")
    address = models.CharField(max_length=39, blank=True, help_text="Without a node: the instance's address.")
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(100)])
    meta = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    ttl = models.PositiveIntegerField(
        null=True, blank=True, help_text="Lease in seconds; renewals extend it."
    )
    expires = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # the agent's last word
    status = models.CharField(max_length=8, choices=Health.choices, default=Health.UNKNOWN)
    output = models.CharField(max_length=512, blank=True)
    checked = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    rtt_us = models.PositiveBigIntegerField(null=True, blank=True)
    sampled = models.DateTimeField(null=True, blank=True, help_text="When its history last took a point.")

    class Meta:
        ordering = ["service_id", "name"]
        constraints = [models.UniqueConstraint(fields=["service", "name"], name="instance_unique_name")]
        indexes = [models.Index(fields=["expires"])]

    def __str__(self) -> str:
        return f"{self.service_id}/{self.name}"


class HealthPoint(models.Model):
    """One point of an instance's check history: every change of state, and a sample of the rest."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Health.choices)
    rtt_us = models.PositiveBigIntegerField(null=True, blank=True)
    output = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["instance_id", "at"]
        indexes = [models.Index(fields=["instance", "at"])]


class HostCatalog(models.Model):
    """What a host's agent said of the catalog it was last sent: the version it serves and what it
    could not serve yet ("DNS of network front": the address is taken; "VIP of front/web": no bridge);
    and which of its containers' labels could not be registered (webapp.catalog.docker), each
    {"service": the label's service, "problem": why}."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="catalog")
    version = models.PositiveBigIntegerField(default=0)
    problems = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=1024, blank=True, help_text="Why the agent refused the catalog.")
    docker_problems = models.JSONField(
        default=dict,
        blank=True,
        help_text="Containers whose switchboard.* labels were refused: name → {service, problem}.",
    )
    updated = models.DateTimeField(auto_now=True)


class CatalogIndex(models.Model):
    """One row: raised by every change of what the catalog answers (blocking queries wait on it)."""

    value = models.PositiveBigIntegerField(default=0)
