"""Dynamic discovery: service instances from Docker container labels, as Registrator does for Consul.

A running container labelled `switchboard.service=<name>` is an instance (source docker) of that
service at its IPv4 address on one of its local bridge networks: `switchboard.network` names which
(default: its first one with an IPv4 address), `switchboard.port` its port (required when the service
does not exist yet, else the service's), `switchboard.weight` (1-100) and `switchboard.protocol`
(tcp, udp) the rest. It goes when the container stops or is removed. A service that does not exist
yet is made (source docker) on that Docker network of the host, and goes with its last instance.

A container whose labels cannot be registered is skipped; why is logged once and kept per host
(HostCatalog.docker_problems) for the Services page. On every snapshot and every delta that touches
the engine, its networks or containers, webapp.hosts.consumers calls `docker_registrations_sync` with
the host's live Docker state: it compares what the containers ask with the host's docker instances
and writes only the difference, in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import transaction

from netcore.services.catalog import LABEL, MAX_WEIGHT, PROTOCOLS
from webapp.audit.models import AuditEntry
from webapp.audit.services import audit_record
from webapp.catalog.docker_networks import DOCKER, Objects, dns_label, network_text, served_network
from webapp.catalog.models import HostCatalog, Instance, Service, Source
from webapp.catalog.services import catalog_changed
from webapp.hosts.models import Host

log = logging.getLogger(__name__)

SERVICE = "switchboard.service"
PORT = "switchboard.port"
NETWORK = "switchboard.network"
WEIGHT = "switchboard.weight"
PROTOCOL = "switchboard.protocol"
MAX_SERVICE = 62  # `_<service>` is a label of the RFC 2782 SRV name
SHORT_ID = 12  # characters of a container id in an instance's metadata, as `docker ps` shows it


class LabelProblem(Exception):
    """Why a container's labels cannot be registered (shown as it is)."""


@dataclass(frozen=True)
class Wanted:
    """The instance one container's labels ask for."""

    container: str
    service: str
    network: str  # the Docker network, by name
    name: str  # the instance's
    address: str
    port: int | None  # None: the service's
    weight: int
    protocol: str | None  # None: not said
    meta: dict[str, str]

    @property
    def key(self) -> tuple[str, str]:
        return self.service, self.name


# -- what the labels ask ----------------------------------------------------------------------------


def _number(labels: Mapping[str, str], key: str, high: int) -> int | None:
    """A label's number from 1 to `high`, or None when the label is absent."""
    text = labels.get(key)
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= high:
        raise LabelProblem(f"{key}={text!r} is not a number from 1 to {high}")
    return int(text)


def _endpoint(
    container: Mapping[str, Any], networks: Objects, chosen: str | None
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(endpoint, network): the container's IPv4 endpoint on the local bridge network `chosen`, or on
    its first such network when None."""
    usable = []
    for endpoint in container["endpoints"]:
        network = networks.get(endpoint["network_id"])
        if network and (network["driver"], network["scope"]) == ("bridge", "local") and endpoint["ipv4"]:
            usable.append((endpoint, network))
    found = next((u for u in usable if chosen is None or u[1]["name"] == chosen), None)
    if found is None and chosen is None:
        raise LabelProblem("it has no IPv4 address on a local bridge network")
    if found is None:
        raise LabelProblem(
            f"{NETWORK}={chosen!r}: it has no IPv4 address on a local bridge network of that name"
        )
    return found


def container_wants(container: Mapping[str, Any], networks: Objects) -> Wanted | None:
    """The instance a container's labels ask for: None when it asks none (no switchboard.service
    label, or not running); LabelProblem when its labels cannot be registered."""
    labels = {pair["name"]: pair["value"] for pair in container["labels"]}
    if SERVICE not in labels or container["state"] != "running":
        return None
    service = labels[SERVICE]
    if not LABEL.match(service) or len(service) > MAX_SERVICE:
        raise LabelProblem(f"{SERVICE}={service!r} is not a DNS label of at most {MAX_SERVICE} characters")
    protocol = labels.get(PROTOCOL)
    if protocol is not None and protocol not in PROTOCOLS:
        raise LabelProblem(f"{PROTOCOL}={protocol!r} is not {' or '.join(PROTOCOLS)}")
    port, weight = _number(labels, PORT, 65535), _number(labels, WEIGHT, MAX_WEIGHT)
    name = dns_label(container["name"])
    if not LABEL.match(name):
        raise LabelProblem(f"its name makes no DNS label for the instance ({name!r})")
    endpoint, network = _endpoint(container, networks, labels.get(NETWORK))
    if not LABEL.match(dns_label(network["name"])):
        raise LabelProblem(f"Docker network {network['name']}'s name makes no DNS label")
    return Wanted(
        container=container["name"],
        service=service,
        network=network["name"],
        name=name,
        address=endpoint["ipv4"].split("/")[0],
        port=port,
        weight=weight or 1,
        protocol=protocol,
        meta={"container": container["name"], "container_id": container["id"][:SHORT_ID]},
    )


# -- what the catalog allows ------------------------------------------------------------------------


def _where(service: Service) -> str:
    return f"{network_text(service)} on host {service.host.name}"


@dataclass
class _Plan:
    """What one pass over a host's containers registers, beside the catalog as it is."""

    host_id: int
    services: dict[str, Service]  # by name: the host's, those the labels name, and those to make
    taken: set[tuple[str, str]]  # (service, instance) names held by instances not from Docker
    accepted: dict[tuple[str, str], Wanted] = field(default_factory=dict)
    problems: dict[str, dict[str, str]] = field(default_factory=dict)

    @cached_property
    def host(self) -> str:
        """The host's name, for the audit."""
        return Host.objects.get(pk=self.host_id).name

    def take(self, wanted: Wanted) -> None:
        """Accept a container's instance, with its service made if need be; LabelProblem if the
        catalog cannot have it."""
        service = self.services.get(wanted.service)
        home = (self.host_id, DOCKER, wanted.network)
        if service is not None and (service.host_id, service.topology, service.network) != home:
            raise LabelProblem(f"service {wanted.service} lives on {_where(service)}")
        if service is not None and wanted.protocol not in (None, service.protocol):
            raise LabelProblem(f"service {wanted.service} is {service.protocol}, not {wanted.protocol}")
        if service is None and wanted.port is None:
            raise LabelProblem(f"{PORT} is required: service {wanted.service} does not exist yet")
        if wanted.key in self.taken or wanted.key in self.accepted:
            raise LabelProblem(f"service {wanted.service} already has an instance {wanted.name}")
        holder = next((s for s in self.services.values() if s.vip == wanted.address), None)
        if holder is not None and holder.host_id == self.host_id:
            raise LabelProblem(f"its address {wanted.address} is service {holder.name}'s VIP")
        if service is None:
            self.services[wanted.service] = self._service_for(wanted)
        self.accepted[wanted.key] = wanted

    def _service_for(self, wanted: Wanted) -> Service:
        """A new service on the container's Docker network, unless another network of the host
        already answers under the same DNS name."""
        served = dns_label(wanted.network)
        for other in self.services.values():
            same_name = other.host_id == self.host_id and served_network(other) == served
            if same_name and (other.topology, other.network) != (DOCKER, wanted.network):
                raise LabelProblem(f"network name {served} in DNS is already that of {_where(other)}")
        assert wanted.port is not None, "take() asked for the port"
        return Service(
            name=wanted.service,
            host_id=self.host_id,
            topology=DOCKER,
            network=wanted.network,
            port=wanted.port,
            protocol=wanted.protocol or Service.Protocol.TCP,
            source=Source.DOCKER,
        )


def _plan(host_id: int, wanted: list[Wanted], problems: dict[str, dict[str, str]]) -> _Plan:
    names = {w.service for w in wanted}
    services = Service.objects.filter(host_id=host_id) | Service.objects.filter(name__in=names)
    taken = (
        Instance.objects.filter(service__name__in=names)
        .exclude(source=Source.DOCKER)
        .values_list("service__name", "name")
    )
    plan = _Plan(
        host_id=host_id,
        services={s.name: s for s in services.select_related("host")},
        taken=set(taken),
        problems=dict(problems),
    )
    for one in sorted(wanted, key=lambda w: (w.port is None, w.container)):  # who can make a service first
        try:
            plan.take(one)
        except LabelProblem as problem:
            plan.problems[one.container] = {"service": one.service, "problem": str(problem)}
    return plan


# -- writing the difference -------------------------------------------------------------------------


def _audit(action: str, kind: str, host: str, name: str, **details: Any) -> None:
    """Record a change the host's agent reported (no person acted)."""
    audit_record(
        action=action, object_kind=kind, host=host, name=name, details=details, source=AuditEntry.Source.AGENT
    )


def _write(plan: _Plan) -> tuple[bool, bool]:
    """Make the host's docker instances what `plan` accepted; (anything changed, a service went)."""
    changed = False
    ours = Instance.objects.filter(service__host_id=plan.host_id, source=Source.DOCKER)
    existing = {(i.service.name, i.name): i for i in ours.select_related("service")}
    for key in existing.keys() - plan.accepted.keys():
        existing.pop(key).delete()
        _audit("deregister", "instance", plan.host, "/".join(key))
        changed = True
    for key, wanted in sorted(plan.accepted.items()):
        service = plan.services[wanted.service]
        if service.pk is None:
            service.save()
            _audit("create", "service", plan.host, service.name, network=service.network, port=service.port)
        fields = {
            "address": wanted.address,
            "port": wanted.port,
            "weight": wanted.weight,
            "meta": wanted.meta,
        }
        instance = existing.get(key)
        if instance is None:
            Instance.objects.create(service=service, name=wanted.name, source=Source.DOCKER, **fields)
            _audit("register", "instance", plan.host, "/".join(key), address=wanted.address, port=wanted.port)
        elif any(getattr(instance, k) != v for k, v in fields.items()):
            Instance.objects.filter(pk=instance.pk).update(**fields)
        else:
            continue
        changed = True
    empty = Service.objects.filter(
        host_id=plan.host_id, topology=DOCKER, source=Source.DOCKER, instances__isnull=True
    )
    gone = list(empty.values_list("name", flat=True))
    if gone:
        empty.delete()
        for name in gone:
            _audit("delete", "service", plan.host, name)
    return changed or bool(gone), bool(gone)


def _problems_keep(plan: _Plan) -> bool:
    """Keep the host's label problems (logging each new one); whether they changed."""
    kept = (
        HostCatalog.objects.filter(host_id=plan.host_id).values_list("docker_problems", flat=True).first()
        or {}
    )
    if kept == plan.problems:
        return False
    for container, problem in sorted(plan.problems.items()):
        if kept.get(container) != problem:
            log.warning(
                "host %s: container %s is not registered as service %s: %s",
                plan.host,
                container,
                problem["service"],
                problem["problem"],
            )
    HostCatalog.objects.update_or_create(host_id=plan.host_id, defaults={"docker_problems": plan.problems})
    return True


@transaction.atomic
def docker_registrations_sync(
    *, host_id: int, engine: Mapping[str, Any] | None, networks: Objects, containers: Objects
) -> bool:
    """Make the host's service instances from Docker what its containers' labels ask, given its
    engine, networks and containers as its agent reports them (by key). While the engine is not known
    to answer (`engine` None or unavailable), what runs is not known and nothing changes. True when
    the catalog changed (its index was raised; the host's agent gets its new catalog on commit)."""
    if engine is None or not engine["available"]:
        return False
    wanted: list[Wanted] = []
    problems: dict[str, dict[str, str]] = {}
    for container in containers.values():
        try:
            found = container_wants(container, networks)
        except LabelProblem as problem:
            service = {p["name"]: p["value"] for p in container["labels"]}[SERVICE]
            problems[container["name"]] = {"service": service, "problem": str(problem)}
            continue
        if found is not None:
            wanted.append(found)
    plan = _plan(host_id, wanted, problems)
    changed, services_went = _write(plan)
    if services_went and plan.problems:  # a container refused for a service that went may come now
        plan = _plan(host_id, wanted, problems)
        changed |= _write(plan)[0]
    problems_changed = _problems_keep(plan)
    if changed:
        catalog_changed([host_id])
    elif problems_changed:
        catalog_changed([])  # the Services page shows them: wake it; the agent serves the same
    return changed or problems_changed
